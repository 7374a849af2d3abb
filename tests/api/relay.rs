//! Relay global object identification: every object with an id is a `Node`, and `node` /
//! `nodes` fetch any of them again by that id alone, under the same access rules.

use cmdb::domain::auth::Role;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
    ... on ConfigurationItem { name } ... on CiClass { name } ... on Service { name } } }";

async fn node(app: &TestApp, id: &str) -> Value {
    app.ok(NODE, json!({ "id": id })).await["node"].clone()
}

#[tokio::test]
async fn every_object_with_an_id_is_a_node_and_node_fetches_it_again() {
    let app = TestApp::spawn().await;
    let host = app.create_ci("server", "relay-host", json!({})).await;
    let vm = app
        .create_ci("virtual_machine", "relay-vm", json!({}))
        .await;
    let relationship = app.relate(&[(&vm, "runs_on", &host)]).await.remove(0);
    let service = app.create_service("Relay service", &[&vm]).await;
    let data = app
        .ok(
            "{ ciClass(name: \"server\") { id } relationshipType(name: \"runs_on\") { id }
               auditEvents(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let class = data["ciClass"]["id"].as_str().expect("an id").to_owned();
    let kind = data["relationshipType"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let event = data["auditEvents"]["nodes"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    for (id, typename) in [
        (host.as_str(), "ConfigurationItem"),
        (relationship.as_str(), "Relationship"),
        (service.as_str(), "Service"),
        (class.as_str(), "CiClass"),
        (kind.as_str(), "RelationshipType"),
        (event.as_str(), "AuditEvent"),
    ] {
        let found = node(&app, id).await;
        assert_eq!(found["__typename"], json!(typename), "{id}: {found}");
        assert_eq!(found["id"], json!(id), "the id reads back as given");
    }
    assert_eq!(node(&app, &host).await["name"], json!("relay-host"));
    assert_eq!(node(&app, &class).await["name"], json!("server"));

    // In order, null for what names nothing.
    let missing = uuid::Uuid::now_v7().to_string();
    let many = app
        .ok(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [service, missing, class] }),
        )
        .await;
    assert_eq!(
        many["nodes"],
        json!([{ "id": service }, null, { "id": class }])
    );

    // The ids clients already hold keep working as inputs.
    let by_old_id = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { name } }",
            json!({ "id": host }),
        )
        .await;
    assert_eq!(by_old_id["configurationItem"]["name"], json!("relay-host"));

    let bad = app.graphql(NODE, json!({ "id": "CiClass:nope" })).await;
    assert_eq!(bad.code(), "VALIDATION");
}

#[tokio::test]
async fn node_obeys_the_same_access_rules_as_the_lists() {
    let app = TestApp::spawn().await;
    let viewer = app.token("relay-viewer", Role::Viewer).await;
    let tokens = app
        .ok(
            "{ apiTokens { id name } auditEvents(filter: { entityType: API_TOKEN }, first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let token_id = tokens["apiTokens"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let token_event = tokens["auditEvents"]["nodes"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(node(&app, &token_id).await["__typename"], json!("ApiToken"));

    let as_viewer = app
        .graphql_with(Some(&viewer), NODE, json!({ "id": token_id }))
        .await;
    assert_eq!(as_viewer.code(), "FORBIDDEN");
    let event = app
        .graphql_with(Some(&viewer), NODE, json!({ "id": token_event }))
        .await;
    assert_eq!(
        event.data()["node"],
        Value::Null,
        "token events stay hidden"
    );
}

#[tokio::test]
async fn the_node_interface_lists_every_type_with_an_id() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            "{ __schema { types { name kind fields { name type { kind ofType { name } } } } }
               __type(name: \"Node\") { possibleTypes { name } } }",
            json!({}),
        )
        .await;
    let mut with_id: Vec<String> = data["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter(|t| t["kind"] == json!("OBJECT"))
        .filter(|t| {
            t["fields"].as_array().is_some_and(|fields| {
                fields
                    .iter()
                    .any(|f| f["name"] == json!("id") && f["type"]["ofType"]["name"] == json!("ID"))
            })
        })
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let mut nodes: Vec<String> = data["__type"]["possibleTypes"]
        .as_array()
        .expect("possible types")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    with_id.sort();
    nodes.sort();
    assert_eq!(with_id, nodes);
}
