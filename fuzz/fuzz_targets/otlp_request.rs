//! `POST /v1/traces` bodies: protobuf or JSON, plain or gzip (the first byte picks),
//! decoded as the handler does, mapped from GenAI span attributes to usage, and each
//! usable span checked and priced.
#![no_main]

use aispend::domain::usage::UsageSource;
use aispend::domain::usage::otlp::{SpanOutcome, map_request};
use aispend::http::otlp::parse_request;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = if selector & 1 == 0 {
        "application/x-protobuf"
    } else {
        "application/json"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if selector & 2 != 0 {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let Ok(request) = parse_request(&headers, Bytes::copy_from_slice(body)) else {
        return;
    };
    for span in map_request(&request, "service.name") {
        if let SpanOutcome::Usage(raw) = span.outcome {
            aispend_fuzz::check_usage(*raw, UsageSource::Otlp);
        }
    }
});
