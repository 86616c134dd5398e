// Overview: today, this month and its forecast; the trend stacked by a dimension; top
// models, endpoints and projects; the live feed (costUpdates) moving the totals.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import { graphql, isConnected, onConnected, request, subscribe } from "../../graphql.ts";
import { range, RANGES } from "../../range.ts";
import { projectName, serverNow, type Session } from "../../session.ts";
import { empty, failure, field, fill, h, messageOf, money, select, shareBar, table, turns, when, ZONES } from "../../ui.ts";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const Summary = graphql(`
  query OverviewSummary($today: UsageFilter!, $month: UsageFilter!) {
    today: costSummary(filter: $today) { totals { costUsd requests } }
    month: costSummary(filter: $month) { totals { costUsd requests events } }
  }
`);

const Breakdown = graphql(`
  query OverviewBreakdown($filter: UsageFilter!, $groupBy: [BreakdownDimension!]!, $view: AnalyticsView!) {
    costBreakdown(filter: $filter, groupBy: $groupBy, view: $view) {
      provider model endpoint projectId sharePct
      totals { costUsd requests }
    }
  }
`);

const Trend = graphql(`
  query OverviewTrend($filter: UsageFilter!, $granularity: TrendGranularity!, $timezone: String!, $view: AnalyticsView!) {
    costTrend(filter: $filter, granularity: $granularity, timezone: $timezone, view: $view) {
      start end basis totals { costUsd }
    }
  }
`);

const Reported = graphql(`
  query OverviewReported($filter: ProviderReportFilterInput!) {
    providerReports(filter: $filter, first: 50) {
      id provider model from to amountUsd userEntered source note projectId
    }
  }
`);

const Live = graphql(`
  subscription OverviewLive($timezone: String) {
    costUpdates(timezone: $timezone) {
      sequence kind deltaUsd
      events(first: 20) { id provider model endpoint projectId occurredAt costUsd costSource }
      today { costUsd }
      month { start end costUsd }
    }
  }
`);

type Dim = "PROVIDER" | "MODEL" | "ENDPOINT" | "PROJECT";
type View = "TRACKED" | "REPORTED" | "BEST";
type Gran = "HOUR" | "DAY" | "WEEK" | "MONTH";

function label(s: Session, dim: Dim, g: { provider?: string | null; model?: string | null; endpoint?: string | null; projectId?: string | null }): string {
  if (dim === "PROVIDER") return g.provider ?? "—";
  if (dim === "MODEL") return g.model ?? "—";
  if (dim === "ENDPOINT") return g.endpoint ?? "(none)";
  return projectName(s, g.projectId);
}

function only(dim: Dim, g: { provider?: string | null; model?: string | null; endpoint?: string | null; projectId?: string | null }) {
  if (dim === "PROVIDER") return { providers: [g.provider ?? ""] };
  if (dim === "MODEL") return { models: [g.model ?? ""] };
  if (dim === "ENDPOINT") return g.endpoint ? { endpoints: [g.endpoint] } : null;
  return g.projectId ? { projects: [g.projectId] } : null;
}

function bucketLabel(iso: string, g: Gran, tz: string): string {
  const d = new Date(iso);
  if (g === "HOUR") return d.toLocaleString("en-GB", { timeZone: tz, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  if (g === "MONTH") return d.toLocaleDateString("en-GB", { timeZone: tz, month: "short", year: "numeric" });
  return d.toLocaleDateString("en-GB", { timeZone: tz, day: "numeric", month: "short" });
}

export function render(root: HTMLElement, s: Session): () => void {
  const rangeSel = select("range", RANGES, "month");
  const tzSel = select("timezone", ZONES, "UTC");
  const granSel = select("granularity", [["HOUR", "Hour"], ["DAY", "Day"], ["WEEK", "Week"], ["MONTH", "Month"]], "DAY");
  const viewSel = select("view", [["TRACKED", "Tracked"], ["REPORTED", "Reported"], ["BEST", "Best"]], "TRACKED");
  const dimSel = select("stack", [["PROVIDER", "Provider"], ["MODEL", "Model"], ["ENDPOINT", "Endpoint"], ["PROJECT", "Project"]], "PROVIDER");
  const endpointOption = dimSel.querySelector<HTMLOptionElement>("option[value=ENDPOINT]")!;

  const today = h("div", { class: "kpi-value", "data-testid": "kpi-today" });
  const month = h("div", { class: "kpi-value", "data-testid": "kpi-month" });
  const forecast = h("div", { class: "kpi-value", "data-testid": "kpi-forecast" });
  const monthLabel = h("div", { class: "kpi-label" }, "This month");
  const kpis = h(
    "section",
    { class: "kpis", "aria-label": "Totals" },
    h("div", { class: "card kpi" }, h("div", { class: "kpi-label" }, "Today (tracked)"), today),
    h("div", { class: "card kpi" }, monthLabel, month),
    h("div", { class: "card kpi" }, h("div", { class: "kpi-label" }, "Month forecast (linear)"), forecast),
  );

  const canvas = h("canvas", { role: "img", "aria-label": "Cost trend" });
  const chartData = h("div", { "data-testid": "trend-data" });
  const chartBox = h("div", { class: "chart" }, canvas);
  const chartState = h("div");
  const reported = h("div", { "data-testid": "reported" });
  const tops = h("div", { class: "tops" });
  const feed = h("ol", { class: "feed", "data-testid": "live-feed", "aria-live": "polite" });
  const liveState = h("p", { class: "muted", "data-testid": "live-state" }, "Connecting…");

  root.append(
    kpis,
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Spend over time"),
      h("div", { class: "controls" }, field("Range", rangeSel), field("Time zone", tzSel), field("Granularity", granSel), field("View", viewSel), field("Stack by", dimSel)),
      chartState,
      chartBox,
      h("details", {}, h("summary", {}, "Chart data as a table"), chartData),
      reported,
    ),
    tops,
    h("section", { class: "card" }, h("h2", {}, "Live feed"), liveState, feed),
  );

  let chart: Chart | null = null;
  let monthStart = new Date();
  let monthEnd = new Date();
  const setMonth = (cost: string) => {
    month.replaceChildren(money(cost, "month-total"));
    const now = serverNow(s).getTime();
    const elapsed = Math.max(1, now - monthStart.getTime());
    const length = monthEnd.getTime() - monthStart.getTime();
    const projected = (Number(cost) * length) / elapsed;
    forecast.replaceChildren(money(projected.toFixed(2)));
  };

  const kpiTurn = turns();
  const loadKpis = async () => {
    const current = kpiTurn();
    const tz = tzSel.value;
    const now = serverNow(s);
    const d = range("today", now, tz);
    const m = range("month", now, tz);
    monthStart = m.from;
    monthEnd = m.to;
    monthLabel.textContent = `This month (${m.from.toLocaleDateString("en-GB", { timeZone: tz, month: "long", year: "numeric" })})`;
    try {
      const r = await request(Summary, {
        today: { from: d.from.toISOString(), to: d.to.toISOString() },
        month: { from: m.from.toISOString(), to: m.to.toISOString() },
      });
      if (!current()) return;
      today.replaceChildren(money(r.today.totals.costUsd, "today-total"));
      setMonth(r.month.totals.costUsd);
    } catch (e) {
      if (current()) today.replaceChildren(messageOf(e));
    }
  };

  // Each change of range, zone, view or grouping starts a new turn: an older answer
  // that arrives after a newer one is dropped.
  const chartTurn = turns();
  const loadChart = async () => {
    const current = chartTurn();
    const tz = tzSel.value;
    const { from, to } = range(rangeSel.value, serverNow(s), tz);
    const filter = { from: from.toISOString(), to: to.toISOString() };
    const view = viewSel.value as View;
    const dim = dimSel.value as Dim;
    const granularity = (rangeSel.value === "today" && granSel.value === "DAY" ? "HOUR" : granSel.value) as Gran;
    // Provider reports have no endpoint: the server refuses that grouping outside TRACKED.
    endpointOption.disabled = view !== "TRACKED";
    if (dim === "ENDPOINT" && view !== "TRACKED") {
      dimSel.value = "PROVIDER";
      return loadChart();
    }
    chartState.replaceChildren(h("p", { class: "state", role: "status" }, "Loading…"));
    try {
      const [total, groups] = await Promise.all([
        request(Trend, { filter, granularity, timezone: tz, view }),
        request(Breakdown, { filter, groupBy: [dim], view }),
      ]);
      if (!current()) return;
      const top = groups.costBreakdown.slice(0, 6);
      const series = await Promise.all(
        top.map(async (g) => {
          const o = only(dim, g);
          if (!o) return null;
          const t = await request(Trend, { filter: { ...filter, ...o }, granularity, timezone: tz, view });
          return { name: label(s, dim, g), values: t.costTrend.map((b) => b.totals.costUsd) };
        }),
      );
      if (!current()) return;
      const buckets = total.costTrend;
      const labels = buckets.map((b) => bucketLabel(b.start, granularity, tz));
      const known = series.filter((x): x is { name: string; values: string[] } => x !== null);
      const rest = buckets.map((b, i) => Number(b.totals.costUsd) - known.reduce((a, x) => a + Number(x.values[i] ?? 0), 0));
      const palette = ["#4f7cff", "#ff8a3d", "#22b07d", "#c05bd6", "#e0b400", "#e05260", "#8892a0"];
      const datasets = known.map((x, i) => ({ label: x.name, data: x.values.map(Number), backgroundColor: palette[i % palette.length] }));
      if (rest.some((v) => Math.abs(v) > 1e-9)) datasets.push({ label: "other", data: rest, backgroundColor: palette[6] });
      chart?.destroy();
      chart = new Chart(canvas, {
        type: "bar",
        data: { labels, datasets },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (v) => `$${v}` } } },
          plugins: {
            tooltip: {
              callbacks: {
                footer: (items) => {
                  const b = buckets[items[0]?.dataIndex ?? 0];
                  return b ? `total $${b.totals.costUsd}${b.basis ? ` · basis ${b.basis}` : ""}` : "";
                },
              },
            },
          },
        },
      });
      chartState.replaceChildren(buckets.every((b) => Number(b.totals.costUsd) === 0) ? empty("No spend in this range.") : "");
      chartData.replaceChildren(
        table(
          buckets,
          [
            { label: "Bucket", cell: (b) => bucketLabel(b.start, granularity, tz) },
            { label: "Start (UTC)", cell: (b) => b.start },
            { label: "Basis", cell: (b) => b.basis ?? "—" },
            { label: "Cost", cell: (b) => money(b.totals.costUsd), numeric: true },
          ],
          "trend-table",
        ),
      );
      if (view !== "TRACKED") {
        const r = await request(Reported, { filter: { from: filter.from, to: filter.to } });
        if (!current()) return;
        reported.replaceChildren(
          h("h3", {}, "Reported by providers in this range"),
          table(
            r.providerReports,
            [
              { label: "Provider", cell: (x) => x.provider },
              { label: "Model", cell: (x) => x.model ?? "—" },
              { label: "From", cell: (x) => when(x.from, tz) },
              { label: "Amount", cell: (x) => money(x.amountUsd), numeric: true },
              { label: "Origin", cell: (x) => (x.userEntered ? h("span", { class: "tag hand" }, "entered by hand") : "provider sync") },
              { label: "Note", cell: (x) => x.note ?? "" },
            ],
            "reported-table",
            "No provider reports in this range.",
          ),
        );
      } else reported.replaceChildren();
      await loadTops(filter, view);
    } catch (e) {
      if (!current()) return;
      chartState.replaceChildren(failure(e));
    }
  };

  const loadTops = async (filter: { from: string; to: string }, view: View) => {
    const dims: [Dim, string][] = [["MODEL", "Top models"], ["ENDPOINT", "Top endpoints"]];
    if (!s.projectId) dims.push(["PROJECT", "Top projects"]);
    tops.replaceChildren(
      ...dims.map(([dim, title]) => {
        const box = h("div");
        if (dim === "ENDPOINT" && view !== "TRACKED") {
          box.append(h("p", { class: "state empty" }, "Provider reports carry no endpoint: endpoints are in the Tracked view."));
          return h("section", { class: "card" }, h("h2", {}, title), box);
        }
        void fill(box, async () => {
          const r = await request(Breakdown, { filter, groupBy: [dim], view });
          return table(
            r.costBreakdown.slice(0, 8),
            [
              { label: title.replace("Top ", "").replace(/s$/, ""), cell: (g) => label(s, dim, g) },
              { label: "Cost", cell: (g) => money(g.totals.costUsd), numeric: true },
              { label: "Share", cell: (g) => shareBar(g.sharePct) },
            ],
            `top-${dim.toLowerCase()}`,
            "No spend in this range.",
          );
        });
        return h("section", { class: "card" }, h("h2", {}, title), box);
      }),
    );
  };

  let stop: () => void = () => {};
  const live = () => {
    stop();
    liveState.textContent = "Connecting…";
    stop = subscribe(
      Live,
      { timezone: tzSel.value },
      (d) => {
        const u = d.costUpdates;
        liveState.textContent = `Live · update ${u.sequence}`;
        today.replaceChildren(money(u.today.costUsd, "today-total"));
        monthStart = new Date(u.month.start);
        monthEnd = new Date(u.month.end);
        setMonth(u.month.costUsd);
        for (const e of u.events) {
          feed.prepend(
            h(
              "li",
              { "data-testid": "feed-item" },
              h("time", {}, when(e.occurredAt, tzSel.value)),
              " ",
              h("strong", {}, `${e.provider} / ${e.model}`),
              e.endpoint ? ` · ${e.endpoint}` : "",
              s.projectId ? "" : ` · ${projectName(s, e.projectId)}`,
              " · ",
              money(e.costUsd),
              ` (${u.kind.toLowerCase()})`,
            ),
          );
        }
        while (feed.children.length > 50) feed.lastElementChild?.remove();
      },
      (message) => {
        liveState.textContent = `Live updates stopped: ${message}`;
      },
    );
    if (isConnected()) liveState.textContent = "Live · connected";
  };
  const unlisten = onConnected(() => {
    if (liveState.textContent === "Connecting…") liveState.textContent = "Live · connected";
  });

  rangeSel.addEventListener("change", loadChart);
  granSel.addEventListener("change", loadChart);
  viewSel.addEventListener("change", loadChart);
  dimSel.addEventListener("change", loadChart);
  tzSel.addEventListener("change", () => {
    void loadKpis();
    void loadChart();
    live();
  });
  void loadKpis();
  void loadChart();
  live();
  return () => {
    stop();
    unlisten();
    chart?.destroy();
  };
}
