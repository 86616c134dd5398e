//! Credentials: added with a secret that never comes back (a masked hint instead),
//! encrypted at rest, validated by the provider's plugin, updated, removed; ADMIN only.

use aispend::entity::credential;
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{Backend, TestApp, backend_tests, db_tests, spawn_app_with};
use sea_orm::EntityTrait;
use serde_json::json;

const SECRET: &str = "sk-admin-Zq81xLw0vT4kP2nR7sYf3Qa";
const FIELDS: &str = "id provider label projectId secretHint keyId baseUrl options status lastValidatedAt lastError createdAt updatedAt";

fn add(fields: &str) -> String {
    format!("mutation($i: AddCredentialInput!) {{ addCredential(input: $i) {{ {fields} }} }}")
}

async fn a_credential_lives_encrypted_and_is_validated_by_its_plugin(backend: Backend) {
    let provider =
        FakeProvider::start(|_| Reply::status(200, r#"{"object":"list","data":[]}"#)).await;
    let allow = provider.host_port();
    let app = spawn_app_with(backend, |s| s.plugin_allow_hosts = vec![allow]).await;

    let r = app
        .admin(&add(FIELDS), json!({"i": {"provider": "OpenAI", "label": "main", "secret": SECRET, "baseUrl": provider.base_url()}}))
        .await;
    assert!(
        !r.body.to_string().contains(SECRET),
        "the secret must never be returned"
    );
    let c = r.data()["addCredential"].clone();
    assert_eq!(c["provider"], "openai");
    assert_eq!(c["secretHint"], "sk-ad…f3Qa");
    assert_eq!(c["status"], "UNVERIFIED");
    assert_eq!(c["options"], json!({}));
    let id = c["id"].as_str().expect("an id").to_owned();

    // At rest: ciphertext only, under the key id shown.
    let rows = credential::Entity::find()
        .all(&app.state.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        !row.secret_ciphertext
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes())
    );
    assert!(
        !row.secret_ciphertext
            .windows(8)
            .any(|w| w == &SECRET.as_bytes()[10..18])
    );
    assert!(!format!("{row:?}").contains(&SECRET[6..]));
    assert_eq!(row.secret_key_id, c["keyId"].as_str().expect("a key id"));
    assert_eq!(row.secret_key_id.len(), 8);

    // The plugin's check, with the secret sent to the provider only.
    let r = app
        .admin(
            &format!("mutation($id: ID!) {{ validateCredential(id: $id) {{ {FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    let v = &r.data()["validateCredential"];
    assert_eq!(v["status"], "VALID");
    assert_eq!(v["lastError"], serde_json::Value::Null);
    assert!(v["lastValidatedAt"].is_string());
    let seen = provider.seen();
    assert_eq!(
        seen.last()
            .expect("a request")
            .headers
            .get("authorization")
            .map(String::as_str),
        Some(&*format!("Bearer {SECRET}"))
    );

    provider
        .respond(|_| Reply::status(401, r#"{"error":{"message":"Incorrect API key provided"}}"#));
    let r = app
        .admin(
            "mutation($id: ID!) { validateCredential(id: $id) { status lastError } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["validateCredential"]["status"], "INVALID");
    let error = r.data()["validateCredential"]["lastError"]
        .as_str()
        .expect("an error")
        .to_owned();
    assert!(
        error.contains("401") && error.contains("Incorrect API key"),
        "{error}"
    );
    assert!(!r.body.to_string().contains(SECRET));

    provider.respond(|_| Reply::status(503, "down"));
    let r = app
        .admin(
            "mutation($id: ID!) { validateCredential(id: $id) { status lastError } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["validateCredential"]["status"], "UNVERIFIED");

    // A new secret resets the status; the hint follows it.
    let r = app
        .admin(
            "mutation($id: ID!, $i: UpdateCredentialInput!) { updateCredential(id: $id, input: $i) { label secretHint status lastError baseUrl } }",
            json!({"id": id, "i": {"label": "primary", "secret": "sk-admin-new-0000000000XYZW"}}),
        )
        .await;
    let u = &r.data()["updateCredential"];
    assert_eq!(u["label"], "primary");
    assert_eq!(u["secretHint"], "sk-ad…XYZW");
    assert_eq!(u["status"], "UNVERIFIED");
    assert_eq!(u["baseUrl"], provider.base_url());

    // A base URL the plugin may not reach is refused, and nothing changes.
    let r = app
        .admin(
            "mutation($id: ID!, $i: UpdateCredentialInput!) { updateCredential(id: $id, input: $i) { baseUrl } }",
            json!({"id": id, "i": {"baseUrl": "https://evil.example.com"}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.baseUrl"));

    let r = app.admin("{ credentials { id label } }", json!({})).await;
    assert_eq!(r.data()["credentials"].as_array().map(Vec::len), Some(1));
    let r = app
        .admin(
            "mutation($id: ID!) { removeCredential(id: $id) { label } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["removeCredential"]["label"], "primary");
    let r = app.admin("{ credentials { id } }", json!({})).await;
    assert_eq!(r.data()["credentials"], json!([]));
    let r = app
        .admin(
            "mutation($id: ID!) { validateCredential(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
}

async fn bad_credential_input_changes_nothing(app: TestApp) {
    let r = app
        .admin(
            &add("id"),
            json!({"i": {"provider": "nope", "label": "x", "secret": SECRET}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.provider"));

    let r = app
        .admin(
            &add("id"),
            json!({"i": {"provider": "openai", "label": "", "secret": " ", "options": {"n": 1}}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(
        r.fields(),
        ["input.label", "input.secret", "input.options.n"]
    );

    // Only hosts the plugin declared (or the operator allows) may be a base URL.
    let r = app
        .admin(&add("id"), json!({"i": {"provider": "openai", "label": "x", "secret": SECRET, "baseUrl": "https://evil.example.com"}}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.baseUrl"));
    let r = app
        .admin(&add("id"), json!({"i": {"provider": "openai", "label": "x", "secret": SECRET, "baseUrl": "http://127.0.0.1:9"}}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");

    let ok = app
        .admin(&add("id baseUrl"), json!({"i": {"provider": "anthropic", "label": "x", "secret": SECRET, "baseUrl": "https://api.anthropic.com/"}}))
        .await;
    assert_eq!(
        ok.data()["addCredential"]["baseUrl"],
        "https://api.anthropic.com"
    );
    let dup = app
        .admin(
            &add("id"),
            json!({"i": {"provider": "anthropic", "label": "x", "secret": SECRET}}),
        )
        .await;
    assert_eq!(dup.code(), "CONFLICT");

    // ADMIN scope only.
    let reader = app.create_token(None, &["READ"]).await;
    let r = app
        .graphql(Some(&reader), "{ credentials { id } }", json!({}))
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    let r = app
        .graphql(
            Some(&reader),
            &add("id"),
            json!({"i": {"provider": "openai", "label": "y", "secret": SECRET}}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    let r = app.graphql(None, "{ credentials { id } }", json!({})).await;
    assert_eq!(r.code(), "UNAUTHORIZED");

    let r = app
        .admin("{ credentials { provider label } }", json!({}))
        .await;
    assert_eq!(
        r.data()["credentials"],
        json!([{"provider": "anthropic", "label": "x"}])
    );
}

db_tests!(bad_credential_input_changes_nothing);
backend_tests!(a_credential_lives_encrypted_and_is_validated_by_its_plugin);
