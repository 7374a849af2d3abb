//! Services and their member CIs.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_service_lists_its_members_and_a_ci_its_services() {
    let app = TestApp::spawn().await;
    let web = app.create_ci("application", "web", json!({})).await;
    let db = app.create_ci("database", "db", json!({})).await;
    let shop = app.create_service("Online Shop", &[&web, &db]).await;
    app.create_service("Analytics", &[&db]).await;

    let data = app
        .ok(
            "query($id: ID!) { service(id: $id) { name kind criticality version members { name } } }",
            json!({ "id": shop }),
        )
        .await;
    assert_eq!(
        data["service"],
        json!({ "name": "Online Shop", "kind": "BUSINESS", "criticality": "HIGH", "version": 1,
                "members": [{ "name": "web" }, { "name": "db" }] })
    );
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { services { name } } }",
            json!({ "id": db }),
        )
        .await;
    assert_eq!(
        data["configurationItem"]["services"],
        json!([{ "name": "Analytics" }, { "name": "Online Shop" }])
    );
    let data = app
        .ok("{ services(filter: { name: { startsWith: \"online\" } }) { totalCount nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        data["services"],
        json!({ "totalCount": 1, "nodes": [{ "name": "Online Shop" }] })
    );
}

#[tokio::test]
async fn members_are_added_and_removed_idempotently() {
    let app = TestApp::spawn().await;
    let web = app.create_ci("application", "web", json!({})).await;
    let db = app.create_ci("database", "db", json!({})).await;
    let shop = app.create_service("Shop", &[&web]).await;
    let add = "mutation($s: ID!, $c: [ID!]!) { addServiceMembers(serviceId: $s, ciIds: $c) { version members { name } } }";
    let remove = "mutation($s: ID!, $c: [ID!]!) { removeServiceMembers(serviceId: $s, ciIds: $c) { version members { name } } }";

    let data = app.ok(add, json!({ "s": shop, "c": [web, db] })).await;
    assert_eq!(
        data["addServiceMembers"],
        json!({ "version": 2, "members": [{ "name": "web" }, { "name": "db" }] })
    );
    let data = app.ok(add, json!({ "s": shop, "c": [db] })).await;
    assert_eq!(
        data["addServiceMembers"]["version"],
        json!(2),
        "adding a member twice changes nothing"
    );

    let missing = uuid::Uuid::now_v7().to_string();
    let response = app.graphql(add, json!({ "s": shop, "c": [missing] })).await;
    assert_eq!(response.code(), "NOT_FOUND");

    let data = app.ok(remove, json!({ "s": shop, "c": [web] })).await;
    assert_eq!(
        data["removeServiceMembers"],
        json!({ "version": 3, "members": [{ "name": "db" }] })
    );
    let data = app.ok(remove, json!({ "s": shop, "c": [web] })).await;
    assert_eq!(data["removeServiceMembers"]["version"], json!(3));
}

#[tokio::test]
async fn service_names_are_unique_and_updates_are_versioned() {
    let app = TestApp::spawn().await;
    let shop = app.create_service("Shop", &[]).await;
    app.create_service("Payroll", &[]).await;
    let response = app
        .graphql(
            "mutation { createService(input: { name: \"Shop\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");

    let update = "mutation($id: ID!, $v: Int, $input: UpdateServiceInput!) { updateService(id: $id, expectedVersion: $v, input: $input) { name kind description version } }";
    let response = app
        .graphql(
            update,
            json!({ "id": shop, "v": 1, "input": { "name": "Payroll" } }),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");
    let data = app
        .ok(update, json!({ "id": shop, "v": 1, "input": { "name": "Web Shop", "kind": "TECHNICAL", "description": "sells" } }))
        .await;
    assert_eq!(
        data["updateService"],
        json!({ "name": "Web Shop", "kind": "TECHNICAL", "description": "sells", "version": 2 })
    );
    let response = app
        .graphql(
            update,
            json!({ "id": shop, "v": 1, "input": { "name": "Other" } }),
        )
        .await;
    assert_eq!(response.code(), "VERSION_MISMATCH");

    let data = app
        .ok(
            "mutation($id: ID!) { deleteService(id: $id) }",
            json!({ "id": shop }),
        )
        .await;
    assert_eq!(data["deleteService"], json!(shop));
    let response = app
        .graphql(
            "query($id: ID!) { service(id: $id) { id } }",
            json!({ "id": shop }),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
}

#[tokio::test]
async fn the_demo_estate_answers_questions_right_away() {
    let app = TestApp::spawn().await;
    let outcome = cmdb::domain::demo::load(&app.db, &cmdb::domain::audit::Actor::system())
        .await
        .expect("the demo loads");
    assert!(matches!(
        outcome,
        cmdb::domain::demo::DemoOutcome::Loaded { .. }
    ));
    let again = cmdb::domain::demo::load(&app.db, &cmdb::domain::audit::Actor::system())
        .await
        .expect("a second load is harmless");
    assert!(matches!(
        again,
        cmdb::domain::demo::DemoOutcome::Skipped { .. }
    ));

    let data = app
        .ok(
            r#"{ services { totalCount nodes { name members { name } } }
                 servers: configurationItems(filter: { class: "server" }) { nodes { name incoming(types: ["hosted_on"]) { source { name } } } } }"#,
            json!({}),
        )
        .await;
    assert!(data["services"]["totalCount"].as_u64().expect("a count") >= 3);
    let shop = data["services"]["nodes"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == json!("Online Shop"))
        .expect("the online shop");
    assert!(shop["members"].as_array().expect("members").len() >= 4);
    let servers = data["servers"]["nodes"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    assert!(
        servers
            .iter()
            .all(|s| !s["incoming"].as_array().expect("vms").is_empty())
    );
}
