//! `POST /v1/traces`: OTLP/HTTP trace ingest, so an application's OpenTelemetry
//! exporter (or a collector) sends GenAI spans straight to aispend.
//!
//! Thin edge, following the OTLP/HTTP specification: protobuf
//! (`application/x-protobuf`) or JSON (`application/json`) bodies, optionally
//! `Content-Encoding: gzip`; the answer is an `ExportTraceServiceResponse` in the
//! request's encoding, with `partial_success` counting the rejected spans and a
//! message naming them (and how many spans had no GenAI usage and were skipped). A
//! body that cannot be read is `400` with a `google.rpc.Status` naming the problem, and
//! nothing is stored. The mapping from span attributes to usage lives in
//! `domain/usage/otlp.rs`; recording goes through the same ledger as GraphQL
//! (`Ledger::record_valid`: a bad span is rejected alone), with source `OTLP` and an
//! idempotency key from the trace and span id.
//!
//! Authentication is our bearer token with the `INGEST` scope. A project-bound token
//! decides the project (a span naming another project in `aispend.project_id` is
//! refused with `403`); an unbound token reads `aispend.project_id` from the resource.

use super::HttpState;
use crate::domain::Error;
use crate::domain::auth::Scope;
use crate::domain::usage::UsageSource;
use crate::domain::usage::ingest::MAX_BATCH;
use crate::domain::usage::input::RawUsage;
use crate::domain::usage::otlp::{self, SpanOutcome};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::time::Instant;

/// Rejected spans named one by one in the partial-success message; the rest are
/// counted.
const NAMED_REJECTIONS: usize = 5;

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An error answer: HTTP status, gRPC status code, message.
struct Failure {
    http: StatusCode,
    code: i32,
    message: String,
}

impl Failure {
    fn new(http: StatusCode, code: i32, message: impl Into<String>) -> Failure {
        Failure {
            http,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, 3, message)
    }

    fn render(self, encoding: Encoding) -> Response {
        let status = Status {
            code: self.code,
            message: self.message,
        };
        let body = match encoding {
            Encoding::Protobuf => status.encode_to_vec(),
            Encoding::Json => serde_json::json!({"code": status.code, "message": status.message})
                .to_string()
                .into_bytes(),
        };
        encoded(self.http, encoding, body)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Unauthorized => Failure::new(
                StatusCode::UNAUTHORIZED,
                16,
                "a bearer token with the INGEST scope is required",
            ),
            Error::Forbidden(m) => Failure::new(StatusCode::FORBIDDEN, 7, m),
            Error::NotFound { what } => {
                Failure::new(StatusCode::NOT_FOUND, 5, format!("{what} not found"))
            }
            Error::InvalidInput(errors) => Failure::bad(
                errors
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other @ Error::Unavailable { .. } => {
                let translated = crate::graphql::error::to_gql(other);
                Failure::new(StatusCode::SERVICE_UNAVAILABLE, 14, translated.message)
            }
            other => {
                let translated = crate::graphql::error::to_gql(other);
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, 13, translated.message)
            }
        }
    }
}

fn encoded(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

/// The request's encoding from its `Content-Type` (parameters such as `charset`
/// ignored).
fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

/// The body with any `Content-Encoding` undone, at most [`super::MAX_BODY_BYTES`]
/// after decompression (a small gzip body must not expand without bound).
fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes, Failure> {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match coding.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") => {
            let limit = super::MAX_BODY_BYTES as u64;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| Failure::bad(format!("the gzip body cannot be decompressed: {e}")))?;
            if out.len() as u64 > limit {
                return Err(Failure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    3,
                    format!("the decompressed body exceeds {limit} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            3,
            format!("Content-Encoding `{other}` is not supported; send gzip or none"),
        )),
    }
}

fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, Failure> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
            Failure::bad(format!(
                "the body is not a protobuf ExportTraceServiceRequest: {e}"
            ))
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            Failure::bad(format!(
                "the body is not an OTLP/JSON ExportTraceServiceRequest: {e}"
            ))
        }),
    }
}

/// The request in a body of `encoding`, with its `Content-Encoding` undone.
fn read_body(
    headers: &HeaderMap,
    encoding: Encoding,
    body: Bytes,
) -> Result<ExportTraceServiceRequest, Failure> {
    let body = decompress(headers, body)?;
    decode(encoding, &body)
}

/// Reads a body exactly as `POST /v1/traces` does (content type, content encoding,
/// size limit, decoding): the request, or the message its client would get. For the
/// fuzz targets and tests; the handler itself keeps the status codes.
pub fn parse_request(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<ExportTraceServiceRequest, String> {
    let encoding = encoding(headers)
        .ok_or("Content-Type must be application/x-protobuf or application/json")?;
    read_body(headers, encoding, body).map_err(|f| f.message)
}

/// What became of a request's spans.
#[derive(Debug, Default)]
struct Tally {
    stored: usize,
    duplicates: usize,
    skipped: usize,
    rejected: Vec<String>,
}

impl Tally {
    /// The OTLP answer: `partial_success` only when something was rejected or
    /// skipped (the specification allows a message with zero rejections as a warning).
    fn response(&self) -> ExportTraceServiceResponse {
        if self.rejected.is_empty() && self.skipped == 0 {
            return ExportTraceServiceResponse {
                partial_success: None,
            };
        }
        let mut parts = vec![];
        if !self.rejected.is_empty() {
            let mut named: Vec<String> = self
                .rejected
                .iter()
                .take(NAMED_REJECTIONS)
                .cloned()
                .collect();
            if self.rejected.len() > NAMED_REJECTIONS {
                named.push(format!(
                    "and {} more",
                    self.rejected.len() - NAMED_REJECTIONS
                ));
            }
            parts.push(format!(
                "{} span(s) rejected: {}",
                self.rejected.len(),
                named.join("; ")
            ));
        }
        if self.skipped > 0 {
            parts.push(format!(
                "{} span(s) without GenAI usage (gen_ai.usage.input_tokens / output_tokens) skipped",
                self.skipped
            ));
        }
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: self.rejected.len() as i64,
                error_message: parts.join(". "),
            }),
        }
    }
}

/// `POST /v1/traces`.
pub async fn traces(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let Some(encoding) = encoding(&headers) else {
        return Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            3,
            "Content-Type must be application/x-protobuf or application/json",
        )
        .render(Encoding::Json);
    };
    let result = ingest(&state, &headers, encoding, body).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    state
        .app
        .metrics
        .ingest_latency("otlp", outcome, started.elapsed());
    match result {
        Ok(tally) => {
            let m = &state.app.metrics;
            m.otlp_spans("stored", tally.stored);
            m.otlp_spans("duplicate", tally.duplicates);
            m.otlp_spans("skipped", tally.skipped);
            m.otlp_spans("rejected", tally.rejected.len());
            let response = tally.response();
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
            };
            encoded(StatusCode::OK, encoding, body)
        }
        Err(failure) => failure.render(encoding),
    }
}

async fn ingest(
    state: &HttpState,
    headers: &HeaderMap,
    encoding: Encoding,
    body: Bytes,
) -> Result<Tally, Failure> {
    let principal = super::rest::principal(state, headers).await?;
    principal.require(Scope::Ingest)?;
    let request = read_body(headers, encoding, body)?;
    let endpoint_attribute = &state.integrations.otlp_endpoint_attribute;
    let mut tally = Tally::default();
    let mut usable: Vec<RawUsage> = vec![];
    let mut span_ids: Vec<String> = vec![];
    for span in otlp::map_request(&request, endpoint_attribute) {
        match span.outcome {
            SpanOutcome::Skipped => tally.skipped += 1,
            SpanOutcome::Rejected(reason) => tally.rejected.push(format!("{}: {reason}", span.id)),
            SpanOutcome::Usage(raw) => {
                usable.push(*raw);
                span_ids.push(span.id);
            }
        }
    }
    if usable.len() > MAX_BATCH {
        return Err(Failure::bad(format!(
            "at most {MAX_BATCH} GenAI spans per request (got {}); lower the exporter's batch size",
            usable.len()
        )));
    }
    if !usable.is_empty() {
        let result = state
            .app
            .ledger
            .record_valid(&principal, usable, UsageSource::Otlp)
            .await?;
        tally.stored = result.stored();
        tally.duplicates = result.duplicates();
        for r in result.rejected {
            let reasons: Vec<String> = r
                .errors
                .iter()
                .map(|e| otlp::describe(e, endpoint_attribute))
                .collect();
            let id = span_ids.get(r.index).map(String::as_str).unwrap_or("?");
            tally.rejected.push(format!("{id}: {}", reasons.join(", ")));
        }
    }
    tracing::debug!(
        stored = tally.stored,
        duplicates = tally.duplicates,
        skipped = tally.skipped,
        rejected = tally.rejected.len(),
        "OTLP traces ingested"
    );
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_success_has_no_partial_success() {
        assert_eq!(Tally::default().response().partial_success, None);
    }

    #[test]
    fn rejections_are_counted_and_the_first_named() {
        let tally = Tally {
            rejected: (0..7).map(|i| format!("span {i}: bad")).collect(),
            skipped: 2,
            ..Tally::default()
        };
        let partial = tally.response().partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 7);
        assert!(partial.error_message.contains("span 4: bad"));
        assert!(!partial.error_message.contains("span 5: bad"));
        assert!(partial.error_message.contains("and 2 more"));
        assert!(
            partial
                .error_message
                .contains("2 span(s) without GenAI usage")
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(super::super::MAX_BODY_BYTES >> 20) + 1 {
            encoder.write_all(&zeros).unwrap();
        }
        let body = Bytes::from(encoder.finish().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let failure = decompress(&headers, body).err().unwrap();
        assert_eq!(failure.http, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
