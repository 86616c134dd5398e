//! The server's clock is injectable (`AISPEND_TEST_CLOCK`, `Settings::test_clock`):
//! budget periods, "today" and "this month" of live totals, and the stored times all
//! read it, and they roll over at its midnight, not the machine's.

use crate::budgets::{alerts_of, create_budget, spend, status};
use crate::subscriptions::COST;
use aispend_e2e::{Backend, backend_tests, spawn_app_with};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

async fn periods_roll_over_at_the_servers_midnight_at_the_end_of_a_month(backend: Backend) {
    // Fifteen seconds before the last midnight of January, whatever the machine's date.
    let eve = utc("2026-01-31T23:59:45Z");
    let midnight = utc("2026-02-01T00:00:00Z");
    let app = spawn_app_with(backend, |s| s.test_clock = Some(eve)).await;
    let project = app.create_project("checkout").await;
    let daily = create_budget(
        &app,
        json!({"name": "day", "amountUsd": "10", "period": "DAILY", "thresholds": [50]}),
    )
    .await;
    let monthly = create_budget(
        &app,
        json!({"name": "month", "amountUsd": "100", "period": "MONTHLY", "thresholds": [5]}),
    )
    .await;

    // Before midnight: the event is stamped with the server's clock, and it is
    // January's last day and month.
    let before = spend(&app, &project, "6", None).await;
    let occurred = utc(before["event"]["occurredAt"].as_str().unwrap());
    assert!(
        (eve..midnight).contains(&occurred),
        "occurredAt {occurred} comes from the server's clock"
    );
    let d = status(&app, &daily).await;
    let m = status(&app, &monthly).await;
    assert!(
        aispend_e2e::now() < midnight,
        "the steps before midnight took over 15 s; the assertions below would be wrong"
    );
    assert_eq!(d["periodStart"], "2026-01-31T00:00:00Z", "{d:#}");
    assert_eq!(d["spentUsd"], "6");
    assert_eq!(m["periodStart"], "2026-01-01T00:00:00Z", "{m:#}");
    assert_eq!(m["periodEnd"], "2026-02-01T00:00:00Z", "{m:#}");
    assert_eq!(m["spentUsd"], "6");

    // Wait (with a deadline) for the server's clock to pass midnight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while aispend_e2e::now() < midnight {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock never passed midnight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // After it: a new day and a new month, in which January's spend does not count.
    let d = status(&app, &daily).await;
    let m = status(&app, &monthly).await;
    assert_eq!(
        (d["periodStart"].as_str(), d["spentUsd"].as_str()),
        (Some("2026-02-01T00:00:00Z"), Some("0"))
    );
    assert_eq!(
        (m["periodStart"].as_str(), m["spentUsd"].as_str()),
        (Some("2026-02-01T00:00:00Z"), Some("0"))
    );
    spend(&app, &project, "7", None).await;
    let d = status(&app, &daily).await;
    assert_eq!(d["spentUsd"], "7");
    assert_eq!(d["thresholdsReached"], json!([50]));
    // The DAILY threshold fired once per day: for January 31st and for February 1st.
    let fired: Vec<(String, String)> = alerts_of(&app, &daily)
        .await
        .iter()
        .map(|a| {
            (
                a["periodStart"].as_str().unwrap().to_owned(),
                a["spentUsd"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            ("2026-01-31T00:00:00Z".to_owned(), "6".to_owned()),
            ("2026-02-01T00:00:00Z".to_owned(), "7".to_owned()),
        ]
    );

    // Live totals: "today" and "this month" are February's, without January's $6.
    let mut ws = app
        .subscribe(
            &app.admin_token,
            COST,
            json!({"f": {"projects": [project]}}),
        )
        .await;
    let (u, keys) = crate::subscriptions::sync(&app, &mut ws, &project, "0.5").await;
    assert_eq!(u["today"]["start"], "2026-02-01T00:00:00Z", "{u:#}");
    assert_eq!(u["month"]["start"], "2026-02-01T00:00:00Z", "{u:#}");
    // $7, plus $0.50 for each sync event up to the one this update carries.
    let k = keys
        .iter()
        .position(|key| u["events"][0]["idempotencyKey"] == key.as_str())
        .expect("one of the sync events")
        + 1;
    let expected = rust_decimal::Decimal::from(7)
        + rust_decimal::Decimal::new(5, 1) * rust_decimal::Decimal::from(k);
    let month: rust_decimal::Decimal = u["month"]["costUsd"].as_str().unwrap().parse().unwrap();
    assert_eq!(month, expected, "{u:#}");
}

backend_tests!(periods_roll_over_at_the_servers_midnight_at_the_end_of_a_month);
