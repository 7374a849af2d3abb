//! The audit trail: every write, who made it, and the full state before and after.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn an_update_records_the_actor_and_the_full_states_before_and_after() {
    let app = TestApp::spawn().await;
    let created = app
        .graphql_as(
            Some("alice"),
            "mutation { createConfigurationItem(input: { class: \"database\", name: \"db\", owner: \"dba\", attributes: { port: 5432 } }) { id } }",
            json!({}),
        )
        .await;
    let id = created.data()["createConfigurationItem"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.graphql_as(
        Some("bob"),
        "mutation($id: ID!) { updateConfigurationItem(id: $id, expectedVersion: 1, input: { attributePatch: { port: 6432 } }) { id } }",
        json!({ "id": id }),
    )
    .await
    .data();

    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { history { totalCount nodes { actor action entityType entityId occurredAt before after } } } }",
            json!({ "id": id }),
        )
        .await;
    let history = &data["configurationItem"]["history"];
    assert_eq!(history["totalCount"], json!(2));
    let update = &history["nodes"][0];
    assert_eq!(update["actor"], json!("bob"));
    assert_eq!(update["action"], json!("UPDATE"));
    assert_eq!(update["entityType"], json!("CONFIGURATION_ITEM"));
    assert_eq!(update["entityId"], json!(id));
    assert_eq!(update["before"]["attributes"], json!({ "port": 5432 }));
    assert_eq!(update["after"]["attributes"], json!({ "port": 6432 }));
    assert_eq!(update["before"]["version"], json!(1));
    assert_eq!(update["after"]["version"], json!(2));
    for field in [
        "id",
        "name",
        "owner",
        "status",
        "class_id",
        "created_at",
        "updated_at",
    ] {
        assert!(
            update["before"].get(field).is_some(),
            "full state keeps {field}"
        );
        assert!(
            update["after"].get(field).is_some(),
            "full state keeps {field}"
        );
    }
    assert_eq!(update["before"]["owner"], json!("dba"));
    let create = &history["nodes"][1];
    assert_eq!(create["actor"], json!("alice"));
    assert_eq!(create["action"], json!("CREATE"));
    assert_eq!(create["before"], json!(null));
}

#[tokio::test]
async fn every_kind_of_write_is_audited_and_filterable() {
    let app = TestApp::spawn().await;
    let a = app.create_ci("application", "a", json!({})).await;
    let b = app.create_ci("database", "b", json!({})).await;
    let rel = app.relate(&[(&a, "depends_on", &b)]).await;
    let service = app.create_service("S", &[&a]).await;
    app.ok(
        "mutation($s: ID!, $c: [ID!]!) { addServiceMembers(serviceId: $s, ciIds: $c) { id } }",
        json!({ "s": service, "c": [b] }),
    )
    .await;
    app.ok(
        "mutation($id: ID!) { retireConfigurationItem(id: $id) { id } }",
        json!({ "id": b }),
    )
    .await;
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": rel }),
    )
    .await;
    app.ok(
        "mutation { createCiClass(input: { name: \"widget\" }) { name } }",
        json!({}),
    )
    .await;
    app.ok(
        "mutation { createRelationshipType(input: { name: \"feeds\", inverseLabel: \"fed_by\", propagation: TARGET_TO_SOURCE }) { name } }",
        json!({}),
    )
    .await;

    let data = app
        .ok("{ auditEvents(order: ASC, first: 50) { totalCount nodes { entityType action actor } } }", json!({}))
        .await;
    let events: Vec<(String, String)> = data["auditEvents"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["entityType"].as_str().expect("type").to_owned(),
                e["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("API_TOKEN", "CREATE"),
        ("CONFIGURATION_ITEM", "CREATE"),
        ("CONFIGURATION_ITEM", "CREATE"),
        ("RELATIONSHIP", "CREATE"),
        ("SERVICE", "CREATE"),
        ("SERVICE", "ADD_MEMBERS"),
        ("CONFIGURATION_ITEM", "RETIRE"),
        ("RELATIONSHIP", "DELETE"),
        ("CI_CLASS", "CREATE"),
        ("RELATIONSHIP_TYPE", "CREATE"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, a)| (t.to_string(), a.to_string()))
        .collect();
    assert_eq!(events, expected);
    let actors: Vec<&Value> = data["auditEvents"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["actor"])
        .collect();
    assert_eq!(actors[0], &json!("system"), "the harness made its token");
    assert!(
        actors[1..].iter().all(|a| *a == &json!("test-admin")),
        "the token's name is the actor"
    );

    let data = app
        .ok(
            "query($id: ID!) { auditEvents(filter: { entityType: SERVICE, entityId: $id, action: ADD_MEMBERS }) { nodes { before after } } }",
            json!({ "id": service }),
        )
        .await;
    let event = &data["auditEvents"]["nodes"][0];
    assert_eq!(event["before"]["member_ids"], json!([a]));
    assert_eq!(event["after"]["member_ids"], json!([a, b]));
}
