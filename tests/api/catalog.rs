//! CI classes and relationship types: seeded defaults and management through the API.

use serde_json::json;

use crate::helpers::{CiBuilder, TestApp};

#[tokio::test]
async fn the_default_catalogue_is_seeded() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            "{ ciClasses { name parent { name } } relationshipTypes { name inverseLabel propagation } }",
            json!({}),
        )
        .await;
    let classes: Vec<&str> = data["ciClasses"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    for expected in [
        "server",
        "virtual_machine",
        "database",
        "application",
        "network_switch",
        "storage",
        "load_balancer",
        "container",
        "business_application",
    ] {
        assert!(classes.contains(&expected), "{expected} is seeded");
    }
    let types = data["relationshipTypes"].as_array().expect("types");
    let depends_on = types
        .iter()
        .find(|t| t["name"] == json!("depends_on"))
        .expect("depends_on");
    assert_eq!(depends_on["inverseLabel"], json!("used_by"));
    assert_eq!(depends_on["propagation"], json!("TARGET_TO_SOURCE"));
    let backed_up = types
        .iter()
        .find(|t| t["name"] == json!("backed_up_by"))
        .expect("backed_up_by");
    assert_eq!(backed_up["propagation"], json!("NONE"));
    for expected in [
        "runs_on",
        "hosted_on",
        "connected_to",
        "uses",
        "routes_to",
        "contains",
    ] {
        assert!(
            types.iter().any(|t| t["name"] == json!(expected)),
            "{expected} is seeded"
        );
    }
}

#[tokio::test]
async fn a_subclass_inherits_attributes_and_identifiers() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            r#"mutation { createCiClass(input: {
                name: "gpu_server", parent: "server", description: "A server with GPUs",
                attributes: [{ name: "gpu_count", type: INTEGER, required: true, description: "GPUs fitted" }]
            }) { name label parent { name } attributes { name type required }
                 effectiveAttributes { name } identifierAttributes } }"#,
            json!({}),
        )
        .await;
    let class = &data["createCiClass"];
    assert_eq!(class["label"], json!("Gpu server"));
    assert_eq!(class["parent"]["name"], json!("server"));
    assert_eq!(
        class["attributes"],
        json!([{ "name": "gpu_count", "type": "INTEGER", "required": true }])
    );
    let effective: Vec<&str> = class["effectiveAttributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| a["name"].as_str().expect("a name"))
        .collect();
    assert!(
        effective.contains(&"fqdn")
            && effective.contains(&"serial_number")
            && effective.contains(&"gpu_count")
    );
    assert_eq!(
        class["identifierAttributes"],
        json!(["serial_number", "fqdn"])
    );

    let data = app
        .ok(
            "{ ciClass(name: \"server\") { subclasses { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["ciClass"]["subclasses"],
        json!([{ "name": "gpu_server" }])
    );
    let id = CiBuilder::new("gpu_server", "dgx-1")
        .attributes(json!({ "gpu_count": 8 }))
        .create(&app)
        .await;
    let data = app
        .ok(
            "{ configurationItems(filter: { class: \"server\" }) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["configurationItems"]["nodes"], json!([{ "id": id }]));
}

#[tokio::test]
async fn class_management_refuses_duplicates_bad_names_and_classes_in_use() {
    let app = TestApp::spawn().await;
    let create = "mutation($input: CreateCiClassInput!) { createCiClass(input: $input) { name } }";
    let response = app
        .graphql(create, json!({ "input": { "name": "server" } }))
        .await;
    assert_eq!(response.code(), "CONFLICT");
    let response = app
        .graphql(create, json!({ "input": { "name": "Bad Name" } }))
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app
        .graphql(
            create,
            json!({ "input": { "name": "thing", "parent": "nope" } }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app
        .graphql(
            create,
            json!({ "input": { "name": "thing", "identifierAttributes": ["serial"] } }),
        )
        .await;
    assert_eq!(
        response.code(),
        "VALIDATION",
        "identifiers must be attributes of the class"
    );
    let response = app
        .graphql(
            create,
            json!({ "input": { "name": "thing", "attributes": [{ "name": "a", "type": "STRING" }, { "name": "a", "type": "INTEGER" }] } }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");

    app.ok(create, json!({ "input": { "name": "thing", "attributes": [{ "name": "serial", "type": "STRING" }], "identifierAttributes": ["serial"] } }))
        .await;
    app.create_ci("thing", "t-1", json!({})).await;
    let response = app
        .graphql("mutation { deleteCiClass(name: \"thing\") }", json!({}))
        .await;
    assert_eq!(response.code(), "CONFLICT");
    let response = app
        .graphql("mutation { deleteCiClass(name: \"computer\") }", json!({}))
        .await;
    assert_eq!(response.code(), "CONFLICT", "a class with subclasses stays");
    let response = app
        .graphql("mutation { deleteCiClass(name: \"nope\") }", json!({}))
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    app.ok("mutation { deleteCiClass(name: \"container\") }", json!({}))
        .await;
}

#[tokio::test]
async fn a_class_update_changes_the_rules_for_the_next_write() {
    let app = TestApp::spawn().await;
    let id = app.create_ci("container", "c-1", json!({})).await;
    let response = app
        .graphql(
            r#"mutation { updateCiClass(name: "container", input: { attributes: [{ name: "image", type: STRING }] }) { name } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        response.code(),
        "VALIDATION",
        "its identifier `container_id` would be gone"
    );
    let data = app
        .ok(
            r#"mutation { updateCiClass(name: "container", input: {
                label: "Container workload",
                attributes: [{ name: "image", type: STRING, required: true }],
                identifierAttributes: ["image"]
            }) { label attributes { name required } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["updateCiClass"]["label"], json!("Container workload"));
    let response = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { attributes: { other: 1 } }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(response.message().contains("image"));
}

#[tokio::test]
async fn relationship_types_are_managed_through_the_api() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            r#"mutation { createRelationshipType(input: {
                name: "replicates_with", inverseLabel: "replicates_with", propagation: BOTH, description: "Active-active pair"
            }) { name propagation } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["createRelationshipType"],
        json!({ "name": "replicates_with", "propagation": "BOTH" })
    );
    let data = app
        .ok(
            "mutation { updateRelationshipType(name: \"replicates_with\", input: { propagation: NONE }) { propagation } }",
            json!({}),
        )
        .await;
    assert_eq!(data["updateRelationshipType"]["propagation"], json!("NONE"));
    let response = app
        .graphql(
            "mutation { createRelationshipType(input: { name: \"depends_on\", inverseLabel: \"x\", propagation: NONE }) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");

    let a = app.create_ci("database", "a", json!({})).await;
    let b = app.create_ci("database", "b", json!({})).await;
    app.relate(&[(&a, "replicates_with", &b)]).await;
    let response = app
        .graphql(
            "mutation { deleteRelationshipType(name: \"replicates_with\") }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");
    app.ok(
        "mutation { deleteRelationshipType(name: \"replicates_to\") }",
        json!({}),
    )
    .await;
    let response = app
        .graphql(
            "{ relationshipType(name: \"replicates_to\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
}
