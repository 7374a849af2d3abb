//! Creating, reading and deleting relationships in bulk, all or nothing.

use serde_json::json;

use crate::helpers::TestApp;

const CREATE: &str = "mutation($input: [CreateRelationshipInput!]!) { createRelationships(input: $input) { id type { name } source { name } target { name } attributes } }";

async fn three_cis(app: &TestApp) -> (String, String, String) {
    (
        app.create_ci("application", "shop", json!({})).await,
        app.create_ci("database", "shop-db", json!({})).await,
        app.create_ci("virtual_machine", "vm-1", json!({})).await,
    )
}

#[tokio::test]
async fn relationships_are_created_in_bulk_and_read_from_both_ends() {
    let app = TestApp::spawn().await;
    let (shop, db, vm) = three_cis(&app).await;
    let data = app
        .ok(
            CREATE,
            json!({ "input": [
                { "sourceId": shop, "targetId": db, "type": "depends_on", "attributes": { "port": 5432 } },
                { "sourceId": db, "targetId": vm, "type": "runs_on" },
                { "sourceId": shop, "targetId": vm, "type": "runs_on" },
            ]}),
        )
        .await;
    let created = data["createRelationships"].as_array().expect("a list");
    assert_eq!(created.len(), 3);
    assert_eq!(created[0]["type"]["name"], json!("depends_on"));
    assert_eq!(created[0]["source"]["name"], json!("shop"));
    assert_eq!(created[0]["target"]["name"], json!("shop-db"));
    assert_eq!(created[0]["attributes"], json!({ "port": 5432 }));

    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) {
                outgoing { type { name } target { name } }
                runsOn: outgoing(types: [\"runs_on\"]) { target { name } }
                incoming { type { name inverseLabel } source { name } }
            } }",
            json!({ "id": db }),
        )
        .await;
    let ci = &data["configurationItem"];
    assert_eq!(
        ci["outgoing"],
        json!([{ "type": { "name": "runs_on" }, "target": { "name": "vm-1" } }])
    );
    assert_eq!(ci["runsOn"], json!([{ "target": { "name": "vm-1" } }]));
    assert_eq!(
        ci["incoming"],
        json!([{ "type": { "name": "depends_on", "inverseLabel": "used_by" }, "source": { "name": "shop" } }])
    );

    let data = app
        .ok(
            "query($id: ID!) { relationships(filter: { ciId: $id }) { totalCount } byType: relationships(filter: { types: [\"runs_on\"] }) { totalCount } }",
            json!({ "id": vm }),
        )
        .await;
    assert_eq!(data["relationships"]["totalCount"], json!(2));
    assert_eq!(data["byType"]["totalCount"], json!(2));
}

#[tokio::test]
async fn a_failing_item_fails_the_whole_batch_and_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let (shop, db, vm) = three_cis(&app).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let cases = [
        (
            json!({ "sourceId": shop, "targetId": missing, "type": "depends_on" }),
            "NOT_FOUND",
            "input[1].targetId",
        ),
        (
            json!({ "sourceId": vm, "targetId": vm, "type": "depends_on" }),
            "VALIDATION",
            "input[1].targetId",
        ),
        (
            json!({ "sourceId": vm, "targetId": db, "type": "loves" }),
            "VALIDATION",
            "input[1].type",
        ),
        (
            json!({ "sourceId": shop, "targetId": db, "type": "depends_on" }),
            "CONFLICT",
            "",
        ),
        (
            json!({ "sourceId": "not-a-uuid", "targetId": db, "type": "depends_on" }),
            "VALIDATION",
            "input[1].sourceId",
        ),
    ];
    for (bad, code, field) in cases {
        let response = app
            .graphql(
                CREATE,
                json!({ "input": [{ "sourceId": shop, "targetId": db, "type": "depends_on" }, bad] }),
            )
            .await;
        assert_eq!(response.code(), code, "{}", response.0);
        if !field.is_empty() {
            assert_eq!(response.error()["extensions"]["field"], json!(field));
        }
        assert!(
            response.message().contains("input[1]"),
            "{}",
            response.message()
        );
        assert_eq!(
            app.relationship_count().await,
            0,
            "nothing of the batch was written"
        );
    }
    let audit = app
        .ok(
            "{ auditEvents(filter: { entityType: RELATIONSHIP }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit["auditEvents"]["totalCount"],
        json!(0),
        "no audit event either"
    );
}

#[tokio::test]
async fn an_existing_relationship_cannot_be_created_twice() {
    let app = TestApp::spawn().await;
    let (shop, db, _) = three_cis(&app).await;
    app.relate(&[(&shop, "depends_on", &db)]).await;
    let response = app
        .graphql(
            CREATE,
            json!({ "input": [{ "sourceId": shop, "targetId": db, "type": "depends_on" }] }),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");
    assert!(response.message().contains("already exists"));
    // The same two CIs may still be related by another type.
    app.relate(&[(&shop, "uses", &db)]).await;
    assert_eq!(app.relationship_count().await, 2);
}

#[tokio::test]
async fn a_retired_ci_takes_no_new_relationship() {
    let app = TestApp::spawn().await;
    let (shop, db, _) = three_cis(&app).await;
    app.ok(
        "mutation($id: ID!) { retireConfigurationItem(id: $id) { status } }",
        json!({ "id": db }),
    )
    .await;
    let response = app
        .graphql(
            CREATE,
            json!({ "input": [{ "sourceId": shop, "targetId": db, "type": "depends_on" }] }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(response.message().contains("retired"));
}

#[tokio::test]
async fn relationships_are_deleted_in_bulk_all_or_nothing() {
    let app = TestApp::spawn().await;
    let (shop, db, vm) = three_cis(&app).await;
    let ids = app
        .relate(&[(&shop, "depends_on", &db), (&db, "runs_on", &vm)])
        .await;
    let delete = "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }";

    let missing = uuid::Uuid::now_v7().to_string();
    let response = app
        .graphql(delete, json!({ "ids": [ids[0], missing] }))
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    assert_eq!(response.error()["extensions"]["field"], json!("ids[1]"));
    assert_eq!(app.relationship_count().await, 2, "nothing was deleted");

    let data = app.ok(delete, json!({ "ids": [ids[0]] })).await;
    assert_eq!(data["deleteRelationships"], json!([ids[0]]));
    assert_eq!(app.relationship_count().await, 1);
    let response = app
        .graphql(
            "query($id: ID!) { relationship(id: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused() {
    let app = TestApp::spawn_with(
        cmdb::limits::Limits {
            max_batch_size: 2,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let (shop, db, vm) = three_cis(&app).await;
    let response = app
        .graphql(
            CREATE,
            json!({ "input": [
                { "sourceId": shop, "targetId": db, "type": "depends_on" },
                { "sourceId": db, "targetId": vm, "type": "runs_on" },
                { "sourceId": shop, "targetId": vm, "type": "runs_on" },
            ]}),
        )
        .await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_batch_size"));
}
