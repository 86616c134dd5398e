//! Per-token rate limiting (`AISPEND_RATE_LIMIT_PER_TOKEN`, off by default): a token
//! bucket per bearer token, refilled at the configured rate up to its burst. A request
//! over the limit is answered before it reaches a handler: `429` with `Retry-After`,
//! in the error shape of the route (GraphQL errors with `RATE_LIMITED` and
//! `retryAfterSeconds` on `/graphql`, `{"error": {...}}` elsewhere).
//!
//! The buckets live in this process: with several server processes behind a load
//! balancer, each allows the rate (the limit is per process, not shared).

use super::HttpState;
use super::graphql::bearer;
use crate::config::RateLimit;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (full) ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every token seen recently.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` per token.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket, or says how long until one is
    /// available.
    fn take(&self, token: &str, now: Instant) -> Result<(), Duration> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (rate, burst) = (self.limit.per_second, f64::from(self.limit.burst));
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if refilled >= 1.0 {
            bucket.tokens = refilled - 1.0;
            Ok(())
        } else {
            bucket.tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / rate))
        }
    }
}

/// The middleware: passes requests without a token (they are refused or public
/// anyway) and requests within the limit.
pub async fn limit(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let (Some(limiter), Some(token)) = (state.rate_limiter.as_ref(), bearer(request.headers()))
    else {
        return next.run(request).await;
    };
    match limiter.take(token, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many(request.uri().path(), wait),
    }
}

fn too_many(path: &str, wait: Duration) -> Response {
    // Whole seconds, rounded up: waiting that long always finds a request available.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let message = format!("rate limited: this token may send more requests in {secs} s");
    let body = if path.starts_with("/graphql") {
        serde_json::json!({"errors": [{"message": message,
            "extensions": {"code": "RATE_LIMITED", "retryAfterSeconds": secs}}]})
    } else {
        serde_json::json!({"error": {"code": "RATE_LIMITED", "message": message,
            "retryAfterSeconds": secs}})
    };
    let mut response =
        (StatusCode::TOO_MANY_REQUESTS, Body::from(body.to_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        headers.insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("a", t0).is_ok());
        }
        let wait = limiter.take("a", t0).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_millis(500),
            "one request per half second"
        );
        // Another token has its own bucket.
        assert!(limiter.take("b", t0).is_ok());
        // Half a second later one request is available again, not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.take("a", t1).is_ok());
        assert!(limiter.take("a", t1).is_err());
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take("a", t2).is_ok());
        }
        assert!(limiter.take("a", t2).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let r = too_many("/api/usage", Duration::from_millis(1_200));
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
