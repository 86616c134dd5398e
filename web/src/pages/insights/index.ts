// Recommendations and anomalies, each with its reasoning and savings.
import { graphql, request } from "../../graphql.ts";
import { range } from "../../range.ts";
import { serverNow, type Session } from "../../session.ts";
import { fill, h, money, table } from "../../ui.ts";

const Recs = graphql(`
  query Recommendations($filter: UsageFilter) {
    recommendations(filter: $filter) {
      action endpoint provider model alternativeProvider alternativeModel
      currentCostUsd projectedCostUsd potentialSavingsUsd confidence reasoning
    }
  }
`);
const Anomalies = graphql(`
  query Anomalies($filter: UsageFilter) {
    anomalies(filter: $filter) { subject value day spendUsd baselineUsd factor drivers { name costUsd } }
  }
`);

export function render(root: HTMLElement, s: Session): void {
  const { from, to } = range("30d", serverNow(s), "UTC");
  const filter = { from: from.toISOString(), to: to.toISOString() };
  const recs = h("section", { class: "card" });
  const anomalies = h("section", { class: "card" });
  root.append(h("p", { class: "muted" }, "Over the last 30 days (UTC)."), recs, anomalies);
  void fill(recs, async () => {
    const r = await request(Recs, { filter });
    return h(
      "div",
      {},
      h("h2", {}, "Recommendations"),
      table(r.recommendations, [
        { label: "Action", cell: (x) => x.action.toLowerCase().replace(/_/g, " ") },
        { label: "Where", cell: (x) => `${x.endpoint ?? "(no endpoint)"} · ${x.provider}/${x.model}` },
        { label: "Instead", cell: (x) => (x.alternativeModel ? `${x.alternativeProvider ?? x.provider}/${x.alternativeModel}` : "—") },
        { label: "Now", cell: (x) => money(x.currentCostUsd), numeric: true },
        { label: "Would cost", cell: (x) => money(x.projectedCostUsd), numeric: true },
        { label: "Savings", cell: (x) => money(x.potentialSavingsUsd), sort: (x) => Number(x.potentialSavingsUsd), numeric: true },
        { label: "Confidence", cell: (x) => x.confidence, numeric: true },
        { label: "Why", cell: (x) => x.reasoning },
      ], "recommendations-table", "No recommendations: nothing significant to change."),
    );
  });
  void fill(anomalies, async () => {
    const r = await request(Anomalies, { filter });
    return h(
      "div",
      {},
      h("h2", {}, "Anomalies"),
      table(r.anomalies, [
        { label: "Day (UTC)", cell: (x) => x.day, sort: (x) => x.day },
        { label: "What", cell: (x) => `${x.subject.toLowerCase()} ${x.value}` },
        { label: "Spend", cell: (x) => money(x.spendUsd), numeric: true },
        { label: "Baseline", cell: (x) => money(x.baselineUsd), numeric: true },
        { label: "Factor", cell: (x) => `×${x.factor}`, sort: (x) => Number(x.factor), numeric: true },
        { label: "Drivers", cell: (x) => x.drivers.map((d) => `${d.name} $${d.costUsd}`).join(", ") },
      ], "anomalies-table", "No anomalies."),
    );
  });
}
