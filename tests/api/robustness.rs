//! Robustness: every limit, random input, a crash in the middle of a batch, a bounded mixed
//! load, and the metrics.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cmdb::domain::auth::Role;
use cmdb::limits::Limits;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

#[tokio::test]
async fn aliases_timeouts_and_impact_size_are_limited_and_named() {
    let app = TestApp::spawn_with(
        Limits {
            max_query_aliases: 3,
            max_impact_nodes: 5,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    app.load_demo().await;
    let aliases = "{ a: services { totalCount } b: services { totalCount } c: services { totalCount } d: services { totalCount } }";
    let response = app.graphql(aliases, json!({})).await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_query_aliases"));

    let esx03 = app.id_of("esx-03").await;
    let response = app
        .graphql(
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id] }) { totalAffectedCis } }",
            json!({ "id": esx03 }),
        )
        .await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_impact_nodes"));

    let slow = TestApp::spawn_with(
        Limits {
            request_timeout: Duration::from_micros(1),
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    // Whatever the timing, the answer tells the truth: a write cancelled by the limit is not
    // stored, and one that had started to commit when the limit passed runs to its end and
    // says so.
    // How many writes the limit catches depends on scheduling: keep trying (at least ten)
    // until one was caught.
    let mut timed_out = 0;
    for attempt in 0..200 {
        if attempt >= 10 && timed_out > 0 {
            break;
        }
        let name = format!("late-{attempt}");
        let response = slow
            .graphql(
                "mutation($name: String!) { createConfigurationItem(input: { class: \"server\", name: $name }) { id } }",
                json!({ "name": name }),
            )
            .await;
        let filter = cmdb::domain::ci::CiFilter {
            name: Some(cmdb::domain::TextMatch::Equals(name.clone())),
            ..Default::default()
        };
        let catalog = cmdb::domain::ci_class::ClassCatalog::load(&slow.db)
            .await
            .expect("the catalogue");
        let stored = cmdb::domain::ci::count(&slow.db, &catalog, &filter)
            .await
            .expect("a count");
        if response.errors().is_empty() {
            assert_eq!(stored, 1, "{name} was reported written");
        } else {
            assert_eq!(response.code(), "LIMIT_EXCEEDED");
            assert!(response.message().contains("request_timeout"));
            assert_eq!(stored, 0, "the cancelled write of {name} was rolled back");
            timed_out += 1;
        }
    }
    assert!(
        timed_out > 0,
        "a limit of a microsecond cancels some writes"
    );
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e9f64..1.0e9).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn item() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["server", "virtual_machine", "application", "database", "nope", ""]),
        prop_oneof![".{0,20}", "x{250,300}"],
        "[a-z0-9]{0,6}",
        json_value(),
        prop::option::of(prop::sample::select(vec!["PLANNED", "IN_SERVICE", "RETIRED"])),
    )
        .prop_map(|(class, name, external_id, attributes, status)| {
            let mut item = json!({ "class": class, "name": name, "externalId": external_id, "attributes": attributes });
            if let Some(status) = status {
                item["status"] = json!(status);
            }
            item
        })
}

fn filter() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec!["server", "computer", "nope"])),
        prop::option::of(".{0,12}"),
        prop::option::of(("[a-z_]{0,10}", json_value())),
        prop::option::of(prop::sample::subsequence(
            vec!["PLANNED", "IN_SERVICE", "UNDER_MAINTENANCE", "RETIRED"],
            0..3,
        )),
    )
        .prop_map(|(class, name, attribute, status)| {
            let mut filter = json!({});
            if let Some(class) = class {
                filter["class"] = json!(class);
            }
            if let Some(name) = name {
                filter["name"] = json!({ "contains": name });
            }
            if let Some((attribute, value)) = attribute {
                filter["attributes"] = json!([{ "name": attribute, "equals": value }]);
            }
            if let Some(status) = status {
                filter["status"] = json!(status);
            }
            filter
        })
}

const UPSERT: &str =
    "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) {
    created updated unchanged rejected items { outcome ciId error { code } } } }";

#[tokio::test(flavor = "multi_thread")]
async fn random_batches_and_filters_get_a_clean_error_or_a_correct_answer() {
    let app = TestApp::spawn().await;
    let token = app.token("fuzz", Role::Discovery).await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::collection::vec(item(), 0..12), filter());
    let outcome = runner.run(&strategy, |(items, filter)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let response = app
                    .graphql_with(Some(&token), UPSERT, json!({ "input": { "source": "fuzz", "items": items } }))
                    .await;
                // Every error carries a code (checked by `errors`); none is internal.
                for error in response.errors() {
                    let code = error["extensions"]["code"].as_str().unwrap_or_default().to_owned();
                    assert!(code == "VALIDATION" || code == "GRAPHQL_VALIDATION_FAILED", "{error}");
                }
                if response.errors().is_empty() {
                    let report = &response.0["data"]["upsertConfigurationItems"];
                    let total: u64 = ["created", "updated", "unchanged", "rejected"]
                        .iter()
                        .map(|k| report[k].as_u64().unwrap_or_default())
                        .sum();
                    assert_eq!(total as usize, items.len(), "one outcome per item: {report}");
                    for result in report["items"].as_array().expect("results") {
                        if result["outcome"] == json!("REJECTED") {
                            assert!(result["error"]["code"].is_string(), "{result}");
                        } else {
                            assert!(result["ciId"].is_string(), "{result}");
                        }
                    }
                }
                let listed = app
                    .graphql(
                        "query($filter: ConfigurationItemFilter) { configurationItems(filter: $filter, first: 50) { totalCount nodes { attributes } } }",
                        json!({ "filter": filter }),
                    )
                    .await;
                for error in listed.errors() {
                    let code = error["extensions"]["code"].as_str().unwrap_or_default().to_owned();
                    assert!(code == "VALIDATION" || code == "GRAPHQL_VALIDATION_FAILED", "{error}");
                }
            })
        });
        Ok(())
    });
    outcome.expect("every case ends cleanly");
    let all = app
        .ok(
            "{ configurationItems(first: 500) { nodes { attributes } } }",
            json!({}),
        )
        .await;
    for node in all["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        assert!(
            node["attributes"].is_object(),
            "stored attributes are always an object: {node}"
        );
    }
}

fn start_server(dir: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env(
            "CMDB_DATABASE_URL",
            format!("sqlite://{}/crash.db?mode=rwc", dir.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

#[tokio::test]
async fn a_server_killed_during_a_batch_keeps_all_of_it_or_none() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = format!("sqlite://{}/crash.db?mode=rwc", dir.path().display());
    let created = Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .args([
            "token",
            "create",
            "--name",
            "crash",
            "--role",
            "admin",
            "--database-url",
            &database,
        ])
        .output()
        .expect("a token");
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let client = cmdb::http_client();
    let items: Vec<Value> = (0..3_000)
        .map(|i| json!({ "class": "virtual_machine", "name": format!("vm-{i}"), "externalId": format!("vm-{i}"),
                          "attributes": { "vm_uuid": format!("u-{i}"), "cpu_count": 4 } }))
        .collect();
    let body =
        json!({ "query": UPSERT, "variables": { "input": { "source": "crash", "items": items } } });

    let (mut server, base) = start_server(dir.path());
    wait_healthy(&client, &base).await;
    let sending = {
        let (client, base, token, body) =
            (client.clone(), base.clone(), token.clone(), body.clone());
        tokio::spawn(async move {
            let _ = client
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
        })
    };
    // Kill it while the batch is being written: when the write-ahead log starts to grow.
    let wal = dir.path().join("crash.db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let waiting = Instant::now();
    while size() < before + 256 * 1024 && waiting.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("the server is gone");
    let _ = sending.await;

    let (mut server, base) = start_server(dir.path());
    wait_healthy(&client, &base).await;
    let count: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ configurationItems(first: 0) { totalCount } }" }))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let total = count["data"]["configurationItems"]["totalCount"]
        .as_u64()
        .expect("a count");
    assert!(
        total == 0 || total == 3_000,
        "all of the batch or none of it, not {total}"
    );
    eprintln!("after the kill the database holds {total} of the batch's 3000 CIs");
    server.kill().expect("stop");
    server.wait().expect("stopped");

    let db = cmdb::db::connect(&cmdb::db::DbConfig::new(database))
        .await
        .expect("open");
    use sea_orm::ConnectionTrait;
    let check = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .expect("the check runs")
        .expect("a row");
    let verdict: String = check.try_get_by_index(0).expect("a verdict");
    assert_eq!(verdict, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_load_ends_without_errors_lost_updates_or_duplicates() {
    let app = TestApp::spawn().await;
    app.load_demo().await;
    let esx03 = app.id_of("esx-03").await;
    let admin = app.token(ADMIN, Role::Admin).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let writers = 3;
    let hosts = 12;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let token = app
            .token(&format!("writer-{writer}"), Role::Discovery)
            .await;
        let (client, address) = (app.client.clone(), app.address.clone());
        tasks.push(tokio::spawn(async move {
            let mut rounds = 0u64;
            while Instant::now() < deadline && rounds < 40 {
                rounds += 1;
                let items: Vec<Value> = (0..hosts)
                    .map(|h| json!({ "class": "server", "name": format!("load-{h}"), "externalId": format!("w{writer}-{h}"),
                                      "attributes": { "serial_number": format!("LOAD-{h}"), format!("round_{writer}"): rounds } }))
                    .collect();
                let response: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({ "query": UPSERT, "variables": { "input": { "source": format!("writer-{writer}"), "items": items } } }))
                    .send()
                    .await
                    .expect("an answer")
                    .json()
                    .await
                    .expect("JSON");
                assert!(response.get("errors").is_none(), "{response}");
                assert_eq!(response["data"]["upsertConfigurationItems"]["rejected"], json!(0), "{response}");
            }
            (writer, rounds)
        }));
    }
    let readers = [
        "{ configurationItems(first: 50) { totalCount nodes { name } } }".to_owned(),
        "{ configurationItems(first: 20) { nodes { ciClass { name } outgoing { type { name } target { name services { name } } } } } }".to_owned(),
        format!("{{ impactAnalysis(input: {{ ciIds: [\"{esx03}\"] }}) {{ totalAffectedCis affectedServices {{ service {{ name }} }} }} }}"),
    ];
    let mut reads = Vec::new();
    for query in readers {
        let (client, address, token) = (app.client.clone(), app.address.clone(), admin.clone());
        reads.push(tokio::spawn(async move {
            let mut count = 0;
            while Instant::now() < deadline && count < 200 {
                count += 1;
                let response: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .expect("an answer")
                    .json()
                    .await
                    .expect("JSON");
                assert!(response.get("errors").is_none(), "{response}");
            }
            count
        }));
    }
    let mut last_round = vec![0u64; writers];
    for task in tasks {
        let (writer, rounds) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("no deadlock")
            .expect("a writer finished");
        last_round[writer] = rounds;
    }
    for task in reads {
        let count = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("no deadlock")
            .expect("a reader finished");
        assert!(count > 0);
    }
    let data = app
        .ok(
            "{ configurationItems(filter: { name: { startsWith: \"load-\" } }, first: 100) { totalCount nodes { attributes } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["configurationItems"]["totalCount"],
        json!(hosts),
        "one CI per serial number"
    );
    for node in data["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        for (writer, rounds) in last_round.iter().enumerate() {
            assert_eq!(
                node["attributes"][format!("round_{writer}")],
                json!(rounds),
                "no lost update: {node}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_operations_errors_and_discovery() {
    let app = TestApp::spawn().await;
    app.ok("query ListAll { services { totalCount } }", json!({}))
        .await;
    app.graphql("{ configurationItem(id: \"nope\") { id } }", json!({}))
        .await;
    let token = app.token("probe", Role::Discovery).await;
    app.graphql_with(
        Some(&token),
        UPSERT,
        json!({ "input": { "source": "probe", "items": [{ "class": "server", "name": "m", "externalId": "m" }] } }),
    )
    .await;
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            r#"cmdb_graphql_operations_total{operation="query:services",outcome="ok"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"cmdb_graphql_errors_total{code="VALIDATION"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cmdb_discovery_records_total{kind="item",outcome="created"} 1"#),
        "{text}"
    );
    assert!(text.contains("cmdb_database_pool_connections"), "{text}");
    assert!(
        text.contains("cmdb_graphql_operation_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("cmdb_subscriptions_open 0"), "{text}");
    assert!(
        text.contains(r#"cmdb_webhook_deliveries{status="FAILED"} 0"#),
        "{text}"
    );
}
