//! `plugins`: the bundled plugins and those in the plugin folder, with load errors;
//! a failing plugin is a PLUGIN_ERROR and the server keeps serving.

use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{
    Backend, MISBEHAVE, READS_FILES, TestApp, backend_tests, db_tests, plugin_dir, spawn_app_with,
};
use serde_json::{Value, json};

const PLUGINS: &str = "{ plugins { id name version sdkVersion capabilities hosts source origin credentialHelp manualEntryHelp docsUrl loadError replaced } }";

fn find<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no plugin {id} in {list:#?}"))
}

async fn lists_the_bundled_plugins(app: TestApp) {
    let r = app.admin(PLUGINS, json!({})).await;
    let list = r.data()["plugins"].as_array().expect("a list").clone();
    let ids: Vec<&str> = list
        .iter()
        .map(|p| p["id"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        ids,
        [
            "openai",
            "anthropic",
            "github-copilot",
            "groq",
            "perplexity"
        ]
    );
    let openai = find(&list, "openai");
    assert_eq!(openai["source"], "BUNDLED");
    assert_eq!(openai["sdkVersion"], "0.1.0");
    assert_eq!(openai["hosts"], json!(["api.openai.com"]));
    assert_eq!(
        openai["capabilities"],
        json!(["VALIDATE_CREDENTIAL", "FETCH_USAGE", "FETCH_COSTS"])
    );
    assert_eq!(openai["loadError"], Value::Null);
    assert_eq!(
        find(&list, "anthropic")["hosts"],
        json!(["api.anthropic.com"])
    );
    assert_eq!(
        find(&list, "github-copilot")["hosts"],
        json!(["api.github.com"])
    );
    for manual in ["groq", "perplexity"] {
        let p = find(&list, manual);
        assert_eq!(p["capabilities"], json!(["MANUAL_ENTRY"]));
        assert_eq!(p["hosts"], json!([]));
        assert!(
            p["manualEntryHelp"]
                .as_str()
                .is_some_and(|h| h.contains("console") || h.contains("portal")),
            "{p}"
        );
        assert!(p["docsUrl"].as_str().is_some());
    }
    // Reading the list needs a token.
    let anonymous = app.graphql(None, PLUGINS, json!({})).await;
    assert_eq!(anonymous.code(), "UNAUTHORIZED");
}

async fn lists_directory_plugins_with_load_errors(backend: Backend) {
    let dir = plugin_dir(&[MISBEHAVE, READS_FILES]);
    let app = spawn_app_with(backend, |s| s.plugin_dir = Some(dir.path().into())).await;
    let r = app.admin(PLUGINS, json!({})).await;
    let list = r.data()["plugins"].as_array().expect("a list").clone();
    assert_eq!(list.len(), 7);
    let misbehave = find(&list, "misbehave");
    assert_eq!(misbehave["source"], "DIRECTORY");
    assert_eq!(misbehave["version"], "0.1.0");
    let refused = find(&list, "aispend_fixture_reads_files");
    assert_eq!(refused["source"], "DIRECTORY");
    assert_eq!(refused["version"], Value::Null);
    assert!(
        refused["loadError"]
            .as_str()
            .is_some_and(|e| e.contains("wasi:filesystem")),
        "{refused}"
    );
}

async fn a_crashing_plugin_is_a_plugin_error_and_the_server_keeps_serving(backend: Backend) {
    let provider = FakeProvider::start(|_| Reply::status(200, "{}")).await;
    let dir = plugin_dir(&[MISBEHAVE]);
    let allow = provider.host_port();
    let app = spawn_app_with(backend, |s| {
        s.plugin_dir = Some(dir.path().into());
        s.plugin_allow_hosts = vec![allow];
    })
    .await;
    for (mode, expected) in [("panic", "panicked"), ("loop", "CPU time limit")] {
        let added = app
            .admin(
                "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id status } }",
                json!({"i": {"provider": "misbehave", "label": mode, "secret": "sk-fixture-0123456789", "baseUrl": provider.base_url(), "options": {"mode": mode}}}),
            )
            .await;
        let id = added.data()["addCredential"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let r = app
            .admin(
                "mutation($id: ID!) { validateCredential(id: $id) { status } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(r.code(), "PLUGIN_ERROR", "{:#}", r.body);
        let error = &r.errors()[0];
        assert_eq!(error["extensions"]["plugin"], "misbehave@0.1.0");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("misbehave@0.1.0") && m.contains(expected)),
            "{error}"
        );
        // The failure is recorded on the credential, and the server answers normally.
        let after = app
            .admin(
                "query($id: ID!) { credential(id: $id) { status lastError } viewer { kind } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(after.data()["credential"]["status"], "UNVERIFIED");
        assert!(
            after.data()["credential"]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains(expected))
        );
        assert_eq!(after.data()["viewer"]["kind"], "OPERATOR");
    }
}

db_tests!(lists_the_bundled_plugins);
backend_tests!(
    lists_directory_plugins_with_load_errors,
    a_crashing_plugin_is_a_plugin_error_and_the_server_keeps_serving
);
