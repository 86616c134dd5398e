//! The bundled GitHub Copilot plugin against a fake REST API.

use super::{assert_error_mapping, daily, day, host, material};
use aispend::plugins::rows::Rows;
use aispend::plugins::{FetchKind, Limits, PluginErrorKind};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

fn seat(created: &str, cancel: Option<&str>, n: usize) -> serde_json::Value {
    json!({"created_at": created, "updated_at": created, "pending_cancellation_date": cancel, "last_activity_at": null,
           "plan_type": "business", "assignee": {"login": format!("dev{n}"), "id": n, "type": "User"}})
}

async fn provider() -> FakeProvider {
    FakeProvider::start(|seen| match seen.path.as_str() {
        "/organizations/acme/settings/billing/premium_request/usage" => match seen.param("day") {
            Some("1") => Reply::json(json!({"timePeriod": {"year": 2025, "month": 8, "day": 1}, "organization": "acme", "usageItems": [
                {"product": "Copilot", "sku": "Copilot Premium Request", "model": "Claude Sonnet 4", "unitType": "requests",
                 "pricePerUnit": 0.04, "grossQuantity": 120, "grossAmount": 4.8, "discountQuantity": 100, "discountAmount": 4.0,
                 "netQuantity": 20, "netAmount": 0.8}]})),
            _ => Reply::json(json!({"timePeriod": {"year": 2025, "month": 8}, "organization": "acme", "usageItems": []})),
        },
        "/orgs/acme/copilot/billing" => Reply::json(json!({
            "seat_breakdown": {"total": 3, "added_this_cycle": 1, "pending_invitation": 0, "pending_cancellation": 1, "active_this_cycle": 3, "inactive_this_cycle": 0},
            "seat_management_setting": "assign_selected", "public_code_suggestions": "block", "plan_type": "business"})),
        "/orgs/acme/copilot/billing/seats" => Reply::json(json!({"total_seats": 3, "seats": [
            seat("2025-01-10T10:00:00Z", None, 1),
            seat("2025-08-02T09:00:00+02:00", None, 2),
            seat("2025-03-01T00:00:00Z", Some("2025-08-02"), 3)]})),
        _ => Reply::status(404, r#"{"message":"Not Found"}"#),
    })
    .await
}

#[tokio::test]
async fn usage_has_premium_requests_per_day_and_seats() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material(
        "ghp_0123456789abcdefghij",
        &provider.base_url(),
        &[("organization", "acme")],
    );
    let q = daily(3);
    let report = host
        .fetch_all(
            "github-copilot",
            FetchKind::Usage,
            &m,
            q.start,
            q.end,
            q.bucket,
        )
        .await
        .unwrap();
    let Rows::Usage(rows) = report.rows else {
        panic!("usage rows")
    };
    let premium: Vec<_> = rows
        .iter()
        .filter(|r| r.units[0].unit == "premium-requests")
        .collect();
    assert_eq!(premium.len(), 1);
    assert_eq!(premium[0].units[0].quantity, Decimal::from(120));
    assert_eq!(
        premium[0].dimensions.model.as_deref(),
        Some("Claude Sonnet 4")
    );
    let seats: Vec<(i64, Decimal)> = rows
        .iter()
        .filter(|r| r.units[0].unit == "seats")
        .map(|r| (r.bucket_start.timestamp(), r.units[0].quantity))
        .collect();
    // Day 1: seats 1 and 3; day 2: all three (seat 3 cancels at the end of it); day 3: 1 and 2.
    assert_eq!(
        seats,
        vec![
            (day(0).timestamp(), Decimal::from(2)),
            (day(1).timestamp(), Decimal::from(3)),
            (day(2).timestamp(), Decimal::from(2))
        ]
    );
    let first = &provider.seen()[0];
    assert_eq!(
        first.headers.get("authorization").map(String::as_str),
        Some("Bearer ghp_0123456789abcdefghij")
    );
    assert_eq!(
        first
            .headers
            .get("x-github-api-version")
            .map(String::as_str),
        Some("2022-11-28")
    );
    assert_eq!(
        (
            first.param("year"),
            first.param("month"),
            first.param("day")
        ),
        (Some("2025"), Some("8"), Some("1"))
    );
}

#[tokio::test]
async fn costs_price_premium_requests_and_seats() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material(
        "ghp_0123456789abcdefghij",
        &provider.base_url(),
        &[("organization", "acme")],
    );
    let q = daily(2);
    let report = host
        .fetch_all(
            "github-copilot",
            FetchKind::Costs,
            &m,
            q.start,
            q.end,
            q.bucket,
        )
        .await
        .unwrap();
    let Rows::Costs(rows) = report.rows else {
        panic!("cost rows")
    };
    assert_eq!(rows[0].amount, Decimal::from_str("0.8").unwrap());
    let seats = rows
        .iter()
        .find(|r| r.line_item.as_deref() == Some("Copilot business seats"))
        .expect("a seat row");
    assert_eq!(seats.amount, Decimal::from(57), "3 business seats at $19");
    assert_eq!(seats.bucket_start, day(0), "seats are billed for the month");
    host.validate_credential("github-copilot", &m)
        .await
        .unwrap();
    let no_org = material("ghp_0123456789abcdefghij", &provider.base_url(), &[]);
    let e = host
        .validate_credential("github-copilot", &no_org)
        .await
        .unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::Other(m) if m.contains("organization")),
        "{e}"
    );
}

#[tokio::test]
async fn provider_errors_map_onto_the_contract() {
    assert_error_mapping(
        "github-copilot",
        FetchKind::Usage,
        &[("organization", "acme")],
    )
    .await;
    assert_error_mapping(
        "github-copilot",
        FetchKind::Costs,
        &[("organization", "acme")],
    )
    .await;
}
