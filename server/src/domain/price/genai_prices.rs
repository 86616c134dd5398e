//! Reading pydantic's genai-prices data (`prices/data.json`, the document its
//! `UpdatePrices` fetches): a JSON array of providers, each with models whose
//! `prices` are USD per million tokens (`input_mtok`, `output_mtok`, ...), either one
//! price set or a list of sets with start-date constraints.
//!
//! Only what aispend bills is read: text input, output, cache reads and writes
//! (5-minute and 1-hour), reasoning, and a single long-context tier. A model whose
//! prices need more (several tiers, no input rate) is skipped with the reason, never
//! guessed at.

use super::rates::{LongContext, RateCard, RateSet, TokenClass};
use super::{MatchRule, PriceDraft, RawPrice};
use crate::domain::error::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

/// genai-prices price keys aispend reads, with the class each fills. Earlier keys
/// win when two fill one class (`cache_write_mtok` over `cache_write_5m_mtok`).
const KEYS: &[(&str, TokenClass)] = &[
    ("input_mtok", TokenClass::Input),
    ("input_text_mtok", TokenClass::Input),
    ("output_mtok", TokenClass::Output),
    ("output_text_mtok", TokenClass::Output),
    ("cache_read_mtok", TokenClass::CacheRead),
    ("cache_write_mtok", TokenClass::CacheWrite),
    ("cache_write_5m_mtok", TokenClass::CacheWrite),
    ("cache_write_1h_mtok", TokenClass::CacheWrite1h),
    ("output_reasoning_mtok", TokenClass::Reasoning),
    ("input_audio_mtok", TokenClass::AudioInput),
    ("output_audio_mtok", TokenClass::AudioOutput),
    ("input_image_mtok", TokenClass::ImageInput),
    ("output_image_mtok", TokenClass::ImageOutput),
    ("web_searches_kcount", TokenClass::WebSearch),
    ("requests_kcount", TokenClass::Request),
];

/// A rate as aispend stores it: `*_mtok` is per million tokens already; `*_kcount` is
/// per thousand calls, stored per call.
fn rate(key: &str, value: &Value) -> std::result::Result<Decimal, String> {
    let d = decimal(value)?;
    Ok(if key.ends_with("_kcount") {
        (d / Decimal::from(1000)).normalize()
    } else {
        d
    })
}

/// genai-prices provider ids that aispend spells differently.
fn provider_name(id: &str) -> &str {
    match id {
        "x-ai" => "xai",
        "aws" => "bedrock",
        other => other,
    }
}

fn decimal(value: &Value) -> std::result::Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(format!("a rate must be a number, not {other}")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| d.normalize())
        .map_err(|e| format!("rate `{text}`: {e}"))
}

/// One model's price set (`ModelPrice`) as a rate card.
fn card_from_prices(prices: &Map<String, Value>) -> std::result::Result<RateCard, String> {
    let mut standard = RateSet::default();
    let mut above = RateSet::default();
    let mut threshold: Option<i64> = None;
    for (key, class) in KEYS {
        let Some(value) = prices.get(*key) else {
            continue;
        };
        if standard.explicit(*class).is_some() {
            continue;
        }
        match value {
            Value::Object(tiered) => {
                let base = tiered.get("base").ok_or("a tiered price without `base`")?;
                standard.set(*class, Some(rate(key, base)?));
                let tiers = tiered
                    .get("tiers")
                    .and_then(Value::as_array)
                    .ok_or("a tiered price without `tiers`")?;
                match tiers.as_slice() {
                    [] => {}
                    [tier] => {
                        let start = tier
                            .get("start")
                            .and_then(Value::as_i64)
                            .filter(|s| *s > 0)
                            .ok_or("a price tier without a positive `start`")?;
                        if threshold.is_some_and(|t| t != start) {
                            return Err("price tiers with different thresholds".into());
                        }
                        threshold = Some(start);
                        let price = tier.get("price").ok_or("a price tier without `price`")?;
                        above.set(*class, Some(rate(key, price)?));
                    }
                    _ => return Err("more than one price tier".into()),
                }
            }
            plain => standard.set(*class, Some(rate(key, plain)?)),
        }
    }
    if standard.input.is_none() {
        return Err("no input_mtok".into());
    }
    Ok(RateCard {
        standard,
        long_context: threshold.map(|threshold| LongContext {
            threshold,
            rates: above,
        }),
        ..Default::default()
    })
}

/// The price set in effect on `today`: a plain set, or among conditional sets the
/// one with the latest start date not after today (an unconstrained set starts at the
/// beginning); sets with a time-of-day constraint are not used.
fn current_prices(
    prices: &Value,
    today: NaiveDate,
) -> std::result::Result<&Map<String, Value>, String> {
    match prices {
        Value::Object(set) => Ok(set),
        Value::Array(conditional) => {
            let mut best: Option<(NaiveDate, &Map<String, Value>)> = None;
            for entry in conditional {
                let set = entry
                    .get("prices")
                    .and_then(Value::as_object)
                    .ok_or("a conditional price without `prices`")?;
                let start = match entry.get("constraint") {
                    None | Some(Value::Null) => NaiveDate::MIN,
                    Some(c) => match c.get("start_date").and_then(Value::as_str) {
                        Some(d) => {
                            NaiveDate::from_str(d).map_err(|e| format!("start_date `{d}`: {e}"))?
                        }
                        None => continue,
                    },
                };
                if start <= today && best.is_none_or(|(b, _)| start >= b) {
                    best = Some((start, set));
                }
            }
            best.map(|(_, set)| set)
                .ok_or_else(|| "no price set in effect today".to_owned())
        }
        _ => Err("`prices` is neither an object nor a list".into()),
    }
}

/// Entries skipped, by reason.
pub type Skipped = Vec<(String, u64)>;

/// Turns a genai-prices document into drafts effective from `effective_from`, and
/// counts what it skipped and why. The document must be an array of providers.
pub fn drafts_from_document(
    document: &Value,
    effective_from: DateTime<Utc>,
) -> Result<(Vec<PriceDraft>, Skipped)> {
    let providers = document.as_array().ok_or_else(|| {
        Error::invalid("document", "genai-prices data is a JSON array of providers")
    })?;
    let today = Utc::now().date_naive();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut drafts = vec![];
    for (i, provider) in providers.iter().enumerate() {
        let id = provider
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("document.{i}.id"), "a provider needs an id"))?;
        let models = provider
            .get("models")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::invalid(
                    format!("document.{i}.models"),
                    "a provider needs a models list",
                )
            })?;
        for model in models {
            let mut skip = |reason: String| *skipped.entry(reason).or_default() += 1;
            let Some(model_id) = model.get("id").and_then(Value::as_str) else {
                skip("a model without an id".into());
                continue;
            };
            let card = model
                .get("prices")
                .ok_or_else(|| "no prices".to_owned())
                .and_then(|p| current_prices(p, today))
                .and_then(card_from_prices);
            let card = match card {
                Ok(card) => card,
                Err(reason) => {
                    skip(reason);
                    continue;
                }
            };
            let raw = RawPrice {
                provider: provider_name(id).to_owned(),
                model: model_id.to_owned(),
                match_rule: Some(MatchRule::Exact),
                effective_from: Some(effective_from),
                effective_to: None,
                card,
                kind: None,
                tier: None,
                source_url: provider
                    .get("pricing_urls")
                    .and_then(Value::as_array)
                    .and_then(|u| u.first())
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                note: Some(format!("genai-prices model `{id}/{model_id}`")),
            };
            match raw.parse() {
                Ok(draft) => {
                    if seen.insert((draft.provider.clone(), draft.model.to_ascii_lowercase())) {
                        drafts.push(draft);
                    } else {
                        skip("duplicate of an earlier model of the same provider".into());
                    }
                }
                Err(_) => skip("rates out of range or an unusable name".into()),
            }
        }
    }
    Ok((drafts, skipped.into_iter().collect()))
}

/// Imports genai-prices data as `IMPORT` prices in one transaction, effective from
/// `effective_from`, matched exactly (like a LiteLLM import).
pub async fn import<C: sea_orm::TransactionTrait>(
    db: &C,
    document: &Value,
    effective_from: DateTime<Utc>,
) -> Result<super::ImportReport> {
    let (drafts, skipped) = drafts_from_document(document, effective_from)?;
    let with_aliases: Vec<(PriceDraft, Vec<String>)> =
        drafts.into_iter().map(|d| (d, vec![])).collect();
    let mut report = super::upsert_all(db, &with_aliases, super::PriceSource::Import).await?;
    report.skipped = skipped;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn reads_plain_tiered_and_dated_prices() {
        let doc = json!([
            {"id": "anthropic", "models": [
                {"id": "claude-sonnet-4-5", "match": {"starts_with": "claude-sonnet-4-5"},
                 "prices": {
                    "input_mtok": {"base": 3, "tiers": [{"start": 200000, "price": 6}]},
                    "output_mtok": {"base": 15, "tiers": [{"start": 200000, "price": 22.5}]},
                    "cache_read_mtok": 0.3, "cache_write_mtok": 3.75, "cache_write_1h_mtok": "6"
                 }}
            ]},
            {"id": "x-ai", "models": [
                {"id": "grok-9", "prices": [
                    {"prices": {"input_mtok": 1, "output_mtok": 2}},
                    {"constraint": {"start_date": "2020-01-01"}, "prices": {"input_mtok": 3, "output_mtok": 4}},
                    {"constraint": {"start_date": "2999-01-01"}, "prices": {"input_mtok": 5, "output_mtok": 6}}
                ]},
                {"id": "grok-image", "prices": {"output_image_mtok": 30}}
            ]}
        ]);
        let (drafts, skipped) = drafts_from_document(&doc, DateTime::UNIX_EPOCH).unwrap();
        assert_eq!(drafts.len(), 2);
        let claude = &drafts[0];
        assert_eq!(claude.provider.as_str(), "anthropic");
        assert_eq!(claude.card.standard.input, Some(dec!(3)));
        assert_eq!(claude.card.standard.cache_write_1h, Some(dec!(6)));
        let lc = claude.card.long_context.clone().unwrap();
        assert_eq!((lc.threshold, lc.rates.output), (200_000, Some(dec!(22.5))));
        let grok = &drafts[1];
        assert_eq!(grok.provider.as_str(), "xai");
        assert_eq!(grok.card.standard.input, Some(dec!(3)));
        assert_eq!(skipped, vec![("no input_mtok".to_owned(), 1)]);
    }

    #[test]
    fn refuses_a_document_that_is_not_a_provider_list() {
        assert!(drafts_from_document(&json!({"gpt-4o": {}}), DateTime::UNIX_EPOCH).is_err());
        assert!(drafts_from_document(&json!([{"name": "no id"}]), DateTime::UNIX_EPOCH).is_err());
    }
}
