//! Who asserts a relationship (people declare, discovery sources observe), and where the
//! two disagree.

use serde_json::json;

use crate::helpers::TestApp;

const UPSERT: &str = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { created relationships { created } } }";

#[tokio::test]
async fn declared_and_observed_relationships_are_told_apart_and_their_drift_is_listed() {
    let app = TestApp::spawn().await;
    app.ok(
        UPSERT,
        json!({ "input": { "source": "scanner", "items": [
            { "class": "application", "name": "app", "externalId": "app" },
            { "class": "database", "name": "db1", "externalId": "db1" },
            { "class": "database", "name": "db2", "externalId": "db2" },
        ], "relationships": [
            { "source": { "externalId": "app" }, "target": { "externalId": "db2" }, "type": "depends_on" },
        ] } }),
    )
    .await;
    let (app_id, db1) = (app.id_of("app").await, app.id_of("db1").await);
    let declared = app.relate(&[(&app_id, "depends_on", &db1)]).await;

    let asserted = "query($id: ID!) { relationship(id: $id) { assertedBy { source kind stale } } }";
    let data = app.ok(asserted, json!({ "id": declared[0] })).await;
    assert_eq!(
        data["relationship"]["assertedBy"],
        json!([{ "source": "test-admin", "kind": "DECLARED", "stale": false }])
    );
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { outgoing { id target { name } } } }",
            json!({ "id": app_id }),
        )
        .await;
    let observed = data["configurationItem"]["outgoing"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["target"]["name"] == json!("db2"))
        .expect("the observed relationship")["id"]
        .clone();
    let data = app.ok(asserted, json!({ "id": observed })).await;
    assert_eq!(
        data["relationship"]["assertedBy"],
        json!([{ "source": "scanner", "kind": "OBSERVED", "stale": false }])
    );

    let data = app
        .ok(
            "{ relationshipDrift(source: \"scanner\") {
                unobservedCount unobserved { target { name } }
                contradictionCount contradictions { observed { target { name } } declared { target { name } } }
              }
              cmdbHealth { unobservedDeclaredRelationships } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["relationshipDrift"],
        json!({
            "unobservedCount": 1, "unobserved": [{ "target": { "name": "db1" } }],
            "contradictionCount": 1,
            "contradictions": [{ "observed": { "target": { "name": "db2" } }, "declared": { "target": { "name": "db1" } } }]
        })
    );
    assert_eq!(
        data["cmdbHealth"]["unobservedDeclaredRelationships"],
        json!(1)
    );

    // Once the scanner reports the declared relationship too, there is no drift.
    app.ok(
        UPSERT,
        json!({ "input": { "source": "scanner", "items": [], "relationships": [
            { "source": { "externalId": "app" }, "target": { "externalId": "db1" }, "type": "depends_on" },
        ] } }),
    )
    .await;
    let data = app
        .ok(
            "{ relationshipDrift(source: \"scanner\") { unobservedCount contradictionCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["relationshipDrift"],
        json!({ "unobservedCount": 0, "contradictionCount": 0 })
    );
    let data = app.ok(asserted, json!({ "id": declared[0] })).await;
    let kinds: Vec<&str> = data["relationship"]["assertedBy"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a["kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(kinds, ["DECLARED", "OBSERVED"]);
}
