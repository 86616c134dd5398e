// Range presets in a time zone, from the server's "now".
import { ymd, zoned } from "./ui.ts";

export const RANGES = [
  ["today", "Today"],
  ["month", "This month"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["prev-month", "Previous month"],
  ["year", "This year"],
] as [string, string][];

export function range(kind: string, now: Date, tz: string): { from: Date; to: Date } {
  const [y, m, d] = ymd(now, tz);
  switch (kind) {
    case "today":
      return { from: zoned(y, m, d, tz), to: zoned(y, m, d + 1, tz) };
    case "7d":
      return { from: zoned(y, m, d - 6, tz), to: zoned(y, m, d + 1, tz) };
    case "30d":
      return { from: zoned(y, m, d - 29, tz), to: zoned(y, m, d + 1, tz) };
    case "prev-month":
      return { from: zoned(y, m - 1, 1, tz), to: zoned(y, m, 1, tz) };
    case "year":
      return { from: zoned(y, 1, 1, tz), to: zoned(y + 1, 1, 1, tz) };
    default:
      return { from: zoned(y, m, 1, tz), to: zoned(y, m + 1, 1, tz) };
  }
}
