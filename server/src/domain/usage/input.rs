//! Parsing recorded usage: from what a client sent to a validated [`NewUsage`].
//! Every transport (GraphQL, REST) goes through here, so the rules are the same
//! everywhere and every problem is reported at once, with its field path.

use super::UsageSource;
use super::normalize;
use crate::domain::error::FieldError;
use crate::domain::ids::ProjectId;
use crate::domain::money::Usd;
use crate::domain::price::MAX_MODEL_LEN;
use crate::domain::price::variant::Variant;
use crate::domain::provider::{Provider, split_model_prefix};
use crate::domain::text::{self, TextKind};
use crate::domain::tokens::{MAX_COUNT, ServiceTier, TokenCounts};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

/// Usage as a client sent it: every field optional, nothing checked yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawUsage {
    /// Project id (text).
    pub project_id: Option<String>,
    /// Provider name.
    pub provider: Option<String>,
    /// Model id, possibly with a provider prefix.
    pub model: Option<String>,
    /// Uncached input tokens.
    pub input_tokens: Option<i64>,
    /// Output tokens (reasoning included).
    pub output_tokens: Option<i64>,
    /// Cache reads.
    pub cache_read_tokens: Option<i64>,
    /// 5-minute cache writes.
    pub cache_write_tokens: Option<i64>,
    /// 1-hour cache writes.
    pub cache_write_1h_tokens: Option<i64>,
    /// Reasoning part of output.
    pub reasoning_tokens: Option<i64>,
    /// Audio input tokens.
    pub audio_input_tokens: Option<i64>,
    /// Audio output tokens.
    pub audio_output_tokens: Option<i64>,
    /// Image input tokens.
    pub image_input_tokens: Option<i64>,
    /// Image output tokens.
    pub image_output_tokens: Option<i64>,
    /// Images generated.
    pub images_generated: Option<i64>,
    /// Web-search calls.
    pub web_search_calls: Option<i64>,
    /// Seconds of video generated.
    pub video_seconds: Option<i64>,
    /// Requests represented (default 1).
    pub requests: Option<i64>,
    /// Application feature.
    pub endpoint: Option<String>,
    /// Service tier name.
    pub service_tier: Option<String>,
    /// Pricing variant (search context size, image quality and size, video
    /// resolution).
    pub pricing_variant: Option<String>,
    /// Latency.
    pub latency_ms: Option<i64>,
    /// When it happened (default: now).
    pub occurred_at: Option<DateTime<Utc>>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Cost the provider returned.
    pub reported_cost_usd: Option<Decimal>,
    /// End-user tag.
    pub user: Option<String>,
    /// Free-form object.
    pub metadata: Option<Value>,
    /// The provider's raw usage object.
    pub usage: Option<Value>,
}

/// Validated usage, ready to price and store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUsage {
    /// Owning project.
    pub project: ProjectId,
    /// Provider.
    pub provider: Provider,
    /// Model id (trimmed, provider prefix removed).
    pub model: String,
    /// Application feature.
    pub endpoint: Option<String>,
    /// How it arrived.
    pub source: UsageSource,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Token classes.
    pub tokens: TokenCounts,
    /// Requests represented.
    pub requests: i64,
    /// Tier.
    pub service_tier: ServiceTier,
    /// Pricing variant, when a per-unit fee depends on it.
    pub variant: Option<Variant>,
    /// Latency.
    pub latency_ms: Option<i64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Provider-reported cost, which wins over computed.
    pub reported_cost: Option<Usd>,
    /// End-user tag.
    pub user: Option<String>,
    /// Metadata serialised as JSON text.
    pub metadata: Option<String>,
}

/// What parsing needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    /// The project the caller is bound to (used when the input names none).
    pub default_project: Option<ProjectId>,
    /// The server's clock.
    pub now: DateTime<Utc>,
    /// How the events arrive.
    pub source: UsageSource,
}

/// Longest free-text field (endpoint, user, idempotency key).
pub const MAX_TEXT_LEN: usize = 200;
/// Largest metadata object, serialised.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Deepest nesting of objects and lists in `metadata` (the object itself is 1).
pub const MAX_METADATA_DEPTH: usize = 8;
/// Largest latency accepted (a day).
pub const MAX_LATENCY_MS: i64 = 86_400_000;
/// Largest cost a single event may report.
pub const MAX_REPORTED_COST: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);
/// How far in the future `occurredAt` may be (clock skew).
pub const MAX_FUTURE: Duration = Duration::hours(24);

/// The earliest `occurredAt` accepted: nothing billed by token predates it.
pub fn earliest_occurred_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// How many objects and lists deep a JSON value nests (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn text(value: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())?;
    if value.chars().count() > MAX_TEXT_LEN {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters"),
        ));
        return None;
    }
    if let Some(problem) = text::problem(&value, TextKind::Identifier) {
        errors.push(FieldError::new(field, problem));
        return None;
    }
    Some(value)
}

impl RawUsage {
    fn has_explicit_tokens(&self) -> bool {
        [
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.reasoning_tokens,
            self.audio_input_tokens,
            self.audio_output_tokens,
            self.image_input_tokens,
            self.image_output_tokens,
            self.images_generated,
            self.web_search_calls,
            self.video_seconds,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// Validates everything; on failure returns every problem with its field path.
    pub fn parse(self, ctx: &ParseContext) -> Result<NewUsage, Vec<FieldError>> {
        let mut errors = vec![];

        let project = match self
            .project_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(text) => match text.parse::<ProjectId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(FieldError::new("projectId", "is not a project id"));
                    None
                }
            },
            None => {
                if ctx.default_project.is_none() {
                    errors.push(FieldError::new(
                        "projectId",
                        "is required unless the token is bound to a project",
                    ));
                }
                ctx.default_project
            }
        };

        let raw_model = self.model.as_deref().map(str::trim).unwrap_or_default();
        let explicit_provider = match self.provider.as_deref() {
            None => None,
            Some(p) => match Provider::parse(p) {
                Some(p) => Some(p),
                None => {
                    errors.push(FieldError::new(
                        "provider",
                        "must be a non-empty provider name (letters, digits, `-`, `_`, `.`)",
                    ));
                    None
                }
            },
        };
        let prefixed = split_model_prefix(raw_model);
        let (provider, model) = match (explicit_provider, prefixed) {
            (Some(p), Some((prefix, rest))) if prefix == p => (Some(p), rest.trim()),
            (Some(p), _) => (Some(p), raw_model),
            (None, Some((prefix, rest))) => (Some(prefix), rest.trim()),
            (None, None) => {
                if self.provider.is_none() {
                    errors.push(FieldError::new(
                        "provider",
                        "is required (or prefix the model, e.g. `openai/gpt-4o`)",
                    ));
                }
                (None, raw_model)
            }
        };
        if model.is_empty() || model.chars().count() > MAX_MODEL_LEN {
            errors.push(FieldError::new(
                "model",
                format!("must be 1 to {MAX_MODEL_LEN} characters"),
            ));
        } else if let Some(problem) = text::problem(model, TextKind::Identifier) {
            errors.push(FieldError::new("model", problem));
        }

        let mut reported_cost = self.reported_cost_usd;
        let mut usage_tier = None;
        let mut usage_variant = None;
        let tokens = match &self.usage {
            Some(raw) if self.has_explicit_tokens() => {
                let _ = raw;
                errors.push(FieldError::new(
                    "usage",
                    "give either the token fields or the provider's `usage` object, not both",
                ));
                TokenCounts::default()
            }
            Some(raw) => match normalize::normalize(provider.as_ref(), raw) {
                Ok(n) => {
                    usage_tier = n.service_tier;
                    usage_variant = n.variant;
                    if let Some(cost) = n.reported_cost {
                        if reported_cost.is_some() {
                            errors.push(FieldError::new(
                                "reportedCostUsd",
                                "the `usage` object already carries the provider's cost",
                            ));
                        }
                        reported_cost = Some(cost);
                    }
                    n.tokens
                }
                Err(e) => {
                    errors.push(e);
                    TokenCounts::default()
                }
            },
            None => TokenCounts {
                input: self.input_tokens.unwrap_or(0),
                output: self.output_tokens.unwrap_or(0),
                cache_read: self.cache_read_tokens.unwrap_or(0),
                cache_write: self.cache_write_tokens.unwrap_or(0),
                cache_write_1h: self.cache_write_1h_tokens.unwrap_or(0),
                reasoning: self.reasoning_tokens.unwrap_or(0),
                audio_input: self.audio_input_tokens.unwrap_or(0),
                audio_output: self.audio_output_tokens.unwrap_or(0),
                image_input: self.image_input_tokens.unwrap_or(0),
                image_output: self.image_output_tokens.unwrap_or(0),
                images: self.images_generated.unwrap_or(0),
                web_searches: self.web_search_calls.unwrap_or(0),
                video_seconds: self.video_seconds.unwrap_or(0),
            },
        };
        for (field, value) in tokens.fields() {
            if !(0..=MAX_COUNT).contains(&value) {
                errors.push(FieldError::new(
                    field,
                    format!("must be between 0 and {MAX_COUNT}"),
                ));
            }
        }
        if tokens.reasoning > tokens.output && tokens.reasoning <= MAX_COUNT {
            errors.push(FieldError::new(
                "reasoningTokens",
                "is the reasoning part of outputTokens, so it cannot exceed it",
            ));
        }

        let requests = self.requests.unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&requests) {
            errors.push(FieldError::new(
                "requests",
                format!("must be between 1 and {MAX_COUNT}"),
            ));
        }
        let service_tier = match self.service_tier.as_deref() {
            None => usage_tier.unwrap_or(ServiceTier::Standard),
            Some(s) => match s.parse::<ServiceTier>() {
                Ok(tier) => {
                    if let Some(stated) = usage_tier.filter(|stated| *stated != tier) {
                        errors.push(FieldError::new(
                            "serviceTier",
                            format!("is `{tier}` but the `usage` object says `{stated}`"),
                        ));
                    }
                    tier
                }
                Err(e) => {
                    errors.push(FieldError::new("serviceTier", e));
                    ServiceTier::Standard
                }
            },
        };
        let variant = match self.pricing_variant.as_deref() {
            None => usage_variant,
            Some(text) => match Variant::parse(text) {
                Ok(v) => {
                    if let Some(stated) = usage_variant.filter(|stated| *stated != v) {
                        errors.push(FieldError::new(
                            "pricingVariant",
                            format!("is `{v}` but the `usage` object says `{stated}`"),
                        ));
                    }
                    Some(v)
                }
                Err(e) => {
                    errors.push(FieldError::new("pricingVariant", e));
                    None
                }
            },
        };
        if let Some(latency) = self.latency_ms
            && !(0..=MAX_LATENCY_MS).contains(&latency)
        {
            errors.push(FieldError::new(
                "latencyMs",
                format!("must be between 0 and {MAX_LATENCY_MS}"),
            ));
        }
        let occurred_at = self.occurred_at.unwrap_or(ctx.now);
        if occurred_at > ctx.now + MAX_FUTURE {
            errors.push(FieldError::new(
                "occurredAt",
                "is more than 24 hours in the future",
            ));
        }
        if occurred_at < earliest_occurred_at() {
            errors.push(FieldError::new("occurredAt", "is before the year 2000"));
        }
        let occurred_at =
            crate::domain::time::from_micros(crate::domain::time::to_micros(occurred_at));

        let reported_cost = match reported_cost {
            None => None,
            Some(cost) if cost.is_sign_negative() || cost > MAX_REPORTED_COST => {
                errors.push(FieldError::new(
                    "reportedCostUsd",
                    format!("must be between 0 and {MAX_REPORTED_COST}"),
                ));
                None
            }
            Some(cost) => Usd::from_decimal(cost),
        };

        let endpoint = text(self.endpoint, "endpoint", &mut errors);
        let idempotency_key = text(self.idempotency_key, "idempotencyKey", &mut errors);
        let user = text(self.user, "user", &mut errors);
        let metadata = match self.metadata {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => {
                if let Some((field, problem)) =
                    text::json_problem(&Value::Object(map.clone()), "metadata")
                {
                    errors.push(FieldError::new(field, problem));
                }
                if depth(&Value::Object(map.clone())) > MAX_METADATA_DEPTH {
                    errors.push(FieldError::new(
                        "metadata",
                        format!("must nest at most {MAX_METADATA_DEPTH} objects or lists deep"),
                    ));
                }
                let text = serde_json::to_string(&map).unwrap_or_default();
                if text.len() > MAX_METADATA_BYTES {
                    errors.push(FieldError::new(
                        "metadata",
                        format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
                    ));
                }
                Some(text)
            }
            Some(_) => {
                errors.push(FieldError::new("metadata", "must be a JSON object"));
                None
            }
        };

        match (project, provider) {
            (Some(project), Some(provider)) if errors.is_empty() => Ok(NewUsage {
                project,
                provider,
                model: model.to_owned(),
                endpoint,
                source: ctx.source,
                occurred_at,
                tokens,
                requests,
                service_tier,
                variant,
                latency_ms: self.latency_ms,
                idempotency_key,
                reported_cost,
                user,
                metadata,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ParseContext {
        ParseContext {
            default_project: Some(ProjectId::generate()),
            now: Utc::now(),
            source: UsageSource::Api,
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_minimal_input_takes_defaults() {
        let u = RawUsage {
            provider: Some(" OpenAI ".into()),
            model: Some("gpt-4o".into()),
            input_tokens: Some(10),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap();
        assert_eq!(
            (u.provider.as_str(), u.requests, u.service_tier),
            ("openai", 1, ServiceTier::Standard)
        );
    }

    #[test]
    fn a_provider_prefix_in_the_model_is_understood() {
        let u = RawUsage {
            model: Some("anthropic/claude-sonnet-4-5".into()),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap();
        assert_eq!(
            (u.provider.as_str(), u.model.as_str()),
            ("anthropic", "claude-sonnet-4-5")
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errors = RawUsage {
            provider: Some("".into()),
            model: Some("   ".into()),
            input_tokens: Some(-1),
            output_tokens: Some(1_000_000_000_001),
            requests: Some(0),
            service_tier: Some("TURBO".into()),
            occurred_at: Some(Utc::now() + Duration::hours(25)),
            metadata: Some(json!([1])),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap_err();
        assert_eq!(
            fields(errors),
            vec![
                "provider",
                "model",
                "inputTokens",
                "outputTokens",
                "requests",
                "serviceTier",
                "occurredAt",
                "metadata"
            ]
        );
    }

    #[test]
    fn explicit_tokens_and_a_usage_object_conflict() {
        let errors = RawUsage {
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            input_tokens: Some(1),
            usage: Some(json!({"prompt_tokens": 1})),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap_err();
        assert_eq!(fields(errors), vec!["usage"]);
    }

    #[test]
    fn the_usage_objects_tier_applies_unless_the_input_names_another() {
        let batch_usage = || {
            Some(
                json!({"input_tokens": 900, "cache_read_input_tokens": 0, "output_tokens": 600,
                        "service_tier": "batch"}),
            )
        };
        let parsed = RawUsage {
            provider: Some("anthropic".into()),
            model: Some("claude-haiku-4-5".into()),
            usage: batch_usage(),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap();
        assert_eq!(parsed.service_tier, ServiceTier::Batch);
        let same = RawUsage {
            provider: Some("anthropic".into()),
            model: Some("claude-haiku-4-5".into()),
            service_tier: Some("BATCH".into()),
            usage: batch_usage(),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap();
        assert_eq!(same.service_tier, ServiceTier::Batch);
        let errors = RawUsage {
            provider: Some("anthropic".into()),
            model: Some("claude-haiku-4-5".into()),
            service_tier: Some("priority".into()),
            usage: batch_usage(),
            ..Default::default()
        }
        .parse(&ctx())
        .unwrap_err();
        assert_eq!(fields(errors), vec!["serviceTier"]);
    }

    #[test]
    fn an_unbound_caller_must_name_the_project() {
        let c = ParseContext {
            default_project: None,
            ..ctx()
        };
        let errors = RawUsage {
            provider: Some("openai".into()),
            model: Some("x".into()),
            ..Default::default()
        }
        .parse(&c)
        .unwrap_err();
        assert_eq!(fields(errors), vec!["projectId"]);
    }
}
