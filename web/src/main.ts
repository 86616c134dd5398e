// The shell: sign-in, navigation and the page router (history API; the server answers
// every page route with index.html).
import "./style.css";
import { storedToken, storeToken } from "./graphql.ts";
import { loadSession, type Session } from "./session.ts";
import { h, failure, field } from "./ui.ts";
import * as overview from "./pages/overview/index.ts";
import * as explore from "./pages/explore/index.ts";
import * as budgets from "./pages/budgets/index.ts";
import * as providers from "./pages/providers/index.ts";
import * as reconciliation from "./pages/reconciliation/index.ts";
import * as insights from "./pages/insights/index.ts";
import * as prices from "./pages/prices/index.ts";
import * as projects from "./pages/projects/index.ts";

export type Page = (root: HTMLElement, session: Session) => (() => void) | void;

const PAGES: { path: string; title: string; render: Page; admin?: boolean }[] = [
  { path: "/", title: "Overview", render: overview.render },
  { path: "/explore", title: "Explore", render: explore.render },
  { path: "/budgets", title: "Budgets & alerts", render: budgets.render },
  { path: "/providers", title: "Providers", render: providers.render },
  { path: "/reconciliation", title: "Reconciliation", render: reconciliation.render },
  { path: "/insights", title: "Recommendations & anomalies", render: insights.render },
  { path: "/prices", title: "Prices", render: prices.render },
  { path: "/projects", title: "Projects & tokens", render: projects.render },
];

const app = document.getElementById("app")!;
let cleanup: (() => void) | void;

function signIn(error?: unknown): void {
  const token = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    placeholder: "asp_…",
  });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "aispend"),
    h("p", {}, "Paste an API token. It is kept in this tab only (session storage) and sent as the bearer."),
    field("API token", token),
    h("button", { type: "submit" }, "Sign in"),
    error ? failure(error) : null,
    h(
      "p",
      { class: "muted links" },
      h("a", { href: "/graphql" }, "GraphiQL"),
      " · ",
      h("a", { href: "/README.md" }, "README"),
      " · ",
      h("a", { href: "/healthz" }, "Health"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    storeToken(token.value.trim());
    void start();
  });
  app.replaceChildren(h("main", { class: "center" }, form));
  token.focus();
}

async function start(): Promise<void> {
  if (!storedToken()) return signIn();
  let session: Session;
  try {
    session = await loadSession();
  } catch (e) {
    storeToken(null);
    return signIn(e);
  }
  if (session.kind === "ANONYMOUS") {
    storeToken(null);
    return signIn(new Error("the token was not accepted"));
  }
  const main = h("main", { id: "main", tabindex: "-1" });
  const nav = h(
    "nav",
    { "aria-label": "Pages" },
    ...PAGES.map((p) => h("a", { href: p.path, "data-nav": p.path }, p.title)),
  );
  const who = h(
    "div",
    { class: "who", "data-testid": "who" },
    h("span", {}, session.projectId ? `Project: ${session.projects.find((p) => p.id === session.projectId)?.name ?? session.projectId}` : "All projects"),
    h("span", { class: "scopes" }, ...session.scopes.map((s) => h("span", { class: "tag" }, s))),
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          storeToken(null);
          history.pushState({}, "", "/");
          signIn();
        },
      },
      "Sign out",
    ),
  );
  const header = h(
    "header",
    {},
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h("a", { class: "brand", href: "/" }, "aispend"),
    nav,
    who,
  );
  const footer = h(
    "footer",
    {},
    `aispend ${session.version} · `,
    h("a", { href: "/graphql" }, "GraphiQL"),
    " · ",
    h("a", { href: "/README.md" }, "README"),
    " · ",
    h("a", { href: "/healthz" }, "Health"),
  );
  app.replaceChildren(header, main, footer);

  const route = () => {
    if (typeof cleanup === "function") cleanup();
    const page = PAGES.find((p) => p.path === location.pathname) ?? PAGES[0];
    document.title = `${page.title} · aispend`;
    nav.querySelectorAll("a").forEach((a) => {
      if (a.dataset.nav === page.path) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    main.replaceChildren(h("h1", {}, page.title));
    const body = h("div", { class: "page" });
    main.append(body);
    cleanup = page.render(body, session);
  };
  nav.addEventListener("click", (e) => {
    const a = (e.target as HTMLElement).closest("a");
    if (!a || e.metaKey || e.ctrlKey) return;
    e.preventDefault();
    history.pushState({}, "", a.getAttribute("href")!);
    route();
    main.focus();
  });
  window.onpopstate = route;
  route();
}

void start();
