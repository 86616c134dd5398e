// Providers: plugins, credentials (masked) with validate and sync now, sync runs with
// their attempt log, and the forms for numbers entered by hand (manual usage, fixed
// subscriptions), each with its plugin's help text.
import { graphql, request } from "../../graphql.ts";
import { projectName, serverNow, type Session } from "../../session.ts";
import { failure, field, fill, h, int, messageOf, money, select, table, when, ymd } from "../../ui.ts";

const Data = graphql(`
  query Providers {
    plugins { id name version source capabilities manualEntryHelp credentialHelp loadError replaced }
    credentials { id provider label projectId secretHint status lastValidatedAt lastError }
    syncRuns(first: 20) { id provider kind trigger status attempts rowsInserted rowsUpdated errorMessage queuedAt finishedAt attemptLog { number page errorKind errorMessage } }
    providerReports(filter: { sources: [MANUAL] }, first: 50) { id provider model projectId from to amountUsd requests inputTokens outputTokens note userEntered }
    subscriptionCosts { id provider plan amountUsd period seats startsOn endsOn projectId note }
  }
`);

const ReadOnly = graphql(`
  query ProvidersRead {
    plugins { id name version source capabilities manualEntryHelp credentialHelp loadError replaced }
    providerReports(filter: { sources: [MANUAL] }, first: 50) { id provider model projectId from to amountUsd requests inputTokens outputTokens note userEntered }
    subscriptionCosts { id provider plan amountUsd period seats startsOn endsOn projectId note }
  }
`);

const AddCredential = graphql(`
  mutation AddCredential($input: AddCredentialInput!) { addCredential(input: $input) { id } }
`);
const Validate = graphql(`
  mutation ValidateCredential($id: ID!) { validateCredential(id: $id) { id status lastError } }
`);
const SyncNow = graphql(`
  mutation SyncNow($id: ID!) { syncNow(credentialId: $id) { id status } }
`);
const Manual = graphql(`
  mutation RecordManual($input: ManualUsageInput!) { recordManualUsage(input: $input) { id } }
`);
const Plan = graphql(`
  mutation CreatePlan($input: SubscriptionCostInput!) { createSubscriptionCost(input: $input) { id } }
`);

const Schedules = graphql(`
  query Schedules($id: ID!) { syncSchedules(credentialId: $id) { credentialId kind enabled everySeconds lookbackSeconds isDefault } }
`);
const UpdateSchedule = graphql(`
  mutation UpdateSchedule($input: UpdateSyncScheduleInput!) { updateSyncSchedule(input: $input) { kind enabled everySeconds } }
`);

function every(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${Math.round(seconds / 60)} min`;
}

/** A credential's schedules, each switchable and with its interval editable. */
function schedules(credentialId: string): HTMLElement {
  const box = h("div");
  const load = () =>
    fill(box, async () => {
      const r = await request(Schedules, { id: credentialId });
      return table(r.syncSchedules, [
        { label: "Kind", cell: (x) => x.kind.toLowerCase() },
        { label: "Every", cell: (x) => every(x.everySeconds) + (x.isDefault ? " (default)" : "") },
        { label: "Looks back", cell: (x) => every(x.lookbackSeconds) },
        {
          label: "Enabled",
          cell: (x) => {
            const c = h("input", { type: "checkbox", checked: x.enabled, "aria-label": `${x.kind.toLowerCase()} sync enabled` });
            c.addEventListener("change", async () => {
              await request(UpdateSchedule, { input: { credentialId, kind: x.kind, enabled: c.checked } }).catch(alertError);
              void load();
            });
            return c;
          },
        },
      ], undefined, "This plugin fetches nothing on a schedule.");
    });
  const d = h("details", {}, h("summary", {}, "Schedules"), box);
  d.addEventListener("toggle", () => d.open && void load(), { once: true });
  return d;
}

const HAND = () => h("span", { class: "tag hand" }, "entered by hand");

export function render(root: HTMLElement, s: Session): void {
  const box = h("div");
  root.append(box);
  const load = () =>
    fill(box, async () => {
      const r = s.admin ? await request(Data, {}) : { ...(await request(ReadOnly, {})), credentials: null, syncRuns: null };
      const sections: Node[] = [];
      sections.push(
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Plugins"),
          table(r.plugins, [
            { label: "Id", cell: (p) => p.id, sort: (p) => p.id },
            { label: "Name", cell: (p) => p.name ?? "—" },
            { label: "Version", cell: (p) => p.version ?? "—" },
            { label: "Source", cell: (p) => p.source.toLowerCase() + (p.replaced ? " (replaced)" : "") },
            { label: "Can", cell: (p) => p.capabilities.map((c) => c.toLowerCase().replace(/_/g, " ")).join(", ") },
            { label: "Status", cell: (p) => (p.loadError ? h("span", { class: "bad" }, p.loadError) : "loaded") },
          ], "plugins-table"),
        ),
      );
      if (r.credentials && r.syncRuns) {
        const runs = r.syncRuns;
        sections.push(
          h(
            "section",
            { class: "card" },
            h("h2", {}, "Credentials"),
            table(r.credentials, [
              { label: "Label", cell: (c) => c.label },
              { label: "Provider", cell: (c) => c.provider },
              { label: "Project", cell: (c) => projectName(s, c.projectId) },
              { label: "Secret", cell: (c) => h("code", {}, c.secretHint) },
              { label: "Status", cell: (c) => h("span", { title: c.lastError ?? "" }, c.status.toLowerCase()) },
              { label: "Validated", cell: (c) => when(c.lastValidatedAt) },
              {
                label: "",
                cell: (c) => [
                  h("button", { type: "button", onclick: async () => { await request(Validate, { id: c.id }).catch(alertError); void load(); } }, "Validate"),
                  " ",
                  h("button", { type: "button", onclick: async () => { await request(SyncNow, { id: c.id }).catch(alertError); void load(); } }, "Sync now"),
                  schedules(c.id),
                ],
              },
            ], "credentials-table", "No credentials yet."),
            addCredential(s, r.plugins.filter((p) => p.capabilities.includes("VALIDATE_CREDENTIAL") || p.capabilities.includes("FETCH_USAGE")), load),
          ),
          h(
            "section",
            { class: "card" },
            h("h2", {}, "Sync runs"),
            table(runs, [
              { label: "Queued", cell: (x) => when(x.queuedAt), sort: (x) => x.queuedAt },
              { label: "Provider", cell: (x) => x.provider },
              { label: "Kind", cell: (x) => x.kind.toLowerCase() },
              { label: "Trigger", cell: (x) => x.trigger },
              { label: "Status", cell: (x) => x.status.toLowerCase() },
              { label: "Attempts", cell: (x) => h("span", { title: x.attemptLog.map((a) => `#${a.number} page ${a.page} ${a.errorKind ?? "ok"} ${a.errorMessage ?? ""}`).join("\n") }, String(x.attempts)), numeric: true },
              { label: "Rows", cell: (x) => `${int(x.rowsInserted)} new, ${int(x.rowsUpdated)} updated`, numeric: true },
              { label: "Error", cell: (x) => x.errorMessage ?? "" },
            ], "sync-runs-table", "No sync runs yet."),
          ),
        );
      }
      const manualProviders = r.plugins.filter((p) => p.capabilities.includes("MANUAL_ENTRY")).map((p) => p.id);
      sections.push(
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Usage entered by hand ", HAND()),
          table(r.providerReports, [
            { label: "Provider", cell: (x) => x.provider },
            { label: "Project", cell: (x) => projectName(s, x.projectId) },
            { label: "From", cell: (x) => when(x.from) },
            { label: "To", cell: (x) => when(x.to) },
            { label: "Model", cell: (x) => x.model ?? "—" },
            { label: "Requests", cell: (x) => int(x.requests), numeric: true },
            { label: "Amount", cell: (x) => money(x.amountUsd), numeric: true },
            { label: "", cell: (x) => (x.userEntered ? HAND() : "") },
            { label: "Note", cell: (x) => x.note ?? "" },
          ], "manual-table", "Nothing entered by hand yet."),
          s.admin ? manualForm(s, manualProviders.length ? manualProviders : r.plugins.map((p) => p.id), r.plugins, load) : null,
        ),
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Fixed subscriptions ", HAND()),
          table(r.subscriptionCosts, [
            { label: "Provider", cell: (x) => x.provider },
            { label: "Plan", cell: (x) => x.plan },
            { label: "Amount", cell: (x) => money(x.amountUsd), numeric: true },
            { label: "Period", cell: (x) => x.period.toLowerCase() },
            { label: "Seats", cell: (x) => x.seats, numeric: true },
            { label: "From", cell: (x) => x.startsOn },
            { label: "Until", cell: (x) => x.endsOn ?? "—" },
            { label: "Project", cell: (x) => projectName(s, x.projectId) },
          ], "plans-table", "No fixed subscriptions."),
          s.admin ? planForm(s, r.plugins.map((p) => p.id), load) : null,
        ),
      );
      return h("div", {}, ...sections);
    });
  void load();
}

function alertError(e: unknown): void {
  alert(messageOf(e));
}

function projectSelect(s: Session): HTMLSelectElement {
  return select("projectId", [["", "no project"], ...s.projects.map((p) => [p.id, p.name] as [string, string])], s.projectId ?? "");
}

function addCredential(s: Session, plugins: { id: string; credentialHelp?: string | null }[], done: () => void): HTMLElement {
  const provider = select("provider", plugins.map((p) => p.id));
  const help = h("p", { class: "muted" });
  const showHelp = () => (help.textContent = plugins.find((p) => p.id === provider.value)?.credentialHelp ?? "");
  provider.addEventListener("change", showHelp);
  showHelp();
  const label = h("input", { name: "label", required: true });
  const secret = h("input", { name: "secret", type: "password", required: true, autocomplete: "off" });
  const project = projectSelect(s);
  const status = h("div");
  const f = h("form", { class: "controls wrap", "aria-label": "Add credential" }, field("Provider", provider), field("Label", label), field("Admin key or token", secret), field("Project", project), h("button", { type: "submit" }, "Add credential"), help, status);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await request(AddCredential, { input: { provider: provider.value, label: label.value, secret: secret.value, projectId: project.value || null } });
      done();
    } catch (err) {
      status.replaceChildren(failure(err));
    }
  });
  return h("details", {}, h("summary", {}, "Add a credential"), f);
}

function manualForm(s: Session, providers: string[], plugins: { id: string; manualEntryHelp?: string | null }[], done: () => void): HTMLElement {
  const [y, m, d] = ymd(serverNow(s), "UTC");
  const day = `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
  const provider = select("provider", providers);
  const help = h("p", { class: "muted", "data-testid": "manual-help" });
  const showHelp = () => (help.textContent = plugins.find((p) => p.id === provider.value)?.manualEntryHelp ?? "");
  provider.addEventListener("change", showHelp);
  showHelp();
  const project = projectSelect(s);
  const from = h("input", { type: "date", name: "from", required: true, value: day });
  const to = h("input", { type: "date", name: "to", required: true, value: day });
  const model = h("input", { name: "model" });
  const requests = h("input", { name: "requests", type: "number", min: 0 });
  const input = h("input", { name: "inputTokens", type: "number", min: 0 });
  const output = h("input", { name: "outputTokens", type: "number", min: 0 });
  const amount = h("input", { name: "amountUsd", inputmode: "decimal", required: true });
  const note = h("input", { name: "note" });
  const status = h("div");
  const num = (i: HTMLInputElement) => (i.value === "" ? null : Number(i.value));
  const f = h(
    "form",
    { class: "controls wrap", "aria-label": "Enter usage by hand" },
    field("Provider", provider),
    field("Project", project),
    field("From (UTC day)", from),
    field("To (UTC day, inclusive)", to),
    field("Model", model, "optional"),
    field("Requests", requests),
    field("Input tokens", input),
    field("Output tokens", output),
    field("Amount (USD)", amount),
    field("Note", note),
    h("button", { type: "submit" }, "Save entry"),
    help,
    status,
  );
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const end = new Date(`${to.value}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    try {
      await request(Manual, {
        input: {
          provider: provider.value,
          projectId: project.value || null,
          from: new Date(`${from.value}T00:00:00Z`).toISOString(),
          to: end.toISOString(),
          model: model.value || null,
          requests: num(requests),
          inputTokens: num(input),
          outputTokens: num(output),
          amountUsd: amount.value,
          note: note.value || null,
        },
      });
      done();
    } catch (err) {
      status.replaceChildren(failure(err));
    }
  });
  return h("div", {}, h("h3", {}, "Enter usage by hand"), f);
}

function planForm(s: Session, providers: string[], done: () => void): HTMLElement {
  const provider = select("provider", providers);
  const plan = h("input", { name: "plan", required: true });
  const amount = h("input", { name: "amountUsd", inputmode: "decimal", required: true });
  const period = select("period", ["MONTHLY", "YEARLY"]);
  const seats = h("input", { name: "seats", type: "number", min: 1, value: 1 });
  const starts = h("input", { name: "startsOn", type: "date", required: true });
  const project = projectSelect(s);
  const status = h("div");
  const f = h("form", { class: "controls wrap", "aria-label": "Add a fixed subscription" }, field("Provider", provider), field("Plan", plan), field("Price per seat (USD)", amount), field("Period", period), field("Seats", seats), field("Starts on", starts), field("Project", project), h("button", { type: "submit" }, "Add subscription"), status);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await request(Plan, { input: { provider: provider.value, plan: plan.value, amountUsd: amount.value, period: period.value as "MONTHLY", seats: Number(seats.value), startsOn: starts.value, projectId: project.value || null } });
      done();
    } catch (err) {
      status.replaceChildren(failure(err));
    }
  });
  return h("details", {}, h("summary", {}, "Add a fixed subscription"), f);
}
