//! Anomaly alerts: a model's day far above its trailing mean raises one alert per
//! watch, day and model, delivered once to a Slack channel and an e-mail channel,
//! however many checks run; a model at its usual level raises nothing; bad watches
//! are refused by field and change nothing; a channel a watch uses cannot be deleted;
//! a READ token of another project sees no watch.

use crate::channels::{Slack, app_with, create_channel};
use aispend_e2e::smtp::SmtpServer;
use aispend_e2e::{Backend, TestApp, backend_tests, wait_until};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::time::Duration;

const CREATE: &str = r#"mutation($i: CreateAnomalyWatchInput!) {
  createAnomalyWatch(input: $i) { id name projectId subjects minFactor minExcessUsd baselineDays channelIds }
}"#;

const ANOMALY_ALERTS: &str = r#"{ alerts(filter: {kinds: [ANOMALY]}) { id kind budgetId budgetName projectId
  periodStart periodEnd threshold spentUsd amountUsd summary deliveryStatus
  deliveries { succeeded target } } }"#;

async fn anomaly_alerts(app: &TestApp) -> Vec<Value> {
    let r = app.admin(ANOMALY_ALERTS, json!({})).await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());
    r.data()["alerts"].as_array().cloned().unwrap_or_default()
}

async fn watches(app: &TestApp) -> Vec<Value> {
    let r = app.admin("{ anomalyWatches { id name } }", json!({})).await;
    r.data()["anomalyWatches"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Records `usd` of a model's spend at `at`.
async fn spend(app: &TestApp, project: &str, model: &str, usd: &str, at: DateTime<Utc>) {
    let r = app
        .record(json!({
            "projectId": project, "provider": "acme", "model": model, "inputTokens": 10,
            "reportedCostUsd": usd, "occurredAt": at.to_rfc3339(),
        }))
        .await;
    assert!(r["event"]["id"].is_string(), "{r:#}");
}

async fn a_spike_alerts_each_channel_once_and_bad_watches_change_nothing(backend: Backend) {
    let slack = Slack::start(0).await;
    let smtp = SmtpServer::start(0).await;
    let app = app_with(backend, &slack, &smtp).await;
    let project = app.create_project("anomalies").await;
    let other = app.create_project("elsewhere").await;

    // Eight ordinary days for two models, then today: "acme-large" spends twelve
    // times its mean, "acme-small" its usual dollar.
    let now = aispend_e2e::now();
    let today = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    for d in 1..=8 {
        let day = today - TimeDelta::days(d) + TimeDelta::hours(10);
        spend(&app, &project, "acme-large", "1", day).await;
        spend(&app, &project, "acme-small", "1", day).await;
    }
    spend(
        &app,
        &project,
        "acme-small",
        "1",
        today + TimeDelta::minutes(30),
    )
    .await;
    spend(
        &app,
        &project,
        "acme-large",
        "12",
        today + TimeDelta::minutes(30),
    )
    .await;
    // The other project's spike is not this watch's business.
    for d in 1..=8 {
        spend(&app, &other, "acme-large", "1", today - TimeDelta::days(d)).await;
    }
    spend(
        &app,
        &other,
        "acme-large",
        "50",
        today + TimeDelta::minutes(5),
    )
    .await;

    let s = create_channel(
        &app,
        json!({"name": "anomaly slack", "kind": "SLACK", "url": slack.url()}),
    )
    .await;
    let e = create_channel(
        &app,
        json!({"name": "anomaly mail", "kind": "EMAIL", "emails": ["finops@example.com"]}),
    )
    .await;

    // Bad input: every problem named by field, nothing stored.
    let r = app
        .admin(
            CREATE,
            json!({"i": {"name": " ", "projectId": project, "subjects": [], "minFactor": "1",
                         "minExcessUsd": "-1", "baselineDays": 0,
                         "channelIds": [s["id"], "not-a-channel"]}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT", "{:#?}", r.errors());
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "input.baselineDays",
            "input.channelIds.1",
            "input.minExcessUsd",
            "input.minFactor",
            "input.name",
            "input.subjects",
        ]
    );
    let r = app
        .admin(
            CREATE,
            json!({"i": {"name": "no channels", "projectId": project, "channelIds": []}}),
        )
        .await;
    assert_eq!(r.fields(), ["input.channelIds"], "{:#?}", r.errors());
    assert!(watches(&app).await.is_empty());
    assert!(anomaly_alerts(&app).await.is_empty());

    let r = app
        .admin(
            CREATE,
            json!({"i": {"name": "Model spikes", "projectId": project, "minFactor": "3",
                         "channelIds": [s["id"], e["id"]]}}),
        )
        .await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());
    let watch = r.data()["createAnomalyWatch"].clone();
    assert_eq!(watch["subjects"], json!(["MODEL"]));
    assert_eq!(watch["minExcessUsd"], "1");
    assert_eq!(watch["baselineDays"], 7);

    wait_until(
        "the anomaly alert to reach both channels",
        Duration::from_secs(30),
        || async {
            let a = anomaly_alerts(&app).await;
            a.len() == 1 && a[0]["deliveryStatus"] == "DELIVERED"
        },
    )
    .await;
    // Several more checks run (every 250 ms): still one alert, one message each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alerts = anomaly_alerts(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["kind"], "ANOMALY");
    assert_eq!(a["budgetId"], Value::Null);
    assert_eq!(a["budgetName"], "Model spikes");
    assert_eq!(a["projectId"], project);
    assert_eq!(
        a["periodStart"]
            .as_str()
            .map(|t| t.parse::<DateTime<Utc>>()),
        Some(Ok(today))
    );
    assert_eq!(a["spentUsd"], "12");
    assert_eq!(a["amountUsd"], "1");
    assert_eq!(a["threshold"], 1200);
    let summary = a["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("model acme-large spent $12.00") && summary.contains("12×"),
        "{summary}"
    );
    let mut targets: Vec<_> = a["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap().to_owned(),
                d["succeeded"].as_bool(),
            )
        })
        .collect();
    targets.sort();
    let mut want = vec![
        (format!("channel:{}", s["id"].as_str().unwrap()), Some(true)),
        (format!("channel:{}", e["id"].as_str().unwrap()), Some(true)),
    ];
    want.sort();
    assert_eq!(targets, want);

    let posts = slack.posts();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0]["text"], summary);
    assert!(
        posts[0]["blocks"][0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Model spikes")),
        "{:#}",
        posts[0]
    );
    let mails = smtp.accepted();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, ["finops@example.com"]);
    assert!(
        mails[0].data.contains("Spend anomaly: Model spikes") && mails[0].data.contains("$12.00"),
        "{}",
        mails[0].data
    );

    // A channel a watch sends to cannot be deleted; the watch is unchanged.
    let r = app
        .admin(
            "mutation($id: ID!) { deleteNotificationChannel(id: $id) }",
            json!({"id": s["id"]}),
        )
        .await;
    assert_eq!(r.fields(), ["id"], "{:#?}", r.errors());
    assert!(
        r.errors()[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("anomaly watch `Model spikes`")),
        "{:#?}",
        r.errors()
    );

    // A READ token of another project sees no watch and no alert of this one.
    let reader = app.create_token(Some(&other), &["READ"]).await;
    let r = app
        .graphql(Some(&reader), "{ anomalyWatches { id } }", json!({}))
        .await;
    assert_eq!(r.data()["anomalyWatches"], json!([]));
    let r = app
        .graphql(
            Some(&reader),
            "query($id: ID!) { anomalyWatch(id: $id) { id } }",
            json!({"id": watch["id"]}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");

    // Deleting the watch keeps its alert; the channel can go then.
    let r = app
        .admin(
            "mutation($id: ID!) { deleteAnomalyWatch(id: $id) }",
            json!({"id": watch["id"]}),
        )
        .await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());
    assert_eq!(anomaly_alerts(&app).await.len(), 1);
    let r = app
        .admin(
            "mutation($id: ID!) { deleteNotificationChannel(id: $id) }",
            json!({"id": s["id"]}),
        )
        .await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());
}

backend_tests!(a_spike_alerts_each_channel_once_and_bad_watches_change_nothing);
