//! `GET /export/usage.csv` and `/export/usage.jsonl`: every event of a filter, streamed
//! page by page (keyset pagination, 1,000 events per page), so memory stays constant
//! at millions of rows. Query parameters mirror the GraphQL usage filter: `project`,
//! `provider`, `model`, `endpoint`, `source`, `user` (each repeatable), `from`, `to`.

use super::HttpState;
use super::rest::{ApiError, cost6, csv_field, instant, pairs, principal};
use crate::domain::Error;
use crate::domain::usage::UsageEvent;
use crate::domain::usage::query::{self, RawUsageFilter, UsageOrder};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde_json::json;

/// Events per database page.
const PAGE: i64 = 1_000;

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Jsonl,
}

const CSV_HEADER: &str = "id,occurred_at,project_id,provider,model,endpoint,source,user,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,audio_input_tokens,audio_output_tokens,image_input_tokens,image_output_tokens,images_generated,web_search_calls,video_seconds,service_tier,pricing_variant,latency_ms,cost_usd,cost_source,metadata\n";

fn csv_line(e: &UsageEvent) -> String {
    let t = &e.tokens;
    [
        e.id.to_string(),
        e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.project.to_string(),
        csv_field(e.provider.as_str()),
        csv_field(&e.model),
        csv_field(e.endpoint.as_deref().unwrap_or("")),
        e.source.as_str().to_owned(),
        csv_field(e.user.as_deref().unwrap_or("")),
        e.requests.to_string(),
        t.input.to_string(),
        t.output.to_string(),
        t.cache_read.to_string(),
        t.cache_write.to_string(),
        t.cache_write_1h.to_string(),
        t.reasoning.to_string(),
        t.audio_input.to_string(),
        t.audio_output.to_string(),
        t.image_input.to_string(),
        t.image_output.to_string(),
        t.images.to_string(),
        t.web_searches.to_string(),
        t.video_seconds.to_string(),
        e.service_tier.as_str().to_owned(),
        e.variant
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        e.latency_ms.map(|l| l.to_string()).unwrap_or_default(),
        e.cost.map(cost6).unwrap_or_default(),
        e.cost_source.as_str().to_owned(),
        e.metadata
            .as_ref()
            .map(|m| csv_field(&m.to_string()))
            .unwrap_or_default(),
    ]
    .join(",")
        + "\n"
}

fn json_line(e: &UsageEvent) -> String {
    let t = &e.tokens;
    let mut line = json!({
        "id": e.id.to_string(),
        "occurred_at": e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "project_id": e.project.to_string(),
        "provider": e.provider.as_str(),
        "model": e.model,
        "endpoint": e.endpoint,
        "source": e.source.as_str(),
        "user": e.user,
        "requests": e.requests,
        "input_tokens": t.input,
        "output_tokens": t.output,
        "cache_read_tokens": t.cache_read,
        "cache_write_tokens": t.cache_write,
        "cache_write_1h_tokens": t.cache_write_1h,
        "reasoning_tokens": t.reasoning,
        "audio_input_tokens": t.audio_input,
        "audio_output_tokens": t.audio_output,
        "image_input_tokens": t.image_input,
        "image_output_tokens": t.image_output,
        "images_generated": t.images,
        "web_search_calls": t.web_searches,
        "video_seconds": t.video_seconds,
        "service_tier": e.service_tier.as_str(),
        "pricing_variant": e.variant.as_ref().map(|v| v.as_str()),
        "latency_ms": e.latency_ms,
        "cost_usd": e.cost.map(cost6),
        "cost_source": e.cost_source.as_str(),
        "metadata": e.metadata,
    })
    .to_string();
    line.push('\n');
    line
}

async fn export(
    state: HttpState,
    headers: HeaderMap,
    q: Option<String>,
    format: Format,
) -> Result<Response, ApiError> {
    let principal = principal(&state, &headers).await?;
    let pairs = pairs(q.as_deref());
    let list = |key: &str| -> Option<Vec<String>> {
        let v: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect();
        (!v.is_empty()).then_some(v)
    };
    let time = |key: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
        match pairs.iter().find(|(k, _)| k == key) {
            None => Ok(None),
            Some((_, v)) => instant(v.trim()).map(Some).ok_or_else(|| {
                Error::invalid(key, "is not an ISO 8601 date or time between 1970 and 2200")
            }),
        }
    };
    let mut sources = vec![];
    for s in list("source").unwrap_or_default() {
        sources.push(
            s.trim()
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| Error::invalid("source", "is API, OTLP or IMPORT"))?,
        );
    }
    let filter = RawUsageFilter {
        projects: list("project"),
        providers: list("provider"),
        models: list("model"),
        endpoints: list("endpoint"),
        sources: (!sources.is_empty()).then_some(sources),
        users: list("user"),
        from: time("from")?,
        to: time("to")?,
    }
    .parse()?;
    // Authorise (and fail) before the response starts.
    let first = query::page(
        &state.app.db,
        &principal,
        filter.clone(),
        Some(PAGE),
        None,
        UsageOrder::OccurredAtAsc,
        false,
    )
    .await?;
    let header_line = match format {
        Format::Csv => Some(CSV_HEADER.to_owned()),
        Format::Jsonl => None,
    };
    let db = state.app.db.clone();
    let app = state.app.clone();
    let token = super::graphql::bearer(&headers).map(str::to_owned);
    let stream = futures::stream::unfold(
        (Some(first), header_line, false),
        move |(page, header_line, done)| {
            let db = db.clone();
            let principal = principal.clone();
            let filter = filter.clone();
            let app = app.clone();
            let token = token.clone();
            async move {
                if let Some(h) = header_line {
                    return Some((
                        Ok::<Bytes, std::io::Error>(Bytes::from(h)),
                        (page, None, done),
                    ));
                }
                if done {
                    return None;
                }
                let page = page?;
                let mut chunk = String::new();
                for (e, _) in &page.events {
                    chunk.push_str(&match format {
                        Format::Csv => csv_line(e),
                        Format::Jsonl => json_line(e),
                    });
                }
                let next = match (page.has_next, page.events.last()) {
                    (true, Some((_, cursor))) => {
                        // A long export stops when its token is revoked meanwhile.
                        match app.auth.authenticate(&db, token.as_deref()).await {
                            Ok(now) if now == principal => {}
                            outcome => {
                                if let Err(e) = outcome {
                                    tracing::error!(error = ?e, "an export stopped: re-checking its token failed");
                                } else {
                                    tracing::info!("an export stopped: its token was revoked");
                                }
                                return Some((
                                    Err(std::io::Error::other("export interrupted")),
                                    (None, None, true),
                                ));
                            }
                        }
                        let after = cursor.encode();
                        match query::page(
                            &db,
                            &principal,
                            filter,
                            Some(PAGE),
                            Some(&after),
                            UsageOrder::OccurredAtAsc,
                            false,
                        )
                        .await
                        {
                            Ok(p) => Some(p),
                            Err(e) => {
                                tracing::error!(error = ?e, "an export stopped: reading the next page failed");
                                return Some((
                                    Err(std::io::Error::other("export interrupted")),
                                    (None, None, true),
                                ));
                            }
                        }
                    }
                    _ => None,
                };
                let finished = next.is_none();
                Some((Ok(Bytes::from(chunk)), (next, None, finished)))
            }
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let (content_type, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "usage.csv"),
        Format::Jsonl => ("application/x-ndjson", "usage.jsonl"),
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /export/usage.csv`.
pub async fn csv(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    export(state, headers, q, Format::Csv).await
}

/// `GET /export/usage.jsonl`.
pub async fn jsonl(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    export(state, headers, q, Format::Jsonl).await
}
