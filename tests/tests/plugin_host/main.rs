//! The plugin host without a database: the sandbox's limits against the misbehaving
//! fixture plugin, and each bundled plugin against a fake provider on 127.0.0.1.

mod anthropic;
mod example;
mod github_copilot;
mod openai;
mod sandbox;

use aispend::domain::credential::{CredentialMaterial, Secret};
use aispend::plugins::{BucketWidth, FetchQuery, Limits, PluginHost, PluginSettings};
use chrono::{DateTime, TimeZone, Utc};

/// A host with only the given directory plugins (or the bundled ones), allowing the
/// fake provider's host:port.
pub fn host(
    dir: Option<&std::path::Path>,
    allow: &[String],
    limits: Limits,
    bundled: bool,
) -> PluginHost {
    PluginHost::new(&PluginSettings {
        dir: dir.map(Into::into),
        allow_hosts: allow.to_vec(),
        limits,
        without_bundled: !bundled,
    })
    .expect("the plugin host starts")
}

/// A credential for the fake provider.
pub fn material(secret: &str, base_url: &str, options: &[(&str, &str)]) -> CredentialMaterial {
    CredentialMaterial {
        secret: Secret::new(secret),
        base_url: Some(base_url.to_owned()),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// `2025-08-01T00:00:00Z` plus `days`.
pub fn day(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 8, 1, 0, 0, 0).unwrap() + chrono::Duration::days(days)
}

/// A daily query over `[day(0), day(n))`.
pub fn daily(n: i64) -> FetchQuery {
    FetchQuery {
        start: day(0),
        end: day(n),
        bucket: BucketWidth::Day,
        cursor: None,
    }
}

use aispend::plugins::{FetchKind, PluginErrorKind};
use aispend_e2e::fake_provider::{FakeProvider, Reply};

/// The provider's HTTP failures reach the sync as the contract's typed errors: 401,
/// 403, 429 with Retry-After, 503, malformed JSON, a truncated JSON body and a body
/// cut off mid-transfer.
pub async fn assert_error_mapping(plugin: &str, kind: FetchKind, options: &[(&str, &str)]) {
    let provider = FakeProvider::start(|_| Reply::status(200, "{}")).await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-test-0123456789abcdef", &provider.base_url(), options);
    let run = || async {
        host.fetch_page(plugin, kind, &m, &daily(2))
            .await
            .unwrap_err()
    };

    provider.respond(|_| {
        Reply::status(
            401,
            r#"{"error":{"message":"invalid admin key","type":"invalid_request_error"}}"#,
        )
    });
    let e = run().await;
    assert!(
        matches!(&e.kind, PluginErrorKind::Unauthorized(m) if m.contains("401") && m.contains("invalid admin key")),
        "{e}"
    );
    assert!(e.plugin.starts_with(&format!("{plugin}@")), "{e}");

    provider.respond(|_| {
        Reply::status(
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
        )
    });
    assert!(matches!(run().await.kind, PluginErrorKind::Forbidden(_)));

    provider.respond(|_| {
        Reply::status(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "17")
    });
    match run().await.kind {
        PluginErrorKind::RateLimited {
            retry_after,
            message,
        } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(17)));
            assert!(message.contains("slow down"));
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }

    provider.respond(|_| Reply::status(503, "upstream overloaded"));
    let e = run().await;
    assert!(e.is_retryable());
    assert!(matches!(e.kind, PluginErrorKind::Unavailable(_)), "{e}");

    provider.respond(|_| Reply::status(200, "<html>not json</html>"));
    assert!(matches!(run().await.kind, PluginErrorKind::BadResponse(_)));

    provider.respond(|_| Reply::status(200, r#"{"data": [{"start_time": 1754006400, "end"#));
    assert!(matches!(run().await.kind, PluginErrorKind::BadResponse(_)));

    provider.respond(|_| Reply {
        announce_length: Some(5_000),
        ..Reply::status(200, r#"{"data": ["#)
    });
    let e = run().await;
    assert!(
        matches!(&e.kind, PluginErrorKind::Unavailable(m) if m.contains("request failed")),
        "{e}"
    );
}
