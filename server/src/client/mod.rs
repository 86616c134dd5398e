//! The command line's side of talking to a running server (`aispend import`): a small
//! GraphQL-over-HTTP client with our bearer token. It is the only part of the binary
//! that is a client; it reuses the domain's parsers (dates, decimals) so a row is
//! checked the way the server would before it is sent.

pub mod import;

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
        Ok(Client {
            http,
            endpoint: format!("{}/graphql", server.url.trim_end_matches('/')),
            token: server.token.clone(),
        })
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
