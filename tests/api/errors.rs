//! Every error carries a stable code; database text never reaches a client.

use sea_orm::ConnectionTrait;
use serde_json::json;

use cmdb::domain::auth::Role;

use crate::helpers::{self, CiBuilder, TestApp};

#[tokio::test]
async fn not_found_names_the_missing_thing() {
    let app = TestApp::spawn().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let response = app
        .graphql(
            "query($id: ID!) { configurationItem(id: $id) { id } }",
            json!({ "id": missing }),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    assert!(response.message().contains(&missing));
    let response = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { name: \"x\" }) { id } }",
            json!({ "id": missing }),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
}

#[tokio::test]
async fn bad_input_is_a_validation_error_naming_the_field() {
    let app = TestApp::spawn().await;
    let response = app
        .graphql(
            "{ configurationItem(id: \"not-a-uuid\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert_eq!(response.error()["extensions"]["field"], json!("id"));
    let response = CiBuilder::new("server", "   ").try_create(&app).await;
    assert_eq!(response.code(), "VALIDATION");
    assert_eq!(response.error()["extensions"]["field"], json!("name"));
    let response = CiBuilder::new("server", &"x".repeat(300))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = CiBuilder::new("server", "s")
        .attributes(json!([1, 2]))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = CiBuilder::new("server", "s")
        .attributes(json!({ "blob": "x".repeat(70_000) }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    // Databases cannot store the NUL character: it is refused wherever it comes.
    let response = CiBuilder::new("server", "nul\u{0}name")
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = CiBuilder::new("server", "s")
        .attributes(json!({ "k": "a\u{0}b" }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app
        .graphql(
            "{ configurationItems(filter: { owner: \"x\\u0000\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert_eq!(app.ci_count().await, 0);
}

#[tokio::test]
async fn malformed_operations_get_graphql_codes() {
    let app = TestApp::spawn().await;
    let response = app.graphql("{ configurationItems(", json!({})).await;
    assert_eq!(response.code(), "GRAPHQL_PARSE_FAILED");
    let response = app
        .graphql("{ configurationItems { nodes { colour } } }", json!({}))
        .await;
    assert_eq!(response.code(), "GRAPHQL_VALIDATION_FAILED");
    let response = app
        .graphql(
            "{ configurationItems(filter: { status: [BROKEN] }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "GRAPHQL_VALIDATION_FAILED");
    let response = app
        .graphql(
            "query($first: Int) { configurationItems(first: $first) { totalCount } }",
            json!({ "first": "ten" }),
        )
        .await;
    let code = response.code();
    assert!(
        code == "VALIDATION" || code == "GRAPHQL_VALIDATION_FAILED",
        "{code}"
    );

    let token = app.token(helpers::ADMIN, Role::Admin).await;
    let body = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(body.status(), 400);
    let body: serde_json::Value = body.json().await.expect("a JSON body");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("GRAPHQL_PARSE_FAILED")
    );
}

#[tokio::test]
async fn queries_too_deep_or_too_complex_are_refused_naming_the_limit() {
    let app = TestApp::spawn_with(
        cmdb::limits::Limits {
            max_query_depth: 6,
            max_query_complexity: 500,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let deep = "{ configurationItems(first: 1) { nodes { outgoing { target { outgoing { target { name } } } } } } }";
    let response = app.graphql(deep, json!({})).await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_query_depth"));
    let wide = "{ configurationItems(first: 400) { nodes { id name status } } }";
    let response = app.graphql(wide, json!({})).await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_query_complexity"));
    app.ok(
        "{ configurationItems(first: 20) { nodes { id name } } }",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn an_infrastructure_failure_is_internal_hides_the_database_text_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.db
        .execute_unprepared("DROP TABLE audit_event")
        .await
        .expect("drop the audit table under the server");
    let response = CiBuilder::new("server", "esx-01").try_create(&app).await;
    assert_eq!(response.code(), "INTERNAL");
    assert_eq!(response.message(), "internal error");
    assert!(
        !response
            .0
            .to_string()
            .to_lowercase()
            .contains("audit_event")
    );
    assert_eq!(
        app.ci_count().await,
        0,
        "the CI was rolled back with its audit event"
    );
}
