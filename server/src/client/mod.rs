//! The command line's side of talking to a running server (`aispend import`,
//! `aispend export`, `aispend usage summary`): a small GraphQL-over-HTTP client with
//! our bearer token, plus the streamed export download. It is the only part of the
//! binary that is a client; it reuses the domain's parsers (dates, decimals) so a row
//! is checked the way the server would before it is sent.

pub mod export;
pub mod filter;
pub mod import;
pub mod summary;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use std::time::Duration;

/// Where the server is and who the CLI is.
#[derive(Debug, Clone)]
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
}

/// A GraphQL client of one server.
pub struct Client {
    http: reqwest::Client,
    /// For downloads: no limit on the whole transfer (an export of millions of rows
    /// takes a while), only on connecting and on silence between reads.
    stream: reqwest::Client,
    base: String,
    endpoint: String,
    token: Option<String>,
}

/// A GraphQL error the server answered, with its `extensions.code`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServerError {
    /// `extensions.code` (`UNAUTHORIZED`, `NOT_FOUND`, ...).
    pub code: String,
    /// The message.
    pub message: String,
}

impl Client {
    /// A client of `server`.
    pub fn new(server: &Server) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        let stream = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            stream,
            base: server.url.trim_end_matches('/').to_owned(),
            endpoint: format!("{}/graphql", server.url.trim_end_matches('/')),
            token: server.token.clone(),
        })
    }

    /// `GET` of a path of the server (e.g. `/export/usage.csv`) with query
    /// parameters and the token; a non-2xx answer is an error with the server's
    /// `error.code` and message. The body is left to stream.
    pub async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut request = self.stream.get(&url).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(ServerError {
            code: body["error"]["code"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}")),
            message: body["error"]["message"].as_str().unwrap_or("").to_owned(),
        }
        .into())
    }

    /// Runs one operation; its `data`, or the first error.
    pub async fn execute(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching {}", self.endpoint))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("reading the answer of {} (HTTP {status})", self.endpoint))?;
        if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
            return Err(ServerError {
                code: error["extensions"]["code"]
                    .as_str()
                    .unwrap_or("ERROR")
                    .to_owned(),
                message: error["message"].as_str().unwrap_or("").to_owned(),
            }
            .into());
        }
        body.get("data")
            .cloned()
            .filter(|d| !d.is_null())
            .ok_or_else(|| anyhow!("the server answered HTTP {status} without data"))
    }
}
