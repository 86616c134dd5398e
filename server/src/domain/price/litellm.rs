//! Import of LiteLLM's public price map (`model_prices_and_context_window.json`).
//!
//! LiteLLM lists per-token USD rates as JSON numbers; aispend stores per-million decimal
//! strings. Each number is read from its shortest decimal form (the way it is written
//! in the file) and multiplied by one million exactly, so `1.875e-08` becomes `0.01875`.

use super::rates::{LongContext, RateCard, RateSet, TokenClass};
use super::variant::Variant;
use super::{ImportReport, MatchRule, PriceDraft, PriceSource, RawPrice};
use crate::domain::error::{Error, Result};
use crate::domain::provider::Provider;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

/// LiteLLM field name for each of our classes that LiteLLM lists as one number
/// (per token, or per image for [`TokenClass::Image`]); `suffix` is `""`,
/// `_batches`, `_priority` or `_flex`. Web searches come from
/// `search_context_cost_per_query` ([`web_search_rate`]); a video model's
/// `output_cost_per_second` is per second of video too (in `rate_set`); Perplexity's
/// request fee by search context size, video by resolution and images by size are
/// variants ([`variants`], [`sized_images`]).
fn field(class: TokenClass, suffix: &str) -> Option<String> {
    let base = match class {
        TokenClass::Input => "input_cost_per_token",
        TokenClass::Output => "output_cost_per_token",
        TokenClass::CacheRead => "cache_read_input_token_cost",
        TokenClass::CacheWrite => "cache_creation_input_token_cost",
        TokenClass::CacheWrite1h => "cache_creation_input_token_cost_above_1hr",
        TokenClass::Reasoning => "output_cost_per_reasoning_token",
        TokenClass::AudioInput => "input_cost_per_audio_token",
        TokenClass::AudioOutput => "output_cost_per_audio_token",
        TokenClass::ImageInput => "input_cost_per_image_token",
        TokenClass::ImageOutput => "output_cost_per_image_token",
        TokenClass::Image => "output_cost_per_image",
        TokenClass::VideoSecond => "output_cost_per_video_per_second",
        TokenClass::WebSearch | TokenClass::Request => return None,
    };
    Some(format!("{base}{suffix}"))
}

/// A JSON number as an exact decimal, times `scale` (one million for per-token rates).
fn decimal(value: &Value, scale: i64) -> Option<std::result::Result<Decimal, String>> {
    let number = value.as_number()?;
    let text = number.to_string();
    let parsed = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|e| format!("rate `{text}`: {e}"))
        .and_then(|d| {
            d.checked_mul(Decimal::from(scale))
                .ok_or_else(|| format!("rate `{text}` overflows"))
        })
        .map(|d| d.normalize());
    Some(parsed)
}

/// The rate for one class, read from its LiteLLM field.
fn class_rate(
    entry: &serde_json::Map<String, Value>,
    class: TokenClass,
    suffix: &str,
) -> std::result::Result<Option<Decimal>, String> {
    let Some(value) = field(class, suffix).and_then(|f| entry.get(&f)) else {
        return Ok(None);
    };
    let scale = if class.per_unit() { 1 } else { 1_000_000 };
    decimal(value, scale).transpose()
}

/// USD per web-search call: LiteLLM's `search_context_cost_per_query` when it is the
/// same at every search context size (Anthropic's and Gemini's per-search or
/// per-grounded-prompt fee). Perplexity's is a fee per request by search context
/// size: a variant ([`variants`]), not a web-search rate.
fn web_search_rate(
    entry: &serde_json::Map<String, Value>,
) -> std::result::Result<Option<Decimal>, String> {
    if entry.get("litellm_provider").and_then(Value::as_str) == Some("perplexity") {
        return Ok(None);
    }
    let Some(Value::Object(sizes)) = entry.get("search_context_cost_per_query") else {
        return Ok(None);
    };
    let mut rates = sizes.values().filter_map(|v| decimal(v, 1));
    let Some(first) = rates.next().transpose()? else {
        return Ok(None);
    };
    for rate in rates {
        if rate? != first {
            return Ok(None);
        }
    }
    Ok(Some(first))
}

fn rate_set(
    entry: &serde_json::Map<String, Value>,
    suffix: &str,
) -> std::result::Result<Option<RateSet>, String> {
    let mut set = RateSet::default();
    for class in TokenClass::ALL {
        if let Some(rate) = class_rate(entry, class, suffix)? {
            set.set(class, Some(rate));
        }
    }
    if suffix.is_empty() {
        set.web_search = web_search_rate(entry)?;
        // A video model's `output_cost_per_second` (for other modes it is per second
        // of audio) is per second of generated video: at every resolution the entry
        // does not list a rate of its own for (`output_cost_per_second_1080p`, read as
        // variants).
        if set.video_second.is_none()
            && entry.get("mode").and_then(Value::as_str) == Some("video_generation")
            && let Some(value) = entry.get("output_cost_per_second")
        {
            set.video_second = decimal(value, 1).transpose()?;
        }
    }
    Ok((!set.is_empty()).then_some(set))
}

/// Reads `*_above_<N>k_tokens` rates into a long-context set.
fn long_context(
    entry: &serde_json::Map<String, Value>,
) -> std::result::Result<Option<LongContext>, String> {
    let mut threshold = None;
    let mut set = RateSet::default();
    for (key, value) in entry {
        let Some((head, tail)) = key.split_once("_above_") else {
            continue;
        };
        let Some(k) = tail.strip_suffix("k_tokens") else {
            continue;
        };
        let Ok(k) = k.parse::<i64>() else { continue };
        let class = TokenClass::ALL
            .into_iter()
            .find(|c| field(*c, "").as_deref() == Some(head));
        let Some(class) = class else { continue };
        let tokens = k
            .checked_mul(1000)
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("`{key}`: a long-context threshold of {k}k tokens"))?;
        match threshold {
            None => threshold = Some(tokens),
            Some(t) if t != tokens => {
                return Err(format!(
                    "several long-context thresholds ({t} and {tokens})"
                ));
            }
            Some(_) => {}
        }
        let scale = if class.per_unit() { 1 } else { 1_000_000 };
        set.set(class, decimal(value, scale).transpose()?);
    }
    Ok(threshold.map(|threshold| LongContext {
        threshold,
        rates: set,
    }))
}

/// The per-unit rates that depend on a variant:
/// - Perplexity's `search_context_cost_per_query` by size, a fee per request
///   (`search_context_size_low` is variant `low`);
/// - `output_cost_per_second_<resolution>` of a video model, per second of video;
/// - `output_cost_per_image_<resolution>`, per generated image.
fn variants(
    entry: &serde_json::Map<String, Value>,
) -> std::result::Result<BTreeMap<String, RateSet>, String> {
    let mut out: BTreeMap<String, RateSet> = BTreeMap::new();
    let mut put =
        |name: &str, class: TokenClass, value: &Value| -> std::result::Result<(), String> {
            let Some(rate) = decimal(value, 1).transpose()? else {
                return Ok(());
            };
            let variant = Variant::parse(name).map_err(|e| format!("variant `{name}`: {e}"))?;
            out.entry(variant.as_str().to_owned())
                .or_default()
                .set(class, Some(rate));
            Ok(())
        };
    if entry.get("litellm_provider").and_then(Value::as_str) == Some("perplexity")
        && let Some(Value::Object(sizes)) = entry.get("search_context_cost_per_query")
    {
        for (key, value) in sizes {
            if let Some(size) = key.strip_prefix("search_context_size_") {
                put(size, TokenClass::Request, value)?;
            }
        }
    }
    for (key, value) in entry {
        if let Some(resolution) = key.strip_prefix("output_cost_per_second_")
            && entry.get("mode").and_then(Value::as_str) == Some("video_generation")
        {
            put(resolution, TokenClass::VideoSecond, value)?;
        } else if let Some(resolution) = key.strip_prefix("output_cost_per_image_")
            && !resolution.contains("token")
        {
            put(resolution, TokenClass::Image, value)?;
        }
    }
    Ok(out)
}

/// A LiteLLM key for one image size of a model (`hd/1024-x-1792/dall-e-3`,
/// `azure/low/1024-x-1024/gpt-image-1-mini`, `1024-x-1024/dall-e-2`): the model it is
/// a size of (without a provider prefix), the variant (`hd/1024x1792`), and the
/// image's width times height in pixels. The key may start with the entry's LiteLLM
/// provider. Keys with more parts after the size (`1024-x-1024/50-steps/…`) are not
/// image sizes of one model.
fn sized_image_key(key: &str, litellm_provider: &str) -> Option<(String, Variant, i64)> {
    let mut parts: Vec<&str> = key.split('/').collect();
    if parts.len() > 2 && parts[0] == litellm_provider {
        parts.remove(0);
    }
    let (model, front) = parts.split_last()?;
    let (size, quality) = match front {
        [size] => (*size, None),
        [quality, size] => (*size, Some(*quality)),
        _ => return None,
    };
    let (w, h) = size.split_once("-x-")?;
    let pixels = w.parse::<i64>().ok()?.checked_mul(h.parse::<i64>().ok()?)?;
    let size = format!("{w}x{h}");
    let variant = Variant::parse(&match quality {
        Some(q) => format!("{q}/{size}"),
        None => size,
    })
    .ok()?;
    Some((model.to_ascii_lowercase(), variant, pixels))
}

/// USD per generated image of a sized key: `output_cost_per_image`, else
/// `input_cost_per_image` (LiteLLM's sized rows put the image's price there), else
/// `input_cost_per_pixel` times the image's pixels, rounded to a millionth of a
/// dollar (LiteLLM stores the per-pixel rate rounded, so the product is never a
/// whole price).
fn sized_image_rate(
    entry: &serde_json::Map<String, Value>,
    pixels: i64,
) -> std::result::Result<Option<Decimal>, String> {
    for field in ["output_cost_per_image", "input_cost_per_image"] {
        if let Some(rate) = entry.get(field).and_then(|v| decimal(v, 1)).transpose()?
            && !rate.is_zero()
        {
            return Ok(Some(rate));
        }
    }
    let Some(per_pixel) = entry
        .get("input_cost_per_pixel")
        .and_then(|v| decimal(v, 1))
        .transpose()?
    else {
        return Ok(None);
    };
    // A zero per-pixel rate is no price.
    Ok(per_pixel
        .checked_mul(Decimal::from(pixels))
        .map(|d| d.round_dp(6).normalize())
        .filter(|d| !d.is_zero()))
}

/// Per-size image rates by (LiteLLM provider, model): the variants of that model.
type SizedImages = BTreeMap<(String, String), BTreeMap<String, RateSet>>;

/// The per-size image rates of a map, by the provider and model they are sizes of.
fn sized_images(entries: &serde_json::Map<String, Value>) -> SizedImages {
    let mut out = SizedImages::new();
    for (key, entry) in entries {
        let Some(obj) = entry.as_object() else {
            continue;
        };
        let Some(provider) = obj.get("litellm_provider").and_then(Value::as_str) else {
            continue;
        };
        let Some((model, variant, pixels)) = sized_image_key(key, provider) else {
            continue;
        };
        if obj.get("mode").and_then(Value::as_str) != Some("image_generation") {
            continue;
        }
        if let Ok(Some(rate)) = sized_image_rate(obj, pixels) {
            out.entry((provider.to_owned(), model)).or_default().insert(
                variant.as_str().to_owned(),
                RateSet {
                    image: Some(rate),
                    ..RateSet::default()
                },
            );
        }
    }
    out
}

/// Builds a rate card from one LiteLLM entry.
pub fn card_from_entry(entry: &Value) -> std::result::Result<RateCard, String> {
    let entry = entry.as_object().ok_or("entry is not an object")?;
    let mut card = RateCard {
        standard: rate_set(entry, "")?.unwrap_or_default(),
        batch: rate_set(entry, "_batches")?,
        priority: rate_set(entry, "_priority")?,
        flex: rate_set(entry, "_flex")?,
        long_context: long_context(entry)?,
        variants: variants(entry)?,
    };
    // A model billed only per image or per second of video needs no token rate.
    if card.standard.input.is_none() && !card.bills_images_or_video() {
        return Err("no input_cost_per_token".into());
    }
    if entry.get("mode").and_then(Value::as_str) == Some("embedding")
        && card.standard.output.is_none()
    {
        // An embedding returns no billed output; without a rate an output count would
        // leave the event unpriced.
        card.standard.output = Some(Decimal::ZERO);
    }
    Ok(card)
}

/// Modes whose usage is token-priced the way aispend records it (realtime and image
/// generation models with per-token rates: audio and image tokens are units of the
/// ledger; an image model without a per-token input rate is skipped).
const TOKEN_MODES: &[&str] = &[
    "chat",
    "completion",
    "responses",
    "embedding",
    "realtime",
    "image_generation",
    "video_generation",
];

/// LiteLLM provider names that are one of ours under another name.
fn provider_for(litellm_provider: &str) -> Option<Provider> {
    let mapped = match litellm_provider {
        "text-completion-openai" => "openai",
        "gemini" | "vertex_ai-language-models" => "google",
        "codestral" | "text-completion-codestral" => "mistral",
        other => other,
    };
    Provider::parse(mapped)
}

/// Turns a LiteLLM price map into drafts, and counts what it had to skip and why.
pub fn drafts_from_map(
    map: &Value,
    effective_from: DateTime<Utc>,
) -> Result<(Vec<PriceDraft>, ImportReport)> {
    let entries = map.as_object().ok_or_else(|| {
        Error::invalid(
            "document",
            "a LiteLLM price map is a JSON object keyed by model",
        )
    })?;
    let mut report = ImportReport::default();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut drafts = vec![];
    let mut sized = sized_images(entries);
    for (key, entry) in entries {
        let mut skip = |reason: &str| *skipped.entry(reason.to_owned()).or_default() += 1;
        if key == "sample_spec" {
            skip("sample_spec is documentation");
            continue;
        }
        let Some(obj) = entry.as_object() else {
            skip("entry is not an object");
            continue;
        };
        let litellm_provider = obj
            .get("litellm_provider")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if sized_image_key(key, litellm_provider).is_some() {
            skip("one image size of a model (read as a variant of the model)");
            continue;
        }
        if key.split('/').any(|part| part.contains("-x-")) {
            skip("priced by image size and a setting aispend does not record (steps)");
            continue;
        }
        if let Some(mode) = obj.get("mode").and_then(Value::as_str)
            && !TOKEN_MODES.contains(&mode)
        {
            skip("not token-priced (image, audio, rerank, ...)");
            continue;
        }
        let Some(provider) = obj
            .get("litellm_provider")
            .and_then(Value::as_str)
            .and_then(provider_for)
        else {
            skip("no usable litellm_provider");
            continue;
        };
        let model = key
            .split_once('/')
            .filter(|(head, _)| {
                provider_for(head).as_ref() == Some(&provider)
                    || *head
                        == obj
                            .get("litellm_provider")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
            })
            .map(|(_, rest)| rest)
            .unwrap_or(key)
            .to_owned();
        let card = match card_from_entry(entry) {
            Ok(mut card) => {
                let sizes =
                    sized.remove(&(litellm_provider.to_owned(), model.to_ascii_lowercase()));
                // A model billed by image tokens (gpt-image) is billed by them: its
                // per-size rows are LiteLLM's estimates of those tokens, not a price.
                if card.standard.image_output.is_none() {
                    for (variant, set) in sizes.into_iter().flatten() {
                        card.variants.entry(variant).or_insert(set);
                    }
                }
                card
            }
            Err(_) => {
                skip("no per-token input rate");
                continue;
            }
        };
        let raw = RawPrice {
            provider: provider.as_str().to_owned(),
            model: model.clone(),
            match_rule: Some(MatchRule::Exact),
            effective_from: Some(effective_from),
            effective_to: None,
            card,
            kind: obj.get("mode").and_then(Value::as_str).map(str::to_owned),
            tier: None,
            source_url: obj.get("source").and_then(Value::as_str).map(str::to_owned),
            note: Some(format!("imported from LiteLLM key `{key}`")),
        };
        admit(raw, &mut seen, &mut drafts, &mut skipped);
    }
    // Models LiteLLM lists only by size (`hd/1024-x-1024/dall-e-3` and no `dall-e-3`):
    // a card of their per-size image rates.
    for ((litellm_provider, model), variants) in sized {
        let Some(provider) = provider_for(&litellm_provider) else {
            continue;
        };
        let raw = RawPrice {
            provider: provider.as_str().to_owned(),
            model: model.clone(),
            match_rule: Some(MatchRule::Exact),
            effective_from: Some(effective_from),
            effective_to: None,
            card: RateCard {
                variants,
                ..RateCard::default()
            },
            kind: Some("image_generation".into()),
            tier: None,
            source_url: None,
            note: Some(format!(
                "imported from LiteLLM's per-size keys of `{model}` (`<quality>/<W>-x-<H>/{model}`)"
            )),
        };
        admit(raw, &mut seen, &mut drafts, &mut skipped);
    }
    report.skipped = skipped.into_iter().collect();
    Ok((drafts, report))
}

/// Keeps one imported price, unless its rates are out of range or an earlier entry
/// priced the same provider and model.
fn admit(
    raw: RawPrice,
    seen: &mut HashSet<(Provider, String)>,
    drafts: &mut Vec<PriceDraft>,
    skipped: &mut BTreeMap<String, u64>,
) {
    let reason = match raw.parse() {
        Ok(draft) if seen.insert((draft.provider.clone(), draft.model.to_ascii_lowercase())) => {
            drafts.push(draft);
            return;
        }
        Ok(_) => "duplicate of an earlier entry for the same provider and model",
        Err(_) => "rates out of range",
    };
    *skipped.entry(reason.to_owned()).or_default() += 1;
}

/// Imports a LiteLLM map: one transaction, source `IMPORT`, rows matched exactly (an
/// imported row never prices other ids by prefix).
pub async fn import<C: sea_orm::TransactionTrait>(
    db: &C,
    map: &Value,
    effective_from: DateTime<Utc>,
) -> Result<ImportReport> {
    let (drafts, mut report) = drafts_from_map(map, effective_from)?;
    let with_aliases: Vec<(PriceDraft, Vec<String>)> =
        drafts.into_iter().map(|d| (d, vec![])).collect();
    let written = super::upsert_all(db, &with_aliases, PriceSource::Import).await?;
    report.imported = written.imported;
    report.updated = written.updated;
    report.unchanged = written.unchanged;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn reads_every_rate_litellm_lists() {
        let card = card_from_entry(&json!({
            "input_cost_per_token": 3e-06,
            "output_cost_per_token": 1.5e-05,
            "cache_read_input_token_cost": 3e-07,
            "cache_creation_input_token_cost": 3.75e-06,
            "cache_creation_input_token_cost_above_1hr": 6e-06,
            "input_cost_per_token_above_200k_tokens": 6e-06,
            "output_cost_per_token_above_200k_tokens": 2.25e-05,
            "input_cost_per_token_batches": 1.5e-06,
            "output_cost_per_token_priority": 2.5e-05,
            "input_cost_per_token_flex": 1.875e-08
        }))
        .unwrap();
        assert_eq!(card.standard.input, Some(dec!(3)));
        assert_eq!(card.standard.output, Some(dec!(15)));
        assert_eq!(card.standard.cache_read, Some(dec!(0.3)));
        assert_eq!(card.standard.cache_write, Some(dec!(3.75)));
        assert_eq!(card.standard.cache_write_1h, Some(dec!(6)));
        let lc = card.long_context.unwrap();
        assert_eq!(
            (lc.threshold, lc.rates.input, lc.rates.output),
            (200_000, Some(dec!(6)), Some(dec!(22.5)))
        );
        assert_eq!(card.batch.unwrap().input, Some(dec!(1.5)));
        assert_eq!(card.priority.unwrap().output, Some(dec!(25)));
        assert_eq!(card.flex.unwrap().input, Some(dec!(0.01875)));
    }

    #[test]
    fn a_long_context_threshold_out_of_range_is_an_error_not_a_panic() {
        for k in ["9223372036854776", "0", "-200"] {
            let err = card_from_entry(&json!({
                "input_cost_per_token": 3e-06,
                format!("input_cost_per_token_above_{k}k_tokens"): 6e-06
            }))
            .unwrap_err();
            assert!(err.contains("long-context threshold"), "{k}: {err}");
        }
    }

    #[test]
    fn fees_that_depend_on_a_variant_are_variants() {
        let sonar = card_from_entry(&json!({
            "litellm_provider": "perplexity", "mode": "chat",
            "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
            "search_context_cost_per_query": {"search_context_size_low": 0.005,
                "search_context_size_medium": 0.008, "search_context_size_high": 0.012}
        }))
        .unwrap();
        assert_eq!(sonar.standard.web_search, None);
        let fees: Vec<(&str, Option<Decimal>)> = sonar
            .variants
            .iter()
            .map(|(k, s)| (k.as_str(), s.request))
            .collect();
        assert_eq!(
            fees,
            vec![
                ("high", Some(dec!(0.012))),
                ("low", Some(dec!(0.005))),
                ("medium", Some(dec!(0.008)))
            ]
        );
        let veo = card_from_entry(&json!({
            "litellm_provider": "gemini", "mode": "video_generation",
            "output_cost_per_second": 0.4, "output_cost_per_second_4k": 0.6
        }))
        .unwrap();
        assert_eq!(veo.standard.video_second, Some(dec!(0.4)));
        assert_eq!(veo.variants["4k"].video_second, Some(dec!(0.6)));
        veo.validate().unwrap();
    }

    #[test]
    fn image_sizes_become_variants_of_their_model_unless_it_bills_image_tokens() {
        let map = json!({
            "azure/hd/1024-x-1024/dall-e-3": {"litellm_provider": "azure", "mode": "image_generation", "input_cost_per_pixel": 7.62939453125e-08},
            "azure/standard/1024-x-1024/dall-e-3": {"litellm_provider": "azure", "mode": "image_generation", "input_cost_per_pixel": 3.814697265625e-08},
            "1024-x-1024/dall-e-2": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.02},
            "gpt-image-1": {"litellm_provider": "openai", "mode": "image_generation", "input_cost_per_token": 5e-06, "output_cost_per_image_token": 4e-05},
            "high/1024-x-1024/gpt-image-1": {"litellm_provider": "openai", "mode": "image_generation", "input_cost_per_image": 0.167},
            "1024-x-1024/50-steps/stability.stable-diffusion-xl-v1": {"litellm_provider": "bedrock", "mode": "image_generation", "output_cost_per_image": 0.04}
        });
        let (drafts, report) = drafts_from_map(&map, DateTime::UNIX_EPOCH).unwrap();
        let find = |p: &str, m: &str| {
            drafts
                .iter()
                .find(|d| d.provider.as_str() == p && d.model == m)
                .unwrap_or_else(|| panic!("{p}/{m} imported"))
        };
        let dalle3 = &find("azure", "dall-e-3").card;
        assert_eq!(dalle3.variants["hd/1024x1024"].image, Some(dec!(0.08)));
        assert_eq!(
            dalle3.variants["standard/1024x1024"].image,
            Some(dec!(0.04))
        );
        assert_eq!(
            find("openai", "dall-e-2").card.variants["1024x1024"].image,
            Some(dec!(0.02))
        );
        assert!(find("openai", "gpt-image-1").card.variants.is_empty());
        assert_eq!(drafts.len(), 3, "{drafts:?}");
        assert_eq!(report.skipped_total(), 5);
    }

    #[test]
    fn skips_what_it_cannot_use_and_says_why() {
        let map = json!({
            "sample_spec": {"input_cost_per_token": 0},
            "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
            "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
            "imagen-3": {"litellm_provider": "gemini", "mode": "image_generation", "output_cost_per_image": 0.04},
            "tts-1": {"litellm_provider": "openai", "mode": "audio_speech", "input_cost_per_character": 1.5e-05},
            "whisper": {"litellm_provider": "openai", "mode": "chat"}
        });
        let (drafts, report) = drafts_from_map(&map, DateTime::UNIX_EPOCH).unwrap();
        let mut names: Vec<String> = drafts
            .iter()
            .map(|d| format!("{}/{}", d.provider, d.model))
            .collect();
        names.sort();
        // An image model priced per image needs no token rate.
        assert_eq!(
            names,
            vec!["google/gemini-2.5-pro", "google/imagen-3", "openai/gpt-4o"]
        );
        assert_eq!(report.skipped_total(), 3);
    }
}
