// Prices: search the catalog, add a user price (ADMIN), see price changes.
import { graphql, request } from "../../graphql.ts";
import { type Session } from "../../session.ts";
import { failure, field, fill, h, table, when } from "../../ui.ts";

const Prices = graphql(`
  query Prices($filter: PriceFilter) {
    prices(filter: $filter) {
      id provider model source effectiveFrom effectiveTo tier note
      standard { input output cacheRead cacheWrite }
    }
  }
`);
const Changes = graphql(`
  query PriceChanges { priceChanges(first: 50) { id at provider model kind source origin } }
`);
const Upsert = graphql(`
  mutation UpsertPrice($input: PriceInput!) { upsertPrice(input: $input) { id } }
`);

const rate = (v: string | null | undefined) => (v === null || v === undefined ? "—" : `$${v}`);

export function render(root: HTMLElement, s: Session): void {
  const provider = h("input", { name: "provider", placeholder: "openai" });
  const model = h("input", { name: "model", placeholder: "gpt-4o" });
  const results = h("section", { class: "card" });
  const changes = h("section", { class: "card" });
  const search = h("form", { class: "card controls wrap", role: "search", "aria-label": "Search prices" }, field("Provider", provider), field("Model contains", model), h("button", { type: "submit" }, "Search"));
  const load = () =>
    fill(results, async () => {
      const r = await request(Prices, { filter: { providers: provider.value ? [provider.value] : null, model: model.value || null } });
      return h(
        "div",
        {},
        h("h2", {}, `Prices (${r.prices.length}) · USD per million tokens`),
        table(r.prices.slice(0, 300), [
          { label: "Provider", cell: (p) => p.provider, sort: (p) => p.provider },
          { label: "Model", cell: (p) => p.model, sort: (p) => p.model },
          { label: "Input", cell: (p) => rate(p.standard.input), sort: (p) => Number(p.standard.input ?? 0), numeric: true },
          { label: "Output", cell: (p) => rate(p.standard.output), sort: (p) => Number(p.standard.output ?? 0), numeric: true },
          { label: "Cache read", cell: (p) => rate(p.standard.cacheRead), numeric: true },
          { label: "Source", cell: (p) => p.source.toLowerCase() },
          { label: "From", cell: (p) => when(p.effectiveFrom), sort: (p) => p.effectiveFrom },
          { label: "Until", cell: (p) => when(p.effectiveTo) },
        ], "prices-table", "No price matches."),
      );
    });
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    void load();
  });
  root.append(search, results);
  if (s.admin) {
    const p = h("input", { name: "provider", required: true });
    const m = h("input", { name: "model", required: true });
    const input = h("input", { name: "input", inputmode: "decimal", required: true });
    const output = h("input", { name: "output", inputmode: "decimal", required: true });
    const status = h("div");
    const f = h("form", { class: "controls wrap", "aria-label": "Add a user price" }, field("Provider", p), field("Model", m), field("Input per 1M tokens (USD)", input), field("Output per 1M tokens (USD)", output), h("button", { type: "submit" }, "Save price"), status);
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await request(Upsert, { input: { provider: p.value, model: m.value, standard: { input: input.value, output: output.value } } });
        status.replaceChildren(h("p", { role: "status" }, "Saved."));
        void load();
        void loadChanges();
      } catch (err) {
        status.replaceChildren(failure(err));
      }
    });
    root.append(h("section", { class: "card" }, h("h2", {}, "Add a user price"), f));
  }
  root.append(changes);
  const loadChanges = () =>
    fill(changes, async () => {
      const r = await request(Changes, {});
      return h(
        "div",
        {},
        h("h2", {}, "Price changes"),
        table(r.priceChanges, [
          { label: "When", cell: (c) => when(c.at), sort: (c) => c.at },
          { label: "Provider", cell: (c) => c.provider },
          { label: "Model", cell: (c) => c.model },
          { label: "Change", cell: (c) => c.kind.toLowerCase() },
          { label: "Source", cell: (c) => `${c.source.toLowerCase()}${c.origin ? ` (${c.origin})` : ""}` },
        ], "price-changes-table", "No price changes yet."),
      );
    });
  void load();
  void loadChanges();
}
