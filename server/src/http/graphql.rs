//! GraphQL over HTTP. The body is read and parsed here (not by an extractor) so that
//! an oversized or malformed body gets a GraphQL-shaped `INVALID_INPUT` error, and
//! errors async-graphql raises itself (parsing, validation, variable coercion) get the
//! same `extensions.code` as the domain's.

use super::HttpState;
use crate::domain::Error;
use crate::graphql::error::to_gql;
use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse, Request, ServerError};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// Operations one batched HTTP request (a JSON array) may hold; each is also held to
/// the per-document limits of `graphql::limits`.
pub const MAX_BATCH: usize = 10;
/// The GraphiQL playground.
pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("aispend")
            .finish(),
    )
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn request_error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(
            json!({"errors": [{"message": message, "extensions": {"code": "INVALID_INPUT"}}]}),
        ),
    )
        .into_response()
}

/// The request in `body`: one operation (a JSON object) or a batch (a JSON array of
/// one to [`MAX_BATCH`]). Parsed straight into the shape its first character names:
/// `BatchRequest`'s own `Deserialize` tries both shapes (serde's `untagged`), so it
/// first copies the whole body into an intermediate tree (serde's `Content`, which
/// showed in a profile of batched ingest) and then parses that.
fn parse_request(body: &[u8]) -> Result<BatchRequest, String> {
    let malformed = |e: serde_json::Error| format!("malformed JSON request: {e}");
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return serde_json::from_slice::<Request>(body)
            .map(BatchRequest::Single)
            .map_err(malformed);
    }
    let operations: Vec<Request> = serde_json::from_slice(body).map_err(malformed)?;
    match operations.len() {
        0 => Err("malformed JSON request: a batched request holds at least one operation".into()),
        n if n > MAX_BATCH => Err(format!(
            "a batched request may hold at most {MAX_BATCH} operations; this one holds {n}"
        )),
        _ => Ok(BatchRequest::Batch(operations)),
    }
}

/// Executes a query, a mutation or a batch of them.
pub async fn execute(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                super::body_limit_message()
            } else {
                rejection.body_text()
            };
            return request_error(status, message);
        }
    };
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(message) => return request_error(StatusCode::BAD_REQUEST, message),
    };
    let principal = match state
        .app
        .auth
        .authenticate(&state.app.db, bearer(&headers))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let (status, code) = match &e {
                Error::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            };
            let error = to_gql(e);
            return (
                status,
                axum::Json(
                    json!({"errors": [{"message": error.message, "extensions": {"code": code}}]}),
                ),
            )
                .into_response();
        }
    };
    let mut response = state.schema.execute_batch(request.data(principal)).await;
    match &mut response {
        BatchResponse::Single(r) => r.errors.iter_mut().for_each(classify),
        BatchResponse::Batch(rs) => rs
            .iter_mut()
            .flat_map(|r| r.errors.iter_mut())
            .for_each(classify),
    }
    axum::Json(response).into_response()
}

/// Gives errors raised by async-graphql itself a code. Errors without a path were
/// raised before execution (syntax, validation, variable coercion): the client sent
/// something invalid. An error with a path but no code was not produced by us: treat
/// it as internal.
fn classify(error: &mut ServerError) {
    if error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
    {
        return;
    }
    // Validation names the field and the type; say what the type accepts.
    if error.message.contains("expected type \"DateTime\"") {
        error.message.push_str(
            ": an RFC 3339 date-time from 1970-01-01T00:00:00Z up to 2200-01-01T00:00:00Z",
        );
    }
    let ext = error.extensions.get_or_insert_with(Default::default);
    // An argument written inline that does not coerce (a date out of range, a bad
    // enum) fails while the field resolves, so it carries the field's path; it is
    // still the client's input.
    let bad_argument = error.message.starts_with("Failed to parse \"")
        || error.message.starts_with("Invalid value for argument");
    if bad_argument && !error.path.is_empty() {
        ext.set("code", "INVALID_INPUT");
        let field = error
            .path
            .iter()
            .map(|segment| match segment {
                async_graphql::PathSegment::Field(name) => name.clone(),
                async_graphql::PathSegment::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        ext.set("field", field);
    } else if error.path.is_empty() {
        ext.set("code", "INVALID_INPUT");
        if let Some(field) = field_of(&error.message) {
            ext.set("field", field);
        }
    } else {
        let translated = to_gql(Error::internal(
            "executing a GraphQL field",
            anyhow::anyhow!(error.message.clone()),
        ));
        error.message = translated.message;
        ext.set("code", "INTERNAL");
    }
}

/// Pulls the argument or variable path out of async-graphql's validation messages,
/// e.g. `Invalid value for argument "input.serviceTier", ...`.
fn field_of(message: &str) -> Option<String> {
    for marker in ["argument \"", "variable \"$", "variable \""] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            if let Some(end) = rest.find('"') {
                return Some(rest[..end].to_owned());
            }
        }
    }
    None
}
