//! Projects, tokens and scopes.

use aispend::entity::api_token;
use aispend_e2e::{RECORD_USAGE, TestApp, db_tests};
use sea_orm::EntityTrait;
use serde_json::json;

fn usage(project: Option<&str>) -> serde_json::Value {
    json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 10, "outputTokens": 5})
}

async fn projects_are_created_listed_and_read(app: TestApp) {
    let a = app.create_project("alpha").await;
    let b = app.create_project("beta").await;
    let list = app
        .admin("{ projects { id name createdAt } }", json!({}))
        .await;
    let names: Vec<&str> = list.data()["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    let one = app
        .admin(
            "query($id: ID!) { project(id: $id) { id name } }",
            json!({"id": b}),
        )
        .await;
    assert_eq!(one.data()["project"]["name"], "beta");
    assert_ne!(a, b);
}

async fn a_taken_project_name_is_a_conflict(app: TestApp) {
    app.create_project("alpha").await;
    let again = app
        .admin(
            "mutation { createProject(name: \"alpha\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(again.code(), "CONFLICT");
    let blank = app
        .admin(
            "mutation { createProject(name: \"   \") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(blank.code(), "INVALID_INPUT");
    assert_eq!(blank.field().as_deref(), Some("name"));
}

async fn an_unknown_project_is_not_found(app: TestApp) {
    let r = app
        .admin(
            "{ project(id: \"0190c3d4-0000-7000-8000-000000000000\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = app
        .admin(
            RECORD_USAGE,
            json!({"input": usage(Some("0190c3d4-0000-7000-8000-000000000000"))}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
}

async fn a_token_is_shown_once_and_only_its_hash_is_stored(app: TestApp) {
    let project = app.create_project("alpha").await;
    let created = app
        .admin(
            "mutation($p: ID) { createApiToken(name: \"ci\", projectId: $p, scopes: [INGEST, READ]) { token apiToken { id name hint scopes projectId revoked } } }",
            json!({"p": project}),
        )
        .await;
    let payload = &created.data()["createApiToken"];
    let text = payload["token"].as_str().unwrap();
    assert!(text.starts_with("asp_") && text.len() == 44);
    assert_eq!(payload["apiToken"]["scopes"], json!(["INGEST", "READ"]));
    assert_eq!(payload["apiToken"]["projectId"], project.as_str());
    assert!(
        text.starts_with(
            payload["apiToken"]["hint"]
                .as_str()
                .unwrap()
                .trim_end_matches('…')
        )
    );

    let rows = api_token::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    for row in rows {
        assert_ne!(row.token_hash, text);
        assert!(
            !row.token_hash.contains(&text[4..]),
            "the stored hash must not contain the token"
        );
        assert!(
            !format!("{row:?}").contains(&text[8..]),
            "no column may contain the token text"
        );
    }
    let listed = app.admin("{ apiTokens { name hint } }", json!({})).await;
    assert!(
        !listed.body.to_string().contains(&text[8..]),
        "the token text is never shown again"
    );
}

async fn no_token_a_wrong_token_and_a_revoked_token_are_unauthorized(app: TestApp) {
    let project = app.create_project("alpha").await;
    let query = "{ projects { id } }";
    assert_eq!(
        app.graphql(None, query, json!({})).await.code(),
        "UNAUTHORIZED"
    );
    assert_eq!(
        app.graphql(Some("asp_not-a-real-token"), query, json!({}))
            .await
            .code(),
        "UNAUTHORIZED"
    );

    let token = app.create_token(Some(&project), &["READ"]).await;
    assert!(
        app.graphql(Some(&token), query, json!({}))
            .await
            .errors()
            .is_empty()
    );
    let id =
        app.admin("{ apiTokens { id } }", json!({})).await.data()["apiTokens"][0]["id"].clone();
    let revoked = app
        .admin(
            "mutation($id: ID!) { revokeApiToken(id: $id) { revoked revokedAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(revoked.data()["revokeApiToken"]["revoked"], true);
    let after = app.graphql(Some(&token), query, json!({})).await;
    assert_eq!(after.code(), "UNAUTHORIZED");
    assert_eq!(
        app.graphql(Some(&token), RECORD_USAGE, json!({"input": usage(None)}))
            .await
            .code(),
        "UNAUTHORIZED"
    );
}

async fn the_operator_token_from_the_environment_is_an_admin(app: TestApp) {
    let viewer = app
        .admin("{ viewer { kind scopes projectId } }", json!({}))
        .await;
    assert_eq!(
        viewer.data()["viewer"],
        json!({"kind": "OPERATOR", "scopes": ["ADMIN"], "projectId": null})
    );
    app.create_project("made-by-the-operator").await;
}

async fn a_project_token_sees_and_writes_only_its_project(app: TestApp) {
    let mine = app.create_project("mine").await;
    let theirs = app.create_project("theirs").await;
    let token = app.create_token(Some(&mine), &["INGEST", "READ"]).await;

    // Without projectId it records into its own project.
    let recorded = app
        .graphql(Some(&token), RECORD_USAGE, json!({"input": usage(None)}))
        .await;
    assert_eq!(
        recorded.data()["recordUsage"]["event"]["projectId"],
        mine.as_str()
    );
    // Another project is forbidden, and nothing is written there.
    let foreign = app
        .graphql(
            Some(&token),
            RECORD_USAGE,
            json!({"input": usage(Some(&theirs))}),
        )
        .await;
    assert_eq!(foreign.code(), "FORBIDDEN");

    let projects = app
        .graphql(Some(&token), "{ projects { id } }", json!({}))
        .await;
    assert_eq!(projects.data()["projects"], json!([{"id": mine}]));
    let other = app
        .graphql(
            Some(&token),
            "query($id: ID!) { project(id: $id) { id } }",
            json!({"id": theirs}),
        )
        .await;
    assert_eq!(other.code(), "FORBIDDEN");
    let filtered = app
        .graphql(
            Some(&token),
            "query($p: [ID!]) { usageEvents(filter: {projects: $p}) { totalCount } }",
            json!({"p": [theirs]}),
        )
        .await;
    assert_eq!(filtered.code(), "FORBIDDEN");
    let all = app
        .graphql(Some(&token), "{ usageEvents { totalCount } }", json!({}))
        .await;
    assert_eq!(all.data()["usageEvents"]["totalCount"], 1);
    assert_eq!(
        app.event_count().await,
        1,
        "the foreign write stored nothing"
    );

    let event_id = recorded.data()["recordUsage"]["event"]["id"].clone();
    let other_token = app.create_token(Some(&theirs), &["READ"]).await;
    let peek = app
        .graphql(
            Some(&other_token),
            "query($id: ID!) { usageEvent(id: $id) { id } }",
            json!({"id": event_id}),
        )
        .await;
    assert_eq!(peek.code(), "FORBIDDEN");
}

async fn an_ingest_token_may_only_record(app: TestApp) {
    let project = app.create_project("alpha").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let recorded = app
        .graphql(Some(&token), RECORD_USAGE, json!({"input": usage(None)}))
        .await;
    assert_eq!(recorded.data()["recordUsage"]["duplicate"], false);
    for query in [
        "{ usageEvents { totalCount } }",
        "{ projects { id } }",
        "{ prices { id } }",
        "{ apiTokens { id } }",
    ] {
        assert_eq!(
            app.graphql(Some(&token), query, json!({})).await.code(),
            "FORBIDDEN",
            "{query}"
        );
    }
    let create = app
        .graphql(
            Some(&token),
            "mutation { createProject(name: \"x\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(create.code(), "FORBIDDEN");
}

async fn a_read_token_cannot_record_or_administer(app: TestApp) {
    let project = app.create_project("alpha").await;
    let token = app.create_token(Some(&project), &["READ"]).await;
    assert_eq!(
        app.graphql(Some(&token), RECORD_USAGE, json!({"input": usage(None)}))
            .await
            .code(),
        "FORBIDDEN"
    );
    let mint = app
        .graphql(Some(&token), "mutation($p: ID) { createApiToken(name: \"x\", projectId: $p, scopes: [ADMIN]) { token } }", json!({"p": project}))
        .await;
    assert_eq!(mint.code(), "FORBIDDEN");
}

async fn a_project_admin_manages_only_its_project(app: TestApp) {
    let mine = app.create_project("mine").await;
    let theirs = app.create_project("theirs").await;
    let admin = app.create_token(Some(&mine), &["ADMIN"]).await;
    let create_token =
        "mutation($p: ID) { createApiToken(name: \"x\", projectId: $p, scopes: [READ]) { token } }";
    assert!(
        app.graphql(Some(&admin), create_token, json!({"p": mine}))
            .await
            .errors()
            .is_empty()
    );
    assert_eq!(
        app.graphql(Some(&admin), create_token, json!({"p": theirs}))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.graphql(Some(&admin), create_token, json!({"p": null}))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.graphql(
            Some(&admin),
            "mutation { createProject(name: \"x\") { id } }",
            json!({})
        )
        .await
        .code(),
        "FORBIDDEN"
    );
    // The other project and the whole server have tokens too; the project admin lists
    // only its project's two (its own and the one it created).
    app.create_token(Some(&theirs), &["READ"]).await;
    app.create_token(None, &["READ"]).await;
    let all = app.admin("{ apiTokens { projectId } }", json!({})).await;
    let all = all.data()["apiTokens"].as_array().unwrap().clone();
    assert!(
        all.iter().any(|t| t["projectId"] == theirs.as_str())
            && all.iter().any(|t| t["projectId"].is_null()),
        "the other project's and a global token exist: {all:#?}"
    );
    let tokens = app
        .graphql(Some(&admin), "{ apiTokens { projectId } }", json!({}))
        .await;
    let listed: Vec<&str> = tokens.data()["apiTokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["projectId"].as_str().unwrap_or("<none>"))
        .collect();
    assert_eq!(listed, vec![mine.as_str(), mine.as_str()]);
}

db_tests!(
    projects_are_created_listed_and_read,
    a_taken_project_name_is_a_conflict,
    an_unknown_project_is_not_found,
    a_token_is_shown_once_and_only_its_hash_is_stored,
    no_token_a_wrong_token_and_a_revoked_token_are_unauthorized,
    the_operator_token_from_the_environment_is_an_admin,
    a_project_token_sees_and_writes_only_its_project,
    an_ingest_token_may_only_record,
    a_read_token_cannot_record_or_administer,
    a_project_admin_manages_only_its_project,
);
