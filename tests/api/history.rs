//! History you can query: reads as of a past instant, versions, the changes between two
//! instants and reverts. Instants come from the audit trail (the commit stamps), never
//! from the test's clock.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const CI_AT: &str = "query($id: ID!, $at: DateTime) { configurationItem(id: $id, asOf: $at) {
    name status version attributes
    outgoing { type { name } target { name status } }
    incoming { source { name } }
    services { name members { name } }
} }";

#[tokio::test]
async fn a_ci_reads_as_it_was_before_creation_between_updates_and_after_deletion() {
    let app = TestApp::spawn().await;
    let marker = app.create_ci("application", "marker", json!({})).await;
    let before_create = app.latest_instant().await;
    let web = app
        .create_ci("application", "web", json!({ "port": 80 }))
        .await;
    let db = app.create_ci("database", "db", json!({})).await;
    app.relate(&[(&web, "depends_on", &db)]).await;
    app.create_service("Shop", &[&web]).await;
    let first = app.latest_instant().await;

    app.update_ci(
        &web,
        json!({ "name": "web-2", "attributePatch": { "port": 8080 } }),
    )
    .await;
    app.update_ci(&db, json!({ "status": "UNDER_MAINTENANCE" }))
        .await;
    let second = app.latest_instant().await;

    app.ok(
        "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
        json!({ "id": web }),
    )
    .await;
    let _ = marker;

    let data = app
        .ok(CI_AT, json!({ "id": web, "at": before_create }))
        .await;
    assert_eq!(data["configurationItem"], Value::Null, "not yet created");

    let data = app.ok(CI_AT, json!({ "id": web, "at": first })).await;
    assert_eq!(
        data["configurationItem"],
        json!({ "name": "web", "status": "IN_SERVICE", "version": 1, "attributes": { "port": 80 },
                "outgoing": [{ "type": { "name": "depends_on" }, "target": { "name": "db", "status": "IN_SERVICE" } }],
                "incoming": [],
                "services": [{ "name": "Shop", "members": [{ "name": "web" }] }] })
    );

    let data = app.ok(CI_AT, json!({ "id": web, "at": second })).await;
    assert_eq!(
        data["configurationItem"],
        json!({ "name": "web-2", "status": "IN_SERVICE", "version": 2, "attributes": { "port": 8080 },
                "outgoing": [{ "type": { "name": "depends_on" }, "target": { "name": "db", "status": "UNDER_MAINTENANCE" } }],
                "incoming": [],
                "services": [{ "name": "Shop", "members": [{ "name": "web-2" }] }] }),
        "deleted since, still readable as of a time it existed"
    );

    let now = app.graphql(CI_AT, json!({ "id": web })).await;
    assert_eq!(now.code(), "NOT_FOUND", "deleted now");

    // Lists: the filter applies to the state at that instant.
    let list = "query($at: DateTime) { configurationItems(asOf: $at, filter: { name: { startsWith: \"web\" } }) { totalCount nodes { name version } } }";
    let data = app.ok(list, json!({ "at": first })).await;
    assert_eq!(
        data["configurationItems"],
        json!({ "totalCount": 1, "nodes": [{ "name": "web", "version": 1 }] })
    );
    let data = app.ok(list, json!({ "at": null })).await;
    assert_eq!(data["configurationItems"]["totalCount"], json!(0));
    let data = app
        .ok(
            "query($at: DateTime) { configurationItems(asOf: $at, filter: { status: [UNDER_MAINTENANCE] }) { nodes { name } } relationships(asOf: $at) { totalCount nodes { source { name } target { name version } } } }",
            json!({ "at": second }),
        )
        .await;
    assert_eq!(
        data["configurationItems"]["nodes"],
        json!([{ "name": "db" }])
    );
    assert_eq!(
        data["relationships"],
        json!({ "totalCount": 1, "nodes": [{ "source": { "name": "web-2" }, "target": { "name": "db", "version": 2 } }] })
    );
}

#[tokio::test]
async fn an_instant_in_the_future_or_before_the_first_record_is_refused() {
    let app = TestApp::spawn().await;
    let web = app.create_ci("application", "web", json!({})).await;
    for at in ["2999-01-01T00:00:00Z", "2000-01-01T00:00:00Z"] {
        let response = app.graphql(CI_AT, json!({ "id": web, "at": at })).await;
        assert_eq!(response.code(), "VALIDATION", "{at}");
        let response = app
            .graphql(
                "query($at: DateTime) { services(asOf: $at) { totalCount } }",
                json!({ "at": at }),
            )
            .await;
        assert_eq!(response.code(), "VALIDATION", "{at}");
    }
}

#[tokio::test]
async fn services_read_with_their_members_as_they_were() {
    let app = TestApp::spawn().await;
    let web = app.create_ci("application", "web", json!({})).await;
    let db = app.create_ci("database", "db", json!({})).await;
    let shop = app.create_service("Shop", &[&web]).await;
    let first = app.latest_instant().await;
    app.ok(
        "mutation($s: ID!, $c: [ID!]!) { addServiceMembers(serviceId: $s, ciIds: $c) { version } }",
        json!({ "s": shop, "c": [db] }),
    )
    .await;
    app.ok(
        "mutation($s: ID!, $c: [ID!]!) { removeServiceMembers(serviceId: $s, ciIds: $c) { version } }",
        json!({ "s": shop, "c": [web] }),
    )
    .await;
    let query = "query($id: ID!, $at: DateTime) { service(id: $id, asOf: $at) { version members { name } } services(asOf: $at) { nodes { name } } configurationItems(asOf: $at, filter: { serviceId: $id }) { nodes { name } } }";
    let data = app.ok(query, json!({ "id": shop, "at": first })).await;
    assert_eq!(
        data["service"],
        json!({ "version": 1, "members": [{ "name": "web" }] })
    );
    assert_eq!(
        data["configurationItems"]["nodes"],
        json!([{ "name": "web" }])
    );
    let data = app.ok(query, json!({ "id": shop, "at": null })).await;
    assert_eq!(
        data["service"],
        json!({ "version": 3, "members": [{ "name": "db" }] })
    );
    assert_eq!(
        data["configurationItems"]["nodes"],
        json!([{ "name": "db" }])
    );
}

#[tokio::test]
async fn history_recorded_before_versions_were_kept_reads_as_of_its_times_after_a_restart() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let web = app
        .create_ci("application", "web", json!({ "port": 80 }))
        .await;
    let db = app.create_ci("database", "db", json!({})).await;
    app.relate(&[(&web, "depends_on", &db)]).await;
    app.create_service("Shop", &[&web]).await;
    let first = app.latest_instant().await;
    app.update_ci(&web, json!({ "name": "web-2" })).await;
    app.update_ci(&db, json!({ "status": "UNDER_MAINTENANCE" }))
        .await;
    let second = app.latest_instant().await;
    async fn answers(app: &TestApp, web: &str, instants: &[&str]) -> Vec<Value> {
        let mut all = Vec::new();
        for at in instants {
            all.push(app.ok(CI_AT, json!({ "id": web, "at": at })).await);
        }
        all
    }
    let instants = [first.as_str(), second.as_str()];
    let before = answers(&app, &web, &instants).await;

    // A database migrated from before versions were kept: no versions, the trail to replay.
    for sql in [
        "DELETE FROM configuration_item_version",
        "DELETE FROM relationship_version",
        "DELETE FROM service_version",
        "DELETE FROM service_member_version",
        "UPDATE history_backfill SET through = (SELECT MAX(id) FROM audit_event)",
    ] {
        app.db.execute_unprepared(sql).await.expect("rewind");
    }
    let restarted = app.another_instance().await;
    assert_eq!(answers(&restarted, &web, &instants).await, before);
    assert_eq!(
        before[0]["configurationItem"]["name"],
        json!("web"),
        "{before:?}"
    );
}

#[tokio::test]
async fn audit_events_between_two_instants_are_those_stamped_in_between() {
    let app = TestApp::spawn().await;
    app.create_ci("application", "a", json!({})).await;
    let after_a = app.latest_instant().await;
    app.create_ci("application", "b", json!({})).await;
    let after_b = app.latest_instant().await;
    app.create_ci("application", "c", json!({})).await;
    let names = |data: &Value| -> Vec<String> {
        data["auditEvents"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["after"]["name"].as_str().expect("a name").to_owned())
            .collect()
    };
    let query = "query($since: DateTime, $until: DateTime) { auditEvents(order: ASC, filter: { entityType: CONFIGURATION_ITEM, since: $since, until: $until }) { totalCount nodes { after } } }";
    let data = app.ok(query, json!({ "since": after_b })).await;
    assert_eq!(names(&data), ["b", "c"], "since is inclusive");
    assert_eq!(data["auditEvents"]["totalCount"], json!(2));
    let data = app.ok(query, json!({ "until": after_b })).await;
    assert_eq!(names(&data), ["a"], "until is exclusive");
    let data = app
        .ok(query, json!({ "since": after_a, "until": after_b }))
        .await;
    assert_eq!(names(&data), ["a"]);
    let data = app
        .ok(query, json!({ "since": "2999-01-01T00:00:00Z" }))
        .await;
    assert_eq!(data["auditEvents"]["totalCount"], json!(0));
}
