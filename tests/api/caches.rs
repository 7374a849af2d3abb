//! The server's caches (impact graph, catalogues, verified tokens) answer without asking
//! the database while nothing changes, and see every change: their own instance's at once,
//! another instance's as soon as the database tells (PostgreSQL notifications, SQLite's
//! data version).

use std::time::Duration;

use cmdb::domain::auth::Role;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const IMPACT: &str = "query($id: ID!) { impactAnalysis(input: { ciIds: [$id] }) {
    totalAffectedCis affectedServices { service { name } } } }";

/// Asks `query` until a repeat runs no statement; false if it never settles.
async fn settles_without_statements(app: &TestApp, query: &str, variables: &Value) -> bool {
    // The server starts listening in the background; until it does, repeats still ask.
    for _ in 0..100 {
        app.ok(query, variables.clone()).await;
        let before = app.settled_statement_count().await;
        app.ok(query, variables.clone()).await;
        if app.settled_statement_count().await == before {
            return true;
        }
    }
    false
}

/// Asks `query` until `done` holds of its answer, each time the server hears of a change,
/// for at most five seconds.
async fn eventually(app: &TestApp, query: &str, variables: &Value, done: impl Fn(&Value) -> bool) {
    app.until(Duration::from_secs(5), query, || async {
        let data = app.ok(query, variables.clone()).await;
        done(&data).then_some(())
    })
    .await;
}

#[tokio::test]
async fn unchanged_data_costs_no_statement_and_every_change_is_seen() {
    let app = TestApp::spawn().await;
    let server = app.create_ci("server", "esx-1", json!({})).await;
    let vm = app.create_ci("virtual_machine", "vm-1", json!({})).await;
    app.relate(&[(&vm, "runs_on", &server)]).await;
    let variables = json!({ "id": server });
    let total = |data: &Value| data["impactAnalysis"]["totalAffectedCis"].as_u64();
    let before = total(&app.ok(IMPACT, variables.clone()).await).expect("a count");
    assert!(
        settles_without_statements(&app, IMPACT, &variables).await,
        "a repeated analysis asks the database nothing"
    );
    assert!(
        settles_without_statements(
            &app,
            "{ relationshipTypes { name } ciClasses { name } }",
            &json!({})
        )
        .await,
        "repeated catalogue reads ask the database nothing"
    );

    // A change on this instance is seen by the next request.
    let app_ci = app.create_ci("application", "shop", json!({})).await;
    app.relate(&[(&app_ci, "depends_on", &vm)]).await;
    let data = app.ok(IMPACT, variables.clone()).await;
    assert_eq!(total(&data), Some(before + 1));

    // A change through another instance on the same database is seen too.
    let other = app.another_instance().await;
    let db = other.create_ci("database", "shop-db", json!({})).await;
    other.relate(&[(&db, "runs_on", &vm)]).await;
    eventually(&app, IMPACT, &variables, |data| {
        total(data) == Some(before + 2)
    })
    .await;
    other
        .ok(
            "mutation { createRelationshipType(input: { name: \"mirrors_onto\", inverseLabel: \"mirrored_by\", propagation: BOTH }) { name } }",
            json!({}),
        )
        .await;
    eventually(&app, "{ relationshipTypes { name } }", &json!({}), |data| {
        data["relationshipTypes"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t["name"] == json!("mirrors_onto")))
    })
    .await;
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once_here_and_promptly_elsewhere() {
    let app = TestApp::spawn().await;
    let other = app.another_instance().await;
    let token = app.token("short-lived", Role::Viewer).await;
    let probe = "{ services { totalCount } }";
    assert!(
        app.graphql_with(Some(&token), probe, json!({}))
            .await
            .errors()
            .is_empty()
    );
    assert!(
        other
            .graphql_with(Some(&token), probe, json!({}))
            .await
            .errors()
            .is_empty()
    );
    app.ok(
        "mutation { revokeApiToken(name: \"short-lived\") { name } }",
        json!({}),
    )
    .await;
    assert_eq!(
        app.graphql_with(Some(&token), probe, json!({}))
            .await
            .code(),
        "UNAUTHENTICATED",
        "the instance that revoked it refuses it at once"
    );
    let refused = other
        .until(
            Duration::from_secs(3),
            "the other instance hears of the revocation within its notification delay",
            || async {
                let response = other.graphql_with(Some(&token), probe, json!({})).await;
                (!response.errors().is_empty()).then_some(response)
            },
        )
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
}
