//! Notification channels: a Slack-shaped receiver and an SMTP server on loopback (both
//! allowed by the operator), retries recorded as attempts, exactly one message per
//! threshold crossing, masking of Slack URLs, and bad input refused by field.

use crate::budgets::{create_budget, spend};
use aispend_e2e::smtp::SmtpServer;
use aispend_e2e::{Backend, TestApp, backend_tests, spawn_app_with, wait_until};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The secret part of the Slack URL: it must never come back in any answer.
pub(crate) const SLACK_SECRET: &str = "XXXXslacksecretpath";
const PUBLIC_URL: &str = "https://aispend.example.com";

#[derive(Clone)]
pub(crate) struct Slack {
    pub(crate) addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
}

async fn slack_hook(
    State((got, fail_first)): State<(Arc<Mutex<Vec<Value>>>, usize)>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut got = got.lock().unwrap();
    got.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    if got.len() <= fail_first {
        (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
    } else {
        (StatusCode::OK, "ok")
    }
}

impl Slack {
    /// A Slack-incoming-webhook-shaped receiver: 500 to the first `fail_first` posts.
    pub(crate) async fn start(fail_first: usize) -> Slack {
        let got = Arc::new(Mutex::new(vec![]));
        let app = axum::Router::new()
            .route(
                &format!("/services/T000/B000/{SLACK_SECRET}"),
                axum::routing::post(slack_hook),
            )
            .with_state((got.clone(), fail_first));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Slack { addr, got }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/services/T000/B000/{SLACK_SECRET}", self.addr)
    }

    pub(crate) fn posts(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

pub(crate) async fn app_with(backend: Backend, slack: &Slack, smtp: &SmtpServer) -> TestApp {
    let hosts = vec![slack.addr.to_string(), smtp.addr.to_string()];
    let smtp_url = format!("smtp://{}", smtp.addr);
    spawn_app_with(backend, move |s| {
        s.plugin_allow_hosts = hosts;
        s.channels.smtp_url = Some(smtp_url);
        s.channels.smtp_from = Some("aispend <alerts@aispend.example.com>".into());
        s.channels.public_url = Some(PUBLIC_URL.into());
    })
    .await
}

const CREATE: &str = r#"mutation($i: CreateNotificationChannelInput!) {
  createNotificationChannel(input: $i) { id name kind url emails secretSet }
}"#;

pub(crate) async fn create_channel(app: &TestApp, input: Value) -> Value {
    let r = app.admin(CREATE, json!({ "i": input })).await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());
    r.data()["createNotificationChannel"].clone()
}

const ALERTS: &str = r#"query($f: AlertFilter) { alerts(filter: $f) { id threshold deliveryStatus
  deliveries { attempt statusCode error succeeded target } } }"#;

async fn alerts(app: &TestApp, budget: &str) -> Vec<Value> {
    let r = app.admin(ALERTS, json!({"f": {"budgets": [budget]}})).await;
    let mut v = r.data()["alerts"].as_array().cloned().unwrap_or_default();
    v.sort_by_key(|a| a["threshold"].as_i64());
    v
}

async fn wait_delivered(app: &TestApp, budget: &str, n: usize) -> Vec<Value> {
    wait_until(
        "the alerts to be delivered",
        Duration::from_secs(30),
        || async {
            let a = alerts(app, budget).await;
            a.len() == n && a.iter().all(|a| a["deliveryStatus"] == "DELIVERED")
        },
    )
    .await;
    alerts(app, budget).await
}

async fn slack_and_email_channels_deliver_each_crossing_once_with_retries_recorded(
    backend: Backend,
) {
    let slack = Slack::start(1).await;
    let smtp = SmtpServer::start(1).await;
    let app = app_with(backend, &slack, &smtp).await;
    let project = app.create_project("channels").await;
    let s = create_channel(
        &app,
        json!({"name": "ops slack", "kind": "SLACK", "url": slack.url()}),
    )
    .await;
    assert_eq!(s["kind"], "SLACK");
    assert_eq!(s["secretSet"], true);
    // Masked even for the admin: the path is Slack's secret.
    assert_eq!(s["url"], format!("http://{}/…", slack.addr));
    let e = create_channel(
        &app,
        json!({"name": "ops mail", "kind": "EMAIL", "emails": ["b@example.com", "a@example.com"]}),
    )
    .await;
    assert_eq!(e["emails"], json!(["a@example.com", "b@example.com"]));
    let budget = create_budget(
        &app,
        json!({"name": "Team <A> & co", "amountUsd": "10", "period": "MONTHLY",
               "thresholds": [50, 100], "channelIds": [s["id"], e["id"]],
               "scope": {"projects": [project]}}),
    )
    .await;

    // 6 of 10: the 50% threshold. Both receivers fail once, then accept.
    spend(&app, &project, "6", None).await;
    let fired = wait_delivered(&app, &budget, 1).await;
    let alert = &fired[0];
    let mut by_target: Vec<(String, i64, bool, Option<i64>)> = alert["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap().to_owned(),
                d["attempt"].as_i64().unwrap(),
                d["succeeded"].as_bool().unwrap(),
                d["statusCode"].as_i64(),
            )
        })
        .collect();
    by_target.sort();
    let (st, et) = (
        format!("channel:{}", s["id"].as_str().unwrap()),
        format!("channel:{}", e["id"].as_str().unwrap()),
    );
    let mut want = vec![
        (st.clone(), 1, false, Some(500)),
        (st.clone(), 2, true, Some(200)),
        (et.clone(), 1, false, None),
        (et.clone(), 2, true, None),
    ];
    want.sort();
    assert_eq!(by_target, want, "{alert:#}");
    for d in alert["deliveries"].as_array().unwrap() {
        let error = d["error"].as_str().unwrap_or_default();
        assert!(!error.contains(SLACK_SECRET), "{error}");
    }
    let failed_slack = alert["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == st.as_str() && d["succeeded"] == false)
        .unwrap();
    assert!(
        failed_slack["error"].as_str().unwrap().contains("HTTP 500"),
        "{failed_slack:#}"
    );

    // The Slack message: text plus blocks with budget, threshold, spent, period, link.
    let posts = slack.posts();
    assert_eq!(posts.len(), 2, "one failure, one success: {posts:#?}");
    assert_eq!(posts[0], posts[1], "a retry sends the same message");
    let m = &posts[1];
    assert_eq!(
        m["text"].as_str().unwrap(),
        "Budget \"Team <A> & co\" reached 50% of its monthly limit: $6.00 of $10.00 spent in the period 2026-12-01 00:00 to 2027-01-01 00:00 (UTC).",
        "{m:#}"
    );
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        "Budget Team <A> & co reached 50%"
    );
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Budget*\nTeam &lt;A&gt; &amp; co",
            "*Threshold*\n50%",
            "*Spent*\n$6.00 of $10.00",
            "*Period*\nMONTHLY 2026-12-01 00:00 to 2027-01-01 00:00 (UTC)",
        ],
        "{m:#}"
    );
    assert_eq!(blocks[2]["elements"][0]["url"], format!("{PUBLIC_URL}/"));

    // The e-mail: from the configured sender to both recipients.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "one refusal, one acceptance: {mails:#?}");
    let mail = &mails[1];
    assert!(mail.accepted);
    assert_eq!(mail.from, "alerts@aispend.example.com");
    assert_eq!(mail.to, ["a@example.com", "b@example.com"]);
    assert!(
        mail.data
            .contains("Subject: [aispend] Budget Team <A> & co reached 50%"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("Threshold: 50%"), "{}", mail.data);
    assert!(
        mail.data.contains("Spent: $6.00 of $10.00"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains(&format!("Dashboard: {PUBLIC_URL}/")),
        "{}",
        mail.data
    );

    // More spend under the next threshold crosses nothing; crossing 100% sends one
    // more message to each channel, and 50% is not sent again.
    spend(&app, &project, "1", None).await;
    spend(&app, &project, "3", None).await;
    let fired = wait_delivered(&app, &budget, 2).await;
    assert_eq!(fired[1]["threshold"], 100);
    assert_eq!(
        fired[1]["deliveries"].as_array().unwrap().len(),
        2,
        "{fired:#?}"
    );
    let posts = slack.posts();
    assert_eq!(posts.len(), 3, "{posts:#?}");
    assert!(posts[2]["text"].as_str().unwrap().contains("reached 100%"));
    assert_eq!(smtp.accepted().len(), 2);
    assert_eq!(
        fired[0]["deliveries"].as_array().unwrap().len(),
        4,
        "the first alert was not delivered again"
    );
}

async fn channels_are_validated_by_field_masked_and_testable(backend: Backend) {
    let slack = Slack::start(0).await;
    let smtp = SmtpServer::start(0).await;
    let app = app_with(backend, &slack, &smtp).await;
    let list = r#"{ notificationChannels { id name kind url emails secretSet } }"#;

    // Bad input: named by field, nothing stored.
    for (input, fields) in [
        (
            json!({"name": "w", "kind": "WEBHOOK", "url": "https://hooks.example.com/x"}),
            vec!["input.secret"],
        ),
        (
            json!({"name": "e", "kind": "EMAIL", "emails": ["ok@example.com", "not an address", "a@"], "url": "https://x.example.com/"}),
            vec!["input.emails.1", "input.emails.2", "input.url"],
        ),
        (
            json!({"name": "s", "kind": "SLACK", "url": slack.url(), "secret": "0123456789abcdef", "emails": ["a@example.com"]}),
            vec!["input.emails", "input.secret"],
        ),
        (json!({"name": "e", "kind": "EMAIL"}), vec!["input.emails"]),
        (
            json!({"name": " ", "kind": "SLACK", "url": "ftp://hooks.example.com/x"}),
            vec!["input.name", "input.url"],
        ),
    ] {
        let r = app.admin(CREATE, json!({"i": input})).await;
        assert_eq!(r.code(), "INVALID_INPUT", "{input}: {:#?}", r.errors());
        let mut got = r.fields();
        got.sort();
        assert_eq!(got, fields, "{input}");
    }
    let r = app
        .admin(
            CREATE,
            json!({"i": {"name": "x", "kind": "PAGER", "url": slack.url()}}),
        )
        .await;
    assert!(!r.errors().is_empty(), "an unknown kind is refused");
    let r = app.admin(list, json!({})).await;
    assert_eq!(r.data()["notificationChannels"], json!([]));

    let hook_url = format!("http://{}/services/T000/B000/{SLACK_SECRET}", slack.addr);
    let w = create_channel(
        &app,
        json!({"name": "hook", "kind": "WEBHOOK", "url": hook_url, "secret": "whsec-channel-0123456789"}),
    )
    .await;
    let s = create_channel(
        &app,
        json!({"name": "slack", "kind": "SLACK", "url": slack.url()}),
    )
    .await;
    let e = create_channel(
        &app,
        json!({"name": "mail", "kind": "EMAIL", "emails": ["ops@example.com"]}),
    )
    .await;
    assert_eq!(w["url"], hook_url, "an admin sees a WEBHOOK url whole");
    // A READ token sees every channel, no URL path and no secret.
    let reader = app.create_token(None, &["READ"]).await;
    let r = app.graphql(Some(&reader), list, json!({})).await;
    let text = r.data().to_string();
    assert!(!text.contains(SLACK_SECRET), "{text}");
    assert!(!text.contains("whsec"), "{text}");
    assert_eq!(
        r.data()["notificationChannels"].as_array().unwrap().len(),
        3
    );
    // ... and may not change or test them.
    let r = app
        .graphql(
            Some(&reader),
            "mutation($id: ID!) { testNotificationChannel(id: $id) { delivered } }",
            json!({"id": s["id"]}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");

    // Test messages go out now and report the outcome.
    let test =
        "mutation($id: ID!) { testNotificationChannel(id: $id) { delivered statusCode error } }";
    let r = app.admin(test, json!({"id": s["id"]})).await;
    assert_eq!(
        r.data()["testNotificationChannel"],
        json!({"delivered": true, "statusCode": 200, "error": null})
    );
    let posted = slack.posts();
    assert_eq!(posted.len(), 1);
    assert!(posted[0]["text"].as_str().unwrap().contains("Test message"));
    assert!(posted[0]["blocks"].is_array());
    let r = app.admin(test, json!({"id": e["id"]})).await;
    assert_eq!(r.data()["testNotificationChannel"]["delivered"], true);
    assert_eq!(smtp.accepted().len(), 1);
    assert_eq!(smtp.accepted()[0].to, ["ops@example.com"]);
    assert!(
        smtp.accepted()[0]
            .data
            .contains("Subject: [aispend] Test message")
    );
    // A WEBHOOK test is signed with the channel's secret; this receiver answers 200.
    let r = app.admin(test, json!({"id": w["id"]})).await;
    assert_eq!(r.data()["testNotificationChannel"]["statusCode"], 200);
    assert_eq!(slack.posts()[1]["type"], "channel.test");

    // A budget naming unknown or malformed channels is refused, naming each; nothing
    // is created.
    let create_budget_q =
        r#"mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id channelIds } }"#;
    let r = app
        .admin(
            create_budget_q,
            json!({"i": {"name": "b", "amountUsd": "5", "period": "MONTHLY",
                         "channelIds": ["nope", "0190a6a0-0000-7000-8000-000000000000", s["id"]]}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(fields, ["input.channelIds.0", "input.channelIds.1"]);
    let r = app.admin("{ budgets { id } }", json!({})).await;
    assert_eq!(r.data()["budgets"], json!([]));

    // A channel in use cannot be deleted; once the budget lets go, it can.
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "5", "period": "MONTHLY", "channelIds": [s["id"]]}),
    )
    .await;
    let delete = "mutation($id: ID!) { deleteNotificationChannel(id: $id) }";
    let r = app.admin(delete, json!({"id": s["id"]})).await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("id"));
    let r = app
        .admin(
            "mutation($id: ID!) { updateBudget(id: $id, input: {channelIds: []}) { channelIds } }",
            json!({"id": budget}),
        )
        .await;
    assert_eq!(r.data()["updateBudget"]["channelIds"], json!([]));
    let r = app.admin(delete, json!({"id": s["id"]})).await;
    assert!(r.errors().is_empty(), "{:#?}", r.errors());

    // Updates: fields of another kind are refused; a new URL is masked again.
    let update = "mutation($id: ID!, $i: UpdateNotificationChannelInput!) { updateNotificationChannel(id: $id, input: $i) { name url emails } }";
    let r = app
        .admin(
            update,
            json!({"id": e["id"], "i": {"secret": "0123456789abcdef"}}),
        )
        .await;
    assert_eq!(r.fields(), ["input.secret"]);
    let r = app
        .admin(
            update,
            json!({"id": e["id"], "i": {"emails": ["x@example.com"], "name": "mail 2"}}),
        )
        .await;
    assert_eq!(
        r.data()["updateNotificationChannel"],
        json!({"name": "mail 2", "url": null, "emails": ["x@example.com"]})
    );
}

async fn an_smtp_server_on_a_private_address_needs_the_operators_permission(backend: Backend) {
    let smtp = SmtpServer::start(0).await;
    let smtp_url = format!("smtp://{}", smtp.addr);
    // The SMTP server is configured but its host:port is not in AISPEND_PLUGIN_ALLOW_HOSTS.
    let app = spawn_app_with(backend, move |s| {
        s.channels.smtp_url = Some(smtp_url);
        s.channels.smtp_from = Some("alerts@aispend.example.com".into());
    })
    .await;
    let project = app.create_project("egress").await;
    let e = create_channel(
        &app,
        json!({"name": "mail", "kind": "EMAIL", "emails": ["ops@example.com"]}),
    )
    .await;
    let r = app
        .admin(
            "mutation($id: ID!) { testNotificationChannel(id: $id) { delivered error } }",
            json!({"id": e["id"]}),
        )
        .await;
    let result = &r.data()["testNotificationChannel"];
    assert_eq!(result["delivered"], false, "{result:#}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("non-public address") && error.contains("AISPEND_PLUGIN_ALLOW_HOSTS"),
        "{error}"
    );
    // An alert to it fails at once (refused: retrying cannot help), recorded once.
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "10", "period": "MONTHLY", "thresholds": [50],
               "channelIds": [e["id"]], "scope": {"projects": [project]}}),
    )
    .await;
    spend(&app, &project, "6", None).await;
    wait_until("the alert to fail", Duration::from_secs(30), || async {
        let a = alerts(&app, &budget).await;
        a.len() == 1 && a[0]["deliveryStatus"] == "FAILED"
    })
    .await;
    let a = alerts(&app, &budget).await;
    let deliveries = a[0]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{a:#?}");
    assert!(
        deliveries[0]["error"]
            .as_str()
            .unwrap()
            .contains("non-public address")
    );
    assert!(smtp.mails().is_empty(), "nothing reached the server");
}

async fn two_servers_deliver_each_alert_once_per_channel(backend: Backend) {
    let slack = Slack::start(0).await;
    let smtp = SmtpServer::start(0).await;
    let hosts = vec![slack.addr.to_string(), smtp.addr.to_string()];
    let smtp_url = format!("smtp://{}", smtp.addr);
    let app = spawn_app_with(backend, move |s| {
        s.plugin_allow_hosts = hosts;
        s.channels.smtp_url = Some(smtp_url);
        s.channels.smtp_from = Some("alerts@aispend.example.com".into());
        // One master key for both processes: either may open the channel secrets.
        s.master_key = Some("Y2hhbm5lbHMtdHdvLXNlcnZlcnMtc2hhcmVkLWtleSE=".into());
    })
    .await;
    let peer = app.spawn_peer().await;
    let project = app.create_project("replicas").await;
    let s = create_channel(
        &app,
        json!({"name": "slack", "kind": "SLACK", "url": slack.url()}),
    )
    .await;
    let e = create_channel(
        &app,
        json!({"name": "mail", "kind": "EMAIL", "emails": ["ops@example.com"]}),
    )
    .await;
    let budget = create_budget(
        &app,
        json!({"name": "shared", "amountUsd": "10", "period": "MONTHLY",
               "thresholds": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
               "channelIds": [s["id"], e["id"]], "scope": {"projects": [project]}}),
    )
    .await;
    // Twenty events of $0.50 through both servers at once: ten thresholds crossed,
    // with both dispatchers and both delivery workers running.
    let mut calls = vec![];
    for i in 0..20 {
        let server = if i % 2 == 0 { &app } else { &peer };
        calls.push(spend(server, &project, "0.5", None));
    }
    futures::future::join_all(calls).await;
    let fired = wait_delivered(&app, &budget, 10).await;
    for a in &fired {
        assert_eq!(
            a["deliveries"].as_array().unwrap().len(),
            2,
            "one attempt per channel: {a:#}"
        );
    }
    let posts = slack.posts();
    assert_eq!(posts.len(), 10, "{posts:#?}");
    let mut thresholds: Vec<String> = posts
        .iter()
        .map(|p| {
            p["blocks"][1]["fields"][1]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    thresholds.sort();
    thresholds.dedup();
    assert_eq!(thresholds.len(), 10, "each threshold once: {thresholds:?}");
    assert_eq!(smtp.accepted().len(), 10);
}

backend_tests!(
    two_servers_deliver_each_alert_once_per_channel,
    slack_and_email_channels_deliver_each_crossing_once_with_retries_recorded,
    channels_are_validated_by_field_masked_and_testable,
    an_smtp_server_on_a_private_address_needs_the_operators_permission,
);
