//! Impact as it was, versions, the changes between two instants and reverts, with answers
//! worked out by hand. Instants come from the audit trail (the commit stamps).

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Names of the affected CIs and services of an impact analysis as of `at`.
async fn impact_names(app: &TestApp, ci: &str, at: Option<&str>) -> (Vec<String>, Vec<String>) {
    let data = app
        .ok(
            "query($id: ID!, $at: DateTime) { impactAnalysis(input: { ciIds: [$id], asOf: $at }) {
                affectedCis { ci { name } } affectedServices { service { name } }
            } }",
            json!({ "id": ci, "at": at }),
        )
        .await;
    let names = |list: &Value, key: &str| {
        let mut names: Vec<String> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| item[key]["name"].as_str().expect("a name").to_owned())
            .collect();
        names.sort();
        names
    };
    let report = &data["impactAnalysis"];
    (
        names(&report["affectedCis"], "ci"),
        names(&report["affectedServices"], "service"),
    )
}

#[tokio::test]
async fn impact_and_root_causes_answer_on_the_graph_as_it_was() {
    let app = TestApp::spawn().await;
    let db = app.create_ci("database", "db", json!({})).await;
    let only_db = app.latest_instant().await;
    let db2 = app.create_ci("database", "db2", json!({})).await;
    // Unrelated CIs, so that the past is near enough to rewind the current graph (as
    // `only_db` is far enough to read the graph whole as of then).
    for i in 0..12 {
        app.create_ci("server", &format!("spare-{i}"), json!({}))
            .await;
    }
    let api = app.create_ci("application", "api", json!({})).await;
    let web = app.create_ci("application", "web", json!({})).await;
    let links = app
        .relate(&[(&api, "depends_on", &db), (&web, "depends_on", &api)])
        .await;
    app.create_service("Shop", &[&web]).await;
    let before = app.latest_instant().await;

    // api moves from db to db2.
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": [links[0]] }),
    )
    .await;
    app.relate(&[(&api, "depends_on", &db2)]).await;

    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        impact_names(&app, &db, Some(&before)).await,
        (owned(&["api", "db", "web"]), owned(&["Shop"])),
        "before the move, db carried api, web and the shop"
    );
    assert_eq!(
        impact_names(&app, &db, None).await,
        (owned(&["db"]), owned(&[])),
        "now db carries nothing"
    );
    assert_eq!(
        impact_names(&app, &db2, Some(&before)).await,
        (owned(&["db2"]), owned(&[]))
    );
    assert_eq!(
        impact_names(&app, &db, Some(&only_db)).await,
        (owned(&["db"]), owned(&[])),
        "when only db existed"
    );
    let missing = app
        .graphql(
            "query($id: ID!, $at: DateTime) { impactAnalysis(input: { ciIds: [$id], asOf: $at }) { totalAffectedCis } }",
            json!({ "id": db2, "at": only_db }),
        )
        .await;
    assert_eq!(missing.code(), "NOT_FOUND", "db2 did not exist yet");
    assert_eq!(
        impact_names(&app, &db2, None).await,
        (owned(&["api", "db2", "web"]), owned(&["Shop"]))
    );

    let causes = "query($ids: [ID!]!, $at: DateTime) { rootCauseCandidates(ciIds: $ids, asOf: $at) { ci { name } } }";
    let names = |data: Value| {
        let mut names: Vec<String> = data["rootCauseCandidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .map(|c| c["ci"]["name"].as_str().expect("a name").to_owned())
            .collect();
        names.sort();
        names
    };
    let then = app.ok(causes, json!({ "ids": [web], "at": before })).await;
    assert!(names(then.clone()).contains(&"db".to_owned()), "{then}");
    assert!(!names(then.clone()).contains(&"db2".to_owned()), "{then}");
    let now = app.ok(causes, json!({ "ids": [web], "at": null })).await;
    assert!(names(now.clone()).contains(&"db2".to_owned()), "{now}");
    assert!(!names(now.clone()).contains(&"db".to_owned()), "{now}");
}

#[tokio::test]
async fn each_version_is_kept_and_a_revert_writes_a_new_one() {
    let app = TestApp::spawn().await;
    let web = app
        .create_ci("application", "web", json!({ "port": 80 }))
        .await;
    app.update_ci(
        &web,
        json!({ "name": "web-2", "attributePatch": { "port": 8080 } }),
    )
    .await;
    app.update_ci(&web, json!({ "status": "UNDER_MAINTENANCE" }))
        .await;

    let version = "query($id: ID!, $v: Int!) { configurationItemVersion(id: $id, version: $v) {
        version validFrom validTo state { name status attributes version } event { action actor }
    } }";
    let data = app.ok(version, json!({ "id": web, "v": 1 })).await;
    let first = &data["configurationItemVersion"];
    assert_eq!(first["version"], json!(1));
    assert_eq!(
        first["state"],
        json!({ "name": "web", "status": "IN_SERVICE", "attributes": { "port": 80 }, "version": 1 })
    );
    assert_eq!(first["event"]["action"], json!("CREATE"));
    assert!(
        first["validTo"].is_string(),
        "version 1 was replaced: {first}"
    );
    let data = app.ok(version, json!({ "id": web, "v": 3 })).await;
    assert_eq!(
        data["configurationItemVersion"]["validTo"],
        Value::Null,
        "current"
    );
    let data = app.ok(version, json!({ "id": web, "v": 9 })).await;
    assert_eq!(data["configurationItemVersion"], Value::Null);

    let revert = "mutation($id: ID!, $to: Int!, $expected: Int) { revertConfigurationItem(id: $id, toVersion: $to, expectedVersion: $expected) { name status attributes version } }";
    let stale = app
        .graphql(revert, json!({ "id": web, "to": 1, "expected": 2 }))
        .await;
    assert_eq!(stale.code(), "VERSION_MISMATCH");
    let missing = app
        .graphql(revert, json!({ "id": web, "to": 99, "expected": 3 }))
        .await;
    assert_eq!(missing.code(), "NOT_FOUND");
    let data = app
        .ok(revert, json!({ "id": web, "to": 1, "expected": 3 }))
        .await;
    assert_eq!(
        data["revertConfigurationItem"],
        json!({ "name": "web", "status": "IN_SERVICE", "attributes": { "port": 80 }, "version": 4 })
    );
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { history(first: 1) { nodes { action } } } }",
            json!({ "id": web }),
        )
        .await;
    assert_eq!(
        data["configurationItem"]["history"]["nodes"][0]["action"],
        json!("REVERT")
    );
    // Reverting to the state it already has writes nothing.
    let data = app.ok(revert, json!({ "id": web, "to": 4 })).await;
    assert_eq!(data["revertConfigurationItem"]["version"], json!(4));
}

const CHANGES: &str = "query($from: DateTime!, $to: DateTime, $scope: ChangeScope) {
    changesBetween(from: $from, to: $to, scope: $scope) {
        totalCount
        nodes { kind name actor fields { field before after } membersAdded membersRemoved }
    }
}";

fn kinds(data: &Value) -> Vec<String> {
    data["changesBetween"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            format!(
                "{} {}",
                n["kind"].as_str().unwrap_or("?"),
                n["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn changes_between_two_instants_say_what_changed_who_and_how() {
    let app = TestApp::spawn().await;
    app.create_ci("application", "marker", json!({})).await;
    let start = app.latest_instant().await;
    let web = app
        .create_ci("application", "web", json!({ "port": 80 }))
        .await;
    let db = app.create_ci("database", "db", json!({})).await;
    let other = app.create_ci("database", "other", json!({})).await;
    let links = app.relate(&[(&web, "depends_on", &db)]).await;
    let shop = app.create_service("Shop", &[&web]).await;
    app.update_ci(&web, json!({ "attributePatch": { "port": 8080 } }))
        .await;
    let middle = app.latest_instant().await;
    app.ok(
        "mutation($s: ID!, $c: [ID!]!) { addServiceMembers(serviceId: $s, ciIds: $c) { version } }",
        json!({ "s": shop, "c": [db] }),
    )
    .await;
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": [links[0]] }),
    )
    .await;
    app.ok(
        "mutation($id: ID!) { retireConfigurationItem(id: $id) { version } }",
        json!({ "id": db }),
    )
    .await;
    app.update_ci(&other, json!({ "owner": "ops" })).await;
    let end = app.latest_instant().await;

    let data = app
        .ok(CHANGES, json!({ "from": start, "to": middle }))
        .await;
    assert_eq!(
        kinds(&data),
        [
            "CI_CREATED web",
            "CI_CREATED db",
            "CI_CREATED other",
            "RELATIONSHIP_ADDED ",
            "SERVICE_CREATED Shop",
            "CI_UPDATED web"
        ]
    );
    let nodes = &data["changesBetween"]["nodes"];
    assert_eq!(nodes[4]["membersAdded"], json!([web]));
    assert_eq!(
        nodes[5]["fields"],
        json!([{ "field": "attributes.port", "before": 80, "after": 8080 }])
    );

    let data = app.ok(CHANGES, json!({ "from": middle, "to": end })).await;
    assert_eq!(
        kinds(&data),
        [
            "MEMBERS_ADDED Shop",
            "RELATIONSHIP_REMOVED ",
            "CI_RETIRED db",
            "CI_UPDATED other"
        ]
    );
    let nodes = &data["changesBetween"]["nodes"];
    assert_eq!(nodes[0]["membersAdded"], json!([db]));
    assert_eq!(
        nodes[2]["fields"],
        json!([{ "field": "status", "before": "IN_SERVICE", "after": "RETIRED" }])
    );

    // Narrowed to db: what touched it, and memberships narrowed to it.
    let data = app
        .ok(
            CHANGES,
            json!({ "from": start, "to": end, "scope": { "ciIds": [db] } }),
        )
        .await;
    assert_eq!(
        kinds(&data),
        [
            "CI_CREATED db",
            "RELATIONSHIP_ADDED ",
            "SERVICE_CREATED Shop",
            "MEMBERS_ADDED Shop",
            "RELATIONSHIP_REMOVED ",
            "CI_RETIRED db"
        ]
    );
    assert_eq!(
        data["changesBetween"]["nodes"][2]["membersAdded"],
        json!([])
    );
    assert_eq!(data["changesBetween"]["totalCount"], json!(6));

    // Narrowed by a CI filter, as of either end of the interval.
    let data = app
        .ok(CHANGES, json!({ "from": start, "to": end, "scope": { "filter": { "name": { "equals": "other" } } } }))
        .await;
    assert_eq!(kinds(&data), ["CI_CREATED other", "CI_UPDATED other"]);

    // Narrowed to the shop's dependency closure: `other` is outside it.
    let data = app
        .ok(
            CHANGES,
            json!({ "from": start, "scope": { "serviceId": shop } }),
        )
        .await;
    let listed = kinds(&data);
    assert!(!listed.iter().any(|k| k.ends_with(" other")), "{listed:?}");
    assert!(listed.contains(&"CI_RETIRED db".to_owned()), "{listed:?}");

    let wrong = app
        .graphql(CHANGES, json!({ "from": end, "to": start }))
        .await;
    assert_eq!(wrong.code(), "VALIDATION");
}

#[tokio::test]
async fn baselines_are_named_instants_and_their_diff_is_what_changed_in_their_scope() {
    let app = TestApp::spawn().await;
    let web = app
        .create_ci("application", "web", json!({ "port": 80 }))
        .await;
    let db = app.create_ci("database", "db", json!({})).await;
    let other = app.create_ci("database", "other", json!({})).await;
    let shop = app.create_service("Shop", &[&web, &db]).await;
    let create = "mutation($input: CreateBaselineInput!) { createBaseline(input: $input) { id name at createdBy scopeServiceId } }";
    let data = app
        .ok(create, json!({ "input": { "name": "before-release", "description": "As approved", "scope": { "serviceId": shop } } }))
        .await;
    assert_eq!(data["createBaseline"]["name"], json!("before-release"));
    assert_eq!(data["createBaseline"]["scopeServiceId"], json!(shop));
    let taken_at = data["createBaseline"]["at"].clone();
    let node = app
        .ok(
            "query($id: ID!) { node(id: $id) { __typename ... on Baseline { name } } }",
            json!({ "id": data["createBaseline"]["id"] }),
        )
        .await;
    assert_eq!(
        node["node"],
        json!({ "__typename": "Baseline", "name": "before-release" })
    );

    app.update_ci(&web, json!({ "attributePatch": { "port": 8443 } }))
        .await;
    app.update_ci(&other, json!({ "owner": "ops" })).await;
    app.ok(
        create,
        json!({ "input": { "name": "after-release", "scope": { "serviceId": shop } } }),
    )
    .await;
    app.update_ci(&db, json!({ "owner": "dba" })).await;

    let diff = "query($from: String!, $to: String) { baselineDiff(from: $from, to: $to) { totalCount nodes { kind name fields { field before after } } } }";
    let data = app
        .ok(
            diff,
            json!({ "from": "before-release", "to": "after-release" }),
        )
        .await;
    assert_eq!(
        data["baselineDiff"],
        json!({ "totalCount": 1, "nodes": [{ "kind": "CI_UPDATED", "name": "web",
                 "fields": [{ "field": "attributes.port", "before": 80, "after": 8443 }] }] }),
        "`other` is outside the shop's closure"
    );
    let data = app.ok(diff, json!({ "from": "before-release" })).await;
    assert_eq!(
        data["baselineDiff"]["totalCount"],
        json!(2),
        "up to now: db's owner too"
    );

    // The baseline's instant reads the estate as it was.
    let data = app
        .ok(
            "query($id: ID!, $at: DateTime) { configurationItem(id: $id, asOf: $at) { attributes } baselines { totalCount nodes { name } } }",
            json!({ "id": web, "at": taken_at }),
        )
        .await;
    assert_eq!(
        data["configurationItem"]["attributes"],
        json!({ "port": 80 })
    );
    assert_eq!(data["baselines"]["totalCount"], json!(2));

    let again = app
        .graphql(create, json!({ "input": { "name": "before-release" } }))
        .await;
    assert_eq!(again.code(), "CONFLICT");
    let backwards = app
        .graphql(
            diff,
            json!({ "from": "after-release", "to": "before-release" }),
        )
        .await;
    assert_eq!(backwards.code(), "VALIDATION");
    let unknown = app.graphql(diff, json!({ "from": "nope" })).await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}

#[tokio::test]
async fn an_incident_keeps_the_impact_it_had_when_it_opened() {
    let app = TestApp::spawn().await;
    let db = app.create_ci("database", "db", json!({})).await;
    let api = app.create_ci("application", "api", json!({})).await;
    let links = app.relate(&[(&api, "depends_on", &db)]).await;
    let incident = crate::helpers::IncidentBuilder::new("db down")
        .on(&[&db])
        .create(&app)
        .await;
    // Since then, api stopped depending on db.
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": [links[0]] }),
    )
    .await;
    let data = app
        .ok(
            "query($id: ID!) { incident(id: $id) { impactAtOpen { totalAffectedCis affectedCis { ci { name } } } } }",
            json!({ "id": incident["id"] }),
        )
        .await;
    let report = &data["incident"]["impactAtOpen"];
    assert_eq!(report["totalAffectedCis"], json!(2), "{report}");
    let (now, _) = impact_names(&app, &db, None).await;
    assert_eq!(now, vec!["db".to_owned()], "now db carries nothing");
}
