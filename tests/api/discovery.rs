//! Discovery ingestion: identification, reconciliation, full sync, safety, and the CLI.

use std::collections::HashSet;

use serde_json::{Value, json};

use cmdb::domain::auth::Role;

use crate::helpers::{ADMIN, GqlResponse, TestApp};

const UPSERT: &str = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) {
    source dryRun runId runClosed created updated unchanged stale rejected
    items { index ciId outcome changedAttributes identifiedBy ignoredAttributes { attribute owner reason } error { code message } }
    relationships { created updated unchanged stale rejected items { index relationshipId outcome error { code message } } }
} }";

/// Sends a batch with a discovery token named after the batch's source, so that the audit
/// trail's actor is the source itself.
async fn try_upsert(app: &TestApp, input: Value) -> GqlResponse {
    let source = input["source"].as_str().unwrap_or_default().to_owned();
    let token = if source.is_empty() || source == "manual" {
        app.token(ADMIN, Role::Admin).await
    } else {
        app.token(&source, Role::Discovery).await
    };
    app.graphql_with(Some(&token), UPSERT, json!({ "input": input }))
        .await
}

async fn upsert(app: &TestApp, input: Value) -> Value {
    try_upsert(app, input).await.data()["upsertConfigurationItems"].clone()
}

fn server(external_id: &str, serial: &str, cpus: i64) -> Value {
    json!({
        "class": "server", "name": format!("host-{external_id}"), "externalId": external_id,
        "attributes": { "serial_number": serial, "cpu_count": cpus, "fqdn": format!("{external_id}.example.com") }
    })
}

fn vm(external_id: &str) -> Value {
    json!({ "class": "virtual_machine", "name": format!("vm-{external_id}"), "externalId": external_id,
            "attributes": { "vm_uuid": format!("uuid-{external_id}") } })
}

async fn ci(app: &TestApp, id: &str) -> Value {
    app.ok(
        "query($id: ID!) { configurationItem(id: $id) { name version updatedAt attributes status owner stale
            provenance { field source } discoveredBy { source externalId stale } history { totalCount } } }",
        json!({ "id": id }),
    )
    .await["configurationItem"]
        .clone()
}

fn id_at(report: &Value, index: usize) -> String {
    report["items"][index]["ciId"]
        .as_str()
        .expect("a CI id")
        .to_owned()
}

#[tokio::test]
async fn a_batch_creates_cis_and_relationships_and_a_repeat_writes_nothing() {
    let app = TestApp::spawn().await;
    let batch = json!({
        "source": "vcenter",
        "items": [server("h1", "SN1", 32), vm("v1"), vm("v2")],
        "relationships": [
            { "source": { "externalId": "v1" }, "target": { "externalId": "h1" }, "type": "hosted_on" },
            { "source": { "externalId": "v2" }, "target": { "externalId": "h1" }, "type": "hosted_on", "attributes": { "cluster": "c1" } },
        ]
    });
    let first = upsert(&app, batch.clone()).await;
    assert_eq!(
        (
            first["created"].clone(),
            first["updated"].clone(),
            first["rejected"].clone()
        ),
        (json!(3), json!(0), json!(0))
    );
    assert_eq!(first["relationships"]["created"], json!(2));
    let indexes: Vec<u64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2], "one result per item, in input order");
    assert!(
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == json!("CREATED"))
    );
    let host = id_at(&first, 0);
    let before = ci(&app, &host).await;
    assert_eq!(before["attributes"]["cpu_count"], json!(32));
    assert_eq!(
        before["discoveredBy"],
        json!([{ "source": "vcenter", "externalId": "h1", "stale": false }])
    );
    assert!(
        before["provenance"]
            .as_array()
            .unwrap()
            .contains(&json!({ "field": "attributes.cpu_count", "source": "vcenter" }))
    );

    let again = upsert(&app, batch).await;
    assert_eq!(
        (
            again["created"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(3))
    );
    assert_eq!(again["relationships"]["unchanged"], json!(2));
    assert_eq!(again["items"][0]["identifiedBy"], json!("externalId"));
    assert_eq!(id_at(&again, 0), host, "the same CI, never a duplicate");
    let after = ci(&app, &host).await;
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["updatedAt"], before["updatedAt"]);
    assert_eq!(
        after["history"]["totalCount"],
        json!(1),
        "no audit event for an unchanged item"
    );
    assert_eq!(app.ci_count().await, 3);
}

#[tokio::test]
async fn a_change_updates_only_what_changed_with_the_source_as_actor() {
    let app = TestApp::spawn().await;
    let first = upsert(
        &app,
        json!({ "source": "vcenter", "items": [server("h1", "SN1", 32), vm("v1")] }),
    )
    .await;
    let host = id_at(&first, 0);
    let second = upsert(
        &app,
        json!({ "source": "vcenter", "items": [server("h1", "SN1", 64), vm("v1")] }),
    )
    .await;
    assert_eq!(
        (second["updated"].clone(), second["unchanged"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        second["items"][0]["changedAttributes"],
        json!(["cpu_count"])
    );
    let after = ci(&app, &host).await;
    assert_eq!(after["version"], json!(2));
    let events = app
        .ok(
            "query($id: ID!) { auditEvents(filter: { entityId: $id, action: UPDATE }) { nodes { actor before after } } }",
            json!({ "id": host }),
        )
        .await;
    let event = &events["auditEvents"]["nodes"][0];
    assert_eq!(event["actor"], json!("vcenter"));
    assert_eq!(event["before"]["attributes"]["cpu_count"], json!(32));
    assert_eq!(event["after"]["attributes"]["cpu_count"], json!(64));
}

#[tokio::test]
async fn an_item_is_identified_by_its_identifier_attributes_and_remembered() {
    let app = TestApp::spawn().await;
    let manual = app
        .create_ci(
            "server",
            "esx-by-hand",
            json!({ "serial_number": "SN-42", "fqdn": "esx.example.com" }),
        )
        .await;
    // A different source id, the same serial number (with other case and spaces).
    let report = upsert(
        &app,
        json!({ "source": "agent", "items": [server("a-1", " sn-42 ", 16)] }),
    )
    .await;
    assert_eq!(report["items"][0]["outcome"], json!("UPDATED"));
    assert_eq!(
        report["items"][0]["identifiedBy"],
        json!("attribute:serial_number")
    );
    assert_eq!(id_at(&report, 0), manual);
    // By FQDN, the next identifier, when the serial number is not reported.
    let by_fqdn = upsert(
        &app,
        json!({ "source": "dns", "items": [{ "class": "server", "name": "esx-by-hand", "externalId": "esx.example.com", "attributes": { "fqdn": "ESX.example.com" } }] }),
    )
    .await;
    assert_eq!(by_fqdn["items"][0]["identifiedBy"], json!("attribute:fqdn"));
    assert_eq!(id_at(&by_fqdn, 0), manual);
    // The next run is matched by the source's own id.
    let next = upsert(
        &app,
        json!({ "source": "agent", "items": [server("a-1", "SN-42", 16)] }),
    )
    .await;
    assert_eq!(next["items"][0]["identifiedBy"], json!("externalId"));
    assert_eq!(app.ci_count().await, 1);
    let record = ci(&app, &manual).await;
    let sources: HashSet<String> = record["discoveredBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sources,
        HashSet::from(["agent".to_owned(), "dns".to_owned()])
    );
}

#[tokio::test]
async fn an_item_matching_several_cis_is_rejected_and_names_them() {
    let app = TestApp::spawn().await;
    let a = app
        .create_ci("server", "twin-a", json!({ "serial_number": "DUP" }))
        .await;
    let b = app
        .create_ci("server", "twin-b", json!({ "serial_number": "DUP" }))
        .await;
    let report = upsert(
        &app,
        json!({ "source": "agent", "items": [server("x", "DUP", 8), vm("v1")] }),
    )
    .await;
    let item = &report["items"][0];
    assert_eq!(item["outcome"], json!("REJECTED"));
    assert_eq!(item["error"]["code"], json!("AMBIGUOUS_IDENTITY"));
    let message = item["error"]["message"].as_str().unwrap();
    assert!(message.contains(&a) && message.contains(&b), "{message}");
    assert_eq!(
        report["items"][1]["outcome"],
        json!("CREATED"),
        "the rest of the batch goes on"
    );
    assert_eq!(app.ci_count().await, 3);

    // Two items of one batch claiming the same serial number: the second is refused.
    let report = upsert(
        &app,
        json!({ "source": "agent", "items": [server("n1", "NEW", 8), server("n2", "new", 8)] }),
    )
    .await;
    assert_eq!(report["items"][0]["outcome"], json!("CREATED"));
    assert_eq!(
        report["items"][1]["error"]["code"],
        json!("AMBIGUOUS_IDENTITY")
    );
}

#[tokio::test]
async fn higher_ranked_sources_win_fill_gaps_and_hand_over_when_silent() {
    let app = TestApp::spawn().await;
    app.ok(
        r#"mutation { setReconciliationRule(input: { class: "computer", attribute: "os", sources: ["agent", "vcenter"] }) { attribute sources } }"#,
        json!({}),
    )
    .await;
    let host = |source: &str, os: &str| {
        json!({ "source": source, "items": [{ "class": "server", "name": "h", "externalId": "h",
                 "attributes": { "serial_number": "S1", "os": os } }] })
    };
    let first = upsert(&app, host("agent", "Linux 6.1")).await;
    let id = id_at(&first, 0);
    let lower = upsert(&app, host("vcenter", "Other Linux")).await;
    assert_eq!(lower["items"][0]["outcome"], json!("UNCHANGED"));
    assert_eq!(
        lower["items"][0]["ignoredAttributes"],
        json!([{ "attribute": "os", "owner": "agent", "reason": "HIGHER_PRIORITY_SOURCE" }])
    );
    assert_eq!(ci(&app, &id).await["attributes"]["os"], json!("Linux 6.1"));

    // A value nobody owns is filled by the lower-ranked source.
    let fill = json!({ "source": "vcenter", "items": [{ "class": "server", "name": "h", "externalId": "h",
                        "attributes": { "serial_number": "S1", "os": "Other Linux", "memory_gb": 256 } }] });
    let filled = upsert(&app, fill).await;
    assert_eq!(
        filled["items"][0]["changedAttributes"],
        json!(["memory_gb"])
    );

    // The owner stops reporting: after the hand-over period the lower-ranked source wins.
    app.ok(
        r#"mutation { setReconciliationRule(input: { class: "computer", attribute: "os", sources: ["agent", "vcenter"], staleAfterHours: 0.0003 }) { staleAfterHours } }"#,
        json!({}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let handed = upsert(&app, host("vcenter", "Other Linux")).await;
    assert_eq!(handed["items"][0]["changedAttributes"], json!(["os"]));
    let record = ci(&app, &id).await;
    assert_eq!(record["attributes"]["os"], json!("Other Linux"));
    assert!(
        record["provenance"]
            .as_array()
            .unwrap()
            .contains(&json!({ "field": "attributes.os", "source": "vcenter" }))
    );
    let rules = app
        .ok(
            "{ reconciliationRules(class: \"computer\") { attribute sources ciClass { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        rules["reconciliationRules"],
        json!([{ "attribute": "os", "sources": ["agent", "vcenter"], "ciClass": { "name": "computer" } }])
    );
}

#[tokio::test]
async fn edits_made_by_people_win_unless_the_class_says_otherwise() {
    let app = TestApp::spawn().await;
    let first = upsert(
        &app,
        json!({ "source": "vcenter", "items": [server("h1", "SN1", 32)] }),
    )
    .await;
    let id = id_at(&first, 0);
    app.ok(
        "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { owner: \"platform\", attributePatch: { cpu_count: 48 } }) { version } }",
        json!({ "id": id }),
    )
    .await;
    let report = upsert(
        &app,
        json!({ "source": "vcenter", "items": [{ "class": "server", "name": "host-h1", "externalId": "h1", "owner": "vmware-team",
                 "attributes": { "serial_number": "SN1", "cpu_count": 32 } }] }),
    )
    .await;
    let ignored: Vec<String> = report["items"][0]["ignoredAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["attribute"].as_str().unwrap(),
                i["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ignored, ["owner:SET_BY_HAND", "cpu_count:SET_BY_HAND"]);
    let record = ci(&app, &id).await;
    assert_eq!(record["owner"], json!("platform"));
    assert_eq!(record["attributes"]["cpu_count"], json!(48));

    app.ok("mutation { updateCiClass(name: \"server\", input: { discoveryOverridesManual: true }) { discoveryOverridesManual } }", json!({}))
        .await;
    let report = upsert(
        &app,
        json!({ "source": "vcenter", "items": [{ "class": "server", "name": "host-h1", "externalId": "h1", "owner": "vmware-team",
                 "attributes": { "serial_number": "SN1", "cpu_count": 32 } }] }),
    )
    .await;
    assert_eq!(report["items"][0]["outcome"], json!("UPDATED"));
    assert_eq!(ci(&app, &id).await["owner"], json!("vmware-team"));
}

#[tokio::test]
async fn an_invalid_item_is_rejected_alone_unless_the_batch_is_atomic() {
    let app = TestApp::spawn().await;
    let items = json!([
        server("h1", "SN1", 32),
        { "class": "server", "name": "bad", "externalId": "h2", "attributes": { "cpu_count": "many" } },
        { "class": "spaceship", "name": "odd", "externalId": "s1" },
        vm("v1"),
    ]);
    let report = upsert(
        &app,
        json!({ "source": "vcenter", "items": items, "atomic": true }),
    )
    .await;
    assert_eq!(
        (report["created"].clone(), report["rejected"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(report["items"][0]["error"]["code"], json!("BATCH_REJECTED"));
    assert_eq!(report["items"][1]["error"]["code"], json!("VALIDATION"));
    assert!(
        report["items"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cpu_count")
    );
    assert_eq!(
        app.ci_count().await,
        0,
        "nothing of an atomic batch is written"
    );

    let report = upsert(&app, json!({ "source": "vcenter", "items": items })).await;
    assert_eq!(
        (report["created"].clone(), report["rejected"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(report["items"][2]["error"]["code"], json!("VALIDATION"));
    assert_eq!(report["items"][3]["outcome"], json!("CREATED"));
    assert_eq!(app.ci_count().await, 2);
}

#[tokio::test]
async fn a_dry_run_reports_without_writing() {
    let app = TestApp::spawn().await;
    let report = upsert(
        &app,
        json!({ "source": "vcenter", "dryRun": true, "items": [server("h1", "SN1", 32)] }),
    )
    .await;
    assert_eq!(report["dryRun"], json!(true));
    assert_eq!(report["created"], json!(1));
    assert_eq!(app.ci_count().await, 0);
    let audit = app
        .ok(
            "{ auditEvents(filter: { entityType: CONFIGURATION_ITEM }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["auditEvents"]["totalCount"], json!(0));
}

#[tokio::test]
async fn relationships_name_their_ends_by_external_id_or_by_id() {
    let app = TestApp::spawn().await;
    let manual = app.create_ci("storage", "san", json!({})).await;
    upsert(
        &app,
        json!({ "source": "vcenter", "items": [server("h1", "SN1", 32)] }),
    )
    .await;
    let report = upsert(
        &app,
        json!({ "source": "vcenter", "items": [vm("v1")], "relationships": [
            { "source": { "externalId": "v1" }, "target": { "externalId": "h1" }, "type": "hosted_on" },
            { "source": { "externalId": "h1" }, "target": { "id": manual }, "type": "uses" },
            { "source": { "externalId": "v1" }, "target": { "externalId": "nowhere" }, "type": "hosted_on" },
            { "source": { "externalId": "v1" }, "target": { "externalId": "v1" }, "type": "depends_on" },
            { "source": { "externalId": "v1" }, "target": { "externalId": "h1" }, "type": "loves" },
        ] }),
    )
    .await;
    let rel = &report["relationships"];
    assert_eq!(
        (rel["created"].clone(), rel["rejected"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(rel["items"][2]["error"]["code"], json!("NOT_FOUND"));
    assert_eq!(rel["items"][3]["error"]["code"], json!("VALIDATION"));
    assert_eq!(rel["items"][4]["error"]["code"], json!("VALIDATION"));
    assert_eq!(app.relationship_count().await, 2);
}

#[tokio::test]
async fn a_full_sync_marks_what_the_source_stopped_reporting_stale_and_deletes_nothing() {
    let app = TestApp::spawn().await;
    let batch = |items: Value, relationships: Value| json!({ "source": "vcenter", "mode": "FULL_SYNC", "scope": "dc1", "items": items, "relationships": relationships });
    let hosted = |vm: &str| json!({ "source": { "externalId": vm }, "target": { "externalId": "h1" }, "type": "hosted_on" });
    let first = upsert(
        &app,
        batch(
            json!([server("h1", "SN1", 32), vm("v1"), vm("v2")]),
            json!([hosted("v1"), hosted("v2")]),
        ),
    )
    .await;
    assert_eq!(first["stale"], json!(0));
    let v2 = id_at(&first, 2);
    let second = upsert(
        &app,
        batch(
            json!([server("h1", "SN1", 32), vm("v1")]),
            json!([hosted("v1")]),
        ),
    )
    .await;
    assert_eq!(second["stale"], json!(1));
    assert_eq!(second["relationships"]["stale"], json!(1));
    assert_eq!(second["runClosed"], json!(true));
    let record = ci(&app, &v2).await;
    assert_eq!(record["stale"], json!(true));
    assert_eq!(
        record["status"],
        json!("IN_SERVICE"),
        "stale is a flag; nothing is deleted"
    );
    assert_eq!(app.ci_count().await, 3);
    // Reported again, it is current again.
    upsert(
        &app,
        batch(
            json!([server("h1", "SN1", 32), vm("v1"), vm("v2")]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(ci(&app, &v2).await["stale"], json!(false));

    // A sync of another scope leaves dc1 alone.
    let other =
        json!({ "source": "vcenter", "mode": "FULL_SYNC", "scope": "dc2", "items": [vm("w1")] });
    assert_eq!(upsert(&app, other).await["stale"], json!(0));

    let response = try_upsert(
        &app,
        json!({ "source": "vcenter", "mode": "FULL_SYNC", "items": [] }),
    )
    .await;
    assert_eq!(response.code(), "VALIDATION", "a full sync needs a scope");
}

#[tokio::test]
async fn a_run_of_batches_marks_stale_only_when_closed() {
    let app = TestApp::spawn().await;
    let first = upsert(&app, json!({ "source": "vcenter", "mode": "FULL_SYNC", "scope": "dc1", "items": [vm("v1"), vm("v2"), vm("v3")] })).await;
    let v3 = id_at(&first, 2);
    let part = |items: Value, last: bool| json!({ "source": "vcenter", "mode": "FULL_SYNC", "scope": "dc1", "runId": "run-7", "final": last, "items": items });
    let one = upsert(&app, part(json!([vm("v1")]), false)).await;
    assert_eq!(
        (one["stale"].clone(), one["runClosed"].clone()),
        (json!(0), json!(false))
    );
    let two = upsert(&app, part(json!([vm("v2")]), false)).await;
    assert_eq!(two["stale"], json!(0));
    assert_eq!(
        ci(&app, &v3).await["stale"],
        json!(false),
        "an unfinished run marks nothing"
    );
    let closing = upsert(&app, part(json!([]), true)).await;
    assert_eq!(
        (closing["stale"].clone(), closing["runClosed"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(ci(&app, &v3).await["stale"], json!(true));
    let reuse = try_upsert(&app, part(json!([vm("v1")]), false)).await;
    assert_eq!(reuse.code(), "CONFLICT", "a closed run stays closed");
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
    let response = try_upsert(
        &app,
        json!({ "source": "vcenter", "items": [vm("1"), vm("2"), vm("3")] }),
    )
    .await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_batch_size"));
    let response = try_upsert(&app, json!({ "source": "manual", "items": [] })).await;
    assert_eq!(
        response.code(),
        "VALIDATION",
        "`manual` is reserved for people"
    );
}

#[tokio::test]
async fn concurrent_scripts_on_overlapping_cis_create_no_duplicates_and_lose_no_update() {
    let app = TestApp::spawn().await;
    let scripts = 4;
    let hosts = 30;
    let mut tasks = Vec::new();
    for script in 0..scripts {
        let address = app.address.clone();
        let token = app
            .token(&format!("script-{script}"), Role::Discovery)
            .await;
        tasks.push(tokio::spawn(async move {
            let client = cmdb::http_client();
            // Every script reports every host (same serial numbers, its own ids), in
            // batches of five, each setting an attribute of its own.
            for chunk in 0..hosts / 5 {
                let items: Vec<Value> = (chunk * 5..chunk * 5 + 5)
                    .map(|h| {
                        json!({ "class": "server", "name": format!("host-{h}"), "externalId": format!("s{script}-h{h}"),
                                "attributes": { "serial_number": format!("SERIAL-{h}"), format!("seen_by_{script}"): true } })
                    })
                    .collect();
                let body = json!({ "query": UPSERT, "variables": { "input": { "source": format!("script-{script}"), "items": items } } });
                let response: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("the server answers")
                    .json()
                    .await
                    .expect("JSON");
                assert!(response.get("errors").is_none(), "{response}");
                let report = &response["data"]["upsertConfigurationItems"];
                assert_eq!(report["rejected"], json!(0), "{report}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a script finished");
    }
    assert_eq!(
        app.ci_count().await,
        hosts as u64,
        "one CI per serial number"
    );
    let data = app
        .ok(
            "{ configurationItems(first: 100) { nodes { attributes discoveredBy { source } } } }",
            json!({}),
        )
        .await;
    for node in data["configurationItems"]["nodes"].as_array().unwrap() {
        for script in 0..scripts {
            assert_eq!(
                node["attributes"][format!("seen_by_{script}")],
                json!(true),
                "{node}"
            );
        }
        assert_eq!(node["discoveredBy"].as_array().unwrap().len(), scripts);
    }
}

#[tokio::test]
async fn the_import_command_streams_a_file_in_batches() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = format!("sqlite://{}/import.db?mode=rwc", dir.path().display());
    let file = dir.path().join("estate.ndjson");
    let mut lines = Vec::new();
    for h in 0..25 {
        lines.push(server(&format!("h{h}"), &format!("SN{h}"), 8).to_string());
    }
    for h in 0..25 {
        lines.push(json!({ "source": { "externalId": format!("h{h}") }, "target": { "externalId": format!("h{}", (h + 1) % 25) }, "type": "connected_to" }).to_string());
    }
    lines.push(json!({ "class": "server", "name": "broken", "externalId": "b", "attributes": { "cpu_count": "x" } }).to_string());
    std::fs::write(&file, lines.join("\n")).expect("written");
    let run = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cmdb"));
        command
            .args([
                "import",
                "--source",
                "inventory",
                "--batch-size",
                "10",
                "--database-url",
                &database,
            ])
            .args(extra)
            .arg(&file);
        command.output().expect("the import runs")
    };
    let output = run(&["--full-sync", "--scope", "dc1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "a rejected record is reported in the exit status: {stdout}"
    );
    assert!(
        stdout.contains("items: 25 created, 0 updated, 0 unchanged, 0 stale, 1 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("relationships: 25 created"), "{stdout}");
    assert!(stdout.contains("item 26: VALIDATION"), "{stdout}");

    // The same file again without the last five hosts and the relationships.
    let kept: Vec<String> = lines.iter().take(20).cloned().collect();
    std::fs::write(&file, kept.join("\n")).expect("written");
    let output = run(&["--full-sync", "--scope", "dc1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("items: 0 created, 0 updated, 20 unchanged, 5 stale, 0 rejected"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_import_command_checks_the_whole_file_before_writing_and_keys_items_by_identifiers() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = format!("sqlite://{}/import.db?mode=rwc", dir.path().display());
    let file = dir.path().join("estate.ndjson");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cmdb"))
            .args(["import", "--source", "inventory", "--batch-size", "5"])
            .args(["--database-url", &database])
            .arg(&file)
            .output()
            .expect("the import runs")
    };
    // Servers without `externalId`: the class's identifier attributes identify them.
    let mut lines: Vec<String> = (0..12)
        .map(|h| {
            json!({ "class": "server", "name": format!("k{h}"),
                    "attributes": { "serial_number": format!("SN-K{h}") } })
            .to_string()
        })
        .collect();
    // A malformed line after two full batches: nothing may be written.
    lines.insert(11, "{ \"class\": \"server\", \"name\": ".to_owned());
    std::fs::write(&file, lines.join("\n")).expect("written");
    let output = run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("line 12"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    let app_db = sea_orm::Database::connect(&database)
        .await
        .expect("the database");
    let count = |db: sea_orm::DatabaseConnection| async move {
        use sea_orm::{EntityTrait, PaginatorTrait};
        entity::configuration_item::Entity::find()
            .count(&db)
            .await
            .expect("a count")
    };
    assert_eq!(count(app_db.clone()).await, 0, "nothing half-written");

    lines.remove(11);
    std::fs::write(&file, lines.join("\n")).expect("written");
    for expected in [
        "12 created, 0 updated",
        "0 created, 0 updated, 12 unchanged",
    ] {
        let output = run();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(&format!("items: {expected}")), "{stdout}");
    }
    assert_eq!(count(app_db).await, 12);
}

#[tokio::test]
async fn a_full_sync_item_refused_for_a_bad_value_is_seen_not_stale() {
    let app = TestApp::spawn().await;
    let batch = |cpus: Value| {
        let mut host = server("fs-a", "SN-FSA", 2);
        host["attributes"]["cpu_count"] = cpus;
        json!({
            "source": "inventory", "mode": "FULL_SYNC", "scope": "dc-fs",
            "items": [host, vm("fs-b")],
            "relationships": [{ "source": { "externalId": "fs-b" },
                                "target": { "externalId": "fs-a" }, "type": "hosted_on" }]
        })
    };
    let first = upsert(&app, batch(json!(2))).await;
    assert_eq!(first["created"], json!(2), "{first}");
    let host = id_at(&first, 0);

    let second = upsert(&app, batch(json!("two"))).await;
    assert_eq!(second["rejected"], json!(1), "{second}");
    assert_eq!(second["items"][0]["error"]["code"], json!("VALIDATION"));
    assert_eq!(
        second["stale"],
        json!(0),
        "a reported item is not gone: {second}"
    );
    let stored = ci(&app, &host).await;
    assert_eq!(stored["stale"], json!(false), "{stored}");
    assert_eq!(
        stored["attributes"]["cpu_count"],
        json!(2),
        "the refused value was not taken"
    );
}
