//! The REST shapes existing clients speak (`../shared/seeds/`): `POST`/`GET
//! /api/usage` of a usage-tracking portal, and the `/api/health`, `/api/filters`,
//! `/api/metrics/*` and `/api/logs` of a token-usage dashboard. Thin: parse the query
//! or body, call the same domain services as GraphQL, shape the answer.
//!
//! Money goes out as JSON numbers (what these clients read) rounded to 6 decimals;
//! the exact values stay available over GraphQL and the exports.

use super::HttpState;
use super::graphql::bearer;
use crate::domain::Error;
use crate::domain::analytics::{self, Dimension, LogSort, Measure, Need, View};
use crate::domain::auth::Principal;
use crate::domain::calendar::Granularity;
use crate::domain::money::{Usd, clamp_i64};
use crate::domain::price::rates::TokenClass;
use crate::domain::provider::Provider;
use crate::domain::usage::query::{self, UsageFilter, UsageOrder};
use crate::domain::usage::{UsageEvent, UsageSource, input::RawUsage};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------
// Errors in the dashboard's shape: {"error": {"code", "message", "details"}}

/// An error of the dashboard API.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    fn details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput(errors) => {
                let details: serde_json::Map<String, Value> = errors
                    .iter()
                    .map(|f| (f.field.clone(), Value::String(f.message.clone())))
                    .collect();
                let code = if errors
                    .iter()
                    .any(|f| f.field == "page" || f.field == "per_page")
                {
                    "INVALID_PAGE"
                } else {
                    "INVALID_PARAMETERS"
                };
                ApiError::new(StatusCode::BAD_REQUEST, code, "invalid request parameters")
                    .details(Value::Object(details))
            }
            Error::InvalidDateRange(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_DATE_RANGE", m)
            }
            Error::Unauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "invalid or missing API key",
            ),
            Error::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            Error::NotFound { what } => ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{what} not found"),
            ),
            other @ Error::Unavailable { .. } => {
                let translated = crate::graphql::error::to_gql(other);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    translated.message,
                )
            }
            other => {
                let translated = crate::graphql::error::to_gql(other);
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    translated.message,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": {"code": self.code, "message": self.message, "details": self.details}})),
        )
            .into_response()
    }
}

/// The caller; no valid token is `UNAUTHORIZED` (401).
pub async fn principal(state: &HttpState, headers: &HeaderMap) -> Result<Principal, Error> {
    let p = state
        .app
        .auth
        .authenticate(&state.app.db, bearer(headers))
        .await?;
    if matches!(p, Principal::Anonymous) {
        return Err(Error::Unauthorized);
    }
    Ok(p)
}

/// Query pairs in order (repeated keys kept).
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key || k == &format!("{key}[]"))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// An ISO 8601 instant or date (a date is its UTC midnight).
/// Out of the accepted range (1970 to 2200, see `domain::time::accepted`) is no date
/// at all: callers answer with their "not a date" error.
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    let parsed = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        Some(t.with_timezone(&Utc))
    } else if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        Some(t.and_utc())
    } else {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
    };
    parsed.and_then(|t| crate::domain::time::accepted(t).ok())
}

// ---------------------------------------------------------------------------------
// The dashboard's common parameters

struct Common {
    granularity: Granularity,
    granularity_name: &'static str,
    filter: UsageFilter,
    echo: Value,
}

fn common(pairs: &[(String, String)]) -> Result<Common, ApiError> {
    let (granularity, granularity_name) = match one(pairs, "granularity")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("day") => (Granularity::Day, "day"),
        Some("hour") => (Granularity::Hour, "hour"),
        Some("week") => (Granularity::Week, "week"),
        Some("month") => (Granularity::Month, "month"),
        Some("year") => (Granularity::Year, "year"),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_GRANULARITY",
                format!("`{other}` is not one of hour, day, week, month, year"),
            )
            .details(json!({"granularity": other})));
        }
    };
    let date = |key: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        match one(pairs, key) {
            None => Ok(None),
            Some(text) => instant(text).map(Some).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_PARAMETERS",
                    format!("`{key}` is not an ISO 8601 date between 1970 and 2200"),
                )
                .details(json!({ key: text }))
            }),
        }
    };
    let end = date("end_date")?.unwrap_or_else(crate::domain::time::now);
    let start = match date("start_date")? {
        Some(s) => s,
        None => {
            end - match granularity {
                Granularity::Hour => TimeDelta::hours(24),
                Granularity::Day => TimeDelta::days(30),
                Granularity::Week => TimeDelta::weeks(12),
                Granularity::Month | Granularity::Quarter => TimeDelta::days(365),
                Granularity::Year => TimeDelta::days(5 * 365),
            }
        }
    };
    if start > end {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_DATE_RANGE",
            "Start date must be before end date",
        )
        .details(
            json!({"start_date": one(pairs, "start_date"), "end_date": one(pairs, "end_date")}),
        ));
    }
    let models = all(pairs, "model");
    let endpoints = all(pairs, "endpoint");
    let provider_names = all(pairs, "provider");
    let mut providers = Vec::new();
    for p in &provider_names {
        providers.push(Provider::parse(p).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETERS",
                format!("`{p}` is not a provider name"),
            )
            .details(json!({"provider": p}))
        })?);
    }
    let echo = json!({
        "granularity": granularity_name,
        "start_date": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "end_date": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "models": models,
        "endpoints": endpoints,
        "providers": provider_names,
    });
    Ok(Common {
        granularity,
        granularity_name,
        filter: UsageFilter {
            providers,
            models,
            endpoints,
            from: Some(start),
            to: Some(end),
            ..UsageFilter::default()
        },
        echo,
    })
}

/// Money as the JSON number these clients read: 6 decimals.
fn money(u: Usd) -> Value {
    number(u.to_decimal().round_dp(6))
}

fn number(d: Decimal) -> Value {
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------
// Handlers

/// `GET /api/health`.
pub async fn health() -> Response {
    axum::Json(json!({
        "status": "healthy",
        "timestamp": crate::domain::time::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `GET /api/filters`.
pub async fn filters(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let f = analytics::filters(&state.app.db, &principal).await?;
    Ok(axum::Json(json!({
        "models": f.models,
        "endpoints": f.endpoints,
        "providers": f.providers,
        "granularities": ["hour", "day", "week", "month", "year"],
        "example_usage": {
            "filter_by_model": "?model=gpt-4o&model=gpt-4o-mini",
            "filter_by_endpoint": "?endpoint=chat&endpoint=completions",
            "filter_by_provider": "?provider=openai&provider=anthropic",
            "filter_by_granularity": "?granularity=month",
            "filter_by_date": "?end_date=2026-03-20T00:00:00Z",
            "combine_filters": "?granularity=month&model=gpt-4o&endpoint=chat&provider=openai"
        }
    }))
    .into_response())
}

/// `GET /api/metrics/summary`.
pub async fn summary(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let c = common(&pairs(q.as_deref()))?;
    let s = analytics::summary(
        &state.app.db,
        &principal,
        c.filter,
        View::Tracked,
        cost_requests_tokens(),
    )
    .await?;
    let breakdown: serde_json::Map<String, Value> = s
        .providers
        .iter()
        .map(|(p, m)| {
            (
                p.clone(),
                json!({"total_spend": money(m.cost()), "total_requests": m.requests, "total_tokens": m.total_tokens()}),
            )
        })
        .collect();
    Ok(axum::Json(json!({
        "total_spend": money(s.total.cost()),
        "total_requests": s.total.requests,
        "avg_cost_per_request": s.total.average_cost().map(|d| number(d.round_dp(6))).unwrap_or(json!(0)),
        "provider_breakdown": breakdown,
        "filters": c.echo,
    }))
    .into_response())
}

/// What the metrics routes answer with: cost, requests and total tokens.
fn cost_requests_tokens() -> Need {
    Need::COST
        .with(Measure::Units(TokenClass::Request))
        .with(Measure::AllTokens)
}

async fn grouped(
    state: &HttpState,
    headers: &HeaderMap,
    q: Option<String>,
    dim: Dimension,
    key: &str,
) -> Result<Response, ApiError> {
    let principal = principal(state, headers).await?;
    let c = common(&pairs(q.as_deref()))?;
    let groups = analytics::breakdown(
        &state.app.db,
        &principal,
        c.filter,
        View::Tracked,
        &[dim],
        cost_requests_tokens().with(Measure::Latency),
        None,
    )
    .await?;
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            json!({
                "name": g.keys.first().cloned().flatten(),
                "total_tokens": clamp_i64(g.measures.total_tokens()),
                "total_cost": money(g.measures.cost()),
                "total_requests": clamp_i64(g.measures.requests),
                // Seconds, as the dashboard shows them.
                "average_latency": g.latency.map(|l| (l.average / 1000.0 * 1000.0).round() / 1000.0),
            })
        })
        .collect();
    Ok(axum::Json(json!({ key: items, "filters": c.echo })).into_response())
}

/// `GET /api/metrics/by-model`.
pub async fn by_model(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    grouped(&state, &headers, q, Dimension::Model, "models").await
}

/// `GET /api/metrics/by-endpoint`.
pub async fn by_endpoint(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    grouped(&state, &headers, q, Dimension::Endpoint, "endpoints").await
}

/// `GET /api/metrics/trend` (UTC buckets).
pub async fn trend(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let c = common(&pairs(q.as_deref()))?;
    let buckets = analytics::trend(
        &state.app.db,
        &principal,
        c.filter,
        View::Tracked,
        c.granularity,
        chrono_tz::UTC,
        cost_requests_tokens(),
    )
    .await?;
    let trends: Vec<Value> = buckets
        .iter()
        .map(|b| {
            json!({
                "timestamp": b.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "total_tokens": clamp_i64(b.measures.total_tokens()),
                "total_cost": money(b.measures.cost()),
                "request_count": clamp_i64(b.measures.requests),
            })
        })
        .collect();
    let _ = c.granularity_name;
    Ok(axum::Json(json!({"trends": trends, "filters": c.echo})).into_response())
}

/// `GET /api/recommendations`.
pub async fn recommendations(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let c = common(&pairs(q.as_deref()))?;
    let book = state.app.prices.book();
    let list = crate::domain::insights::recommendations(
        &state.app.db,
        &principal,
        &book,
        c.filter,
        crate::domain::insights::RecommendOptions::default(),
    )
    .await?;
    let items: Vec<Value> = list
        .into_iter()
        .map(|r| {
            let alternative = match (&r.action, &r.alternative) {
                (_, Some((_, model))) => model.clone(),
                (crate::domain::insights::Action::BatchApi, None) => {
                    format!("{} (Batch API)", r.model)
                }
                (_, None) => format!("{} with prompt caching", r.model),
            };
            json!({
                "model": r.model,
                "alternative": alternative,
                "potential_savings": money(r.savings),
                "confidence": number(r.confidence),
                "reasoning": r.reasoning,
                "endpoint": r.endpoint,
                "provider": r.provider.as_str(),
            })
        })
        .collect();
    Ok(axum::Json(json!({"recommendations": items, "filters": c.echo})).into_response())
}

fn log_row(book: &crate::domain::price::book::PriceBook, e: &UsageEvent) -> Value {
    let split = analytics::cost_split(book, e);
    let t = &e.tokens;
    let prompt = t.input + t.cache_read + t.cache_write + t.cache_write_1h;
    json!({
        "timestamp": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "model": e.model,
        "endpoint": e.endpoint,
        "prompt_tokens": prompt,
        "completion_tokens": t.output,
        "total_tokens": prompt + t.output,
        "input_cost": split.map(|(i, _)| money(i)),
        "output_cost": split.map(|(_, o)| money(o)),
        "total_cost": e.cost.map(money),
        "latency_ms": e.latency_ms,
        "api_provider": e.provider.as_str(),
    })
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
/// Text that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return) gets a leading `'`, as spreadsheets expect, so an
/// exported model, endpoint or user name is shown, never evaluated.
pub fn csv_field(text: &str) -> String {
    let text = neutralised(text);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.into_owned()
    }
}

/// A CSV field, always quoted (the dashboard's log export), neutralised like
/// [`csv_field`].
pub fn csv_quoted(text: &str) -> String {
    format!("\"{}\"", neutralised(text).replace('"', "\"\""))
}

/// `text` with a leading `'` when a spreadsheet would read it as a formula.
fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A cost with exactly 6 decimals.
pub fn cost6(u: Usd) -> String {
    format!("{:.6}", u.to_decimal().round_dp(6))
}

/// `GET /api/logs` (JSON, or CSV with `format=csv`).
pub async fn logs(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let pairs = pairs(q.as_deref());
    let c = common(&pairs)?;
    let page_err = |what: &str, v: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PAGE",
            format!(
                "`{what}` must be a positive integer{}",
                if what == "per_page" { " up to 100" } else { "" }
            ),
        )
        .details(json!({ what: v }))
    };
    let page = match one(&pairs, "page") {
        None => 1,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| page_err("page", v))?,
    };
    let per_page = match one(&pairs, "per_page") {
        None => 50,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=analytics::MAX_LOG_PAGE).contains(p))
            .ok_or_else(|| page_err("per_page", v))?,
    };
    let sort = match one(&pairs, "sort_by").unwrap_or("timestamp") {
        "timestamp" => LogSort::Timestamp,
        "model" => LogSort::Model,
        "endpoint" => LogSort::Endpoint,
        "api_provider" | "provider" => LogSort::Provider,
        "total_tokens" => LogSort::TotalTokens,
        "total_cost" | "cost" => LogSort::Cost,
        "latency_ms" | "latency" => LogSort::Latency,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_SORT",
                format!("cannot sort by `{other}`"),
            )
            .details(json!({"sort_by": other})));
        }
    };
    let desc = match one(&pairs, "sort_desc")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_SORT",
                "`sort_desc` must be true or false",
            )
            .details(json!({"sort_desc": other})));
        }
    };
    let csv = match one(&pairs, "format").unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETERS",
                "`format` must be json or csv",
            )
            .details(json!({"format": other})));
        }
    };
    let (events, total) = analytics::logs(
        &state.app.db,
        &principal,
        c.filter,
        sort,
        desc,
        page,
        per_page,
    )
    .await?;
    let book = state.app.prices.book();
    if csv {
        let mut out = String::from(
            "timestamp,model,endpoint,prompt_tokens,completion_tokens,total_tokens,input_cost,output_cost,total_cost,latency_ms,api_provider\n",
        );
        for e in &events {
            let split = analytics::cost_split(&book, e);
            let t = &e.tokens;
            let prompt = t.input + t.cache_read + t.cache_write + t.cache_write_1h;
            let quoted = csv_quoted;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                quoted(
                    &e.occurred_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                quoted(&e.model),
                quoted(e.endpoint.as_deref().unwrap_or("")),
                prompt,
                t.output,
                prompt + t.output,
                split.map(|(i, _)| cost6(i)).unwrap_or_default(),
                split.map(|(_, o)| cost6(o)).unwrap_or_default(),
                e.cost.map(cost6).unwrap_or_default(),
                e.latency_ms.map(|l| l.to_string()).unwrap_or_default(),
                quoted(e.provider.as_str()),
            ));
        }
        let name = format!(
            "token_logs_{}.csv",
            crate::domain::time::now().format("%Y-%m-%d")
        );
        let mut response = out.into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(response);
    }
    Ok(axum::Json(json!({
        "logs": events.iter().map(|e| log_row(&book, e)).collect::<Vec<_>>(),
        "pagination": {
            "current_page": page,
            "total_pages": total.div_ceil(per_page),
            "total_items": total,
            "per_page": per_page,
        },
        "filters": c.echo,
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------
// The usage portal's `/api/usage`: {"error": "...", "details": [...]}

pub(super) fn portal_error(status: StatusCode, error: &str, details: Value) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "details": details})),
    )
        .into_response()
}

fn usage_record(e: &UsageEvent) -> Value {
    let t = &e.tokens;
    let input = t.input + t.cache_read + t.cache_write + t.cache_write_1h;
    json!({
        "id": e.id.to_string(),
        "project_id": e.project.to_string(),
        "provider": e.provider.as_str(),
        "model": e.model,
        "input_tokens": input,
        "output_tokens": t.output,
        "total_tokens": input + t.output,
        "cost_usd": e.cost.map(money).unwrap_or(Value::Null),
        "request_timestamp": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why a `POST /api/usage` body was refused before anything was stored, in the
/// shape the portal's clients know.
#[derive(Debug)]
pub struct PortalRejection {
    /// `400` or `422`.
    pub status: StatusCode,
    /// The `error` text.
    pub error: &'static str,
    /// The `details` list (zod-style issues).
    pub details: Value,
}

/// Reads a `POST /api/usage` body and its `Idempotency-Key` header into a usage
/// input, or the rejection its client gets. Pure: the fuzz targets call it as the
/// handler does.
pub fn parse_usage_body(headers: &HeaderMap, body: &[u8]) -> Result<RawUsage, PortalRejection> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(PortalRejection {
            status: StatusCode::BAD_REQUEST,
            error: "Invalid request format: the body must be a JSON object",
            details: json!([]),
        });
    };
    // Type checks in the shape the portal's clients know (zod's).
    let mut details = Vec::new();
    let mut expect = |key: &str, expected: &str, required: bool| match body.get(key) {
        None | Some(Value::Null) if required => details.push(json!({
                "code": "invalid_type", "expected": expected, "received": "undefined",
                "path": [key], "message": "Required"})),
        None | Some(Value::Null) => {}
        Some(v) => {
            let ok = match expected {
                "string" => v.is_string(),
                _ => v.is_i64(),
            };
            if !ok {
                details.push(json!({
                        "code": "invalid_type", "expected": expected, "received": type_name(v),
                        "path": [key], "message": format!("Expected {expected}, received {}", type_name(v))}));
            }
        }
    };
    expect("project_id", "string", true);
    expect("provider", "string", true);
    expect("model", "string", true);
    expect("input_tokens", "number", true);
    expect("output_tokens", "number", true);
    expect("request_timestamp", "string", false);
    expect("idempotency_key", "string", false);
    // A retry-safe key: the `Idempotency-Key` header or the `idempotency_key` field
    // (the same key if both), with GraphQL's `idempotencyKey` semantics.
    let header_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) => Some(k.to_owned()),
        Some(Err(_)) => {
            details.push(json!({"code": "custom", "path": ["idempotency_key"],
                "message": "the Idempotency-Key header must be visible ASCII"}));
            None
        }
    };
    let body_key = body
        .get("idempotency_key")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let idempotency_key = match (header_key, body_key) {
        (Some(h), Some(b)) if h != b => {
            details.push(json!({"code": "custom", "path": ["idempotency_key"],
                "message": "differs from the Idempotency-Key header; send one key"}));
            None
        }
        (h, b) => h.or(b),
    };
    if !details.is_empty() {
        return Err(PortalRejection {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "Validation failed",
            details: Value::Array(details),
        });
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let occurred_at = match text("request_timestamp") {
        None => None,
        Some(t) => match instant(&t) {
            Some(at) => Some(at),
            None => {
                return Err(PortalRejection {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    error: "Validation failed",
                    details: json!([{"code": "invalid_string", "validation": "datetime", "path": ["request_timestamp"], "message": "Invalid datetime"}]),
                });
            }
        },
    };
    Ok(RawUsage {
        project_id: text("project_id"),
        provider: text("provider"),
        model: text("model"),
        input_tokens: body.get("input_tokens").and_then(Value::as_i64),
        output_tokens: body.get("output_tokens").and_then(Value::as_i64),
        occurred_at,
        idempotency_key,
        ..RawUsage::default()
    })
}

/// `POST /api/usage`.
pub async fn record_usage(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(Error::Unauthorized) => {
            return portal_error(StatusCode::UNAUTHORIZED, "Unauthorized", json!([]));
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let raw = match parse_usage_body(&headers, &body) {
        Ok(raw) => raw,
        Err(r) => return portal_error(r.status, r.error, r.details),
    };
    let started = std::time::Instant::now();
    let result = state
        .app
        .ledger
        .record(&principal, vec![raw], "body", false, UsageSource::Api)
        .await;
    state
        .app
        .metrics
        .ingest_latency("rest", crate::metrics::outcome(&result), started.elapsed());
    match result {
        Ok(mut recorded) => match recorded.pop() {
            // A repeated key: the event stored first, `200` instead of `201`.
            Some(r) if r.duplicate => (
                StatusCode::OK,
                [("idempotent-replayed", "true")],
                axum::Json(usage_record(&r.event)),
            )
                .into_response(),
            Some(r) => (StatusCode::CREATED, axum::Json(usage_record(&r.event))).into_response(),
            None => ApiError::from(Error::internal(
                "recording usage",
                anyhow::anyhow!("nothing recorded"),
            ))
            .into_response(),
        },
        Err(Error::InvalidInput(errors)) => {
            let details: Vec<Value> = errors
                .iter()
                .map(|f| {
                    let field = f.field.trim_start_matches("body").trim_start_matches('.');
                    let snake = match field {
                        "projectId" => "project_id",
                        "inputTokens" => "input_tokens",
                        "outputTokens" => "output_tokens",
                        "occurredAt" => "request_timestamp",
                        "idempotencyKey" => "idempotency_key",
                        other => other,
                    };
                    json!({"code": "custom", "path": [snake], "message": f.message})
                })
                .collect();
            portal_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation failed",
                Value::Array(details),
            )
        }
        // An unknown project, or one the token may not write: not found either way.
        Err(Error::NotFound { .. }) | Err(Error::Forbidden(_)) => portal_error(
            StatusCode::NOT_FOUND,
            "Project not found or access denied",
            json!([]),
        ),
        Err(Error::Unauthorized) => {
            portal_error(StatusCode::UNAUTHORIZED, "Unauthorized", json!([]))
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Most records `GET /api/usage` returns (newest first); `count` is the total.
const MAX_USAGE_LIST: i64 = 1000;

/// `GET /api/usage?project_id&date_from&date_to`.
pub async fn list_usage(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(Error::Unauthorized) => {
            return portal_error(StatusCode::UNAUTHORIZED, "Unauthorized", json!([]));
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let pairs = pairs(q.as_deref());
    let mut filter = UsageFilter::default();
    let mut details = Vec::new();
    if let Some(p) = one(&pairs, "project_id") {
        match p.parse() {
            Ok(id) => filter.projects = vec![id],
            Err(_) => details.push(json!({"code": "invalid_string", "validation": "uuid", "path": ["project_id"], "message": "Invalid uuid"})),
        }
    }
    for (key, slot) in [("date_from", &mut filter.from), ("date_to", &mut filter.to)] {
        if let Some(t) = one(&pairs, key) {
            match instant(t) {
                Some(at) => *slot = Some(at),
                None => details.push(json!({"code": "invalid_string", "validation": "datetime", "path": [key], "message": "Invalid datetime"})),
            }
        }
    }
    if !details.is_empty() {
        return portal_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed",
            Value::Array(details),
        );
    }
    if let (Some(f), Some(t)) = (filter.from, filter.to)
        && f > t
    {
        return portal_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed",
            json!([{"code": "custom", "path": ["date_from"], "message": "date_from is after date_to"}]),
        );
    }
    match query::page(
        &state.app.db,
        &principal,
        filter,
        Some(MAX_USAGE_LIST),
        None,
        UsageOrder::OccurredAtDesc,
        true,
    )
    .await
    {
        Ok(page) => {
            let usage: Vec<Value> = page.events.iter().map(|(e, _)| usage_record(e)).collect();
            axum::Json(json!({"usage": usage, "count": page.total.unwrap_or(usage.len() as u64)}))
                .into_response()
        }
        Err(Error::Forbidden(_)) | Err(Error::NotFound { .. }) => portal_error(
            StatusCode::NOT_FOUND,
            "Project not found or access denied",
            json!([]),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_neutralise_what_a_spreadsheet_would_evaluate() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+cmd"), "'+cmd");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(
            csv_field("=HYPERLINK(\"a\",\"b\")"),
            "\"'=HYPERLINK(\"\"a\"\",\"\"b\"\")\""
        );
        assert_eq!(csv_quoted("=x"), "\"'=x\"");
        assert_eq!(csv_field("a=b"), "a=b");
        assert_eq!(csv_field("résumé"), "résumé");
    }

    #[test]
    fn csv_fields_quote_commas_quotes_and_newlines() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn instants_take_dates_and_times() {
        assert_eq!(
            instant("2026-03-01").map(|t| t.to_rfc3339()),
            Some("2026-03-01T00:00:00+00:00".into())
        );
        assert_eq!(
            instant("2026-03-01T10:00:00Z").map(|t| t.timestamp()),
            Some(1_772_359_200)
        );
        assert!(instant("yesterday").is_none());
    }

    #[test]
    fn costs_have_six_decimals() {
        assert_eq!(cost6(Usd::from_nanos(150_000_000)), "0.150000");
        assert_eq!(cost6(Usd::from_nanos(1_234_567)), "0.001235");
    }

    #[test]
    fn granularity_and_ranges_are_checked() {
        let p = pairs(Some("granularity=fortnight"));
        assert_eq!(
            common(&p).err().map(|e| e.code),
            Some("INVALID_GRANULARITY")
        );
        let p = pairs(Some("start_date=2026-04-01&end_date=2026-03-01"));
        assert_eq!(common(&p).err().map(|e| e.code), Some("INVALID_DATE_RANGE"));
        let p = pairs(Some("model=a&model=b&provider=OpenAI&endpoint[]=chat"));
        let c = common(&p).ok().expect("valid");
        assert_eq!(c.filter.models, ["a", "b"]);
        assert_eq!(c.filter.providers[0].as_str(), "openai");
        assert_eq!(c.filter.endpoints, ["chat"]);
    }
}
