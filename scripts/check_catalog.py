"""Measures the built-in catalog against LiteLLM's price map and genai-prices.

For every model the two sources list for the providers the catalog covers, and five
usage shapes (plain, cache read, cache write, long context, batch), it prices the usage
three ways — LiteLLM's rates, genai-prices' own engine, and aispend (`aispend prices
quote`, the server's matcher and cost function over the built-in catalog) — and counts,
per provider, the cases aispend prices within 0.5 % of each source, leaves unpriced, or
prices differently. The target: at least 98 % of the cases where LiteLLM and
genai-prices agree with each other are priced the same by aispend.

    python3 scripts/check_catalog.py --aispend target/debug/aispend [--write PRICING.md]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import subprocess
import sys
import tempfile
import tomllib
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import price_sources as ps  # noqa: E402

TARGET = Decimal("0.98")
TOLERANCE = Decimal("0.005")
PROVIDERS = [
    "openai", "anthropic", "google", "groq", "mistral", "deepseek", "perplexity", "xai",
    "cohere", "together", "fireworks", "azure", "bedrock", "openrouter",
]


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= max(abs(a), abs(b)) * TOLERANCE


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aispend", required=True, help="the aispend binary")
    parser.add_argument("--write", help="write the report (markdown) to this file")
    parser.add_argument("--dump", help="write every case (JSON lines) to this file")
    args = parser.parse_args()

    catalog = tomllib.loads((ps.ROOT / "server" / "catalog" / "prices.toml").read_text())
    llv, gpv = catalog["litellm_version"], catalog["genai_prices_version"]
    read_on = str(catalog["sources_read_on"])
    at = ps.reference_instant(read_on)
    lmap = ps.litellm_map(llv)
    gp = ps.genai_prices(gpv)
    from genai_prices.data import providers as genai_providers

    # The models: every token-priced LiteLLM entry and every genai-prices model of the
    # covered providers, by the id an application sends.
    models: dict[tuple[str, str], dict] = {}
    for key in ps.keys_in_order(lmap):
        entry = lmap[key]
        pm = ps.provider_and_model(key, entry)
        if pm is None or entry.get("mode") not in ps.TOKEN_MODES:
            continue
        try:
            card = ps.card_from_entry(entry)
        except ValueError:
            card = None
        if card is not None and "input" not in card["standard"]:
            # Billed only per image or per second of video: the text shapes say
            # nothing about it.
            card = None
        k = (pm[0], pm[1].lower())
        info = models.setdefault(k, {"provider": pm[0], "model": pm[1]})
        if card is not None and "litellm" not in info:
            info["litellm"] = card
            info["unbillable"] = ps.why_unbillable(key, pm[1], entry)
    ours_by_genai = {v: k for k, v in ps.GENAI_PROVIDERS.items()}
    for gprov in genai_providers:
        provider = ours_by_genai.get(gprov.id)
        if provider is None:
            continue
        for m in gprov.models:
            models.setdefault((provider, m.id.lower()), {"provider": provider, "model": m.id})

    cases = []
    for (provider, _), info in sorted(models.items()):
        # A model with a request fee by search context size (Perplexity) is priced at
        # the `high` size, the fee genai-prices lists.
        fees = any("request" in s for s in info.get("litellm", {}).get("variants", {}).values())
        variant = "high" if fees else None
        for shape in ps.SHAPES:
            lit = ps.litellm_cost(info["litellm"], shape, variant) if "litellm" in info else None
            gen = ps.genai_cost(gp, provider, info["model"], shape, at)
            cases.append({"info": info, "shape": shape, "litellm": lit, "genai": gen, "variant": variant})

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for c in cases:
            name, inp, cr, cw, out, batch = c["shape"]
            f.write(json.dumps({
                "provider": c["info"]["provider"], "model": c["info"]["model"],
                "at": at.isoformat().replace("+00:00", "Z"),
                "serviceTier": "batch" if batch else "standard",
                "input": inp, "cacheRead": cr, "cacheWrite": cw, "output": out,
                **({"variant": c["variant"]} if c["variant"] else {}),
            }) + "\n")
        path = f.name
    answers = subprocess.run(
        [args.aispend, "prices", "quote", path], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    Path(path).unlink()
    assert len(answers) == len(cases), (len(answers), len(cases))
    for c, line in zip(cases, answers):
        a = json.loads(line)
        c["aispend"] = Decimal(a["costUsd"]) if a.get("costUsd") is not None else None
        c["aispend_model"] = a.get("model")

    if args.dump:
        with open(args.dump, "w") as f:
            for c in cases:
                f.write(json.dumps({
                    "provider": c["info"]["provider"], "model": c["info"]["model"],
                    "shape": c["shape"][0], "litellm": str(c["litellm"]), "genai": str(c["genai"]),
                    "aispend": str(c["aispend"]), "priced_as": c["aispend_model"],
                }) + "\n")

    # Tallies per provider.
    def tally():
        return collections.Counter()

    vs = {src: collections.defaultdict(tally) for src in ["litellm", "genai", "both"]}
    differences = []
    for c in cases:
        p = c["info"]["provider"]
        lit, gen, ours = c["litellm"], c["genai"], c["aispend"]
        both = lit if lit is not None and gen is not None and close(lit, gen) else None
        for src, ref in [("litellm", lit), ("genai", gen), ("both", both)]:
            if ref is None:
                continue
            t = vs[src][p]
            t["cases"] += 1
            if ours is None:
                t["units" if c["info"].get("unbillable") and src != "genai" else "unpriced"] += 1
            elif close(ours, ref):
                t["agree"] += 1
            else:
                t["differ"] += 1
                if src == "both":
                    differences.append(c)

    def row(t):
        n = t["cases"]
        pct = f"{Decimal(100 * t['agree']) / n:.1f} %" if n else "-"
        return n, t["agree"], t["unpriced"], t["units"], t["differ"], pct

    lines = []
    out = lines.append
    out("# Pricing accuracy")
    out("")
    out(f"Generated by `scripts/check-catalog` (part of `scripts/test`) from the built-in catalog "
        f"against LiteLLM {llv} and genai-prices {gpv} (read {read_on}; wheels from PyPI, cached "
        f"under `target/price-sources/`). Every model the two sources list for {', '.join(PROVIDERS)} "
        f"(token-priced LiteLLM entries and every genai-prices model; {len(models)} models) is priced "
        f"in five usage shapes:")
    out("")
    for name, inp, cr, cw, o, batch in ps.SHAPES:
        out(f"- **{name}**: {inp:,} input, {cr:,} cache read, {cw:,} cache write, {o:,} output"
            + (", batch tier" if batch else ""))
    out("")
    out("LiteLLM's cost is read from its map (a class without a rate bills as input; `_above_<N>k_tokens` "
        "rates replace the standard ones above the threshold; batch uses `_batches` rates or half). "
        "genai-prices' cost is its own engine (`genai_prices.calc_price`; batch through its "
        "`processing: batch` price variants). aispend's is `aispend prices quote`: the server's matcher "
        "and cost function over the built-in catalog. Costs agree within 0.5 %. *Units* counts cases "
        "aispend leaves unpriced on purpose because the model is billed in units the ledger does not "
        "record (per second, per character, per pixel, video tokens). A model with a request fee "
        "by search context size (Perplexity) is priced at the `high` size, the fee genai-prices "
        "lists. Audio and image tokens, generated images and flat web-search fees are units "
        "of the ledger with rates of their own; these shapes are text, so they check the text rates "
        "of those models too.")
    out("")
    out("Most rows are generated from LiteLLM's map, so agreement with LiteLLM is largely by "
        "construction: what it checks is that the server reads each row the way LiteLLM's rates "
        "mean (matcher, tiers, long context, cache classes). genai-prices is the independent "
        "check: another data set and another engine. Where the two sources disagree, the row "
        "follows LiteLLM unless a hand-made row (checked against the provider's page) says "
        "otherwise; the generated row's `note` records the disagreement.")
    out("")
    total = collections.Counter()
    for t in vs["both"].values():
        total.update(t)
    n = total["cases"]
    rate = Decimal(total["agree"]) / n if n else Decimal(0)
    rate_billable = Decimal(total["agree"]) / (n - total["units"]) if n - total["units"] else Decimal(0)
    out(f"**Where LiteLLM and genai-prices agree with each other ({n:,} cases), aispend prices "
        f"{total['agree']:,} identically ({rate * 100:.1f} %; target 98 %); {total['unpriced']:,} unpriced, "
        f"{total['units']:,} unpriced for units, {total['differ']:,} differ. Leaving out the cases billed "
        f"in units aispend does not record: {rate_billable * 100:.1f} %.**")
    out("")
    for src, title in [("both", "Cases where LiteLLM and genai-prices agree"),
                       ("litellm", f"aispend against LiteLLM {llv}"),
                       ("genai", f"aispend against genai-prices {gpv}")]:
        out(f"## {title}")
        out("")
        out("| provider | cases | agree | unpriced | units | differ | agree % |")
        out("|---|---:|---:|---:|---:|---:|---:|")
        sums = collections.Counter()
        for p in PROVIDERS:
            t = vs[src].get(p, collections.Counter())
            sums.update(t)
            out("| " + " | ".join(str(x) for x in (p, *row(t))) + " |")
        out("| **all** | " + " | ".join(f"**{x}**" for x in row(sums)) + " |")
        out("")
    out("## Differences where the two sources agree")
    out("")
    if not differences:
        out("None.")
    else:
        out("| provider | model | shape | priced as | aispend | both sources |")
        out("|---|---|---|---|---:|---:|")
        for c in differences:
            out(f"| {c['info']['provider']} | `{c['info']['model']}` | {c['shape'][0]} | "
                f"`{c['aispend_model']}` | {ps.fmt(c['aispend'].quantize(Decimal('1e-9')))} | "
                f"{ps.fmt(c['litellm'].quantize(Decimal('1e-9')))} |")
    out("")
    for src, title in [("litellm", f"Differences from LiteLLM {llv}"), ("genai", f"Differences from genai-prices {gpv}")]:
        by_model = collections.OrderedDict()
        for c in cases:
            ref, ours = c[src], c["aispend"]
            if ref is None or ours is None or close(ours, ref):
                continue
            key = (c["info"]["provider"], c["info"]["model"], c["aispend_model"])
            by_model.setdefault(key, []).append(
                f"{c['shape'][0]} {ps.fmt(ours.quantize(Decimal('1e-9')))} vs {ps.fmt(ref.quantize(Decimal('1e-9')))}")
        out(f"## {title}")
        out("")
        out(f"{len(by_model)} models; aispend's cost vs the source's, per shape.")
        out("")
        if by_model:
            out("<details><summary>the list</summary>")
            out("")
            out("| provider | model | priced as | shapes (aispend vs source, USD) |")
            out("|---|---|---|---|")
            for (p, m, a), shapes in by_model.items():
                out(f"| {p} | `{m}` | `{a}` | {'; '.join(shapes)} |")
            out("")
            out("</details>")
        out("")
    unpriced = [c for c in cases if c["aispend"] is None and c["litellm"] is not None
                and c["genai"] is not None and close(c["litellm"], c["genai"])]
    out("## Unpriced where the two sources agree")
    out("")
    if not unpriced:
        out("None.")
    else:
        seen = collections.OrderedDict()
        for c in unpriced:
            seen.setdefault((c["info"]["provider"], c["info"]["model"]), (c["info"].get("unbillable") or "no catalog row"))
        out("| provider | model | why |")
        out("|---|---|---|")
        for (p, m), why in seen.items():
            out(f"| {p} | `{m}` | {why} |")
    out("")
    report = "\n".join(lines)
    if args.write:
        Path(args.write).write_text(report)
    print(f"where LiteLLM {llv} and genai-prices {gpv} agree ({n} cases): aispend agrees on "
          f"{total['agree']} ({rate * 100:.1f} %), unpriced {total['unpriced']}, unpriced for units "
          f"{total['units']}, differs on {total['differ']}")
    for p in PROVIDERS:
        t = vs["both"].get(p, collections.Counter())
        print(f"  {p:<11} cases {t['cases']:5}  agree {t['agree']:5}  unpriced {t['unpriced']:4}  "
              f"units {t['units']:4}  differ {t['differ']:4}")
    print(f"leaving out the {total['units']} cases billed in units aispend does not record: "
          f"{rate_billable * 100:.1f} %")
    # The gate: the cases aispend can bill. A model billed in audio, images or
    # per-request fees stays unpriced on purpose until the ledger records those units.
    if rate_billable < TARGET:
        print(f"FAIL: {rate_billable * 100:.1f} % is below the {TARGET * 100:.0f} % target")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
