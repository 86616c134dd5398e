"""The two public price sources aispend's built-in catalog is generated from and checked
against, fetched from PyPI as wheels and cached under target/price-sources/:

- LiteLLM's price map (`litellm/model_prices_and_context_window_backup.json` in the
  `litellm` wheel): per-token USD rates per model key;
- pydantic's genai-prices data (`genai_prices/data.py` in the `genai-prices` wheel),
  read through its own pricing engine (`genai_prices.calc_price`).

Also the rules that turn a LiteLLM entry into an aispend rate card, shared by
scripts/generate-catalog and scripts/check-catalog so both read the map the same way
(the server's `domain::price::litellm` module reads it the same way too).
"""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
import types
import zipfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "target" / "price-sources"


def _wheel(package: str, version: str) -> Path:
    dest = CACHE / f"{package}-{version}"
    found = glob.glob(str(dest / "*.whl"))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", str(dest), f"{package}=={version}"],
            check=True,
        )
        found = glob.glob(str(dest / "*.whl"))
    return Path(found[0])


def litellm_map(version: str) -> dict:
    """LiteLLM's price map at a release, keyed by model key."""
    out = CACHE / f"litellm-{version}" / "model_prices_and_context_window.json"
    if not out.exists() or out.stat().st_size == 0:
        wheel = _wheel("litellm", version)
        with zipfile.ZipFile(wheel) as z:
            data = z.read("litellm/model_prices_and_context_window_backup.json")
        out.write_bytes(data)
    return json.loads(out.read_text())


def genai_prices(version: str):
    """The `genai_prices` package at a release, imported from its wheel. Its only
    import-time dependency we do not need (`httpx2`, used to fetch updates) is
    replaced by a stub: nothing here downloads prices at run time."""
    root = CACHE / f"genai-prices-{version}" / "unpacked"
    if not (root / "genai_prices" / "data.py").exists():
        wheel = _wheel("genai-prices", version)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root)
    try:
        import pydantic  # noqa: F401
    except ImportError:
        # genai-prices is built on pydantic; on a machine without it, install it (and
        # only it) next to the wheels.
        deps = CACHE / "deps"
        if not (deps / "pydantic").exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps),
                 "pydantic>=2.10"],
                check=True,
            )
        sys.path.insert(0, str(deps))
    if "httpx2" not in sys.modules:
        stub = types.ModuleType("httpx2")
        stub.Timeout = lambda **_: None  # type: ignore[attr-defined]
        sys.modules["httpx2"] = stub
    sys.path.insert(0, str(root))
    import genai_prices  # noqa: E402

    return genai_prices


# ---------------------------------------------------------------------------------------
# LiteLLM entries -> aispend rate cards

# LiteLLM provider -> aispend provider, for the providers the catalog covers.
LITELLM_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai-language-models": "google",
    "vertex_ai-anthropic_models": "google",
    "vertex_ai": "google",
    "vertex_ai-mistral_models": "google",
    "vertex_ai-llama_models": "google",
    "vertex_ai-deepseek_models": "google",
    "vertex_ai-qwen_models": "google",
    "vertex_ai-openai_models": "google",
    "vertex_ai-ai21_models": "google",
    "vertex_ai-minimax_models": "google",
    "vertex_ai-moonshot_models": "google",
    "vertex_ai-zai_models": "google",
    "vertex_ai-embedding-models": "google",
    "vertex_ai-text-models": "google",
    "vertex_ai-chat-models": "google",
    "vertex_ai-code-text-models": "google",
    "vertex_ai-code-chat-models": "google",
    "groq": "groq",
    "mistral": "mistral",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "xai": "xai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "azure": "azure",
    "azure_text": "azure",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "openrouter": "openrouter",
}

# When two LiteLLM keys give the same provider and model, the first provider here wins
# (the Gemini API's list before Vertex AI's, the Converse API before the older one).
PROVIDER_PREFERENCE = [
    "openai", "anthropic", "gemini", "vertex_ai-language-models", "vertex_ai",
    "vertex_ai-anthropic_models", "bedrock_converse", "bedrock", "azure", "azure_text",
    "text-completion-openai", "cohere_chat", "cohere", "codestral", "mistral",
    "text-completion-codestral",
]

# Key prefixes LiteLLM uses for routing, removed to get the model id the provider's API
# takes (`gemini/gemini-2.5-pro` -> `gemini-2.5-pro`, `azure/gpt-4o` -> `gpt-4o`,
# `openrouter/anthropic/claude-sonnet-4.5` -> `anthropic/claude-sonnet-4.5`).
KEY_PREFIXES = {
    "openai", "text-completion-openai", "anthropic", "gemini", "vertex_ai", "groq",
    "mistral", "codestral", "text-completion-codestral", "deepseek", "perplexity", "xai",
    "cohere", "cohere_chat", "together_ai", "fireworks_ai", "azure", "azure_text", "bedrock",
    "bedrock_converse", "openrouter",
}

TOKEN_MODES = {"chat", "completion", "responses", "embedding", "realtime", "image_generation",
               "video_generation"}


def keys_in_order(lmap: dict) -> list[str]:
    """LiteLLM keys in the order the generator and the check read them: when two keys
    give the same provider and model, the first one is used."""
    rank = {p: i for i, p in enumerate(PROVIDER_PREFERENCE)}
    return sorted(
        (k for k, e in lmap.items() if isinstance(e, dict)),
        key=lambda k: (rank.get(lmap[k].get("litellm_provider"), len(rank)), k),
    )

CLASSES = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "reasoning": "output_cost_per_reasoning_token",
    "audio_input": "input_cost_per_audio_token",
    "audio_output": "output_cost_per_audio_token",
    "image_input": "input_cost_per_image_token",
    "image_output": "output_cost_per_image_token",
}
# Units LiteLLM prices per unit, not per token: stored as they are (USD per unit).
PER_UNIT_CLASSES = {
    "image": "output_cost_per_image",
    "video_second": "output_cost_per_video_per_second",
}
TIERS = {"standard": "", "batch": "_batches", "priority": "_priority", "flex": "_flex"}

# Rates for units aispend's ledger does not bill (per second, character, pixel, page,
# query, per-image input). A model billed in them on every call cannot be priced
# correctly, so it gets no generated row. Audio and image tokens, generated images and
# uniform web-search fees are units of the ledger (issue 12, part 4).
UNBILLABLE_ALWAYS = re.compile(
    r"^(input_cost_per_(second|character|pixel|request|query|text_message)"
    r"|output_cost_per_(character|video_token|pixel)"
    r"|cost_per_second|ocr_cost|annotation_cost"
    r"|input_cost_per_audio_per_second|input_cost_per_video_per_second)"
)
# Words in a model id that name a model billed mostly in units the ledger lacks.
UNBILLABLE_WORDS = {"tts", "transcribe", "search", "live", "speech"}


def model_words(model: str) -> list[str]:
    return [w for w in re.split(r"[-_./:@]", model.lower()) if w]


def per_million(value) -> Decimal:
    return (Decimal(repr(value)) * 1_000_000).normalize()


def fmt(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


def web_search_rate(entry: dict):
    """USD per web-search call: `search_context_cost_per_query` when it is the same at
    every context size (Anthropic's and Gemini's fee); Perplexity's is a fee per request
    by search context size, read as variants (the server reads it the same way)."""
    if entry.get("litellm_provider") == "perplexity":
        return None
    sizes = entry.get("search_context_cost_per_query")
    if not isinstance(sizes, dict):
        return None
    rates = {Decimal(repr(v)).normalize() for v in sizes.values()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return rates.pop() if len(rates) == 1 else None


def _rate_set(entry: dict, suffix: str) -> dict[str, Decimal]:
    out = {}
    for cls, field in CLASSES.items():
        v = entry.get(field + suffix)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[cls] = per_million(v)
    for cls, field in PER_UNIT_CLASSES.items():
        v = entry.get(field + suffix)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[cls] = Decimal(repr(v)).normalize()
    if not suffix:
        ws = web_search_rate(entry)
        if ws is not None:
            out["web_search"] = ws
        # A video model's `output_cost_per_second` is per second of generated video at
        # every resolution it lists no rate of its own for (`output_cost_per_second_4k`,
        # a variant); for other modes it is per second of audio.
        per_second = entry.get("output_cost_per_second")
        if (entry.get("mode") == "video_generation" and "video_second" not in out
                and isinstance(per_second, (int, float)) and not isinstance(per_second, bool)):
            out["video_second"] = Decimal(repr(per_second)).normalize()
    return out


def _long_context(entry: dict):
    """`*_above_<N>k_tokens` rates (the server reads the same fields the same way)."""
    thresholds = set()
    rates = {}
    for key, value in entry.items():
        head, sep, tail = key.partition("_above_")
        if not sep or not tail.endswith("k_tokens"):
            continue
        k = tail[: -len("k_tokens")]
        if not k.isdigit():
            continue
        cls = next((c for c, f in CLASSES.items() if f == head), None)
        unit = next((c for c, f in PER_UNIT_CLASSES.items() if f == head), None)
        if (cls or unit) is None or not isinstance(value, (int, float)):
            continue
        thresholds.add(int(k) * 1000)
        if cls:
            rates[cls] = per_million(value)
        else:
            rates[unit] = Decimal(repr(value)).normalize()
    if not thresholds:
        return None
    if len(thresholds) > 1:
        raise ValueError(f"several long-context thresholds {sorted(thresholds)}")
    return {"threshold": thresholds.pop(), **rates}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def variants(entry: dict) -> dict[str, dict[str, Decimal]]:
    """Per-unit rates that depend on a pricing variant (the server reads the same
    fields the same way): Perplexity's request fee by search context size, a video
    model's `output_cost_per_second_<resolution>`, `output_cost_per_image_<resolution>`."""
    out: dict[str, dict[str, Decimal]] = {}

    def put(name: str, cls: str, v) -> None:
        if _number(v):
            out.setdefault(name.lower(), {})[cls] = Decimal(repr(v)).normalize()

    sizes = entry.get("search_context_cost_per_query")
    if entry.get("litellm_provider") == "perplexity" and isinstance(sizes, dict):
        for k, v in sizes.items():
            if k.startswith("search_context_size_"):
                put(k[len("search_context_size_"):], "request", v)
    for k, v in entry.items():
        if k.startswith("output_cost_per_second_") and entry.get("mode") == "video_generation":
            put(k[len("output_cost_per_second_"):], "video_second", v)
        elif k.startswith("output_cost_per_image_") and "token" not in k:
            put(k[len("output_cost_per_image_"):], "image", v)
    return dict(sorted(out.items()))


def sized_image_key(key: str, litellm_provider: str):
    """(model, variant, pixels) for a LiteLLM key of one image size of a model
    (`hd/1024-x-1792/dall-e-3` -> `dall-e-3`, `hd/1024x1792`), else None."""
    parts = key.split("/")
    if len(parts) > 2 and parts[0] == litellm_provider:
        parts = parts[1:]
    *front, model = parts
    if len(front) == 1:
        size, quality = front[0], None
    elif len(front) == 2:
        quality, size = front
    else:
        return None
    w, sep, h = size.partition("-x-")
    if not sep or not w.isdigit() or not h.isdigit():
        return None
    variant = f"{w}x{h}" if quality is None else f"{quality.lower()}/{w}x{h}"
    return model.lower(), variant, int(w) * int(h)


def sized_images(lmap: dict) -> dict[tuple[str, str], dict[str, dict[str, Decimal]]]:
    """Per-size image rates by (LiteLLM provider, model): USD per image from
    `output_cost_per_image`, else `input_cost_per_image` (where LiteLLM's sized rows put
    it), else `input_cost_per_pixel` times the pixels rounded to a millionth of a
    dollar (the server reads them the same way)."""
    out: dict[tuple[str, str], dict[str, dict[str, Decimal]]] = {}
    for key, entry in lmap.items():
        if not isinstance(entry, dict) or entry.get("mode") != "image_generation":
            continue
        lp = entry.get("litellm_provider") or ""
        found = sized_image_key(key, lp)
        if found is None:
            continue
        model, variant, pixels = found
        rate = None
        for f in ("output_cost_per_image", "input_cost_per_image"):
            if _number(entry.get(f)) and entry[f]:
                rate = Decimal(repr(entry[f])).normalize()
                break
        if rate is None and _number(entry.get("input_cost_per_pixel")):
            rate = (Decimal(repr(entry["input_cost_per_pixel"])) * pixels).quantize(Decimal("1e-6")).normalize()
        if rate:  # a zero per-pixel rate is no price
            out.setdefault((lp, model), {})[variant] = {"image": rate}
    return out


def card_from_entry(entry: dict) -> dict:
    """A rate card (per-million decimals) from one LiteLLM entry; ValueError when the
    entry has no input rate or several long-context thresholds."""
    standard = _rate_set(entry, "")
    found = variants(entry)
    # A model billed only per image or per second of video needs no token rate (the
    # server reads LiteLLM the same way).
    per_unit_only = any("image" in s or "video_second" in s for s in [standard, *found.values()])
    if "input" not in standard and not per_unit_only:
        raise ValueError("no input_cost_per_token")
    if entry.get("mode") == "embedding":
        # An embedding returns no billed output (an output count without a rate would
        # leave the event unpriced; the server reads LiteLLM the same way).
        standard.setdefault("output", Decimal(0))
    card = {"standard": standard}
    for tier, suffix in TIERS.items():
        if suffix:
            s = _rate_set(entry, suffix)
            if s:
                card[tier] = s
    lc = _long_context(entry)
    if lc:
        card["long_context"] = lc
    if found:
        card["variants"] = found
    return card


def why_unbillable(key: str, model: str, entry: dict) -> str | None:
    """Why aispend cannot bill this LiteLLM entry correctly, or None when it can."""
    mode = entry.get("mode")
    if mode not in TOKEN_MODES:
        return f"mode `{mode}` is not billed per token"
    for field, value in entry.items():
        if isinstance(value, (int, float)) and value and UNBILLABLE_ALWAYS.match(field):
            return f"billed in a unit aispend does not record (`{field}`)"
    if mode == "video_generation" and _number(entry.get("input_cost_per_image")) and entry["input_cost_per_image"]:
        return "billed in a unit aispend does not record (`input_cost_per_image`, an input image of a video)"
    if mode != "video_generation" and entry.get("output_cost_per_second"):
        return "billed in a unit aispend does not record (`output_cost_per_second`)"
    words = set(model_words(model)) & UNBILLABLE_WORDS
    if words:
        return f"an `{sorted(words)[0]}` model, billed in units aispend does not record"
    if sized_image_key(key, entry.get("litellm_provider") or "") is not None:
        return "one image size of a model (a variant of the model's row)"
    if any("-x-" in part for part in key.split("/")):
        return "priced by image size and a setting aispend does not record (steps)"
    try:
        card_from_entry(entry)
    except ValueError as e:
        return str(e)
    return None


def provider_and_model(key: str, entry: dict):
    """(aispend provider, model id) for a LiteLLM key, or None for other providers."""
    lp = entry.get("litellm_provider")
    provider = LITELLM_PROVIDERS.get(lp or "")
    if provider is None:
        return None
    model = key
    head, sep, rest = key.partition("/")
    if sep and head in KEY_PREFIXES and rest:
        model = rest
    return provider, model


# ---------------------------------------------------------------------------------------
# Costs of usage shapes, the way each source bills them

# aispend provider -> genai-prices provider id.
GENAI_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "google": "google", "groq": "groq",
    "mistral": "mistral", "deepseek": "deepseek", "perplexity": "perplexity", "xai": "x-ai",
    "cohere": "cohere", "together": "together", "fireworks": "fireworks", "azure": "azure",
    "bedrock": "aws", "openrouter": "openrouter",
}

# Usage shapes: (name, input, cache_read, cache_write, output, batch). `input` is uncached
# input; the long-context shape has a 300k-token prompt (above every threshold in use).
SHAPES = [
    ("plain", 10_000, 0, 0, 2_000, False),
    ("cache read", 2_000, 20_000, 0, 1_000, False),
    ("cache write", 2_000, 0, 20_000, 1_000, False),
    ("long context", 300_000, 0, 0, 4_000, False),
    ("batch", 10_000, 0, 0, 2_000, True),
]


def litellm_cost(card: dict, shape, variant: str | None = None) -> Decimal:
    """Cost of a shape from a LiteLLM entry's rates as LiteLLM lists them: a class with
    no rate bills as input (cache) or output (reasoning); above a `_above_<N>k_tokens`
    threshold the listed rates replace standard ones; batch uses `_batches` rates where
    listed, half the rate otherwise; plus the request fee of `variant` (Perplexity's
    search context size) where the entry lists one."""
    _, inp, cr, cw, out, batch = shape
    std = card["standard"]
    lc = card.get("long_context")
    long = lc is not None and inp + cr + cw > lc["threshold"]

    def rate(cls: str) -> Decimal:
        base = {**std, **({k: v for k, v in lc.items() if k != "threshold"} if long else {})}
        fallback = {"cache_read": "input", "cache_write": "input"}
        if batch and not long and cls in card.get("batch", {}):
            return card["batch"][cls]
        r = base.get(cls)
        if r is None:
            r = rate(fallback[cls]) if cls in fallback else Decimal(0)
            return r
        return r / 2 if batch else r

    total = inp * rate("input") + cr * rate("cache_read") + cw * rate("cache_write") + out * rate("output")
    fee = card.get("variants", {}).get(variant, {}).get("request", Decimal(0)) if variant else Decimal(0)
    return total / 1_000_000 + fee


def reference_instant(read_on):
    """The instant every genai-prices price is read at: 08:00 UTC of the day the sources
    were read. genai-prices prices some models by time of day (DeepSeek discounts its
    off-peak hours: V4 is at peak 01:00-04:00 and 06:00-10:00 UTC, V3 outside
    16:30-00:30 UTC), which aispend does not model yet and LiteLLM does not list; a
    fixed instant inside every peak window compares like with like and keeps the
    catalog and the check reproducible whatever the hour they run."""
    import datetime as dt

    return dt.datetime.combine(dt.date.fromisoformat(str(read_on)), dt.time(8), dt.timezone.utc)


def genai_cost(gp, provider: str, model: str, shape, at):
    """Cost of a shape by genai-prices' own engine at `at`, or None when it has no price."""
    name, inp, cr, cw, out, batch = shape
    pid = GENAI_PROVIDERS.get(provider)
    if pid is None:
        return None
    usage = gp.Usage(
        input_tokens=inp + cr + cw,
        cache_read_tokens=cr,
        cache_write_tokens=cw,
        output_tokens=out,
    )
    try:
        r = gp.calc_price(
            usage, model, provider_id=pid, genai_request_timestamp=at,
            price_context={"processing": "batch"} if batch else None,
        )
    except Exception:  # noqa: BLE001 - "no price" in any of its forms
        return None
    return Decimal(r.total_price)


# ---------------------------------------------------------------------------------------
# genai-prices models -> aispend rate cards (for models LiteLLM does not list)

GENAI_CLASSES = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning",
    "input_audio_mtok": "audio_input",
    "output_audio_mtok": "audio_output",
    "input_image_mtok": "image_input",
    "output_image_mtok": "image_output",
}
# Per thousand calls in genai-prices, per call in aispend.
GENAI_PER_K = {
    "web_searches_kcount": "web_search",
    "requests_kcount": "request",
}
# Optional inputs and tools aispend has no class for: a text call never pays them.
GENAI_OPTIONAL = {
    "input_video_mtok", "cache_audio_read_mtok", "cache_image_read_mtok",
    "storage_searches_kcount",
}


def genai_card(gp, model, at):
    """A rate card from a genai-prices model's prices in effect at `at`; ValueError when
    aispend cannot bill it correctly."""
    from genai_prices import types as t

    prices = model.get_prices(at)
    card: dict = {"standard": {}}
    lc: dict = {}
    for key, v in prices.__dict__.items():
        if v is None or key.startswith("_"):
            continue
        if key in GENAI_OPTIONAL:
            continue
        if key in GENAI_PER_K and not isinstance(v, t.TieredPrices):
            card["standard"][GENAI_PER_K[key]] = (Decimal(v) / 1000).normalize()
            continue
        cls = GENAI_CLASSES.get(key)
        if cls is None:
            if v == 0:
                continue
            raise ValueError(f"billed in a unit aispend does not record (`{key}`)")
        if isinstance(v, t.TieredPrices):
            if len(v.tiers) != 1:
                raise ValueError("several long-context thresholds")
            tier = v.tiers[0]
            if lc.setdefault("threshold", int(tier.start)) != int(tier.start):
                raise ValueError("several long-context thresholds")
            card["standard"][cls] = Decimal(v.base).normalize()
            lc[cls] = Decimal(tier.price).normalize()
        else:
            card["standard"][cls] = Decimal(v).normalize()
    if "input" not in card["standard"]:
        raise ValueError("no input price")
    if lc:
        card["long_context"] = lc
    for variant in model.price_variants or ():
        if variant.constraint is not None:
            continue
        tier = {
            ("processing", "batch"): "batch",
            ("service_tier", "priority"): "priority",
            ("service_tier", "flex"): "flex",
        }.get(next(iter(variant.when.items())) if len(variant.when) == 1 else None)
        if tier is None:
            continue
        s = {}
        for key, v in variant.prices.__dict__.items():
            cls = GENAI_CLASSES.get(key)
            if cls and v is not None:
                if isinstance(v, t.TieredPrices):
                    v = v.base  # above the threshold aispend halves (batch) the long-context rates
                s[cls] = Decimal(v).normalize()
        if s:
            card[tier] = s
    return card


def genai_ids(model) -> list[str]:
    """The exact ids a genai-prices model matches (its id first), when its match rule is
    a list of exact names; other rules (prefix, contains, regex) give only its id."""
    from genai_prices import types as t

    ids = [model.id]

    def walk(clause):
        if isinstance(clause, t.ClauseEquals):
            ids.append(clause.equals)
        elif isinstance(clause, t.ClauseOr):
            for c in clause.or_:
                walk(c)

    walk(model.match)
    own = set(model_words(model.id))
    seen, out = set(), []
    for i in ids:
        # An alias that adds a word other than a date or version (`-audio-preview` on
        # OpenRouter's gpt-4o) is another model, whatever a source lumps together.
        extra = set(model_words(i)) - own
        if any(not (w.isdigit() or w in {"latest"} or re.fullmatch(r"v\d+", w)) for w in extra):
            continue
        if i.lower() not in seen:
            seen.add(i.lower())
            out.append(i)
    return out


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def strip_one_suffix(model: str) -> str | None:
    """The server's `model_name::strip_one_suffix`, for the generator: which names a row
    of another model already prices by its date/version suffix rule."""
    if model.startswith("ft:"):
        end = model[3:].find(":")
        if end > 0:
            return model[: 3 + end]
    if "@" in model:
        head, _, tail = model.rpartition("@")
        return head if head and (_digits(tail) or tail == "latest") else None
    head, sep, tail = model.rpartition("-")
    if not sep or not head:
        return None
    if len(tail) == 2 and _digits(tail):
        head2, sep2, mm = head.rpartition("-")
        if sep2 and len(mm) == 2 and _digits(mm):
            head3, sep3, yyyy = head2.rpartition("-")
            if sep3 and len(yyyy) == 4 and _digits(yyyy) and head3:
                return head3
            if head2:
                return head2
        return None
    revision = False
    if tail.startswith("v") and ":" in tail:
        major, _, minor = tail[1:].partition(":")
        revision = _digits(major) and _digits(minor)
    if (_digits(tail) and len(tail) in (3, 4, 8)) or revision or tail == "latest":
        return head
    return None


def candidates(model: str):
    cur = model.lower()
    while cur is not None:
        yield cur
        cur = strip_one_suffix(cur)


def caveats(entry: dict, card: dict) -> list[str]:
    """What a generated row from this LiteLLM entry cannot bill exactly, said in its note."""
    out = []
    if any(isinstance(v, (int, float)) and v and f.startswith("input_cost_per_video")
           for f, v in entry.items()):
        out.append(
            "video input has its own rate at the provider; aispend bills it as text input"
        )
    cached = sorted({
        m for f, v in entry.items()
        if isinstance(v, (int, float)) and v
        for m in ("audio", "image")
        if f.startswith(f"cache_read_input_{m}") or f.startswith(f"cache_creation_input_{m}")
    })
    if cached:
        out.append(
            f"cached {'/'.join(cached)} tokens have their own rate at the provider; aispend "
            "bills every cached token at the text cache rate"
        )
    sizes = entry.get("search_context_cost_per_query")
    if (isinstance(sizes, dict) and "web_search" not in card["standard"]
            and entry.get("litellm_provider") != "perplexity"):
        out.append(
            "the web-search fee differs by search context size, which aispend reads as a "
            "pricing variant only for Perplexity's request fee: web searches are unpriced "
            "under this row"
        )
    lc = card.get("long_context")
    if lc:
        t = lc["threshold"] // 1000
        for tier in ("priority", "flex"):
            for cls, field in CLASSES.items():
                v = entry.get(f"{field}_above_{t}k_tokens_{tier}")
                if isinstance(v, (int, float)) and per_million(v) != lc.get(cls, card["standard"].get(cls)):
                    out.append(
                        f"{tier} above {t}k tokens bills at the standard long-context rates "
                        f"(LiteLLM lists other {tier} rates there)"
                    )
                    break
            else:
                continue
    if any(f.startswith("cache_creation_input_token_cost_above_12hr") for f in entry):
        out.append("12-hour cache writes have no class of their own: they bill as 1-hour writes")
    return out
