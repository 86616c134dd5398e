//! `POST /api/usage` bodies (the portal-compatible REST route), with and without an
//! `Idempotency-Key` header, through the same parse and checks as the handler.
#![no_main]

use aispend::domain::usage::UsageSource;
use aispend::http::rest::parse_usage_body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line, when it is short, is the Idempotency-Key header.
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if i <= 64 => (Some(&data[..i]), &data[i + 1..]),
        _ => (None, data),
    };
    let mut headers = HeaderMap::new();
    if let Some(h) = header.and_then(|h| HeaderValue::from_bytes(h).ok()) {
        headers.insert("idempotency-key", h);
    }
    match parse_usage_body(&headers, body) {
        Ok(raw) => aispend_fuzz::check_usage(raw, UsageSource::Api),
        Err(r) => {
            assert!(
                r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNPROCESSABLE_ENTITY,
                "unexpected status {}",
                r.status
            );
            assert!(r.details.is_array(), "details must be a list");
        }
    }
});
