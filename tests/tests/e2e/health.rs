use aispend_e2e::{TestApp, db_tests};

async fn healthz_reports_status_version_and_database_kind(app: TestApp) {
    let response = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let expected = match app.backend {
        aispend_e2e::Backend::Sqlite => "sqlite",
        aispend_e2e::Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
}

async fn graphiql_is_served_on_get(app: TestApp) {
    let response = app
        .client
        .get(format!("{}/graphql", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("graphiql"),
        "GET /graphql should serve GraphiQL"
    );
    assert!(
        html.contains("/graphql/ws"),
        "GraphiQL should know the subscription endpoint"
    );
}

async fn the_schema_can_be_introspected_without_a_token(app: TestApp) {
    let r = app
        .graphql(
            None,
            "{ __schema { mutationType { fields { name } } } }",
            serde_json::json!({}),
        )
        .await;
    let names: Vec<String> = r.data()["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "recordUsage",
        "recordUsageBatch",
        "createProject",
        "createApiToken",
        "revokeApiToken",
        "upsertPrice",
        "importPrices",
        "recomputeCosts",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "the schema lacks {expected}"
        );
    }
}

db_tests!(
    healthz_reports_status_version_and_database_kind,
    graphiql_is_served_on_get,
    the_schema_can_be_introspected_without_a_token,
);
