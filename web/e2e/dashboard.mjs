// Browser scenarios for the dashboard, driven by tests/tests/e2e/dashboard.rs against
// a real server it seeded. Reads its inputs from the environment, prints each step,
// exits non-zero on the first failed assertion. Screenshots go to SCREENSHOT_DIR.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("AISPEND_URL");
const ADMIN = env("ADMIN_TOKEN");
const READ_B = env("READ_B_TOKEN");
const PROJECT_A = env("PROJECT_A");
const PROJECT_B = env("PROJECT_B");
const MONTH_TOTAL = env("MONTH_TOTAL");
const MONTH_TOTAL_B = env("MONTH_TOTAL_B");
const SHOTS = env("SCREENSHOT_DIR");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
mkdirSync(SHOTS, { recursive: true });

const step = (s) => console.log(`-- ${s}`);
function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
const near = (a, b) => Math.abs(Number(a) - Number(b)) < 1e-9;

async function gql(query, variables = {}, token = ADMIN) {
  const r = await fetch(`${BASE}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
const record = (input) =>
  gql("mutation($i: UsageInput!) { recordUsage(input: $i) { event { id costUsd } } }", { i: input });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => errors.push(String(e)));
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (title) => {
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: title, exact: true }).click();
    await page.getByRole("heading", { level: 1, name: title }).waitFor();
  };
  const exact = (testid) => page.getByTestId(testid).getAttribute("data-exact");
  const noBusy = () => page.waitForFunction(() => !document.querySelector("[aria-busy]") && !document.querySelector(".state[role=status]"));

  step("a wrong token is refused with a message");
  await page.goto(`${BASE}/`);
  await shot("sign-in");
  await page.getByLabel("API token").fill("asp_not_a_real_token");
  await page.getByRole("button", { name: "Sign in" }).click();
  const refused = await page.getByRole("alert").innerText();
  assert(refused.startsWith("Error:"), `the sign-in form says why: ${refused}`);
  assert((await page.evaluate(() => sessionStorage.length)) === 0, "a refused token is not kept");

  step("sign in with the operator token");
  await page.getByLabel("API token").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();
  const who = page.getByTestId("who");
  await who.waitFor();
  const whoText = await who.innerText();
  assert(whoText.includes("All projects") && whoText.includes("ADMIN"), `the header names the token: ${whoText}`);
  for (const link of ["GraphiQL", "README", "Health"]) {
    assert((await page.getByRole("link", { name: link, exact: true }).count()) > 0, `${link} is linked`);
  }

  step("the overview shows the seeded month's exact total");
  await page.getByTestId("month-total").waitFor();
  const month = await exact("month-total");
  assert(month === MONTH_TOTAL, `month total ${month} is ${MONTH_TOTAL}`);
  const shown = await page.getByTestId("month-total").innerText();
  assert(shown === `$${Number(MONTH_TOTAL).toFixed(2)}`, `month total shown as ${shown}`);
  assert((await page.getByTestId("month-total").getAttribute("title")).includes(MONTH_TOTAL), "the exact value on hover");
  await page.getByTestId("trend-table").waitFor({ state: "attached" });
  await page.getByTestId("top-model").waitFor();
  await noBusy();
  await shot("overview");

  step("another range and time zone change the chart");
  const buckets = () =>
    page.getByTestId("trend-table").locator("tbody tr").evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.querySelector("[data-exact]")?.getAttribute("data-exact") ?? td.textContent)),
    );
  const before = await buckets();
  assert(before.length === 31, `December has 31 daily buckets, got ${before.length}`);
  assert(before[0][1] === "2026-12-01T00:00:00Z", `the month starts at UTC midnight: ${before[0]}`);
  await page.getByLabel("Time zone").selectOption("Asia/Tokyo");
  await page.getByLabel("Range").selectOption("7d");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=trend-table] tbody tr").length === 7);
  const after = await buckets();
  assert(after[0][1] === "2026-12-02T15:00:00Z", `Tokyo's 3 December starts at 15:00 UTC the day before: ${after[0]}`);
  const dec3 = after.find((b) => b[1] === "2026-12-02T15:00:00Z");
  assert(near(dec3[3], "12.345678"), `the 3 December (Tokyo) bucket holds the event of that morning: ${dec3}`);
  await shot("overview-tokyo-7-days");
  await page.getByLabel("Time zone").selectOption("UTC");
  await page.getByLabel("Range").selectOption("month");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=trend-table] tbody tr").length === 31);

  step("an event recorded over GraphQL reaches the live feed and the totals");
  await page.getByTestId("live-state").filter({ hasText: "Live" }).waitFor();
  // The socket is connected; the subscription may still be on its way to the server.
  // Prove it is registered with a first event before timing the second.
  let warm = false;
  for (let i = 0; i < 10 && !warm; i++) {
    await record({ projectId: PROJECT_A, provider: "openai", model: `warm-up-${i}`, inputTokens: 1, reportedCostUsd: "0.25" });
    warm = await page
      .getByTestId("live-feed")
      .filter({ hasText: `warm-up-${i}` })
      .waitFor({ timeout: 3000 })
      .then(() => true, () => false);
  }
  assert(warm, "the live feed received a first event");
  const monthBefore = Number(await exact("month-total"));
  const t0 = Date.now();
  await record({ projectId: PROJECT_A, provider: "openai", model: "live-model", endpoint: "live-endpoint", inputTokens: 1, reportedCostUsd: "1.000001" });
  await page.getByTestId("live-feed").filter({ hasText: "live-model" }).waitFor({ timeout: 1000 });
  await page.waitForFunction(
    ([want]) => Math.abs(Number(document.querySelector("[data-testid=month-total]")?.getAttribute("data-exact")) - want) < 1e-9,
    [monthBefore + 1.000001],
    { timeout: 1000 },
  );
  console.log(`   the event and the new month total showed ${Date.now() - t0} ms after recordUsage was sent`);
  await shot("overview-live");

  step("a manual entry added through the form shows in the REPORTED view, labelled");
  await go("Providers");
  const manual = page.getByRole("form", { name: "Enter usage by hand" });
  await manual.getByLabel("Provider").selectOption("groq");
  await manual.getByLabel("Project").selectOption(PROJECT_A);
  await manual.getByLabel("Amount (USD)").fill("3.21");
  await manual.getByLabel("Note").fill("typed-in-by-hand");
  await manual.getByRole("button", { name: "Save entry" }).click();
  const row = page.getByTestId("manual-table").locator("tr", { hasText: "typed-in-by-hand" });
  await row.waitFor();
  assert((await row.innerText()).includes("entered by hand"), "the entry is labelled in the providers page");
  await noBusy();
  await shot("providers");
  await go("Overview");
  await page.getByLabel("View").selectOption("REPORTED");
  const reported = page.getByTestId("reported-table").locator("tr", { hasText: "typed-in-by-hand" });
  await reported.waitFor();
  const reportedText = await reported.innerText();
  assert(reportedText.includes("entered by hand") && reportedText.includes("groq"), `the reported row: ${reportedText}`);
  const reportedBuckets = await buckets();
  const dec9 = reportedBuckets.find((b) => b[1] === "2026-12-09T00:00:00Z");
  assert(dec9 && near(dec9[3], "3.21") && dec9[2] === "REPORTED", `the 9 December bucket is the reported 3.21: ${dec9}`);
  await noBusy();
  const overviewErrors = await page.locator(".state.error").allInnerTexts();
  assert(overviewErrors.length === 0, `the REPORTED overview shows no error: ${overviewErrors}`);
  await shot("overview-reported");

  step("a budget created in the form fires its alert");
  await go("Budgets & alerts");
  const form = page.getByRole("form", { name: "New budget" });
  await form.getByLabel("Name").fill("ui-budget");
  await form.getByLabel("Amount (USD)").fill("10");
  await form.getByLabel("Thresholds (%)").fill("50, 80");
  await form.getByLabel("Project").selectOption(PROJECT_A);
  await form.getByRole("button", { name: "Create budget" }).click();
  await page.getByTestId("budgets-table").locator("tr", { hasText: "ui-budget" }).waitFor();
  const fired = page.getByTestId("alerts-table").locator("tbody tr", { hasText: "ui-budget" });
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=alerts-table] tbody tr")].filter((r) => r.textContent.includes("ui-budget")).length === 2);
  const thresholds = await fired.evaluateAll((rows) => rows.map((r) => r.children[2].textContent).sort());
  assert(JSON.stringify(thresholds) === JSON.stringify(["50%", "80%"]), `both thresholds fired: ${thresholds}`);
  step("editing the budget's amount recounts its progress");
  await page.getByTestId("budgets-table").locator("tr", { hasText: "ui-budget" }).getByRole("button", { name: "Edit" }).click();
  const editForm = page.getByRole("form", { name: "Edit budget" });
  await editForm.getByLabel("Amount (USD)").fill("40");
  await editForm.getByRole("button", { name: "Save budget" }).click();
  await page.getByTestId("budgets-table").locator("tr", { hasText: "ui-budget" }).locator("[data-exact='40']").waitFor();
  const progress = await page.getByTestId("budgets-table").locator("tr", { hasText: "ui-budget" }).locator("progress").getAttribute("aria-label");
  assert(progress.includes("% used") && Number(progress.match(/([\d.]+)% used/)[1]) < 100, `the progress after the edit: ${progress}`);
  await fired.first().getByRole("button", { name: "Acknowledge" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=alerts-table] tbody tr")].some((r) => r.textContent.includes("ui-budget") && r.lastElementChild.textContent === "yes"));
  await noBusy();
  await shot("budgets");

  step("a fixed subscription added through the form is listed, labelled");
  await go("Providers");
  await page.getByText("Add a fixed subscription").click();
  const plan = page.getByRole("form", { name: "Add a fixed subscription" });
  await plan.getByLabel("Provider").selectOption("github-copilot");
  await plan.getByLabel("Plan").fill("e2e-business-plan");
  await plan.getByLabel("Price per seat (USD)").fill("19");
  await plan.getByLabel("Seats").fill("3");
  await plan.getByLabel("Starts on").fill("2026-12-01");
  await plan.getByLabel("Project").selectOption(PROJECT_A);
  await plan.getByRole("button", { name: "Add subscription" }).click();
  const planRow = page.getByTestId("plans-table").locator("tr", { hasText: "e2e-business-plan" });
  await planRow.waitFor();
  assert((await planRow.innerText()).includes("acme-alpha-proj"), "the plan row names its project");
  const planHeading = await page.getByRole("heading", { name: /^Fixed subscriptions/ }).innerText();
  assert(planHeading.includes("entered by hand"), `the plans are labelled: ${planHeading}`);

  step("a credential added through the form is shown masked");
  await go("Providers");
  await page.getByText("Add a credential").click();
  const cred = page.getByRole("form", { name: "Add credential" });
  await cred.getByLabel("Provider").selectOption("openai");
  await cred.getByLabel("Label").fill("e2e-key");
  const secret = "sk-admin-e2e-SECRET-0123456789abcdef";
  await cred.getByLabel("Admin key or token").fill(secret);
  await cred.getByRole("button", { name: "Add credential" }).click();
  const credRow = page.getByTestId("credentials-table").locator("tr", { hasText: "e2e-key" });
  await credRow.waitFor();
  assert(!(await page.content()).includes("SECRET-0123456789"), "the secret is never shown");
  const hint = await credRow.locator("code").innerText();
  assert(hint.length > 0 && !hint.includes("SECRET"), `the credential shows a hint: ${hint}`);
  await credRow.getByText("Schedules").click();
  await credRow.locator("table").waitFor();
  await shot("providers-credential");

  step("reconciliation shows the hand-entered groq day with nothing tracked against it");
  await go("Reconciliation");
  const recon = page.getByTestId("reconciliation-table").locator("tr", { hasText: "groq" });
  await recon.waitFor();
  const reconText = await recon.innerText();
  assert(reconText.includes("2026-12-09") && reconText.includes("missing tracked"), `the groq row: ${reconText}`);

  step("a user price added through the form is found and listed as a change");
  await go("Prices");
  const priceForm = page.getByRole("form", { name: "Add a user price" });
  await priceForm.getByLabel("Provider").fill("acme-e2e");
  await priceForm.getByLabel("Model").fill("acme-e2e-model");
  await priceForm.getByLabel("Input per 1M tokens (USD)").fill("1.5");
  await priceForm.getByLabel("Output per 1M tokens (USD)").fill("2.5");
  await priceForm.getByRole("button", { name: "Save price" }).click();
  await priceForm.getByText("Saved.").waitFor();
  const search = page.getByRole("search", { name: "Search prices" });
  await search.getByLabel("Provider").fill("acme-e2e");
  await search.getByRole("button", { name: "Search" }).click();
  const priceRow = page.getByTestId("prices-table").locator("tbody tr", { hasText: "acme-e2e-model" });
  await priceRow.waitFor();
  const priceText = await priceRow.innerText();
  assert(priceText.includes("$1.5") && priceText.includes("$2.5") && priceText.includes("user"), `the price row: ${priceText}`);
  await page.getByTestId("price-changes-table").locator("tr", { hasText: "acme-e2e-model" }).waitFor();

  step("a token created in the form is shown once, works, and is revoked");
  await go("Projects & tokens");
  const tokenForm = page.getByRole("form", { name: "New token" });
  await tokenForm.getByLabel("Token name").fill("browser-made");
  await tokenForm.getByLabel("Project").selectOption(PROJECT_B);
  await tokenForm.getByRole("button", { name: "Create token" }).click();
  const made = (await page.getByTestId("new-token").innerText()).trim();
  const viewer = await gql("{ viewer { kind projectId scopes } }", {}, made);
  assert(viewer.viewer.kind === "TOKEN" && viewer.viewer.projectId === PROJECT_B && viewer.viewer.scopes.join() === "READ", `the new token: ${JSON.stringify(viewer)}`);
  await shot("projects-new-token");
  await go("Overview");
  await go("Projects & tokens");
  await page.getByTestId("tokens-table").waitFor();
  assert(!(await page.content()).includes(made), "the token is shown only once");
  page.once("dialog", (d) => d.accept());
  await page.getByTestId("tokens-table").locator("tr", { hasText: "browser-made" }).getByRole("button", { name: "Revoke" }).click();
  await page.getByTestId("tokens-table").locator("tr", { hasText: "browser-made" }).getByText("revoked").waitFor();
  const revoked = await gql("{ viewer { kind } }", {}, made).then((r) => r.viewer.kind, (e) => String(e));
  assert(revoked !== "TOKEN", `the revoked token no longer works: ${revoked}`);

  step("explore sorts its breakdown and exports the same filter as CSV");
  await go("Explore");
  const breakdown = page.getByTestId("breakdown-table");
  await breakdown.waitFor();
  // The percentiles arrive in a request of their own and fill the cells in place: this
  // month's seeded events all took 420 ms.
  await breakdown.getByTestId("p50").filter({ hasText: /^420$/ }).first().waitFor();
  assert((await breakdown.getByTestId("latency-pending").count()) === 0, "no percentile is left computing");
  const costs = () => breakdown.locator("tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.children[1].querySelector("[data-exact]").getAttribute("data-exact"))));
  await breakdown.getByRole("button", { name: "Cost" }).click();
  const down = await costs();
  assert(down.every((c, i) => i === 0 || down[i - 1] >= c) && down.length > 2, `sorted by cost, dearest first: ${down}`);
  await breakdown.getByRole("button", { name: "Cost" }).click();
  const up = await costs();
  assert(JSON.stringify(up) === JSON.stringify([...down].reverse()), `sorted by cost, cheapest first: ${up}`);
  step("the event log pages through November and December");
  await page.getByLabel("From (UTC)").fill("2026-11-01T00:00");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.getByRole("heading", { name: /^Events \((3\d|4\d)\)$/ }).waitFor();
  const heading = await page.getByRole("heading", { name: /^Events \(\d+\)$/ }).innerText();
  const count = Number(heading.match(/\d+/)[0]);
  const rowsOf = () => page.getByTestId("events-table").locator("tbody tr").count();
  assert((await rowsOf()) === 25, "the first page holds 25 events");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText("Page 2").waitFor();
  assert((await rowsOf()) === count - 25, `the second page holds the other ${count - 25}`);
  assert(await page.getByRole("button", { name: "Next" }).isDisabled(), "no third page");
  await page.getByRole("button", { name: "Previous" }).click();
  await page.getByText("Page 1").waitFor();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  const { readFileSync } = await import("node:fs");
  const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
  assert(csv[0].startsWith("id,occurred_at,project_id"), `a CSV header: ${csv[0]}`);
  assert(csv.length - 1 === count, `the export holds the ${count} events of the filter, got ${csv.length - 1}`);
  await shot("explore");

  step("percentiles that would read more raw latencies than the page allows say why at once");
  // 20,001 June events with a latency: by model alone the latency sketches answer; by
  // model and endpoint together none does, and the page allows 20,000 raw latencies.
  const june = Array.from({ length: 20001 }, (_, i) => ({
    projectId: PROJECT_A, provider: "openai", model: "gpt-4o-mini", endpoint: `alpha-bulk-${i % 4}`,
    inputTokens: 10, latencyMs: 100 + (i % 50), occurredAt: new Date(Date.UTC(2026, 5, 1 + (i % 29), 12)).toISOString(),
  }));
  for (let i = 0; i < june.length; i += 10000) {
    const r = await gql("mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }", { i: june.slice(i, i + 10000) });
    assert(r.recordUsageBatch.accepted === Math.min(10000, june.length - i), `the June batch: ${JSON.stringify(r)}`);
  }
  await page.getByLabel("From (UTC)").fill("2026-06-01T00:00");
  await page.getByLabel("To (UTC)").fill("2026-07-01T00:00");
  await page.getByRole("checkbox", { name: "endpoint" }).check();
  await page.getByRole("button", { name: "Apply" }).click();
  const note = page.getByTestId("latency-note");
  await note.waitFor();
  const noteText = await note.innerText();
  assert(noteText.includes("would read 20001 latencies, more than 20000"), `the note names the count and the limit: ${noteText}`);
  assert((await breakdown.getByTestId("latency-limited").count()) === 8, "each of the 4 groups' p50 and p95 says n/a");
  assert((await breakdown.getByTestId("latency-pending").count()) === 0, "nothing is left computing");
  await shot("explore-latency-limited");
  await page.getByRole("checkbox", { name: "endpoint" }).uncheck();
  await page.getByRole("button", { name: "Apply" }).click();
  // 100–149 ms, uniformly: the sketch's median is within 1 % of the exact 124.
  await breakdown.getByTestId("p50").filter({ hasText: /^12[3-5]$/ }).waitFor();
  assert((await page.getByTestId("latency-note").count()) === 0, "by model alone no note");

  for (const [title, name] of [["Explore", "explore"], ["Reconciliation", "reconciliation"], ["Recommendations & anomalies", "insights"], ["Prices", "prices"], ["Projects & tokens", "projects"]]) {
    step(`the ${title} page loads`);
    await go(title);
    await noBusy();
    const failed = await page.locator(".state.error").allInnerTexts();
    assert(failed.length === 0, `${title} shows no error: ${failed}`);
    await shot(name);
  }
  await page.getByTestId("breakdown-table").count();

  step("a phone-width overview");
  await go("Overview");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByTestId("month-total").waitFor();
  await noBusy();
  // The chart follows the width through a ResizeObserver: wait for the layout to settle.
  await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 5000 }).catch(() => {});
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `nothing wider than the phone (${overflow}px too wide)`);
  await shot("overview-phone");
  await page.emulateMedia({ colorScheme: "dark" });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(dark === "rgb(18, 21, 27)", `the dark theme follows prefers-color-scheme: ${dark}`);
  await shot("overview-phone-dark");
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 900 });

  step("a READ token bound to project B sees only B, and no admin controls");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").fill(READ_B);
  await page.getByRole("button", { name: "Sign in" }).click();
  await who.waitFor();
  const whoB = await who.innerText();
  assert(whoB.includes("acme-beta-proj") && whoB.includes("READ") && !whoB.includes("ADMIN"), `the header: ${whoB}`);
  await page.getByTestId("month-total").waitFor();
  const monthB = await exact("month-total");
  assert(monthB === MONTH_TOTAL_B, `B's month total ${monthB} is ${MONTH_TOTAL_B}`);
  const markers = ["acme-alpha-proj", PROJECT_A, "alpha-endpoint", "live-model", "typed-in-by-hand", "ui-budget", "e2e-business-plan", "e2e-key"];
  const pages = ["Overview", "Explore", "Budgets & alerts", "Providers", "Reconciliation", "Recommendations & anomalies", "Prices", "Projects & tokens"];
  for (const title of pages) {
    await go(title);
    await noBusy();
    if (title === "Overview") await page.getByTestId("top-model").waitFor();
    const text = await page.locator("body").innerText();
    const html = await page.content();
    for (const m of markers) assert(!text.includes(m) && !html.includes(m), `${title} shows ${m} of project A to B's token`);
    for (const control of ["Create budget", "Save entry", "Create token", "Add credential", "Save price", "Acknowledge", "Create project"]) {
      assert((await page.getByRole("button", { name: control }).count()) === 0, `${title} offers "${control}" to a READ token`);
    }
    await shot(`read-b-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`);
  }
  step("B's live feed carries B's events and never A's");
  await go("Overview");
  await page.getByTestId("live-state").filter({ hasText: "Live" }).waitFor();
  let seen = false;
  let recordedB = 0;
  for (let i = 0; i < 10 && !seen; i++) {
    // A's event first, then B's: updates arrive in order, so once B's is shown, A's
    // would already be there had it been sent.
    await record({ projectId: PROJECT_A, provider: "openai", model: "alpha-live-secret", inputTokens: 1, reportedCostUsd: "0.5" });
    await record({ projectId: PROJECT_B, provider: "openai", model: `beta-live-${i}`, inputTokens: 1, reportedCostUsd: "0.5" });
    recordedB += 1;
    seen = await page.getByTestId("live-feed").filter({ hasText: `beta-live-${i}` }).waitFor({ timeout: 3000 }).then(() => true, () => false);
  }
  assert(seen, "B's event reached B's live feed");
  const feedText = await page.getByTestId("live-feed").innerText();
  assert(!feedText.includes("alpha-live-secret"), `A's event reached B's feed: ${feedText}`);
  assert(near(await exact("month-total"), Number(MONTH_TOTAL_B) + 0.5 * recordedB), "B's month total counts only B's events");
  await shot("read-b-overview-live");
  assert(errors.length === 0, `no script errors in the page: ${errors.join("; ")}`);
  void PROJECT_B;
  console.log("all dashboard scenarios passed");
} finally {
  await browser.close();
}
