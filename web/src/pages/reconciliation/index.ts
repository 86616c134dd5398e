// Reconciliation: tracked against reported per provider, UTC day and model, drift
// highlighted, tolerance adjustable.
import { graphql, request } from "../../graphql.ts";
import { range, RANGES } from "../../range.ts";
import { serverNow, type Session } from "../../session.ts";
import { field, fill, h, int, money, select, table } from "../../ui.ts";

const Rows = graphql(`
  query Reconciliation($filter: ReconciliationFilterInput!, $tolerance: Decimal) {
    reconciliation(filter: $filter, tolerancePct: $tolerance) {
      provider day model deltaUsd deltaPct status
      tracked { costUsd requests tokens }
      reported { costUsd requests tokens }
    }
  }
`);

export function render(root: HTMLElement, s: Session): void {
  const which = select("range", RANGES.filter(([k]) => k !== "today"), "month");
  const tolerance = h("input", { name: "tolerance", type: "number", min: 0, step: "0.1", value: 5 });
  const box = h("section", { class: "card" });
  const load = () =>
    fill(box, async () => {
      const { from, to } = range(which.value, serverNow(s), "UTC");
      const r = await request(Rows, { filter: { from: from.toISOString(), to: to.toISOString() }, tolerance: tolerance.value || null });
      return table(
        r.reconciliation,
        [
          { label: "Day (UTC)", cell: (x) => x.day, sort: (x) => x.day },
          { label: "Provider", cell: (x) => x.provider, sort: (x) => x.provider },
          { label: "Model", cell: (x) => x.model, sort: (x) => x.model },
          { label: "Tracked", cell: (x) => money(x.tracked.costUsd), numeric: true },
          { label: "Reported", cell: (x) => money(x.reported.costUsd), numeric: true },
          { label: "Delta", cell: (x) => money(x.deltaUsd), sort: (x) => Number(x.deltaUsd ?? 0), numeric: true },
          { label: "Delta %", cell: (x) => (x.deltaPct ? `${x.deltaPct}%` : "—"), sort: (x) => Math.abs(Number(x.deltaPct ?? 0)), numeric: true },
          { label: "Tokens tracked / reported", cell: (x) => `${int(x.tracked.tokens)} / ${int(x.reported.tokens)}`, numeric: true },
          { label: "Status", cell: (x) => h("span", { class: x.status === "MATCHED" ? "ok" : "bad" }, x.status.toLowerCase().replace(/_/g, " ")), sort: (x) => x.status },
        ],
        "reconciliation-table",
        "Nothing to reconcile in this range: no tracked usage and no provider reports.",
      );
    });
  which.addEventListener("change", load);
  tolerance.addEventListener("change", load);
  root.append(h("div", { class: "card controls" }, field("Range (UTC)", which), field("Tolerance (%)", tolerance)), box);
  void load();
}
