//! HTTP through the host, with JSON helpers and the mapping of HTTP statuses onto the
//! contract's errors (401 unauthorized, 403 forbidden, 429 rate-limited with its
//! `Retry-After`, 5xx unavailable).
//!
//! The host performs every request: it checks the URL against the hosts the plugin
//! declared (and the operator allows), never follows redirects, caps the size of a
//! response and the number of requests per call, and times requests out.

use crate::ProviderError;
use crate::bindings::aispend::provider::http as host;
use serde::de::DeserializeOwned;

pub use host::{HttpError, Method, Request, Response};

/// Sends a request through the host. A refused or failed request becomes a
/// [`ProviderError`]: `unavailable` for timeouts and transport failures, `other` for
/// requests the host refused.
pub fn send(request: &Request) -> Result<Response, ProviderError> {
    host::send(request).map_err(|e| match e {
        HttpError::Denied(why) => {
            ProviderError::Other(format!("the host refused the request: {why}"))
        }
        HttpError::TooManyRequests(n) => ProviderError::Other(format!(
            "the host's limit of {n} requests per call is spent"
        )),
        HttpError::TooLarge(n) => ProviderError::BadResponse(format!(
            "the response exceeds the host's limit of {n} bytes"
        )),
        HttpError::Timeout => ProviderError::Unavailable("the request timed out".into()),
        HttpError::Transport(why) => {
            ProviderError::Unavailable(format!("the request failed: {why}"))
        }
    })
}

/// A GET request with headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: Method::Get,
        url: url.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: None,
    }
}

impl Response {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Ok(self)` for a 2xx status, else the error the status means.
    pub fn error_for_status(self) -> Result<Response, ProviderError> {
        match status_error(&self) {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }

    /// The body parsed as JSON; `bad-response` when it is not the expected shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::BadResponse(format!("the response is not the expected JSON: {e}"))
        })
    }
}

/// The error an HTTP status means, if it is not a success. The message carries the
/// provider's own error message when it sent one (never the request's headers).
pub fn status_error(response: &Response) -> Option<ProviderError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return None;
    }
    let detail = provider_message(&response.body);
    let message = match &detail {
        Some(d) => format!("HTTP {status}: {d}"),
        None => format!("HTTP {status}"),
    };
    Some(match status {
        401 => ProviderError::Unauthorized(message),
        403 => ProviderError::Forbidden(message),
        429 => ProviderError::RateLimited(crate::RateLimit {
            retry_after_secs: response.header("retry-after").and_then(parse_retry_after),
            message,
        }),
        500..=599 => ProviderError::Unavailable(message),
        300..=399 => ProviderError::BadResponse(format!(
            "{message}: unexpected redirect to {}",
            response.header("location").unwrap_or("?")
        )),
        _ => ProviderError::Other(message),
    })
}

/// `Retry-After` in seconds (the delta form; an HTTP date is ignored).
pub fn parse_retry_after(value: &str) -> Option<u32> {
    value.trim().parse::<u32>().ok()
}

/// The `message` (or `error.message`, or `error` string) of a JSON error body, cut to
/// 300 characters.
fn provider_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value
        .pointer("/error/message")
        .or_else(|| value.get("message"))
        .or_else(|| value.get("error").filter(|e| e.is_string()))?
        .as_str()?;
    Some(message.chars().take(300).collect())
}

/// GET a URL and parse a 2xx JSON body; other statuses become their errors.
pub fn get_json<T: DeserializeOwned>(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<T, ProviderError> {
    send(&get(url, headers))?.error_for_status()?.json()
}

/// Percent-encodes a query-string component (RFC 3986 unreserved characters kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds `base?k=v&k=v` with every key and value encoded.
pub fn with_query(base: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return base.to_owned();
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_onto_the_contract() {
        assert!(status_error(&response(200, &[], "{}")).is_none());
        assert!(matches!(
            status_error(&response(401, &[], "")),
            Some(ProviderError::Unauthorized(_))
        ));
        assert!(matches!(
            status_error(&response(403, &[], "")),
            Some(ProviderError::Forbidden(_))
        ));
        match status_error(&response(
            429,
            &[("Retry-After", "17")],
            r#"{"error":{"message":"slow down"}}"#,
        )) {
            Some(ProviderError::RateLimited(r)) => {
                assert_eq!(r.retry_after_secs, Some(17));
                assert!(r.message.contains("slow down"));
            }
            other => panic!("expected rate-limited, got {other:?}"),
        }
        assert!(matches!(
            status_error(&response(503, &[], "")),
            Some(ProviderError::Unavailable(_))
        ));
        assert!(matches!(
            status_error(&response(302, &[("location", "https://x")], "")),
            Some(ProviderError::BadResponse(_))
        ));
    }

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(
            with_query(
                "https://h/p",
                &[
                    ("group_by[]", "model".into()),
                    ("t", "2025-01-01T00:00:00Z".into())
                ]
            ),
            "https://h/p?group_by%5B%5D=model&t=2025-01-01T00%3A00%3A00Z"
        );
    }
}
