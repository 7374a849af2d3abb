//! Impact analysis and root-cause candidates, on the demo estate.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::TestApp;

const IMPACT: &str = "query($input: ImpactAnalysisInput!) { impactAnalysis(input: $input) {
    totalAffectedCis truncated
    affectedCis { ci { name } depth state path { type { name } source { name } target { name } } }
    affectedServices { service { name } state criticality affectedMembers { name } }
    countsByDepth { depth count }
    countsByClass { ciClass { name } count }
    countsByState { state count }
} }";

async fn impact(app: &TestApp, input: Value) -> Value {
    app.ok(IMPACT, json!({ "input": input })).await["impactAnalysis"].clone()
}

/// name -> (depth, state)
fn affected(report: &Value) -> BTreeMap<String, (u64, String)> {
    report["affectedCis"]
        .as_array()
        .expect("affected CIs")
        .iter()
        .map(|a| {
            (
                a["ci"]["name"].as_str().expect("a name").to_owned(),
                (
                    a["depth"].as_u64().expect("a depth"),
                    a["state"].as_str().expect("a state").to_owned(),
                ),
            )
        })
        .collect()
}

/// service name -> state
fn services(report: &Value) -> BTreeMap<String, String> {
    report["affectedServices"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["service"]["name"].as_str().expect("a name").to_owned(),
                s["state"].as_str().expect("a state").to_owned(),
            )
        })
        .collect()
}

fn entry(report: &Value, name: &str) -> Value {
    report["affectedCis"]
        .as_array()
        .expect("affected CIs")
        .iter()
        .find(|a| a["ci"]["name"] == json!(name))
        .unwrap_or_else(|| panic!("{name} is affected"))
        .clone()
}

async fn demo() -> TestApp {
    let app = TestApp::spawn().await;
    app.load_demo().await;
    app
}

#[tokio::test]
async fn a_failing_server_takes_down_its_vms_their_applications_and_business_services() {
    let app = demo().await;
    let esx03 = app.id_of("esx-03").await;
    let report = impact(&app, json!({ "ciIds": [esx03] })).await;
    let hit = affected(&report);
    let down = |depth: u64| (depth, "DOWN".to_owned());
    assert_eq!(hit["esx-03"], down(0));
    for vm in ["db-vm-01", "pay-app-vm", "support-vm", "shop-api-03"] {
        assert_eq!(hit[vm], down(1), "{vm} is hosted on esx-03");
    }
    assert_eq!(hit["shop-db"], down(2));
    assert_eq!(hit["payroll-app"], down(2));
    assert_eq!(hit["support-portal"], down(2));
    assert_eq!(hit["shop-api"], down(3), "it depends on shop-db");
    assert_eq!(hit["shop-frontend"], down(4));
    assert_eq!(
        hit["shop-api-cluster"],
        (2, "DEGRADED".to_owned()),
        "two of three API VMs remain"
    );
    assert!(!hit.contains_key("san-01"), "backups do not carry impact");
    assert!(!hit.contains_key("esx-01"));

    let services = services(&report);
    assert_eq!(services["Online Shop"], "DOWN");
    assert_eq!(services["Payroll"], "DOWN");
    assert_eq!(services["Customer Support"], "DOWN");
    assert!(!services.contains_key("Data Centre Network"));
    let shop = report["affectedServices"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"]["name"] == json!("Online Shop"))
        .expect("the shop")
        .clone();
    assert_eq!(shop["criticality"], json!("CRITICAL"));
    assert_eq!(
        report["affectedServices"][0]["criticality"],
        json!("CRITICAL"),
        "most critical first"
    );
    assert!(
        shop["affectedMembers"]
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["name"] == json!("shop-db"))
    );

    assert_eq!(report["totalAffectedCis"], json!(hit.len()));
    assert_eq!(report["truncated"], json!(false));
    let by_depth: u64 = report["countsByDepth"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c["count"].as_u64().expect("a count"))
        .sum();
    assert_eq!(by_depth, hit.len() as u64);
    let vms = report["countsByClass"]
        .as_array()
        .expect("counts")
        .iter()
        .find(|c| c["ciClass"]["name"] == json!("virtual_machine"))
        .expect("VMs are counted")["count"]
        .clone();
    assert_eq!(vms, json!(4));
}

#[tokio::test]
async fn the_path_explains_why_a_ci_is_affected() {
    let app = demo().await;
    let esx03 = app.id_of("esx-03").await;
    let report = impact(&app, json!({ "ciIds": [esx03] })).await;
    let frontend = entry(&report, "shop-frontend");
    let steps: Vec<(String, String, String)> = frontend["path"]
        .as_array()
        .expect("a path")
        .iter()
        .map(|s| {
            (
                s["source"]["name"].as_str().expect("a source").to_owned(),
                s["type"]["name"].as_str().expect("a type").to_owned(),
                s["target"]["name"].as_str().expect("a target").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("db-vm-01", "hosted_on", "esx-03"),
        ("shop-db", "runs_on", "db-vm-01"),
        ("shop-api", "depends_on", "shop-db"),
        ("shop-frontend", "depends_on", "shop-api"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(steps, expected);
    assert_eq!(entry(&report, "esx-03")["path"], json!([]));
}

#[tokio::test]
async fn a_redundant_cluster_with_one_failed_member_is_degraded_and_down_when_too_few_remain() {
    let app = demo().await;
    let web01 = app.id_of("shop-web-01").await;
    let report = impact(&app, json!({ "ciIds": [web01] })).await;
    let hit = affected(&report);
    assert_eq!(hit["shop-web-01"].1, "DOWN");
    assert_eq!(hit["shop-web-cluster"].1, "DEGRADED");
    assert_eq!(
        hit["shop-frontend"].1, "DEGRADED",
        "only DOWN spreads as DOWN"
    );
    assert_eq!(hit["webshop"].1, "DEGRADED");
    assert_eq!(services(&report)["Online Shop"], "DEGRADED");

    let web02 = app.id_of("shop-web-02").await;
    let report = impact(&app, json!({ "ciIds": [web01, web02] })).await;
    let hit = affected(&report);
    assert_eq!(hit["shop-web-cluster"].1, "DOWN");
    assert_eq!(hit["shop-frontend"].1, "DOWN");
    assert_eq!(services(&report)["Online Shop"], "DOWN");

    // One host down: one web VM and one API VM go, both clusters hold.
    let esx01 = app.id_of("esx-01").await;
    let report = impact(&app, json!({ "ciIds": [esx01] })).await;
    let hit = affected(&report);
    assert_eq!(hit["shop-api-cluster"].1, "DEGRADED");
    assert_eq!(hit["shop-api"].1, "DEGRADED");
    assert_eq!(services(&report)["Online Shop"], "DEGRADED");
}

#[tokio::test]
async fn upstream_lists_what_a_ci_needs() {
    let app = demo().await;
    let api = app.id_of("shop-api").await;
    let report = impact(
        &app,
        json!({ "ciIds": [api], "direction": "UPSTREAM", "maxDepth": 2 }),
    )
    .await;
    let hit = affected(&report);
    assert_eq!(hit["shop-api"], (0, "DOWN".to_owned()));
    assert_eq!(hit["shop-db"], (1, "DEPENDENCY".to_owned()));
    assert_eq!(hit["shop-api-cluster"], (1, "DEPENDENCY".to_owned()));
    assert_eq!(hit["db-vm-01"], (2, "DEPENDENCY".to_owned()));
    assert!(
        !hit.contains_key("esx-03"),
        "three steps away, beyond maxDepth"
    );
    assert!(
        !hit.contains_key("shop-frontend"),
        "it needs shop-api, not the other way round"
    );

    let both = impact(
        &app,
        json!({ "ciIds": [api], "direction": "BOTH", "maxDepth": 1 }),
    )
    .await;
    let hit = affected(&both);
    assert_eq!(hit["shop-frontend"], (1, "DOWN".to_owned()));
    assert_eq!(hit["shop-db"], (1, "DEPENDENCY".to_owned()));
}

#[tokio::test]
async fn relationship_types_depth_and_limit_narrow_the_answer_with_exact_counts() {
    let app = demo().await;
    let esx03 = app.id_of("esx-03").await;
    let report = impact(
        &app,
        json!({ "ciIds": [esx03], "relationshipTypes": ["hosted_on"] }),
    )
    .await;
    assert_eq!(
        affected(&report).keys().cloned().collect::<Vec<_>>(),
        [
            "db-vm-01",
            "esx-03",
            "pay-app-vm",
            "shop-api-03",
            "support-vm"
        ]
    );
    let full = impact(&app, json!({ "ciIds": [esx03] })).await;
    let limited = impact(&app, json!({ "ciIds": [esx03], "limit": 3 })).await;
    assert_eq!(limited["affectedCis"].as_array().expect("list").len(), 3);
    assert_eq!(limited["truncated"], json!(true));
    assert_eq!(limited["totalAffectedCis"], full["totalAffectedCis"]);
    assert_eq!(limited["countsByDepth"], full["countsByDepth"]);
    assert_eq!(limited["affectedServices"], full["affectedServices"]);
    let shallow = impact(&app, json!({ "ciIds": [esx03], "maxDepth": 1 })).await;
    assert_eq!(shallow["totalAffectedCis"], json!(5));

    let response = app
        .graphql(
            IMPACT,
            json!({ "input": { "ciIds": [esx03], "maxDepth": 1000 } }),
        )
        .await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    let response = app
        .graphql(
            IMPACT,
            json!({ "input": { "ciIds": [esx03], "relationshipTypes": ["nope"] } }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
}

#[tokio::test]
async fn an_unknown_starting_ci_is_not_found() {
    let app = demo().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let response = app
        .graphql(IMPACT, json!({ "input": { "ciIds": [missing] } }))
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    assert_eq!(response.error()["extensions"]["field"], json!("ciIds[0]"));
}

/// The impact of `ci` on `app`, asked until `seen` holds of it (five seconds at most: the
/// time for another instance's change to be heard of).
async fn seen_on(app: &TestApp, ci: &str, seen: impl Fn(&Value) -> bool) -> Value {
    app.until(
        std::time::Duration::from_secs(5),
        "the impact after another instance's change",
        || async {
            let report = impact(app, json!({ "ciIds": [ci] })).await;
            seen(&report).then_some(report)
        },
    )
    .await
}

#[tokio::test]
async fn an_analysis_after_a_change_sees_it_at_once_here_and_promptly_on_every_instance() {
    let app = demo().await;
    let other = app.another_instance().await;
    let esx03 = app.id_of("esx-03").await;
    // Warm both instances' graphs.
    let before = impact(&other, json!({ "ciIds": [esx03] })).await;
    impact(&app, json!({ "ciIds": [esx03] })).await;

    // A new application on the shop database, recorded through the first instance...
    let reports = app.create_ci("application", "reporting", json!({})).await;
    let shop_db = app.id_of("shop-db").await;
    app.relate(&[(&reports, "depends_on", &shop_db)]).await;
    // ...is seen at once through it...
    let here = impact(&app, json!({ "ciIds": [esx03] })).await;
    assert_eq!(affected(&here)["reporting"], (3, "DOWN".to_owned()));
    // ...and through the second as soon as the database has told it.
    let after = seen_on(&other, &esx03, |report| {
        affected(report).contains_key("reporting")
    })
    .await;
    assert_eq!(affected(&after)["reporting"], (3, "DOWN".to_owned()));
    assert_eq!(
        after["totalAffectedCis"].as_u64().expect("a count"),
        before["totalAffectedCis"].as_u64().expect("a count") + 1
    );

    // Retiring it takes it out of the analysis, unless retired CIs are asked for.
    other
        .ok(
            "mutation($id: ID!) { retireConfigurationItem(id: $id) { status } }",
            json!({ "id": reports }),
        )
        .await;
    seen_on(&app, &esx03, |report| {
        !affected(report).contains_key("reporting")
    })
    .await;
    let with_retired = impact(&app, json!({ "ciIds": [esx03], "includeRetired": true })).await;
    assert!(affected(&with_retired).contains_key("reporting"));

    // Deleting a relationship and a service changes the answer as well.
    let ids = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { incoming(types: [\"hosted_on\"]) { id source { name } } } }",
            json!({ "id": esx03 }),
        )
        .await;
    let support_vm_link = ids["configurationItem"]["incoming"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["source"]["name"] == json!("support-vm"))
        .expect("support-vm is hosted on esx-03")["id"]
        .clone();
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": [support_vm_link] }),
    )
    .await;
    // (Services that incidents, changes or customers name are kept: use a new one.)
    let portal = app.id_of("support-portal").await;
    let temporary = app.create_service("Temporary", &[&portal]).await;
    seen_on(&other, &esx03, |report| {
        services(report).contains_key("Temporary")
    })
    .await;
    app.ok(
        "mutation($id: ID!) { deleteService(id: $id) }",
        json!({ "id": temporary }),
    )
    .await;
    let after = seen_on(&other, &esx03, |report| {
        !services(report).contains_key("Temporary") && !affected(report).contains_key("support-vm")
    })
    .await;
    let hit = affected(&after);
    assert!(!hit.contains_key("support-vm"));
    assert!(
        hit.contains_key("support-portal"),
        "still hit through shop-db"
    );
    assert!(!services(&after).contains_key("Temporary"));
}

#[tokio::test]
async fn root_cause_candidates_rank_the_shared_database_first() {
    let app = demo().await;
    let failing = [
        app.id_of("shop-api").await,
        app.id_of("support-portal").await,
        app.id_of("shop-frontend").await,
    ];
    let data = app
        .ok(
            "query($ids: [ID!]!) { rootCauseCandidates(ciIds: $ids) {
                ci { name } explains totalDistance explainedCis { name }
                paths { failingCi { name } path { source { name } type { name } target { name } } }
            } }",
            json!({ "ids": failing }),
        )
        .await;
    let candidates = data["rootCauseCandidates"].as_array().expect("candidates");
    assert_eq!(candidates[0]["ci"]["name"], json!("shop-db"));
    assert_eq!(candidates[0]["explains"], json!(3));
    assert_eq!(candidates[0]["totalDistance"], json!(4));
    let to_frontend = candidates[0]["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .find(|p| p["failingCi"]["name"] == json!("shop-frontend"))
        .expect("a path to the frontend")
        .clone();
    assert_eq!(
        to_frontend["path"],
        json!([
            { "source": { "name": "shop-api" }, "type": { "name": "depends_on" }, "target": { "name": "shop-db" } },
            { "source": { "name": "shop-frontend" }, "type": { "name": "depends_on" }, "target": { "name": "shop-api" } },
        ])
    );
    assert!(
        candidates
            .iter()
            .all(|c| c["explains"].as_u64().expect("a count") >= 2)
    );
    let explains: Vec<u64> = candidates
        .iter()
        .map(|c| c["explains"].as_u64().expect("a count"))
        .collect();
    assert!(
        explains.windows(2).all(|w| w[0] >= w[1]),
        "ranked by what they explain"
    );
}

#[tokio::test]
async fn large_lists_written_directly_match_the_field_by_field_answer() {
    let app = demo().await;
    let esx03 = app.id_of("esx-03").await;
    let fields = "depth state ci { __typename id name status ciClass { name label } } path { id type { name propagation } source { id name } target { name } }";
    let direct = format!(
        "query($id: ID!) {{ impactAnalysis(input: {{ ciIds: [$id] }}) {{ affectedCis {{ {fields} }} }} }}"
    );
    // The directive sends the same selection through async-graphql's own resolution.
    let resolved = format!(
        "query($id: ID!) {{ impactAnalysis(input: {{ ciIds: [$id] }}) {{ affectedCis {{ {fields} depth @include(if: true) }} }} }}"
    );
    let direct = app.ok(&direct, json!({ "id": esx03 })).await;
    let resolved = app.ok(&resolved, json!({ "id": esx03 })).await;
    assert_eq!(direct, resolved);
    assert!(
        direct["impactAnalysis"]["affectedCis"]
            .as_array()
            .expect("a list")
            .len()
            > 10
    );
}
