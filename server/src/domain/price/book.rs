//! The price book: every price row in memory, indexed for matching.
//!
//! Ingest prices thousands of events per batch, so matching never touches the
//! database. The book is rebuilt from the `prices` and `model_aliases` tables whenever
//! this process changes a price, and periodically to pick up other processes' changes.

use super::Price;
use super::model_name::{match_key, strip_one_suffix};
use crate::domain::provider::Provider;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How a price was found for a model id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The id itself.
    Exact,
    /// A stored alias of the id.
    Alias,
    /// The id with a date or version suffix removed.
    Suffix,
}

/// A price chosen for an event.
#[derive(Debug, Clone)]
pub struct PriceMatch {
    /// The row that prices the event.
    pub price: Arc<Price>,
    /// How it was found.
    pub kind: MatchKind,
}

#[derive(Debug, Default)]
struct ProviderBook {
    /// Rows by lower-cased model id.
    models: HashMap<String, Vec<Arc<Price>>>,
    /// Lower-cased alias -> lower-cased model id.
    aliases: HashMap<String, String>,
}

/// An immutable snapshot of every price, ready for matching.
#[derive(Debug, Default)]
pub struct PriceBook {
    providers: HashMap<Provider, ProviderBook>,
    rows: usize,
}

impl PriceBook {
    /// Builds the index from all price rows and aliases (`(provider, alias, model)`).
    pub fn new(prices: Vec<Price>, aliases: Vec<(Provider, String, String)>) -> PriceBook {
        let mut providers: HashMap<Provider, ProviderBook> = HashMap::new();
        let rows = prices.len();
        for price in prices {
            let book = providers.entry(price.provider.clone()).or_default();
            book.models
                .entry(match_key(&price.model))
                .or_default()
                .push(Arc::new(price));
        }
        for (provider, alias, model) in aliases {
            providers
                .entry(provider)
                .or_default()
                .aliases
                .insert(match_key(&alias), match_key(&model));
        }
        PriceBook { providers, rows }
    }

    /// Number of price rows in the book.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the book has no prices at all.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Finds the price for a model at a time: the exact id, a stored alias, or the id
    /// without its date/version suffixes (see [`strip_one_suffix`]). Nothing else: a
    /// name with any other extra word is another model and has no price until one is
    /// stored for it (a prefix never prices a longer name).
    pub fn find(&self, provider: &Provider, model: &str, at: DateTime<Utc>) -> Option<PriceMatch> {
        let book = self.providers.get(provider)?;
        let key = match_key(model);
        let found = |model: &str| Self::effective(book.models.get(model)?, at);
        let via_alias = |model: &str| book.aliases.get(model).and_then(|target| found(target));

        if let Some(price) = found(&key) {
            return Some(PriceMatch {
                price,
                kind: MatchKind::Exact,
            });
        }
        if let Some(price) = via_alias(&key) {
            return Some(PriceMatch {
                price,
                kind: MatchKind::Alias,
            });
        }
        let mut current = key.as_str();
        while let Some(stripped) = strip_one_suffix(current) {
            if let Some(price) = found(stripped).or_else(|| via_alias(stripped)) {
                return Some(PriceMatch {
                    price,
                    kind: MatchKind::Suffix,
                });
            }
            current = stripped;
        }
        None
    }

    /// Whether the provider has a price row (at any time) for this id or an alias of
    /// it, ignoring case.
    pub fn knows_model(&self, provider: &Provider, model: &str) -> bool {
        let Some(book) = self.providers.get(provider) else {
            return false;
        };
        let key = match_key(model);
        book.models.contains_key(&key)
            || book
                .aliases
                .get(&key)
                .is_some_and(|target| book.models.contains_key(target))
    }

    /// The lower-cased model ids the provider has prices for.
    pub fn model_keys(&self, provider: &Provider) -> impl Iterator<Item = &str> {
        self.providers
            .get(provider)
            .into_iter()
            .flat_map(|b| b.models.keys().map(String::as_str))
    }

    /// Among the rows of one model, the one in effect at `at`: a user's price beats an
    /// imported one, which beats the built-in catalog; then the latest start wins.
    /// Every model's price in effect at `at` (one row per provider and model), for
    /// finding alternatives to a model.
    pub fn effective_prices(&self, at: DateTime<Utc>) -> Vec<Arc<Price>> {
        let mut out: Vec<Arc<Price>> = self
            .providers
            .values()
            .flat_map(|b| {
                b.models
                    .values()
                    .filter_map(|rows| Self::effective(rows, at))
            })
            .collect();
        out.sort_by(|a, b| (a.provider.as_str(), &a.model).cmp(&(b.provider.as_str(), &b.model)));
        out
    }

    fn effective(rows: &[Arc<Price>], at: DateTime<Utc>) -> Option<Arc<Price>> {
        rows.iter()
            .filter(|p| p.effective_from <= at && p.effective_to.is_none_or(|to| at < to))
            .max_by_key(|p| (p.source.precedence(), p.effective_from))
            .cloned()
    }
}
