//! The built-in price catalog (`server/catalog/prices.toml`), embedded in the binary
//! and written to the `prices` table (source `BUILTIN`) at every start, so upgrading
//! aispend upgrades its prices. Operators override a row with a `USER` price.

use super::rates::{LongContext, RateCard, RateSet, TokenClass};
use super::{MatchRule, PriceDraft, PriceSource, RawPrice, litellm};
use crate::domain::error::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashMap;

/// The catalog as shipped.
pub const CATALOG_TOML: &str = include_str!("../../../catalog/prices.toml");

/// The parsed catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// LiteLLM release the rates were compared against.
    pub litellm_version: String,
    /// When the rates were last checked against the providers' pages.
    pub checked_on: NaiveDate,
    /// The rows.
    #[serde(rename = "price")]
    pub prices: Vec<CatalogRow>,
}

/// One catalog row (see the header of `prices.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRow {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Other ids of the same model at the same rates.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `exact` keeps the row from pricing longer ids.
    #[serde(default, rename = "match")]
    pub match_rule: Option<String>,
    /// First day (UTC) the rates apply.
    pub effective_from: Option<NaiveDate>,
    /// First day they no longer apply.
    pub effective_to: Option<NaiveDate>,
    /// Kind of model.
    pub kind: Option<String>,
    /// Capability tier.
    pub tier: Option<String>,
    /// The provider's pricing page.
    pub source_url: Option<String>,
    /// Key of the same model in LiteLLM's price map.
    pub litellm_key: Option<String>,
    /// Why the row differs from LiteLLM, or other remarks.
    pub note: Option<String>,
    /// Standard rates.
    pub standard: RateSet,
    /// Batch rates.
    pub batch: Option<RateSet>,
    /// Priority rates.
    pub priority: Option<RateSet>,
    /// Flex rates.
    pub flex: Option<RateSet>,
    /// Long-context rates.
    pub long_context: Option<LongContext>,
}

fn day(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

impl CatalogRow {
    fn card(&self) -> RateCard {
        RateCard {
            standard: self.standard.clone(),
            batch: self.batch.clone(),
            priority: self.priority.clone(),
            flex: self.flex.clone(),
            long_context: self.long_context.clone(),
        }
    }

    /// Validates the row into a draft.
    pub fn draft(&self) -> Result<PriceDraft> {
        let match_rule = match self.match_rule.as_deref() {
            None | Some("prefix") => MatchRule::Prefix,
            Some("exact") => MatchRule::Exact,
            Some(other) => {
                return Err(Error::invalid(
                    "match",
                    format!("unknown match rule `{other}`"),
                ));
            }
        };
        RawPrice {
            provider: self.provider.clone(),
            model: self.model.clone(),
            match_rule: Some(match_rule),
            effective_from: self.effective_from.map(day),
            effective_to: self.effective_to.map(day),
            card: self.card(),
            kind: self.kind.clone(),
            tier: self.tier.clone(),
            source_url: self.source_url.clone(),
            note: self.note.clone(),
        }
        .parse()
    }
}

/// Parses the embedded catalog.
pub fn parse(text: &str) -> Result<CatalogFile> {
    toml::from_str(text).map_err(|e| Error::internal("parsing the built-in price catalog", e))
}

/// The embedded catalog as drafts with their aliases, ready to upsert.
pub fn builtin_drafts() -> Result<Vec<(PriceDraft, Vec<String>)>> {
    parse(CATALOG_TOML)?
        .prices
        .iter()
        .map(|row| {
            row.draft().map(|d| (d, row.aliases.clone())).map_err(|e| {
                Error::internal(
                    "validating the built-in price catalog",
                    anyhow::anyhow!("{}/{}: {e}", row.provider, row.model),
                )
            })
        })
        .collect()
}

/// A price book of the built-in catalog alone, without a database (row ids are
/// positions in the file). For tests and offline quotes.
pub fn builtin_book() -> Result<super::book::PriceBook> {
    let mut prices = vec![];
    let mut aliases = vec![];
    for (i, (draft, names)) in builtin_drafts()?.into_iter().enumerate() {
        for alias in names {
            aliases.push((draft.provider.clone(), alias, draft.model.clone()));
        }
        prices.push(super::Price {
            id: crate::domain::ids::PriceId(i as i64 + 1),
            provider: draft.provider,
            model: draft.model,
            match_rule: draft.match_rule,
            effective_from: draft.effective_from,
            effective_to: draft.effective_to,
            source: PriceSource::Builtin,
            card: draft.card,
            kind: draft.kind,
            tier: draft.tier,
            source_url: draft.source_url,
            note: draft.note,
            updated_at: DateTime::UNIX_EPOCH,
        });
    }
    Ok(super::book::PriceBook::new(prices, aliases))
}

/// Writes the built-in catalog to the database (idempotent).
pub async fn seed<C: sea_orm::TransactionTrait>(db: &C) -> Result<super::ImportReport> {
    let drafts = builtin_drafts()?;
    super::upsert_all(db, &drafts, PriceSource::Builtin).await
}

/// One rate where the catalog and LiteLLM disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// `provider/model`.
    pub row: String,
    /// LiteLLM key compared with.
    pub litellm_key: String,
    /// Which rate (`batch.input`), or `missing` when the key is absent.
    pub rate: String,
    /// Ours (per million).
    pub ours: Option<Decimal>,
    /// LiteLLM's (per million).
    pub theirs: Option<Decimal>,
    /// The catalog's explanation, if it gives one.
    pub note: Option<String>,
}

/// Compares every catalog row that names a LiteLLM key with LiteLLM's price map. A rate
/// LiteLLM lists must equal the rate aispend would charge for that class and tier.
pub fn compare_with_litellm(catalog: &CatalogFile, map: &serde_json::Value) -> Vec<Disagreement> {
    let mut out = vec![];
    let Some(entries) = map.as_object() else {
        return out;
    };
    for row in &catalog.prices {
        let Some(key) = &row.litellm_key else {
            continue;
        };
        let label = format!("{}/{}", row.provider, row.model);
        let Some(theirs) = entries
            .get(key)
            .and_then(|e| litellm::card_from_entry(e).ok())
        else {
            out.push(Disagreement {
                row: label,
                litellm_key: key.clone(),
                rate: "missing".into(),
                ours: None,
                theirs: None,
                note: row.note.clone(),
            });
            continue;
        };
        let ours = row.card();
        let mut check = |rate: String, our: Decimal, their: Option<Decimal>| {
            if let Some(their) = their
                && their != our
            {
                out.push(Disagreement {
                    row: label.clone(),
                    litellm_key: key.clone(),
                    rate,
                    ours: Some(our),
                    theirs: Some(their),
                    note: row.note.clone(),
                });
            }
        };
        use crate::domain::tokens::ServiceTier as T;
        let tiers: [(&str, T, Option<&RateSet>); 4] = [
            ("standard", T::Standard, Some(&theirs.standard)),
            ("batch", T::Batch, theirs.batch.as_ref()),
            ("priority", T::Priority, theirs.priority.as_ref()),
            ("flex", T::Flex, theirs.flex.as_ref()),
        ];
        for (name, tier, set) in tiers {
            let Some(set) = set else { continue };
            for class in TokenClass::ALL {
                check(
                    format!("{name}.{}", class.key()),
                    ours.rate(class, tier, false),
                    set.explicit(class),
                );
            }
        }
        if let Some(lc) = &theirs.long_context {
            let our_threshold = ours.long_context.as_ref().map(|l| l.threshold);
            if our_threshold != Some(lc.threshold) {
                check(
                    "longContext.threshold".into(),
                    Decimal::from(our_threshold.unwrap_or_default()),
                    Some(Decimal::from(lc.threshold)),
                );
            }
            for class in TokenClass::ALL {
                let our = if ours.long_context.is_some() {
                    ours.rate(class, T::Standard, true)
                } else {
                    ours.rate(class, T::Standard, false)
                };
                check(
                    format!("longContext.{}", class.key()),
                    our,
                    lc.rates.explicit(class),
                );
            }
        }
    }
    out
}

/// A row's period: first day, and the first day it no longer applies.
type Period = (NaiveDate, Option<NaiveDate>);

/// Rows grouped by model, to check that periods of one model never overlap.
pub fn overlapping_rows(catalog: &CatalogFile) -> Vec<String> {
    let mut by_model: HashMap<(String, String), Vec<Period>> = HashMap::new();
    for row in &catalog.prices {
        let from = row.effective_from.unwrap_or_default();
        by_model
            .entry((row.provider.clone(), row.model.to_ascii_lowercase()))
            .or_default()
            .push((from, row.effective_to));
    }
    let mut out = vec![];
    for ((provider, model), mut periods) in by_model {
        periods.sort();
        for pair in periods.windows(2) {
            let (_, first_to) = pair[0];
            let (second_from, _) = pair[1];
            if first_to.is_none_or(|to| to > second_from) {
                out.push(format!("{provider}/{model}"));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_every_row_is_valid() {
        let drafts = builtin_drafts().expect("catalog is valid");
        assert!(drafts.len() >= 80, "catalog has {} rows", drafts.len());
    }

    #[test]
    fn periods_of_one_model_never_overlap() {
        let catalog = parse(CATALOG_TOML).unwrap();
        assert_eq!(overlapping_rows(&catalog), Vec::<String>::new());
    }

    #[test]
    fn every_required_family_is_priced() {
        let catalog = parse(CATALOG_TOML).unwrap();
        let has = |provider: &str, model: &str| {
            catalog
                .prices
                .iter()
                .any(|r| r.provider == provider && r.model == model)
        };
        for (provider, model) in [
            ("openai", "gpt-5"),
            ("openai", "gpt-5-mini"),
            ("openai", "gpt-4.1"),
            ("openai", "gpt-4o"),
            ("openai", "gpt-4o-mini"),
            ("openai", "o1"),
            ("openai", "o3"),
            ("openai", "o3-mini"),
            ("openai", "o4-mini"),
            ("openai", "gpt-4"),
            ("openai", "gpt-4-turbo"),
            ("openai", "gpt-3.5-turbo"),
            ("openai", "text-embedding-3-small"),
            ("anthropic", "claude-sonnet-4-5"),
            ("anthropic", "claude-haiku-4-5"),
            ("anthropic", "claude-3-haiku"),
            ("google", "gemini-2.5-pro"),
            ("google", "gemini-2.5-flash"),
            ("google", "gemini-1.5-pro"),
            ("perplexity", "sonar"),
            ("deepseek", "deepseek-chat"),
        ] {
            assert!(has(provider, model), "catalog lacks {provider}/{model}");
        }
        for provider in ["groq", "mistral"] {
            assert!(
                catalog
                    .prices
                    .iter()
                    .filter(|r| r.provider == provider)
                    .count()
                    >= 3,
                "too few {provider} rows"
            );
        }
    }
}
