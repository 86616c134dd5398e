// Explore: a breakdown by any dimensions under the full usage filter, sortable, with
// latency percentiles; the event log with pagination; export links of the same filter.
import { ApiError, graphql, request, storedToken } from "../../graphql.ts";
import { range } from "../../range.ts";
import { projectName, serverNow, type Session } from "../../session.ts";
import { field, fill, h, int, messageOf, money, select, shareBar, table, when } from "../../ui.ts";

const Filters = graphql(`
  query ExploreFilters { filters { providers models endpoints projects users } }
`);

const Breakdown = graphql(`
  query ExploreBreakdown($filter: UsageFilter!, $groupBy: [BreakdownDimension!]!, $view: AnalyticsView!) {
    costBreakdown(filter: $filter, groupBy: $groupBy, view: $view) {
      provider model endpoint projectId source user sharePct
      totals { costUsd requests totalTokens events }
    }
  }
`);

// Percentiles come in a request of their own: the sums show at once, and p50/p95 fill
// in when they arrive. A grouping the latency sketches do not keep is answered from
// the range's raw latencies, up to 20,000 of them (about 200 ms of reading on a
// ten-million-event ledger, BENCHMARKS.md); past that the server declines at once,
// naming maxRawLatencies, and the page says why instead of waiting for seconds.
const Latency = graphql(`
  query ExploreLatency($filter: UsageFilter!, $groupBy: [BreakdownDimension!]!) {
    costBreakdown(filter: $filter, groupBy: $groupBy, maxRawLatencies: 20000) {
      provider model endpoint projectId source user latencyP50Ms latencyP95Ms
    }
  }
`);

type Keyed = { provider?: string | null; model?: string | null; endpoint?: string | null; projectId?: string | null; source?: string | null; user?: string | null };
const groupKey = (g: Keyed) => JSON.stringify([g.provider, g.model, g.endpoint, g.projectId, g.source, g.user]);

const Events = graphql(`
  query ExploreEvents($filter: UsageFilter!, $after: String) {
    usageEvents(filter: $filter, first: 25, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id occurredAt projectId provider model endpoint user totalTokens latencyMs costUsd costSource price { provider model source effectiveFrom standard { input output } } } }
    }
  }
`);

const DIMS = ["PROVIDER", "MODEL", "ENDPOINT", "PROJECT", "SOURCE", "USER"] as const;
type Dim = (typeof DIMS)[number];

function multi(name: string, values: string[], labelOf: (v: string) => string = (v) => v): HTMLSelectElement {
  const s = h("select", { name, multiple: true, size: Math.min(4, Math.max(2, values.length)) });
  for (const v of values) s.append(h("option", { value: v }, labelOf(v)));
  return s;
}
const chosen = (s: HTMLSelectElement) => [...s.selectedOptions].map((o) => o.value);

export function render(root: HTMLElement, s: Session): void {
  const controls = h("form", { class: "card controls wrap", "aria-label": "Filter" });
  const results = h("section", { class: "card" });
  const events = h("section", { class: "card" });
  root.append(controls, results, events);
  void fill(controls, async () => {
    const f = (await request(Filters, {})).filters;
    const m = range("month", serverNow(s), "UTC");
    const from = h("input", { type: "datetime-local", name: "from", value: m.from.toISOString().slice(0, 16) });
    const to = h("input", { type: "datetime-local", name: "to", value: m.to.toISOString().slice(0, 16) });
    const providers = multi("providers", f.providers);
    const models = multi("models", f.models);
    const endpoints = multi("endpoints", f.endpoints);
    const projects = multi("projects", f.projects, (id) => projectName(s, id));
    const users = multi("users", f.users);
    const sources = multi("sources", ["API", "OTLP", "IMPORT"]);
    const view = select("view", ["TRACKED", "REPORTED", "BEST"], "TRACKED");
    const dims = DIMS.map((d) => h("input", { type: "checkbox", name: "groupBy", value: d, checked: d === "MODEL" }));
    const exportBox = h("p", { class: "exports" });
    const filter = () => {
      const x: Record<string, unknown> = {
        from: new Date(`${from.value}:00Z`).toISOString(),
        to: new Date(`${to.value}:00Z`).toISOString(),
      };
      const add = (k: string, v: string[]) => v.length && (x[k] = v);
      add("providers", chosen(providers));
      add("models", chosen(models));
      add("endpoints", chosen(endpoints));
      add("projects", chosen(projects));
      add("users", chosen(users));
      add("sources", chosen(sources));
      return x;
    };
    const exportUrl = (kind: string, x: Record<string, unknown>) => {
      const q = new URLSearchParams();
      q.set("from", String(x.from));
      q.set("to", String(x.to));
      const keys: [string, string][] = [["projects", "project"], ["providers", "provider"], ["models", "model"], ["endpoints", "endpoint"], ["users", "user"], ["sources", "source"]];
      for (const [k, p] of keys) for (const v of (x[k] as string[] | undefined) ?? []) q.append(p, v);
      return `/export/usage.${kind}?${q}`;
    };
    const download = async (url: string, name: string) => {
      const r = await fetch(url, { headers: { authorization: `Bearer ${storedToken() ?? ""}` } });
      if (!r.ok) return alert(`Export failed: ${r.status} ${await r.text()}`);
      const a = h("a", { href: URL.createObjectURL(await r.blob()), download: name });
      a.click();
      URL.revokeObjectURL(a.href);
    };
    const run = () => {
      const x = filter();
      const groupBy = dims.filter((d) => d.checked).map((d) => d.value as Dim);
      const csv = exportUrl("csv", x);
      const jsonl = exportUrl("jsonl", x);
      exportBox.replaceChildren(
        "Export this filter: ",
        h("a", { href: csv, "data-testid": "export-csv", onclick: (e: Event) => (e.preventDefault(), void download(csv, "usage.csv")) }, "CSV"),
        " · ",
        h("a", { href: jsonl, "data-testid": "export-jsonl", onclick: (e: Event) => (e.preventDefault(), void download(jsonl, "usage.jsonl")) }, "JSONL"),
        h("small", { class: "muted" }, " (downloads with your token; with curl add -H 'Authorization: Bearer …')"),
      );
      void fill(results, async () => {
        if (!groupBy.length) return h("p", {}, "Pick at least one dimension to group by.");
        const r = await request(Breakdown, { filter: x, groupBy, view: view.value as "TRACKED" | "REPORTED" | "BEST" });
        // Each group's p50 and p95 cells ("…" while computing), filled in place when the
        // percentiles arrive, so a re-sort keeps them.
        const cells = new Map<string, { p50: HTMLElement; p95: HTMLElement }>();
        const latency = new Map<string, { p50: number | null; p95: number | null }>();
        const cell = (g: Keyed, which: "p50" | "p95") => {
          const key = groupKey(g);
          let c = cells.get(key);
          if (!c) {
            const pending = () => h("span", { class: "muted", "aria-busy": "true", "data-testid": "latency-pending", title: "Computing…" }, "…");
            c = { p50: pending(), p95: pending() };
            cells.set(key, c);
          }
          return c[which];
        };
        const ms = (g: Keyed, which: "p50" | "p95") => latency.get(groupKey(g))?.[which] ?? -1;
        const latencyNote = h("div", {});
        const settle = (el: HTMLElement, text: string, testid: string, title: string | null) => {
          el.textContent = text;
          el.removeAttribute("aria-busy");
          el.setAttribute("data-testid", testid);
          el.className = testid === "latency-error" ? "error" : "";
          if (title) el.setAttribute("title", title);
          else el.removeAttribute("title");
        };
        void request(Latency, { filter: x, groupBy }).then(
          (l) => {
            for (const g of l.costBreakdown) latency.set(groupKey(g), { p50: g.latencyP50Ms ?? null, p95: g.latencyP95Ms ?? null });
            for (const [key, c] of cells) {
              const v = latency.get(key);
              settle(c.p50, String(v?.p50 ?? "—"), "p50", null);
              settle(c.p95, String(v?.p95 ?? "—"), "p95", null);
            }
          },
          (e: unknown) => {
            // Declined for the raw latencies it would read: not an error, a limit.
            const limit = e instanceof ApiError && e.field === "maxRawLatencies" ? (e.detail ?? e.message) : null;
            for (const c of cells.values())
              for (const el of [c.p50, c.p95]) settle(el, limit ? "n/a" : "error", limit ? "latency-limited" : "latency-error", messageOf(e));
            if (limit) latencyNote.replaceChildren(h("p", { class: "muted", role: "status", "data-testid": "latency-note" }, `p50/p95 not computed: ${limit}`));
          },
        );
        const cols = groupBy.map((d) => ({
          label: d.toLowerCase(),
          cell: (g: (typeof r.costBreakdown)[number]) =>
            d === "PROJECT" ? projectName(s, g.projectId) : ((g as Record<string, unknown>)[d.toLowerCase()] as string | null) ?? "—",
          sort: (g: (typeof r.costBreakdown)[number]) => String((g as Record<string, unknown>)[d === "PROJECT" ? "projectId" : d.toLowerCase()] ?? ""),
        }));
        return h(
          "div",
          {},
          h("h2", {}, "Breakdown"),
          table(
            r.costBreakdown,
            [
              ...cols,
              { label: "Cost", cell: (g) => money(g.totals.costUsd), sort: (g) => Number(g.totals.costUsd), numeric: true },
              { label: "Share", cell: (g) => shareBar(g.sharePct), sort: (g) => Number(g.sharePct) },
              { label: "Requests", cell: (g) => int(g.totals.requests), sort: (g) => g.totals.requests, numeric: true },
              { label: "Tokens", cell: (g) => int(g.totals.totalTokens), sort: (g) => g.totals.totalTokens, numeric: true },
              { label: "p50 ms", cell: (g) => cell(g, "p50"), sort: (g) => ms(g, "p50"), numeric: true },
              { label: "p95 ms", cell: (g) => cell(g, "p95"), sort: (g) => ms(g, "p95"), numeric: true },
            ],
            "breakdown-table",
            "No usage matches this filter.",
          ),
          latencyNote,
        );
      });
      const cursors: (string | null)[] = [null];
      const page = (i: number) =>
        fill(events, async () => {
          const r = await request(Events, { filter: x, after: cursors[i] });
          const c = r.usageEvents;
          cursors[i + 1] = c.pageInfo.endCursor ?? null;
          return h(
            "div",
            {},
            h("h2", {}, `Events${c.totalCount !== null && c.totalCount !== undefined ? ` (${int(c.totalCount)})` : ""}`),
            table(
              c.edges.map((e) => e.node),
              [
                { label: "When (UTC)", cell: (e) => when(e.occurredAt) },
                { label: "Project", cell: (e) => projectName(s, e.projectId) },
                { label: "Provider", cell: (e) => e.provider },
                { label: "Model", cell: (e) => e.model },
                { label: "Endpoint", cell: (e) => e.endpoint ?? "—" },
                { label: "User", cell: (e) => e.user ?? "—" },
                { label: "Tokens", cell: (e) => int(e.totalTokens), numeric: true },
                { label: "Latency ms", cell: (e) => e.latencyMs ?? "—", numeric: true },
                { label: "Cost", cell: (e) => money(e.costUsd), numeric: true },
                { label: "Cost source", cell: (e) => e.costSource },
                {
                  label: "Price used",
                  cell: (e) =>
                    e.price
                      ? h(
                          "span",
                          { title: `input $${e.price.standard.input ?? "—"} / output $${e.price.standard.output ?? "—"} per 1M tokens, from ${e.price.effectiveFrom}` },
                          `${e.price.provider}/${e.price.model} (${e.price.source.toLowerCase()})`,
                        )
                      : "—",
                },
              ],
              "events-table",
              "No events match this filter.",
            ),
            h(
              "div",
              { class: "pager" },
              h("button", { type: "button", disabled: i === 0, onclick: () => void page(i - 1) }, "Previous"),
              h("span", {}, ` Page ${i + 1} `),
              h("button", { type: "button", disabled: !c.pageInfo.hasNextPage, onclick: () => void page(i + 1) }, "Next"),
            ),
          );
        });
      void page(0);
    };
    controls.onsubmit = (e) => {
      e.preventDefault();
      run();
    };
    queueMicrotask(run);
    return h(
      "div",
      { class: "controls wrap" },
      field("From (UTC)", from),
      field("To (UTC)", to),
      field("Providers", providers),
      field("Models", models),
      field("Endpoints", endpoints),
      s.projectId ? null : field("Projects", projects),
      field("Users", users),
      field("Sources", sources),
      field("View", view),
      h("fieldset", {}, h("legend", {}, "Group by"), ...dims.map((d) => h("label", { class: "check" }, d, ` ${d.value.toLowerCase()}`))),
      h("button", { type: "submit" }, "Apply"),
      exportBox,
    );
  });
}
