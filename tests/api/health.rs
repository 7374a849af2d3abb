//! `cmdbHealth`: completeness, staleness, orphans and suspected duplicates.

use serde_json::{Value, json};

use cmdb::domain::auth::Role;

use crate::helpers::TestApp;

const HEALTH: &str = "{ cmdbHealth(limit: 50) {
    totalCis healthyCis accuracyPercent
    completeness { count cis { ci { name } missingRequired missingRecommended } }
    staleness { count cis { ci { name } sources { source } } }
    orphans { count cis { name } }
    duplicates { count groups { reason ciClass { name } attribute value cis { name } } }
} }";

fn names(list: &Value, path: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let mut value = item;
            for key in path {
                value = &value[*key];
            }
            value.as_str().unwrap_or_default().to_owned()
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn the_health_report_finds_incomplete_stale_orphaned_and_duplicated_cis() {
    let app = TestApp::spawn().await;
    app.ok(
        r#"mutation { createCiClass(input: {
            name: "appliance",
            attributes: [
                { name: "serial", type: STRING, recommended: true },
                { name: "rack", type: STRING }
            ],
            identifierAttributes: ["serial"]
        }) { name attributes { name required recommended } } }"#,
        json!({}),
    )
    .await;
    let a1 = app
        .create_ci("appliance", "fw-1", json!({ "serial": "X1" }))
        .await;
    let a2 = app
        .create_ci("appliance", "fw-2", json!({ "serial": " x1 " }))
        .await;
    let a3 = app
        .create_ci("appliance", "lb-1", json!({ "serial": "L1" }))
        .await;
    app.create_ci("appliance", "Proxy", json!({ "serial": "P1" }))
        .await;
    app.create_ci(
        "appliance",
        "proxy ",
        json!({ "serial": "P2", "rack": "r1" }),
    )
    .await;
    app.create_ci("appliance", "probe", json!({})).await;
    app.relate(&[(&a1, "connected_to", &a2), (&a2, "connected_to", &a3)])
        .await;

    // A discovery source saw two VMs, then a full sync found only one.
    let token = app.token("vcenter", Role::Discovery).await;
    let upsert = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { stale } }";
    let vm = |id: &str| json!({ "class": "virtual_machine", "name": format!("vm-{id}"), "externalId": id, "attributes": { "vm_uuid": id } });
    for items in [json!([vm("v1"), vm("v2")]), json!([vm("v1")])] {
        app.graphql_with(
            Some(&token),
            upsert,
            json!({ "input": { "source": "vcenter", "mode": "FULL_SYNC", "scope": "dc1", "items": items } }),
        )
        .await
        .data();
    }
    let v1 = app.id_of("vm-v1").await;
    let v2 = app.id_of("vm-v2").await;
    app.create_service("VMs", &[&v1, &v2]).await;
    // Retired CIs are out of the check.
    let old = app.create_ci("appliance", "retired-box", json!({})).await;
    app.ok(
        "mutation($id: ID!) { retireConfigurationItem(id: $id) { status } }",
        json!({ "id": old }),
    )
    .await;

    let report = app.ok(HEALTH, json!({})).await["cmdbHealth"].clone();
    assert_eq!(report["totalCis"], json!(8));
    assert_eq!(
        report["completeness"],
        json!({ "count": 1, "cis": [{ "ci": { "name": "probe" }, "missingRequired": [], "missingRecommended": ["serial"] }] })
    );
    assert_eq!(report["staleness"]["count"], json!(1));
    assert_eq!(
        report["staleness"]["cis"],
        json!([{ "ci": { "name": "vm-v2" }, "sources": [{ "source": "vcenter" }] }])
    );
    assert_eq!(report["orphans"]["count"], json!(3));
    assert_eq!(
        names(&report["orphans"]["cis"], &["name"]),
        vec!["Proxy", "probe", "proxy"]
    );
    let groups = report["duplicates"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(report["duplicates"]["count"], json!(2));
    let by_name = groups
        .iter()
        .find(|g| g["reason"] == json!("SAME_NAME"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(by_name["value"], json!("proxy"));
    assert_eq!(by_name["ciClass"]["name"], json!("appliance"));
    assert_eq!(names(&by_name["cis"], &["name"]), vec!["Proxy", "proxy"]);
    let by_serial = groups
        .iter()
        .find(|g| g["reason"] == json!("SAME_IDENTIFIER"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (by_serial["attribute"].clone(), by_serial["value"].clone()),
        (json!("serial"), json!("x1"))
    );
    assert_eq!(names(&by_serial["cis"], &["name"]), vec!["fw-1", "fw-2"]);
    // Flagged: probe, vm-v2, Proxy, proxy, fw-1, fw-2 (probe is also an orphan).
    assert_eq!(report["healthyCis"], json!(2));
    assert_eq!(report["accuracyPercent"], json!(25.0));

    let response = app
        .graphql("{ cmdbHealth(staleAfterHours: 0) { totalCis } }", json!({}))
        .await;
    assert_eq!(response.code(), "VALIDATION");
}
