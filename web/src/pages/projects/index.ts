// Projects and tokens: create projects; create tokens (the secret shown once, with a
// copy button), revoke them. Token administration needs ADMIN.
import { graphql, request } from "../../graphql.ts";
import { projectName, type Session } from "../../session.ts";
import { failure, field, fill, h, select, table, when } from "../../ui.ts";

const Projects = graphql(`
  query ProjectList { projects { id name createdAt } }
`);
const Tokens = graphql(`
  query Tokens { apiTokens { id name projectId scopes hint createdAt lastUsedAt revoked } }
`);
const CreateProject = graphql(`
  mutation CreateProject($name: String!) { createProject(name: $name) { id name } }
`);
const CreateToken = graphql(`
  mutation CreateToken($name: String!, $projectId: ID, $scopes: [Scope!]!) {
    createApiToken(name: $name, projectId: $projectId, scopes: $scopes) { token apiToken { id } }
  }
`);
const Revoke = graphql(`
  mutation RevokeToken($id: ID!) { revokeApiToken(id: $id) { id revoked } }
`);

export function render(root: HTMLElement, s: Session): void {
  const projects = h("section", { class: "card" });
  const tokens = h("section", { class: "card" });
  const created = h("div", { "aria-live": "polite" });
  root.append(projects, s.admin ? tokens : h("p", { class: "muted" }, "Tokens are managed with an ADMIN token."));
  const loadProjects = () =>
    fill(projects, async () => {
      const r = await request(Projects, {});
      s.projects = r.projects.map((p) => ({ id: p.id, name: p.name }));
      const name = h("input", { name: "name", required: true });
      const status = h("div");
      const f = h("form", { class: "controls", "aria-label": "New project" }, field("New project", name), h("button", { type: "submit" }, "Create project"), status);
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await request(CreateProject, { name: name.value });
          void loadProjects();
        } catch (err) {
          status.replaceChildren(failure(err));
        }
      });
      return h(
        "div",
        {},
        h("h2", {}, "Projects"),
        table(r.projects, [
          { label: "Name", cell: (p) => p.name, sort: (p) => p.name },
          { label: "Id", cell: (p) => h("code", {}, p.id) },
          { label: "Created", cell: (p) => when(p.createdAt), sort: (p) => p.createdAt },
        ], "projects-table", "No projects yet."),
        s.admin && !s.projectId ? f : null,
      );
    });
  const loadTokens = () =>
    fill(tokens, async () => {
      const r = await request(Tokens, {});
      const name = h("input", { name: "name", required: true });
      const project = select("projectId", [["", "every project (unbound)"], ...s.projects.map((p) => [p.id, p.name] as [string, string])]);
      const scopes = ["INGEST", "READ", "ADMIN"].map((x) => h("input", { type: "checkbox", name: "scopes", value: x, checked: x === "READ" }));
      const status = h("div");
      const f = h(
        "form",
        { class: "controls wrap", "aria-label": "New token" },
        field("Token name", name),
        field("Project", project),
        h("fieldset", {}, h("legend", {}, "Scopes"), ...scopes.map((c) => h("label", { class: "check" }, c, ` ${c.value.toLowerCase()}`))),
        h("button", { type: "submit" }, "Create token"),
        status,
      );
      f.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          const t = await request(CreateToken, {
            name: name.value,
            projectId: project.value || null,
            scopes: scopes.filter((c) => c.checked).map((c) => c.value as "READ"),
          });
          const secret = t.createApiToken.token;
          const code = h("code", { "data-testid": "new-token" }, secret);
          created.replaceChildren(
            h(
              "div",
              { class: "card notice", role: "status" },
              h("p", {}, "Copy this token now: it is shown once and cannot be read again."),
              code,
              " ",
              h("button", { type: "button", onclick: () => void navigator.clipboard?.writeText(secret) }, "Copy"),
            ),
          );
          void loadTokens();
        } catch (err) {
          status.replaceChildren(failure(err));
        }
      });
      return h(
        "div",
        {},
        h("h2", {}, "API tokens"),
        created,
        table(r.apiTokens, [
          { label: "Name", cell: (t) => t.name, sort: (t) => t.name },
          { label: "Project", cell: (t) => (t.projectId ? projectName(s, t.projectId) : "every project") },
          { label: "Scopes", cell: (t) => t.scopes.join(", ") },
          { label: "Token", cell: (t) => h("code", {}, t.hint) },
          { label: "Last used", cell: (t) => when(t.lastUsedAt) },
          { label: "Status", cell: (t) => (t.revoked ? "revoked" : h("button", { type: "button", onclick: async () => { if (confirm(`Revoke ${t.name}?`)) { await request(Revoke, { id: t.id }); void loadTokens(); } } }, "Revoke")) },
        ], "tokens-table"),
        f,
      );
    });
  void loadProjects().then(() => {
    if (s.admin) void loadTokens();
  });
}
