//! Price sources: documents the operator configured (`AISPEND_PRICE_SOURCES`), in
//! LiteLLM's price-map format or genai-prices' data format, that a scheduled job and
//! `aispend prices sync` fetch and turn into `SYNC` prices.
//!
//! The rules a sync keeps:
//! - **Validated whole.** A document that cannot be fetched or read changes nothing
//!   (`FAILED`); one that would remove more than the allowed share of its rows, or
//!   change any rate more than tenfold, is refused whole (`REFUSED`) with the reason.
//! - **History is never edited.** A changed rate is a new price period starting when
//!   the document was seen; the old period is closed at that instant, so every event
//!   before it keeps its price. A model no price has ever covered gets a period from
//!   the beginning of time, so events stored `UNPRICED` can be priced.
//! - **A person's price wins.** A model with an open `USER` price is skipped; the
//!   book's precedence (`USER` > `SYNC` > `IMPORT` > `BUILTIN`) covers the rest.
//! - **Each source owns its rows.** A synced row belongs to the URL whose change
//!   created it (see `changes::origins_of`); only that source changes or removes it.
//!   When two sources list a model, the one listed first in the setting wins.
//! - **One sync at a time.** The write is one transaction, serialised by an advisory
//!   lock on PostgreSQL (an `IMMEDIATE` transaction on SQLite).
//!
//! After a sync the caller reloads the price book and prices the events stored
//! `UNPRICED` (`usage::query::reprice_unpriced`).

use super::{PriceDraft, genai_prices, litellm, text_enum};
use crate::domain::error::{Context, Result};
use crate::domain::time;
use crate::domain::usage::ingest::Ledger;
use crate::entity::price_source;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod write;

pub use write::apply;

/// The format of a price document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// LiteLLM's `model_prices_and_context_window.json` (an object keyed by model).
    Litellm,
    /// genai-prices' `data.json` (an array of providers).
    GenaiPrices,
}

text_enum!(SourceFormat { Litellm => "LITELLM", GenaiPrices => "GENAI_PRICES" });

/// Where the last sync of a source left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceStatus {
    /// Configured, not synced yet.
    Never,
    /// The last sync was applied.
    Ok,
    /// The last document was refused whole (too many removals, a rate jump).
    Refused,
    /// The last document could not be fetched or read.
    Failed,
}

text_enum!(SourceStatus { Never => "NEVER", Ok => "OK", Refused => "REFUSED", Failed => "FAILED" });

/// One configured source: `URL`, or `litellm:URL` / `genai-prices:URL` to name the
/// format instead of detecting it from the document's shape. Its `Debug` hides a
/// password and query string the URL may carry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SourceSpec {
    /// The document's URL (`http` or `https`).
    pub url: String,
    /// The format, when the setting names it.
    pub format: Option<SourceFormat>,
}

impl SourceSpec {
    /// The URL without a password or query string, for logs.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// A URL without its password or query string, for logs.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("redacted"));
            }
            if url.query().is_some() {
                url.set_query(Some("redacted"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable>".into(),
    }
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("url", &self.redacted())
            .field("format", &self.format)
            .finish()
    }
}

impl std::str::FromStr for SourceSpec {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (format, url) = if let Some(rest) = text.strip_prefix("litellm:") {
            (Some(SourceFormat::Litellm), rest)
        } else if let Some(rest) = text.strip_prefix("genai-prices:") {
            (Some(SourceFormat::GenaiPrices), rest)
        } else {
            (None, text)
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{text}`: not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "`{text}`: a price source is an http(s) URL, optionally prefixed with `litellm:` or `genai-prices:`"
            ));
        }
        if url.chars().any(char::is_control) || url.len() > 2000 {
            return Err(format!("`{text}`: not a usable URL"));
        }
        Ok(SourceSpec {
            url: url.to_owned(),
            format,
        })
    }
}

/// The limits of a sync.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPolicy {
    /// The largest share of a source's rows one document may remove, in percent.
    pub max_removed_percent: u32,
    /// The largest factor by which one document may change a rate (up or down).
    pub max_rate_factor: Decimal,
    /// Timeout of one fetch.
    pub timeout: Duration,
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            max_removed_percent: 20,
            max_rate_factor: Decimal::from(10),
            timeout: Duration::from_secs(60),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A source as `priceSources` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// The URL.
    pub url: String,
    /// The format of its last document (or the configured one).
    pub format: Option<SourceFormat>,
    /// Where the last sync left it.
    pub status: SourceStatus,
    /// Why it was refused or failed.
    pub error: Option<String>,
    /// The last sync that was applied.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last attempt, applied or not.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Prices added by the last sync (for a refused one: that it would have added).
    pub added: u64,
    /// Prices changed (a new period).
    pub changed: u64,
    /// Prices removed (their period closed).
    pub removed: u64,
    /// Prices that already said the same.
    pub unchanged: u64,
    /// Entries skipped (not billable by aispend, listed by an earlier source, a
    /// `USER` price).
    pub skipped: u64,
}

fn state_from_row(row: price_source::Model) -> SourceState {
    SourceState {
        format: row.format.parse().ok(),
        status: row.status.parse().unwrap_or(SourceStatus::Never),
        url: row.url,
        error: row.error,
        last_sync_at: row.last_sync_at.map(time::from_micros),
        last_attempt_at: row.last_attempt_at.map(time::from_micros),
        added: row.added.max(0) as u64,
        changed: row.changed.max(0) as u64,
        removed: row.removed.max(0) as u64,
        unchanged: row.unchanged.max(0) as u64,
        skipped: row.skipped.max(0) as u64,
    }
}

/// Gives each configured URL a status row (`NEVER` until its first sync). Rows of
/// URLs no longer configured stay (other processes may still list them) but are not
/// shown: [`list`] reads the configured sources.
pub async fn register(conn: &impl ConnectionTrait, specs: &[SourceSpec]) -> Result<()> {
    let now = time::to_micros(time::now());
    for spec in specs {
        price_source::Entity::insert(price_source::ActiveModel {
            url: Set(spec.url.clone()),
            format: Set(spec.format.map(|f| f.as_str()).unwrap_or("").to_owned()),
            status: Set(SourceStatus::Never.as_str().to_owned()),
            error: Set(None),
            last_sync_at: Set(None),
            last_attempt_at: Set(None),
            added: Set(0),
            changed: Set(0),
            removed: Set(0),
            unchanged: Set(0),
            skipped: Set(0),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(price_source::Column::Url)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .context("registering a price source")?;
    }
    Ok(())
}

/// The configured sources, in their order, with the outcome of their last sync (a
/// source without a status row yet is `NEVER`).
pub async fn list(conn: &impl ConnectionTrait, specs: &[SourceSpec]) -> Result<Vec<SourceState>> {
    let mut rows: HashMap<String, SourceState> = price_source::Entity::find()
        .filter(price_source::Column::Url.is_in(specs.iter().map(|s| s.url.clone())))
        .all(conn)
        .await
        .context("listing price sources")?
        .into_iter()
        .map(|r| (r.url.clone(), state_from_row(r)))
        .collect();
    Ok(specs
        .iter()
        .map(|spec| {
            rows.remove(&spec.url).unwrap_or_else(|| SourceState {
                url: spec.url.clone(),
                format: spec.format,
                status: SourceStatus::Never,
                error: None,
                last_sync_at: None,
                last_attempt_at: None,
                added: 0,
                changed: 0,
                removed: 0,
                unchanged: 0,
                skipped: 0,
            })
        })
        .collect())
}

/// Records that a sync of these sources started at `at`.
pub async fn mark_attempt(
    conn: &impl ConnectionTrait,
    specs: &[SourceSpec],
    at: DateTime<Utc>,
) -> Result<()> {
    price_source::Entity::update_many()
        .col_expr(
            price_source::Column::LastAttemptAt,
            sea_orm::sea_query::Expr::value(time::to_micros(at)),
        )
        .filter(price_source::Column::Url.is_in(specs.iter().map(|s| s.url.clone())))
        .exec(conn)
        .await
        .context("recording the start of a price sync")?;
    Ok(())
}

/// When the least recently attempted of these sources was last attempted (`None`:
/// one never was, so a sync is due now).
pub async fn oldest_attempt(
    conn: &impl ConnectionTrait,
    specs: &[SourceSpec],
) -> Result<Option<DateTime<Utc>>> {
    Ok(list(conn, specs)
        .await?
        .iter()
        .map(|r| r.last_attempt_at)
        .collect::<Option<Vec<_>>>()
        .and_then(|v| v.into_iter().min()))
}

/// A fetched and decoded document, or why it could not be used.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The source.
    pub spec: SourceSpec,
    /// Its format and prices (and how many entries it skipped), or the error.
    pub document: std::result::Result<Decoded, String>,
}

/// A document's prices.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The format it was read as.
    pub format: SourceFormat,
    /// Its prices (effective dates are decided when they are written).
    pub drafts: Vec<PriceDraft>,
    /// Entries that aispend cannot bill.
    pub skipped: u64,
}

/// Reads a document in its configured format, or the one its shape shows (an array
/// is genai-prices data, an object a LiteLLM map).
pub fn decode(
    format: Option<SourceFormat>,
    document: &Value,
) -> std::result::Result<Decoded, String> {
    let format = match (format, document) {
        (Some(f), _) => f,
        (None, Value::Array(_)) => SourceFormat::GenaiPrices,
        (None, Value::Object(_)) => SourceFormat::Litellm,
        (None, _) => {
            return Err("the document is neither a LiteLLM price map (an object) nor genai-prices data (an array)".into());
        }
    };
    let describe = |e: crate::domain::error::Error| e.to_string();
    let (drafts, skipped) = match format {
        SourceFormat::Litellm => {
            let (drafts, report) =
                litellm::drafts_from_map(document, DateTime::UNIX_EPOCH).map_err(describe)?;
            (drafts, report.skipped_total())
        }
        SourceFormat::GenaiPrices => {
            let (drafts, skipped) =
                genai_prices::drafts_from_document(document, DateTime::UNIX_EPOCH)
                    .map_err(describe)?;
            (drafts, skipped.iter().map(|(_, n)| n).sum())
        }
    };
    Ok(Decoded {
        format,
        drafts,
        skipped,
    })
}

/// Fetches and decodes one source. Errors are the source's status, not the caller's.
pub async fn fetch(client: &reqwest::Client, spec: &SourceSpec, policy: &SyncPolicy) -> Fetched {
    let document = async {
        let mut response = client
            .get(&spec.url)
            .timeout(policy.timeout)
            .send()
            .await
            .map_err(|e| format!("fetching the document: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("fetching the document: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the document: {e}"))?
        {
            if body.len() + chunk.len() > policy.max_bytes {
                return Err(format!(
                    "the document is larger than {} bytes",
                    policy.max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| format!("the document is not JSON: {e}"))?;
        decode(spec.format, &value)
    }
    .await;
    Fetched {
        spec: spec.clone(),
        document,
    }
}

/// The HTTP client syncs fetch with.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!(
            "aispend/",
            env!("CARGO_PKG_VERSION"),
            " price-sync"
        ))
        .build()
        .unwrap_or_default()
}

/// What one sync did.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// Each source's new state, in the configured order.
    pub sources: Vec<SourceState>,
    /// Events stored `UNPRICED` that the new prices priced.
    pub repriced: u64,
}

/// The configured sources and limits, and the one way a sync runs (the scheduled
/// job, `aispend prices sync` and the `syncPriceSources` mutation all call [`run`]).
///
/// [`run`]: PriceSync::run
pub struct PriceSync {
    /// The sources, in precedence order.
    pub specs: Vec<SourceSpec>,
    /// The limits.
    pub policy: SyncPolicy,
    /// Time between scheduled syncs (`None`: only on demand).
    pub interval: Option<Duration>,
    db: DatabaseConnection,
    ledger: Arc<Ledger>,
    client: reqwest::Client,
}

impl PriceSync {
    /// A sync over these sources, writing through this ledger's price cache and hooks.
    pub fn new(
        db: DatabaseConnection,
        ledger: Arc<Ledger>,
        specs: Vec<SourceSpec>,
        policy: SyncPolicy,
        interval: Option<Duration>,
    ) -> PriceSync {
        PriceSync {
            specs,
            policy,
            interval,
            db,
            ledger,
            client: client(),
        }
    }

    /// Fetches every source, writes what passes, reloads the price book and prices the
    /// events that were stored `UNPRICED`.
    pub async fn run(&self) -> Result<SyncOutcome> {
        if self.specs.is_empty() {
            return Ok(SyncOutcome {
                sources: vec![],
                repriced: 0,
            });
        }
        // Marked first, so a scheduler sees the sync is under way and does not queue
        // it again while documents are fetched.
        mark_attempt(&self.db, &self.specs, time::now()).await?;
        let fetched = futures::future::join_all(
            self.specs
                .iter()
                .map(|spec| fetch(&self.client, spec, &self.policy)),
        )
        .await;
        for f in &fetched {
            if let Err(e) = &f.document {
                tracing::warn!(url = %f.spec.redacted(), error = %e, "a price source could not be read");
            }
        }
        let (sources, touched) = apply(&self.db, &fetched, &self.policy, time::now()).await?;
        for s in &sources {
            tracing::info!(
                url = %redact_url(&s.url),
                status = %s.status,
                added = s.added,
                changed = s.changed,
                removed = s.removed,
                error = s.error.as_deref().unwrap_or(""),
                "price source synced"
            );
        }
        self.ledger.prices().reload(&self.db).await?;
        let repriced = if touched.is_empty() {
            0
        } else {
            self.ledger.reprice_unpriced(&touched).await?
        };
        Ok(SyncOutcome { sources, repriced })
    }

    /// Whether a scheduled sync is due at `now`: some configured source was never
    /// attempted, or not within the interval.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<bool> {
        let Some(interval) = self.interval.filter(|_| !self.specs.is_empty()) else {
            return Ok(false);
        };
        let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::days(1));
        Ok(match oldest_attempt(&self.db, &self.specs).await? {
            None => true,
            Some(at) => at + interval <= now,
        })
    }

    /// The configured sources and their last sync (see [`list`]).
    pub async fn list(&self) -> Result<Vec<SourceState>> {
        list(&self.db, &self.specs).await
    }

    /// Records the configured sources (see [`register`]).
    pub async fn register(&self) -> Result<()> {
        register(&self.db, &self.specs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_settings() {
        let s: SourceSpec = "litellm:http://127.0.0.1:9/map.json".parse().unwrap();
        assert_eq!(s.format, Some(SourceFormat::Litellm));
        assert_eq!(s.url, "http://127.0.0.1:9/map.json");
        let s: SourceSpec = "genai-prices:https://example.com/data.json"
            .parse()
            .unwrap();
        assert_eq!(s.format, Some(SourceFormat::GenaiPrices));
        let s: SourceSpec = "https://example.com/x.json".parse().unwrap();
        assert_eq!(s.format, None);
        assert!("ftp://example.com/x".parse::<SourceSpec>().is_err());
        assert!("not a url".parse::<SourceSpec>().is_err());
    }
}
