//! Offline quotes from the built-in catalog (`aispend prices quote`): what aispend
//! charges for a usage, without a database. `scripts/check-catalog` uses it to compare
//! the catalog with the public price sources.

use super::book::{MatchKind, PriceBook};
use super::variant::Variant;
use crate::domain::error::{Error, Result};
use crate::domain::provider::{Provider, split_model_prefix};
use crate::domain::tokens::{ServiceTier, TokenCounts};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One usage to price (a JSON line).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteRequest {
    /// Provider; may be omitted when the model carries it (`bedrock/…`).
    pub provider: Option<String>,
    /// Model id as an application sends it.
    pub model: String,
    /// When the usage happened (default: now).
    pub at: Option<DateTime<Utc>>,
    /// Service tier (default: standard).
    pub service_tier: Option<String>,
    /// Requests the tokens are spread over (default 1).
    pub requests: Option<i64>,
    /// Uncached input tokens.
    #[serde(default)]
    pub input: i64,
    /// Output tokens (reasoning included).
    #[serde(default)]
    pub output: i64,
    /// Cache reads.
    #[serde(default)]
    pub cache_read: i64,
    /// 5-minute cache writes.
    #[serde(default)]
    pub cache_write: i64,
    /// 1-hour cache writes.
    #[serde(default)]
    pub cache_write_1h: i64,
    /// Reasoning tokens (part of output).
    #[serde(default)]
    pub reasoning: i64,
    /// Audio input tokens.
    #[serde(default)]
    pub audio_input: i64,
    /// Audio output tokens.
    #[serde(default)]
    pub audio_output: i64,
    /// Image input tokens.
    #[serde(default)]
    pub image_input: i64,
    /// Image output tokens.
    #[serde(default)]
    pub image_output: i64,
    /// Images generated.
    #[serde(default)]
    pub images: i64,
    /// Web-search calls.
    #[serde(default)]
    pub web_searches: i64,
    /// Seconds of video generated.
    #[serde(default)]
    pub video_seconds: i64,
    /// The pricing variant (`low`, `hd/1024x1024`, `720p`), when a fee depends on it.
    #[serde(default)]
    pub variant: Option<String>,
}

/// The answer to one request (a JSON line).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The provider the usage was priced under.
    pub provider: Option<String>,
    /// The catalog model that prices it; `null` when unpriced.
    pub model: Option<String>,
    /// How it matched: `EXACT`, `ALIAS` or `SUFFIX`.
    pub matched: Option<&'static str>,
    /// The cost in USD, as a decimal string; `null` when unpriced.
    pub cost_usd: Option<String>,
    /// A unit the usage has that the matched price has no rate for (then it is
    /// unpriced), e.g. `audio_input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_rate: Option<&'static str>,
}

/// Prices one request against a book.
pub fn quote(book: &PriceBook, request: &QuoteRequest) -> Result<Quote> {
    let tier: ServiceTier = request
        .service_tier
        .as_deref()
        .unwrap_or("standard")
        .parse()
        .map_err(|e: String| Error::invalid("serviceTier", e))?;
    let (provider, model) = match request.provider.as_deref() {
        Some(p) => (
            Provider::parse(p).ok_or_else(|| Error::invalid("provider", "not a provider name"))?,
            request.model.as_str(),
        ),
        None => split_model_prefix(&request.model).ok_or_else(|| {
            Error::invalid(
                "provider",
                "is required (or prefix the model, e.g. `openai/gpt-4o`)",
            )
        })?,
    };
    let tokens = TokenCounts {
        input: request.input,
        output: request.output,
        cache_read: request.cache_read,
        cache_write: request.cache_write,
        cache_write_1h: request.cache_write_1h,
        reasoning: request.reasoning,
        audio_input: request.audio_input,
        audio_output: request.audio_output,
        image_input: request.image_input,
        image_output: request.image_output,
        images: request.images,
        web_searches: request.web_searches,
        video_seconds: request.video_seconds,
    };
    let variant = request
        .variant
        .as_deref()
        .map(Variant::parse)
        .transpose()
        .map_err(|e| Error::invalid("variant", e))?;
    let variant = variant.as_ref();
    let requests = request.requests.unwrap_or(1);
    let at = request.at.unwrap_or_else(Utc::now);
    let found = book.find(&provider, model, at);
    let missing_rate = found
        .as_ref()
        .and_then(|m| m.price.card.missing_rate(&tokens, requests, tier, variant));
    Ok(Quote {
        provider: Some(provider.as_str().to_owned()),
        model: found.as_ref().map(|m| m.price.model.clone()),
        matched: found.as_ref().map(|m| match m.kind {
            MatchKind::Exact => "EXACT",
            MatchKind::Alias => "ALIAS",
            MatchKind::Suffix => "SUFFIX",
        }),
        cost_usd: found
            .as_ref()
            .filter(|_| missing_rate.is_none())
            .and_then(|m| m.price.card.cost(&tokens, requests, tier, variant))
            .map(|usd| usd.to_decimal().normalize().to_string()),
        missing_rate: missing_rate.map(|class| class.key()),
    })
}
