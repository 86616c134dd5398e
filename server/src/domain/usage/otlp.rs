//! OpenTelemetry GenAI spans as usage: the mapping from the GenAI semantic conventions
//! (`gen_ai.*` attributes on a span) to [`RawUsage`], so teams that already emit
//! spans (OpenLLMetry, OpenLIT, the official instrumentations) need no new code.
//!
//! Pure: it reads an already decoded OTLP request and says, for every span, whether it
//! is usage, is not usage (skipped), or is usage that cannot be recorded (rejected,
//! with the attribute at fault). The HTTP edge (`http/otlp.rs`) decodes, authenticates
//! and records.
//!
//! The rules:
//! - a span is usage when it carries `gen_ai.usage.input_tokens` or
//!   `gen_ai.usage.output_tokens` (or the older `prompt_tokens`/`completion_tokens`);
//! - provider from `gen_ai.provider.name`, else the older `gen_ai.system`;
//! - model from `gen_ai.response.model`, else `gen_ai.request.model`;
//! - `gen_ai.usage.input_tokens` counts cache reads and writes (the conventions say
//!   so), while aispend's `inputTokens` excludes them: they are subtracted;
//! - `gen_ai.usage.output_tokens` includes reasoning, as aispend's `outputTokens` does;
//! - time is the span's start, latency its duration; endpoint from a configurable
//!   attribute (default `service.name`), user from `user.id` or `enduser.id`, each
//!   looked up on the span first and then on its resource;
//! - the idempotency key is `otlp:<trace id>:<span id>`, so an exporter's retry of the
//!   same span stores nothing new;
//! - the units beyond text tokens have no GenAI convention yet, so they are read from
//!   aispend's own attributes: `aispend.usage.audio_input_tokens`,
//!   `aispend.usage.image_input_tokens` (parts of `gen_ai.usage.input_tokens`, taken out
//!   of it like cache reads), `aispend.usage.audio_output_tokens`,
//!   `aispend.usage.image_output_tokens` (parts of `gen_ai.usage.output_tokens`),
//!   `aispend.usage.images_generated`, `aispend.usage.web_search_calls` and
//!   `aispend.usage.video_seconds`; the pricing variant (search context size, image
//!   quality and size, video resolution) from `aispend.pricing_variant`.

use super::input::RawUsage;
use crate::domain::error::FieldError;
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The resource (or span) attribute an unbound token uses to name the project.
pub const PROJECT_ATTRIBUTE: &str = "aispend.project_id";

/// The attribute the endpoint (application feature) is read from by default.
pub const DEFAULT_ENDPOINT_ATTRIBUTE: &str = "service.name";

const PROVIDER: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
const MODEL: &[&str] = &["gen_ai.response.model", "gen_ai.request.model"];
const INPUT: &[&str] = &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
const OUTPUT: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];
const CACHE_READ: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
];
const CACHE_WRITE: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
];
const REASONING: &[&str] = &[
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
];
const SERVICE_TIER: &[&str] = &[
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
];
const USER: &[&str] = &["user.id", "enduser.id"];
const AUDIO_INPUT: &[&str] = &["aispend.usage.audio_input_tokens"];
const IMAGE_INPUT: &[&str] = &["aispend.usage.image_input_tokens"];
const AUDIO_OUTPUT: &[&str] = &["aispend.usage.audio_output_tokens"];
const IMAGE_OUTPUT: &[&str] = &["aispend.usage.image_output_tokens"];
const IMAGES: &[&str] = &["aispend.usage.images_generated"];
const WEB_SEARCHES: &[&str] = &["aispend.usage.web_search_calls"];
const VIDEO_SECONDS: &[&str] = &["aispend.usage.video_seconds"];
/// The pricing variant (search context size, image quality and size, video
/// resolution) has no GenAI semantic convention: aispend's own attribute.
const PRICING_VARIANT: &str = "aispend.pricing_variant";

/// The attribute of each unit, and the unit's field in [`RawUsage`] terms.
const UNIT_ATTRIBUTES: [(&str, &[&str]); 7] = [
    ("audioInputTokens", AUDIO_INPUT),
    ("imageInputTokens", IMAGE_INPUT),
    ("audioOutputTokens", AUDIO_OUTPUT),
    ("imageOutputTokens", IMAGE_OUTPUT),
    ("imagesGenerated", IMAGES),
    ("webSearchCalls", WEB_SEARCHES),
    ("videoSeconds", VIDEO_SECONDS),
];

/// What one span is.
#[derive(Debug, Clone, PartialEq)]
pub enum SpanOutcome {
    /// GenAI usage, ready to record (the project left empty unless the resource or
    /// span names one).
    Usage(Box<RawUsage>),
    /// Not GenAI usage (no token counts): skipped.
    Skipped,
    /// GenAI usage that cannot be recorded, with the reason (attribute names).
    Rejected(String),
}

/// One span of a request and what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSpan {
    /// `<trace id hex>:<span id hex>`, for messages.
    pub id: String,
    /// What it is.
    pub outcome: SpanOutcome,
}

/// Maps every span of a request, in order.
pub fn map_request(
    request: &ExportTraceServiceRequest,
    endpoint_attribute: &str,
) -> Vec<MappedSpan> {
    let mut out = vec![];
    for resource_spans in &request.resource_spans {
        let resource: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                out.push(map_span(span, resource, endpoint_attribute));
            }
        }
    }
    out
}

/// The attributes of a span, then of its resource.
struct Attributes<'a> {
    span: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl<'a> Attributes<'a> {
    fn find<'k>(&self, keys: &[&'k str], span_only: bool) -> Option<(&'k str, &'a AnyValue)> {
        let layers: &[&[KeyValue]] = if span_only {
            &[self.span]
        } else {
            &[self.span, self.resource]
        };
        for layer in layers {
            for key in keys {
                if let Some(v) = layer
                    .iter()
                    .find(|kv| kv.key == *key)
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| v.value.as_ref())
                {
                    return Some((key, v));
                }
            }
        }
        None
    }

    fn text(&self, keys: &[&str], span_only: bool) -> Option<String> {
        match self.find(keys, span_only)?.1 {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            _ => None,
        }
    }

    /// A token count: an integer, an integral double, or digits in a string (some
    /// instrumentations send those). `Err` names the attribute that is not a count.
    fn count(&self, keys: &[&str]) -> Result<Option<i64>, String> {
        let Some((key, value)) = self.find(keys, true) else {
            return Ok(None);
        };
        let n = match value {
            AnyValue::IntValue(i) => Some(*i),
            AnyValue::DoubleValue(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 9.0e15 => {
                Some(*d as i64)
            }
            AnyValue::StringValue(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        n.map(Some)
            .ok_or_else(|| format!("{key}: must be a whole number of tokens"))
    }
}

/// Provider names of the GenAI conventions that differ from aispend's.
fn provider_name(semconv: &str) -> &str {
    match semconv.trim() {
        "gcp.gemini" | "gcp.vertex_ai" | "gcp.gen_ai" => "google",
        "mistral_ai" => "mistral",
        "x_ai" => "xai",
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn instant(unix_nanos: u64) -> Option<DateTime<Utc>> {
    let nanos = i64::try_from(unix_nanos).ok()?;
    (nanos > 0).then(|| DateTime::from_timestamp_nanos(nanos))
}

fn map_span(span: &Span, resource: &[KeyValue], endpoint_attribute: &str) -> MappedSpan {
    let id = format!("{}:{}", hex(&span.trace_id), hex(&span.span_id));
    let outcome = outcome(span, resource, endpoint_attribute, &id);
    MappedSpan { id, outcome }
}

fn outcome(span: &Span, resource: &[KeyValue], endpoint_attribute: &str, id: &str) -> SpanOutcome {
    let attrs = Attributes {
        span: &span.attributes,
        resource,
    };
    let counts = (|| -> Result<_, String> {
        Ok((
            attrs.count(INPUT)?,
            attrs.count(OUTPUT)?,
            attrs.count(CACHE_READ)?,
            attrs.count(CACHE_WRITE)?,
            attrs.count(REASONING)?,
        ))
    })();
    let (input, output, cache_read, cache_write, reasoning) = match counts {
        Ok(c) => c,
        Err(message) => return SpanOutcome::Rejected(message),
    };
    let mut units = [None; 7];
    for (slot, (_, keys)) in units.iter_mut().zip(UNIT_ATTRIBUTES) {
        match attrs.count(keys) {
            Ok(n) => *slot = n,
            Err(message) => return SpanOutcome::Rejected(message),
        }
    }
    let [
        audio_input,
        image_input,
        audio_output,
        image_output,
        images,
        web_searches,
        video_seconds,
    ] = units;
    if input.is_none() && output.is_none() {
        return SpanOutcome::Skipped;
    }
    if span.trace_id.len() != 16 || span.span_id.len() != 8 {
        return SpanOutcome::Rejected(
            "the span needs a 16-byte trace id and an 8-byte span id (they make its idempotency key)"
                .into(),
        );
    }
    let cached = cache_read
        .unwrap_or(0)
        .saturating_add(cache_write.unwrap_or(0));
    let input = match input {
        Some(total) if cached > 0 && total < cached => {
            return SpanOutcome::Rejected(format!(
                "gen_ai.usage.input_tokens ({total}) is less than the cache reads and writes ({cached}) it includes"
            ));
        }
        Some(total) => Some(total - cached),
        None => None,
    };
    // Audio and image tokens are parts of the input and output totals too.
    let part = |total: Option<i64>, parts: [Option<i64>; 2], what: &str| {
        let parts = parts[0].unwrap_or(0).saturating_add(parts[1].unwrap_or(0));
        match total {
            Some(total) if parts > 0 && total < parts => Err(format!(
                "gen_ai.usage.{what}_tokens ({total}) is less than the audio and image tokens ({parts}) it includes"
            )),
            Some(total) => Ok(Some(total - parts)),
            None => Ok(None),
        }
    };
    let input = match part(input, [audio_input, image_input], "input") {
        Ok(n) => n,
        Err(message) => return SpanOutcome::Rejected(message),
    };
    let output = match part(output, [audio_output, image_output], "output") {
        Ok(n) => n,
        Err(message) => return SpanOutcome::Rejected(message),
    };
    let start = instant(span.start_time_unix_nano);
    let latency_ms = match (start, instant(span.end_time_unix_nano)) {
        (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds()),
        _ => None,
    };
    let endpoint_keys = [endpoint_attribute];
    let raw = RawUsage {
        project_id: attrs.text(&[PROJECT_ATTRIBUTE], false),
        provider: attrs
            .text(PROVIDER, true)
            .map(|p| provider_name(&p).to_owned()),
        model: attrs.text(MODEL, true),
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: reasoning,
        audio_input_tokens: audio_input,
        audio_output_tokens: audio_output,
        image_input_tokens: image_input,
        image_output_tokens: image_output,
        images_generated: images,
        web_search_calls: web_searches,
        video_seconds,
        endpoint: attrs.text(&endpoint_keys, false),
        service_tier: attrs
            .text(SERVICE_TIER, true)
            .filter(|t| t.parse::<crate::domain::tokens::ServiceTier>().is_ok()),
        pricing_variant: attrs.text(&[PRICING_VARIANT], true),
        latency_ms,
        occurred_at: start,
        idempotency_key: Some(format!("otlp:{id}")),
        user: attrs.text(USER, false),
        ..RawUsage::default()
    };
    SpanOutcome::Usage(Box::new(raw))
}

/// A parse problem of a mapped span, named by the attribute it came from.
pub fn describe(error: &FieldError, endpoint_attribute: &str) -> String {
    let attribute = match error.field.as_str() {
        "projectId" => PROJECT_ATTRIBUTE,
        "provider" => "gen_ai.provider.name",
        "model" => "gen_ai.response.model / gen_ai.request.model",
        "inputTokens" => "gen_ai.usage.input_tokens",
        "outputTokens" => "gen_ai.usage.output_tokens",
        "cacheReadTokens" => "gen_ai.usage.cache_read.input_tokens",
        "cacheWriteTokens" => "gen_ai.usage.cache_creation.input_tokens",
        "reasoningTokens" => "gen_ai.usage.reasoning.output_tokens",
        "endpoint" => endpoint_attribute,
        "user" => "user.id",
        "occurredAt" => "the span's start time",
        "latencyMs" => "the span's duration",
        "pricingVariant" => PRICING_VARIANT,
        other => UNIT_ATTRIBUTES
            .iter()
            .find(|(field, _)| *field == other)
            .map_or(other, |(_, keys)| keys[0]),
    };
    format!("{attribute}: {}", error.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue as Any;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn kv(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(Any { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> AnyValue {
        AnyValue::StringValue(v.into())
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<Vec<KeyValue>>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans
                        .into_iter()
                        .enumerate()
                        .map(|(i, attributes)| Span {
                            trace_id: vec![0xab; 16],
                            span_id: vec![i as u8 + 1; 8],
                            start_time_unix_nano: 1_764_806_400_000_000_000,
                            end_time_unix_nano: 1_764_806_401_250_000_000,
                            attributes,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn a_genai_span_becomes_usage_with_cache_taken_out_of_input() {
        let req = request(
            vec![kv("service.name", s("checkout")), kv("user.id", s("u-1"))],
            vec![vec![
                kv("gen_ai.system", s("mistral_ai")),
                kv("gen_ai.request.model", s("mistral-large")),
                kv("gen_ai.response.model", s("mistral-large-2411")),
                kv("gen_ai.usage.input_tokens", AnyValue::IntValue(1000)),
                kv("gen_ai.usage.cache_read.input_tokens", s("300")),
                kv("gen_ai.usage.output_tokens", AnyValue::DoubleValue(50.0)),
                kv(
                    "gen_ai.usage.reasoning.output_tokens",
                    AnyValue::IntValue(20),
                ),
            ]],
        );
        let mapped = map_request(&req, DEFAULT_ENDPOINT_ATTRIBUTE);
        let SpanOutcome::Usage(raw) = &mapped[0].outcome else {
            panic!("usage expected: {mapped:?}")
        };
        assert_eq!(raw.provider.as_deref(), Some("mistral"));
        assert_eq!(raw.model.as_deref(), Some("mistral-large-2411"));
        assert_eq!(
            (
                raw.input_tokens,
                raw.cache_read_tokens,
                raw.output_tokens,
                raw.reasoning_tokens
            ),
            (Some(700), Some(300), Some(50), Some(20))
        );
        assert_eq!(raw.endpoint.as_deref(), Some("checkout"));
        assert_eq!(raw.user.as_deref(), Some("u-1"));
        assert_eq!(raw.latency_ms, Some(1250));
        assert_eq!(
            raw.idempotency_key.as_deref(),
            Some("otlp:abababababababababababababababab:0101010101010101")
        );
    }

    #[test]
    fn units_are_read_from_aispend_attributes_and_taken_out_of_the_totals() {
        let req = request(
            vec![],
            vec![
                vec![
                    kv("gen_ai.provider.name", s("openai")),
                    kv("gen_ai.response.model", s("gpt-realtime")),
                    kv("gen_ai.usage.input_tokens", AnyValue::IntValue(1500)),
                    kv(
                        "gen_ai.usage.cache_read.input_tokens",
                        AnyValue::IntValue(640),
                    ),
                    kv("aispend.usage.audio_input_tokens", AnyValue::IntValue(688)),
                    kv("gen_ai.usage.output_tokens", AnyValue::IntValue(400)),
                    kv("aispend.usage.audio_output_tokens", s("300")),
                    kv("aispend.usage.web_search_calls", AnyValue::IntValue(2)),
                    kv("aispend.pricing_variant", s("high")),
                ],
                vec![
                    kv("gen_ai.usage.output_tokens", AnyValue::IntValue(10)),
                    kv("aispend.usage.image_output_tokens", AnyValue::IntValue(11)),
                ],
            ],
        );
        let mapped = map_request(&req, DEFAULT_ENDPOINT_ATTRIBUTE);
        let SpanOutcome::Usage(raw) = &mapped[0].outcome else {
            panic!("usage expected: {mapped:?}")
        };
        assert_eq!(
            (
                raw.input_tokens,
                raw.cache_read_tokens,
                raw.audio_input_tokens,
                raw.output_tokens,
                raw.audio_output_tokens,
                raw.web_search_calls
            ),
            (
                Some(172),
                Some(640),
                Some(688),
                Some(100),
                Some(300),
                Some(2)
            )
        );
        assert_eq!(raw.pricing_variant.as_deref(), Some("high"));
        assert!(
            matches!(&mapped[1].outcome, SpanOutcome::Rejected(m) if m.contains("gen_ai.usage.output_tokens (10)")),
            "{mapped:?}"
        );
        let error = FieldError::new("webSearchCalls", "must be between 0 and 1000000000000");
        assert!(
            describe(&error, DEFAULT_ENDPOINT_ATTRIBUTE)
                .starts_with("aispend.usage.web_search_calls")
        );
        let error = FieldError::new("pricingVariant", "must not be empty");
        assert!(
            describe(&error, DEFAULT_ENDPOINT_ATTRIBUTE).starts_with("aispend.pricing_variant")
        );
    }

    #[test]
    fn spans_without_usage_are_skipped_and_bad_counts_rejected() {
        let req = request(
            vec![],
            vec![
                vec![kv("http.method", s("GET"))],
                vec![kv("gen_ai.usage.input_tokens", s("many"))],
                vec![
                    kv("gen_ai.usage.input_tokens", AnyValue::IntValue(10)),
                    kv(
                        "gen_ai.usage.cache_read.input_tokens",
                        AnyValue::IntValue(11),
                    ),
                ],
            ],
        );
        let outcomes: Vec<_> = map_request(&req, DEFAULT_ENDPOINT_ATTRIBUTE)
            .into_iter()
            .map(|m| m.outcome)
            .collect();
        assert_eq!(outcomes[0], SpanOutcome::Skipped);
        assert!(
            matches!(&outcomes[1], SpanOutcome::Rejected(m) if m.starts_with("gen_ai.usage.input_tokens")),
            "{outcomes:?}"
        );
        assert!(matches!(&outcomes[2], SpanOutcome::Rejected(m) if m.contains("(11)")));
    }

    #[test]
    fn the_endpoint_attribute_is_configurable() {
        let req = request(
            vec![kv("service.name", s("svc"))],
            vec![vec![
                kv("app.feature", s("search")),
                kv("gen_ai.usage.output_tokens", AnyValue::IntValue(1)),
            ]],
        );
        let SpanOutcome::Usage(raw) = &map_request(&req, "app.feature")[0].outcome else {
            panic!()
        };
        assert_eq!(raw.endpoint.as_deref(), Some("search"));
        assert_eq!(raw.provider, None);
    }
}
