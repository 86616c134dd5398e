//! GitHub Copilot: an organization's seats (priced per seat and plan) and its
//! premium-request usage, with a token that can read the organization's billing.
//!
//! Follows GitHub's REST documentation, checked 2026-11-23:
//! - <https://docs.github.com/en/rest/copilot/copilot-user-management> —
//!   `GET /orgs/{org}/copilot/billing` (`plan_type`, `seat_breakdown`) and
//!   `GET /orgs/{org}/copilot/billing/seats` (`total_seats`, `seats[].created_at`,
//!   `pending_cancellation_date`, `plan_type`; paged with `page`/`per_page`). Tokens
//!   need `manage_billing:copilot` or `read:org` (classic) or the "GitHub Copilot
//!   Business" / "Administration" organization read permission (fine-grained).
//! - <https://docs.github.com/en/rest/billing/enhanced-billing> —
//!   `GET /organizations/{org}/settings/billing/premium_request/usage?year&month&day`,
//!   whose `usageItems` carry `model`, `sku`, `grossQuantity`, `netQuantity`,
//!   `pricePerUnit` and `netAmount` (USD).
//!
//! Seats are priced at GitHub's list prices (Copilot Business $19, Enterprise $39 per
//! seat and month; <https://docs.github.com/en/copilot/get-started/plans>), or at the
//! credential option `seat_price`. GitHub reports current seats only, so a past day's
//! seat count is the seats created by then and not cancelled before it.
//!
//! Options: `organization` (required), `seat_price` (USD per seat and month).

use aispend_plugin_sdk::{
    BucketWidth, Capability, CostPage, CostRow, Credential, Decimal, Metadata, MetadataBuilder,
    Plugin, ProviderError, Query, UnitCount, UsagePage, UsageRow, export_plugin, http, time,
};
use serde::Deserialize;

/// The API's host.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";
/// Seat pages read in one call (100 seats each).
pub const MAX_SEAT_PAGES: u32 = 10;

/// The plugin.
pub struct GithubCopilot;

#[derive(Deserialize)]
struct Billing {
    plan_type: Option<String>,
}

#[derive(Deserialize)]
struct Seat {
    created_at: Option<String>,
    pending_cancellation_date: Option<String>,
    plan_type: Option<String>,
}

#[derive(Deserialize)]
struct Seats {
    #[serde(default)]
    total_seats: u64,
    #[serde(default)]
    seats: Vec<Seat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageItem {
    model: Option<String>,
    sku: Option<String>,
    #[serde(default)]
    gross_quantity: serde_json::Value,
    #[serde(default)]
    net_quantity: serde_json::Value,
    #[serde(default)]
    net_amount: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PremiumUsage {
    #[serde(default)]
    usage_items: Vec<UsageItem>,
}

fn bad(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::bad_response(format!("GitHub returned unexpected JSON: {e}"))
}

fn organization(credential: &Credential) -> Result<String, ProviderError> {
    credential
        .option("organization")
        .map(http::encode)
        .ok_or_else(|| {
            ProviderError::other(
                "the credential needs the option `organization` (the GitHub organization's login)",
            )
        })
}

fn get(
    credential: &Credential,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<u8>, ProviderError> {
    let url = http::with_query(
        &format!("{}{path}", credential.base_url_or(DEFAULT_BASE_URL)),
        params,
    );
    let auth = format!("Bearer {}", credential.secret);
    let request = http::get(
        &url,
        &[
            ("authorization", &auth),
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ],
    );
    Ok(http::send(&request)?.error_for_status()?.body)
}

fn decimal(value: &serde_json::Value, field: &str) -> Result<Decimal, ProviderError> {
    if value.is_null() {
        return Ok(Decimal::ZERO);
    }
    Decimal::from_json(value).ok_or_else(|| bad(format!("`{field}` is not a number")))
}

/// Premium-request usage of one day as usage rows (one per model and SKU).
pub fn parse_premium_usage(body: &[u8], day: i64) -> Result<Vec<UsageRow>, ProviderError> {
    let usage: PremiumUsage = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for item in usage.usage_items {
        let mut row = UsageRow::new(day, day + 86_400);
        row.model = item.model;
        row.service_tier = item.sku;
        row.units.push(UnitCount::new(
            "premium-requests",
            decimal(&item.gross_quantity, "grossQuantity")?,
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// Premium-request costs of one day as cost rows (the billed `netAmount`).
pub fn parse_premium_costs(body: &[u8], day: i64) -> Result<Vec<CostRow>, ProviderError> {
    let usage: PremiumUsage = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for item in usage.usage_items {
        let mut row = CostRow::new(
            day,
            day + 86_400,
            decimal(&item.net_amount, "netAmount")?,
            "usd",
        );
        row.line_item = Some(format!(
            "premium requests ({})",
            item.sku.as_deref().unwrap_or("copilot")
        ));
        row.model = item.model;
        row.units.push(UnitCount::new(
            "premium-requests",
            decimal(&item.net_quantity, "netQuantity")?,
        ));
        rows.push(row);
    }
    Ok(rows)
}

fn premium(credential: &Credential, day: i64) -> Result<Vec<u8>, ProviderError> {
    let org = organization(credential)?;
    let (y, m, d) = time::civil_from_days(day.div_euclid(86_400));
    get(
        credential,
        &format!("/organizations/{org}/settings/billing/premium_request/usage"),
        &[
            ("year", y.to_string()),
            ("month", m.to_string()),
            ("day", d.to_string()),
        ],
    )
}

/// A seat's active span: from its creation to its cancellation date (if any).
struct Span {
    from: i64,
    until: Option<i64>,
    plan: String,
}

fn seats(credential: &Credential) -> Result<(Vec<Span>, String), ProviderError> {
    let org = organization(credential)?;
    let billing: Billing = serde_json::from_slice(&get(
        credential,
        &format!("/orgs/{org}/copilot/billing"),
        &[],
    )?)
    .map_err(bad)?;
    let default_plan = billing.plan_type.unwrap_or_else(|| "business".into());
    let mut spans = Vec::new();
    for page in 1..=MAX_SEAT_PAGES {
        let body = get(
            credential,
            &format!("/orgs/{org}/copilot/billing/seats"),
            &[("page", page.to_string()), ("per_page", "100".into())],
        )?;
        let seats: Seats = serde_json::from_slice(&body).map_err(bad)?;
        let done = seats.seats.len() < 100 || (page as u64) * 100 >= seats.total_seats;
        for s in seats.seats {
            let from = match &s.created_at {
                Some(t) => {
                    time::parse_rfc3339(t).ok_or_else(|| bad(format!("`{t}` is not a time")))?
                }
                None => i64::MIN,
            };
            // A seat pending cancellation is billed through that date.
            let until = match &s.pending_cancellation_date {
                Some(t) => {
                    let at = time::parse_rfc3339(t)
                        .ok_or_else(|| bad(format!("`{t}` is not a date")))?;
                    Some(if t.trim().len() == 10 {
                        at + 86_400
                    } else {
                        at
                    })
                }
                None => None,
            };
            spans.push(Span {
                from,
                until,
                plan: s.plan_type.unwrap_or_else(|| default_plan.clone()),
            });
        }
        if done {
            break;
        }
    }
    Ok((spans, default_plan))
}

/// Seats active at some point in `[start, end)`, by plan.
fn seats_in(spans: &[Span], start: i64, end: i64) -> Vec<(String, u64)> {
    let mut by_plan: Vec<(String, u64)> = Vec::new();
    for s in spans
        .iter()
        .filter(|s| s.from < end && s.until.is_none_or(|u| u > start))
    {
        match by_plan.iter_mut().find(|(p, _)| *p == s.plan) {
            Some((_, n)) => *n += 1,
            None => by_plan.push((s.plan.clone(), 1)),
        }
    }
    by_plan.sort();
    by_plan
}

/// USD per seat and month for a plan (the `seat_price` option wins).
pub fn seat_price(plan: &str, option: Option<&str>) -> Result<Decimal, ProviderError> {
    if let Some(p) = option {
        return p.parse().map_err(|_| {
            ProviderError::other(format!("the option `seat_price` (`{p}`) is not a decimal"))
        });
    }
    Ok(Decimal::from_int(if plan == "enterprise" {
        39
    } else {
        19
    }))
}

fn only_daily(bucket: BucketWidth) -> Result<(), ProviderError> {
    if bucket == BucketWidth::Day {
        Ok(())
    } else {
        Err(ProviderError::NotSupported(
            "GitHub reports Copilot billing per day (1d) only".into(),
        ))
    }
}

/// The stage a sync is at: a day of premium requests, or the seats.
enum Stage {
    Day(i64),
    Seats,
}

fn stage(cursor: Option<&str>, start: i64) -> Result<Stage, ProviderError> {
    match cursor {
        None => Ok(Stage::Day(time::start_of_day(start))),
        Some("seats") => Ok(Stage::Seats),
        Some(c) => c
            .strip_prefix("day:")
            .and_then(|d| d.parse().ok())
            .map(Stage::Day)
            .ok_or_else(|| ProviderError::other("malformed cursor")),
    }
}

fn after_day(day: i64, end: i64) -> String {
    if day + 86_400 < end {
        format!("day:{}", day + 86_400)
    } else {
        "seats".into()
    }
}

impl Plugin for GithubCopilot {
    fn metadata() -> Metadata {
        MetadataBuilder::new("github-copilot", "GitHub Copilot", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ValidateCredential)
            .capability(Capability::FetchUsage)
            .capability(Capability::FetchCosts)
            .host("api.github.com")
            .credential_help("A GitHub token of an organization owner or billing manager: classic with manage_billing:copilot (or read:org), or fine-grained with the organization's \"GitHub Copilot Business\" and \"Administration\" read permissions. Set the option `organization`; optionally `seat_price` (USD per seat and month).")
            .docs_url("https://docs.github.com/en/rest/copilot/copilot-user-management")
            .build()
    }

    fn validate_credential(credential: Credential) -> Result<(), ProviderError> {
        let org = organization(&credential)?;
        get(&credential, &format!("/orgs/{org}/copilot/billing"), &[]).map(|_| ())
    }

    fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
        only_daily(query.bucket)?;
        let (start, end) = (query.window.start, query.window.end);
        match stage(query.cursor.as_deref(), start)? {
            Stage::Day(day) => {
                let rows = parse_premium_usage(&premium(&credential, day)?, day)?;
                Ok(UsagePage {
                    rows,
                    next_cursor: Some(after_day(day, end)),
                })
            }
            Stage::Seats => {
                let (spans, _) = seats(&credential)?;
                let mut rows = Vec::new();
                let mut day = time::start_of_day(start);
                while day < end {
                    for (plan, n) in seats_in(&spans, day, day + 86_400) {
                        let mut row = UsageRow::new(day, day + 86_400);
                        row.service_tier = Some(plan);
                        row.units
                            .push(UnitCount::new("seats", Decimal::from_int(n as i64)));
                        rows.push(row);
                    }
                    day += 86_400;
                }
                Ok(UsagePage {
                    rows,
                    next_cursor: None,
                })
            }
        }
    }

    fn fetch_costs(credential: Credential, query: Query) -> Result<CostPage, ProviderError> {
        only_daily(query.bucket)?;
        let (start, end) = (query.window.start, query.window.end);
        match stage(query.cursor.as_deref(), start)? {
            Stage::Day(day) => {
                let rows = parse_premium_costs(&premium(&credential, day)?, day)?;
                Ok(CostPage {
                    rows,
                    next_cursor: Some(after_day(day, end)),
                })
            }
            Stage::Seats => {
                // Seats are billed per month: one row per month the window touches.
                let (spans, _) = seats(&credential)?;
                let mut rows = Vec::new();
                let mut month = time::start_of_month(start);
                while month < end {
                    let next_month = time::start_of_next_month(month);
                    for (plan, n) in seats_in(&spans, month, next_month) {
                        let price = seat_price(&plan, credential.option("seat_price"))?;
                        let amount = price
                            .checked_mul(Decimal::from_int(n as i64))
                            .ok_or_else(|| bad("seat cost overflows"))?;
                        let mut row = CostRow::new(month, next_month, amount, "usd");
                        row.line_item = Some(format!("Copilot {plan} seats"));
                        row.service_tier = Some(plan);
                        row.units
                            .push(UnitCount::new("seats", Decimal::from_int(n as i64)));
                        rows.push(row);
                    }
                    month = next_month;
                }
                Ok(CostPage {
                    rows,
                    next_cursor: None,
                })
            }
        }
    }
}

export_plugin!(GithubCopilot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premium_requests_become_rows() {
        let body = br#"{"timePeriod":{"year":2025,"month":8,"day":1},"organization":"acme","usageItems":[
            {"product":"Copilot","sku":"Copilot Premium Request","model":"Claude Sonnet 4","unitType":"requests","pricePerUnit":0.04,
             "grossQuantity":120,"grossAmount":4.8,"discountQuantity":100,"discountAmount":4.0,"netQuantity":20,"netAmount":0.8}]}"#;
        let usage = parse_premium_usage(body, 1_754_006_400).unwrap();
        assert_eq!(usage[0].units[0].quantity, "120");
        let costs = parse_premium_costs(body, 1_754_006_400).unwrap();
        assert_eq!(costs[0].amount, "0.8");
        assert_eq!(costs[0].units[0].quantity, "20");
    }

    #[test]
    fn seats_count_by_span_and_plan() {
        let spans = vec![
            Span {
                from: 0,
                until: None,
                plan: "business".into(),
            },
            Span {
                from: 100,
                until: Some(200),
                plan: "business".into(),
            },
            Span {
                from: 500,
                until: None,
                plan: "enterprise".into(),
            },
        ];
        assert_eq!(seats_in(&spans, 150, 160), vec![("business".into(), 2)]);
        assert_eq!(
            seats_in(&spans, 300, 600),
            vec![("business".into(), 1), ("enterprise".into(), 1)]
        );
        assert_eq!(seat_price("enterprise", None).unwrap().to_string(), "39");
        assert_eq!(
            seat_price("business", Some("21.5")).unwrap().to_string(),
            "21.5"
        );
    }
}
