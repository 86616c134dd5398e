//! HTTP performed by the host for a plugin (`aispend:provider/http.send`): the granter
//! decides, the host name is resolved here and every address checked before a
//! connection is made, the connection goes only to those addresses, redirects are
//! returned to the plugin and never followed, and the body is read up to a cap.

use super::granter::{Denied, Granter, Permit};
use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A request as the plugin sent it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: reqwest::Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code (a 3xx included: redirects are not followed).
    pub status: u16,
    /// Headers (at most [`MAX_RESPONSE_HEADERS`]).
    pub headers: Vec<(String, String)>,
    /// Body, at most the cap.
    pub body: Vec<u8>,
}

/// Why no response was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// Refused before any connection.
    Denied(String),
    /// The body exceeded the cap (bytes).
    TooLarge(u64),
    /// The request timed out.
    Timeout,
    /// Connecting or reading failed.
    Transport(String),
}

/// Headers passed back to a plugin; the rest are dropped.
pub const MAX_RESPONSE_HEADERS: usize = 64;

/// Performs one request within `timeout` and `max_body` bytes.
pub async fn send(
    granter: &Granter,
    request: HttpRequest,
    timeout: Duration,
    max_body: u64,
) -> Result<HttpResponse, HttpFailure> {
    let permit = granter.check_url(&request.url).map_err(denied)?;
    match tokio::time::timeout(timeout, perform(permit, request, timeout, max_body)).await {
        Ok(result) => result,
        Err(_) => Err(HttpFailure::Timeout),
    }
}

fn denied(d: Denied) -> HttpFailure {
    HttpFailure::Denied(d.0)
}

async fn resolve(permit: &Permit) -> Result<Vec<SocketAddr>, HttpFailure> {
    let host = &permit.host_port.host;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, permit.host_port.port)]);
    }
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), permit.host_port.port))
            .await
            .map_err(|e| HttpFailure::Transport(format!("resolving {host}: {e}")))?
            .collect();
    let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
    permit.check_addresses(&ips).map_err(denied)?;
    Ok(addresses)
}

async fn perform(
    permit: Permit,
    request: HttpRequest,
    timeout: Duration,
    max_body: u64,
) -> Result<HttpResponse, HttpFailure> {
    let addresses = resolve(&permit).await?;
    // A client per request pins the connection to the addresses checked above: no
    // second lookup can swap in another address.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .resolve_to_addrs(&permit.host_port.host, &addresses)
        .user_agent(concat!("aispend/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HttpFailure::Transport(format!("building the HTTP client: {e}")))?;
    let mut builder = client.request(request.method, permit.url.clone());
    for (name, value) in &request.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpFailure::Denied(format!("`{name}` is not a valid header name")))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            HttpFailure::Denied(format!("the value of header `{name}` is not valid"))
        })?;
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let response = builder.send().await.map_err(|e| transport(&permit, e))?;
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(HttpFailure::TooLarge(max_body));
    }
    let headers = response
        .headers()
        .iter()
        .take(MAX_RESPONSE_HEADERS)
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport(&permit, e))?;
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(HttpFailure::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A transport error without the URL (its query may carry ids the log should not).
fn transport(permit: &Permit, e: reqwest::Error) -> HttpFailure {
    if e.is_timeout() {
        return HttpFailure::Timeout;
    }
    let kind = if e.is_connect() {
        "connecting"
    } else if e.is_body() || e.is_decode() {
        "reading the response"
    } else {
        "sending the request"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    HttpFailure::Transport(format!(
        "{kind} to {} failed{}",
        permit.host_port,
        if cause.is_empty() {
            String::new()
        } else {
            format!(": {cause}")
        }
    ))
}
