// Small DOM helpers shared by the pages: elements, money, states, tables, time zones.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else if (k === "checked" && "checked" in el) (el as HTMLInputElement).checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const usdSmall = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  maximumSignificantDigits: 3,
});

/** Dollars, rounded for reading, with the exact decimal on hover (`title`). */
export function money(value: string | null | undefined, testid?: string): HTMLElement {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "—");
  const n = Number(value);
  const text = n !== 0 && Math.abs(n) < 0.01 ? usdSmall.format(n) : usd.format(n);
  return h(
    "span",
    { class: "money", title: `$${value} (exact)`, "data-exact": value, "data-testid": testid },
    text,
  );
}

export function int(n: number): string {
  return n.toLocaleString("en-US");
}

export function loading(): HTMLElement {
  return h("p", { class: "state", role: "status", "aria-live": "polite" }, "Loading…");
}
export function empty(text: string): HTMLElement {
  return h("p", { class: "state empty" }, text);
}
/** What an error says: its message, or the thrown value as text. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
export function failure(e: unknown): HTMLElement {
  return h("p", { class: "state error", role: "alert" }, `Error: ${messageOf(e)}`);
}

/** Runs `load` into `box`, with a loading state first and an error state on failure. */
/**
 * Turns of a load that a newer one may supersede (a control changed again before the
 * answer came): `const turn = turns();` once, then per load `const current = turn();`
 * and, after every await, `if (!current()) return;` — an older answer arriving last
 * never overwrites a newer one.
 */
export function turns(): () => () => boolean {
  let latest = 0;
  return () => {
    const mine = ++latest;
    return () => mine === latest;
  };
}

const boxTurns = new WeakMap<HTMLElement, () => () => boolean>();

/** Fills `box` with what `load` builds; only the latest fill of a box shows. */
export async function fill(box: HTMLElement, load: () => Promise<Node>, keep = false): Promise<void> {
  let turn = boxTurns.get(box);
  if (!turn) {
    turn = turns();
    boxTurns.set(box, turn);
  }
  const current = turn();
  // A refresh (`keep`) leaves what is shown in place until the new content replaces it
  // in one step, so a live update never blanks a table.
  if (!keep || !box.hasChildNodes()) box.replaceChildren(loading());
  box.setAttribute("aria-busy", "true");
  try {
    const node = await load();
    if (current()) box.replaceChildren(node);
  } catch (e) {
    if (current()) box.replaceChildren(failure(e));
  } finally {
    if (current()) box.removeAttribute("aria-busy");
  }
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child | Child[];
  /** Sort key; the column is sortable when given. */
  sort?: (row: T) => number | string;
  numeric?: boolean;
}

/** A table whose sortable headers reorder the rows (click or Enter). */
export function table<T>(rows: T[], columns: Column<T>[], testid?: string, emptyText = "Nothing yet."): HTMLElement {
  if (!rows.length) return empty(emptyText);
  let order: { col: number; dir: 1 | -1 } | null = null;
  const tbody = h("tbody");
  const draw = () => {
    const sorted = [...rows];
    if (order) {
      const { col, dir } = order;
      const key = columns[col].sort!;
      sorted.sort((a, b) => {
        const x = key(a);
        const y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    }
    tbody.replaceChildren(
      ...sorted.map((r) =>
        h("tr", {}, ...columns.map((c) => h("td", { class: c.numeric ? "num" : "" }, ...[c.cell(r)].flat()))),
      ),
    );
  };
  const head = h(
    "tr",
    {},
    ...columns.map((c, i) => {
      if (!c.sort) return h("th", { scope: "col", class: c.numeric ? "num" : "" }, c.label);
      const button = h("button", { type: "button", class: "sort" }, c.label);
      const th = h("th", { scope: "col", class: c.numeric ? "num" : "", "aria-sort": "none" }, button);
      button.addEventListener("click", () => {
        order = order?.col === i ? { col: i, dir: order.dir === 1 ? -1 : 1 } : { col: i, dir: -1 };
        head.querySelectorAll("th").forEach((t) => t.setAttribute("aria-sort", "none"));
        th.setAttribute("aria-sort", order.dir === 1 ? "ascending" : "descending");
        draw();
      });
      return th;
    }),
  );
  draw();
  return h("div", { class: "table-wrap" }, h("table", { "data-testid": testid }, h("thead", {}, head), tbody));
}

/** A labelled form control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", {}, hint) : null);
}

export function select(name: string, options: (string | [string, string])[], value?: string): HTMLSelectElement {
  const s = h("select", { name });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    s.append(h("option", { value: v, selected: v === value }, text));
  }
  return s;
}

export function shareBar(pct: string): HTMLElement {
  const n = Math.max(0, Math.min(100, Number(pct)));
  return h(
    "span",
    { class: "share", title: `${pct}%` },
    h("span", { class: "bar", style: `width:${n}%` }),
    h("span", { class: "pct" }, `${n.toFixed(1)}%`),
  );
}

export function when(iso: string | null | undefined, tz = "UTC"): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString("en-GB", { timeZone: tz, dateStyle: "medium", timeStyle: "short" });
}

// ---- time zones (the range pickers' boundaries, in the chosen IANA zone) ----

function parts(t: number, tz: string): number[] {
  const f = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(t))) if (x.type !== "literal") p[x.type] = Number(x.value);
  return [p.year, p.month, p.day, p.hour, p.minute, p.second];
}

/** The UTC instant of a wall-clock time in `tz` (months may overflow, like Date.UTC). */
export function zoned(y: number, m: number, d: number, tz: string, hour = 0): Date {
  const wall = Date.UTC(y, m - 1, d, hour);
  let guess = wall;
  for (let i = 0; i < 2; i++) {
    const [py, pm, pd, ph, pmi, ps] = parts(guess, tz);
    const offset = Date.UTC(py, pm - 1, pd, ph, pmi, ps) - guess;
    guess = wall - offset;
  }
  return new Date(guess);
}

/** Year, month and day of an instant in `tz`. */
export function ymd(t: Date, tz: string): [number, number, number] {
  const [y, m, d] = parts(t.getTime(), tz);
  return [y, m, d];
}

export const ZONES = [
  "UTC",
  "Europe/London",
  "Europe/Berlin",
  "America/New_York",
  "America/Los_Angeles",
  "Asia/Tokyo",
  "Asia/Kolkata",
  "Australia/Sydney",
];
