// Budgets & alerts: progress, forecast and thresholds of each budget; create and edit
// (ADMIN); alerts with their delivery attempts, acknowledged here, arriving live.
import { graphql, request, subscribe } from "../../graphql.ts";
import { projectName, type Session } from "../../session.ts";
import { failure, field, fill, h, money, select, table, when } from "../../ui.ts";

const Budgets = graphql(`
  query Budgets {
    budgets {
      id name amountUsd period timezone thresholds enforce webhookUrl
      scope { projects providers models endpoints }
      status { periodStart periodEnd spentUsd remainingUsd percentUsed forecastUsd thresholdsReached }
    }
  }
`);

const Alerts = graphql(`
  query Alerts {
    alerts(first: 100) {
      id budgetName threshold spentUsd amountUsd summary firedAt acknowledged deliveryStatus
      deliveries { attempt startedAt statusCode error succeeded }
    }
  }
`);

const Create = graphql(`
  mutation CreateBudget($input: CreateBudgetInput!) { createBudget(input: $input) { id } }
`);
const Update = graphql(`
  mutation UpdateBudget($id: ID!, $input: UpdateBudgetInput!) { updateBudget(id: $id, input: $input) { id } }
`);
const Ack = graphql(`
  mutation Acknowledge($id: ID!) { acknowledgeAlert(id: $id) { id acknowledged } }
`);
const Raised = graphql(`
  subscription AlertRaised { alertRaised { id budgetName threshold } }
`);


export function render(root: HTMLElement, s: Session): () => void {
  const list = h("section", { class: "card" });
  const alerts = h("section", { class: "card" });
  const form = h("section", { class: "card" });
  root.append(list, s.admin ? form : "", alerts);

  const loadBudgets = (keep = false) =>
    fill(list, async () => {
      const r = await request(Budgets, {});
      return h(
        "div",
        {},
        h("h2", {}, "Budgets"),
        table(
          r.budgets,
          [
            { label: "Name", cell: (b) => b.name, sort: (b) => b.name },
            { label: "Period", cell: (b) => `${b.period.toLowerCase()} (${b.timezone})` },
            { label: "Scope", cell: (b) => [...b.scope.projects.map((p) => projectName(s, p)), ...b.scope.providers, ...b.scope.models, ...b.scope.endpoints].join(", ") || "everything" },
            { label: "Spent", cell: (b) => money(b.status.spentUsd), sort: (b) => Number(b.status.spentUsd), numeric: true },
            { label: "Amount", cell: (b) => money(b.amountUsd), numeric: true },
            {
              label: "Progress",
              cell: (b) =>
                h("progress", { max: 100, value: Math.min(100, Number(b.status.percentUsed)), "aria-label": `${b.name}: ${b.status.percentUsed}% used`, title: `${b.status.percentUsed}%` }),
              sort: (b) => Number(b.status.percentUsed),
            },
            { label: "Forecast", cell: (b) => money(b.status.forecastUsd), numeric: true },
            { label: "Thresholds", cell: (b) => b.thresholds.map((t) => (b.status.thresholdsReached.includes(t) ? `${t}% ✓` : `${t}%`)).join(" · ") },
            ...(s.admin ? [{ label: "", cell: (b: (typeof r.budgets)[number]) => h("button", { type: "button", onclick: () => edit(b) }, "Edit") }] : []),
          ],
          "budgets-table",
          "No budgets yet.",
        ),
      );
    }, keep);

  const loadAlerts = (keep = false) =>
    fill(alerts, async () => {
      const r = await request(Alerts, {});
      return h(
        "div",
        {},
        h("h2", {}, "Alerts"),
        table(
          r.alerts,
          [
            { label: "Fired", cell: (a) => when(a.firedAt), sort: (a) => a.firedAt },
            { label: "Budget", cell: (a) => a.budgetName },
            { label: "Threshold", cell: (a) => `${a.threshold}%`, numeric: true },
            { label: "Spent", cell: (a) => money(a.spentUsd), numeric: true },
            { label: "Summary", cell: (a) => a.summary },
            {
              label: "Delivery",
              cell: (a) =>
                h(
                  "span",
                  { title: a.deliveries.map((d) => `#${d.attempt} ${when(d.startedAt)} ${d.statusCode ?? ""} ${d.error ?? (d.succeeded ? "ok" : "")}`).join("\n") },
                  `${a.deliveryStatus.toLowerCase()} (${a.deliveries.length} attempt${a.deliveries.length === 1 ? "" : "s"})`,
                ),
            },
            {
              label: "Acknowledged",
              cell: (a) =>
                a.acknowledged
                  ? "yes"
                  : s.admin
                    ? h("button", { type: "button", onclick: async () => { await request(Ack, { id: a.id }); void loadAlerts(true); } }, "Acknowledge")
                    : "no",
            },
          ],
          "alerts-table",
          "No alerts have fired.",
        ),
      );
    }, keep);

  const edit = (b?: { id: string; name: string; amountUsd: string; period: string; timezone: string; thresholds: number[]; scope: { projects: string[] } }) => {
    const name = h("input", { name: "name", required: true, value: b?.name ?? "" });
    const amount = h("input", { name: "amountUsd", required: true, inputmode: "decimal", value: b?.amountUsd ?? "" });
    const period = select("period", ["DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "TOTAL"], b?.period ?? "MONTHLY");
    const tz = h("input", { name: "timezone", value: b?.timezone ?? "UTC" });
    const thresholds = h("input", { name: "thresholds", value: (b?.thresholds ?? [50, 80, 100]).join(", ") });
    const project = select("project", [["", "every project"], ...s.projects.map((p) => [p.id, p.name] as [string, string])], b?.scope.projects[0] ?? s.projectId ?? "");
    const webhook = h("input", { name: "webhookUrl", type: "url", placeholder: "https://…" });
    const status = h("div");
    const f = h(
      "form",
      { class: "controls wrap", "aria-label": b ? "Edit budget" : "New budget" },
      field("Name", name),
      field("Amount (USD)", amount),
      field("Period", period),
      field("Time zone", tz),
      field("Thresholds (%)", thresholds, "comma separated"),
      b ? null : field("Project", project),
      b ? null : field("Webhook URL", webhook, "optional"),
      h("button", { type: "submit" }, b ? "Save budget" : "Create budget"),
      b ? h("button", { type: "button", onclick: () => edit() }, "Cancel") : null,
      status,
    );
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const ts = thresholds.value.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
      try {
        if (b) {
          await request(Update, { id: b.id, input: { name: name.value, amountUsd: amount.value, period: period.value as "MONTHLY", timezone: tz.value, thresholds: ts } });
        } else {
          await request(Create, {
            input: {
              name: name.value,
              amountUsd: amount.value,
              period: period.value as "MONTHLY",
              timezone: tz.value,
              thresholds: ts,
              scope: project.value ? { projects: [project.value] } : null,
              webhookUrl: webhook.value || null,
            },
          });
        }
        edit();
        // Refreshes: the tables stay until their new rows replace them.
        void loadBudgets(true);
        void loadAlerts(true);
      } catch (err) {
        status.replaceChildren(failure(err));
      }
    });
    form.replaceChildren(h("h2", {}, b ? `Edit ${b.name}` : "New budget"), f);
  };

  edit();
  void loadBudgets();
  void loadAlerts();
  return subscribe(Raised, {}, () => void loadAlerts(true), () => {});
}
