//! History speed on the 100,000-CI synthetic estate after a history of changes: reads as of
//! a past instant against the same reads now, `changesBetween` over 10,000 changes, and what
//! keeping versions costs in storage against the audit trail, all in the same run.
//!
//! Run with `cargo bench --bench history`. It measures SQLite, and PostgreSQL too when one
//! answers at `CMDB_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `CMDB_BENCH_SIZE` changes the number of CIs (default 100000).
//!
//! The estate is loaded through `upsertConfigurationItems` (so every write is audited and
//! versioned as in production), then 10% of the CIs change ten times (one revision of their
//! attributes per round, 10,000 CIs a round). "Past" is the instant after the fifth round.

#[path = "support/common.rs"]
mod common;
#[path = "support/estate.rs"]
mod estate;
#[path = "support/in_process.rs"]
mod in_process;
#[path = "support/upserts.rs"]
mod upserts;

// The same allocator as the `cmdb` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use cmdb::db::{self, DbConfig};
use cmdb::domain::impact::GraphCache;
use cmdb::domain::impact::analysis::{self, Direction, Options};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use common::{Timing, ms, timing};

const ROUNDS: u64 = 10;

async fn post(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let response: Value = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    assert!(response.get("errors").is_none(), "errors: {response}");
    response["data"].clone()
}

async fn time_http(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    iterations: usize,
) -> Timing {
    let body =
        serde_json::to_vec(&json!({ "query": query, "variables": variables })).expect("JSON");
    common::send(client, url, &body).await;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        common::send(client, url, &body).await;
        samples.push(started.elapsed());
    }
    timing(samples)
}

async fn send_batches(client: &reqwest::Client, url: &str, bodies: &[Vec<u8>]) {
    for body in bodies {
        let response: Value = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("JSON");
        assert!(response.get("errors").is_none(), "errors: {response}");
    }
}

async fn latest_instant(client: &reqwest::Client, url: &str) -> String {
    let data = post(
        client,
        url,
        "{ auditEvents(first: 1) { nodes { occurredAt } } }",
        json!({}),
    )
    .await;
    data["auditEvents"]["nodes"][0]["occurredAt"]
        .as_str()
        .expect("an instant")
        .to_owned()
}

async fn one_number(db: &DatabaseConnection, sql: &str) -> f64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("a number")
        .expect("a row");
    row.try_get_by_index::<i64>(0)
        .map(|n| n as f64)
        .or_else(|_| row.try_get_by_index::<f64>(0))
        .unwrap_or(0.0)
}

/// Bytes a table takes with its indexes: PostgreSQL's own figure; on SQLite, the pages
/// `dbstat` counts for it and its indexes.
async fn table_bytes(db: &DatabaseConnection, table: &str) -> f64 {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            one_number(db, &format!("SELECT pg_total_relation_size('{table}')::bigint")).await
        }
        _ => {
            one_number(
                db,
                &format!(
                    "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = '{table}' \
                     OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}')"
                ),
            )
            .await
        }
    }
}

fn line(label: &str, now: &Timing, past: &Timing) {
    println!(
        "| {label} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
        ms(now.p50),
        ms(now.p99),
        ms(past.p50),
        ms(past.p99),
        past.p50.as_secs_f64() / now.p50.as_secs_f64()
    );
}

async fn run(name: &str, config: DbConfig, size: usize) {
    println!("\n## {name} ({size} CIs)\n");
    let db = db::connect(&config).await.expect("connect");
    cmdb::domain::migrate(&db).await.expect("migrate");
    let (url, client) =
        in_process::serve(&db, cmdb::domain::auth::Role::Admin, 64 * 1024 * 1024).await;

    let estate = estate::generate(size, 42);
    let started = Instant::now();
    send_batches(
        &client,
        &url,
        &upserts::item_bodies(&estate, |_| true, |_| false, 0),
    )
    .await;
    send_batches(&client, &url, &upserts::relationship_bodies(&estate)).await;
    println!(
        "estate: {} CIs, {} relationships, loaded through the API in {:.1} s",
        estate.cis.len(),
        estate.relationships.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut past = String::new();
    let (mut round_from, mut round_to) = (String::new(), String::new());
    for round in 1..=ROUNDS {
        let before = latest_instant(&client, &url).await;
        let changed = upserts::item_bodies(&estate, |key| key.is_multiple_of(10), |_| true, round);
        send_batches(&client, &url, &changed).await;
        if round == 5 {
            past = latest_instant(&client, &url).await;
        }
        if round == 6 {
            round_from = before;
            round_to = latest_instant(&client, &url).await;
        }
    }
    println!(
        "history: {ROUNDS} rounds changing 10% of the CIs each ({} versions) in {:.1} s; past = after round 5\n",
        ROUNDS as usize * estate.cis.len().div_ceil(10),
        started.elapsed().as_secs_f64()
    );

    // Fresh statistics, as any database would have them after a load.
    db.execute_unprepared("ANALYZE").await.expect("analyze");

    // A changed CI, and a median server for impact.
    let ids: Vec<Uuid> = {
        let data = post(
            &client,
            &url,
            "query($name: String!) { configurationItems(first: 2, filter: { name: { equals: $name } }) { nodes { id } } }",
            json!({ "name": estate.cis[0].name.clone() }),
        )
        .await;
        data["configurationItems"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| Uuid::parse_str(n["id"].as_str().expect("an id")).expect("a uuid"))
            .collect()
    };
    let changed_ci = ids[0];
    let cache = GraphCache::new();
    let graph = cache.current(&db).await.expect("graph");
    let options = Options {
        direction: Direction::Downstream,
        max_depth: 6,
        types: None,
        include_retired: false,
        max_nodes: usize::MAX,
    };
    let server_ids: Vec<Uuid> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT c.id FROM configuration_item c JOIN ci_class k ON k.id = c.class_id WHERE k.name = 'server'"
                .to_owned(),
        ))
        .await
        .expect("servers")
        .iter()
        .map(|row| row.try_get_by_index::<Uuid>(0).expect("an id"))
        .collect();
    let mut radii: Vec<(usize, Uuid)> = server_ids
        .iter()
        .map(|id| {
            (
                analysis::analyse(&graph, &[*id], &options).reached.len(),
                *id,
            )
        })
        .collect();
    radii.sort();
    let median = radii[radii.len() / 2];

    let trivial = time_http(&client, &url, "{ __typename }", json!({}), 200).await;
    println!(
        "trivial query over HTTP: p50 {:.3} ms, p99 {:.3} ms\n",
        ms(trivial.p50),
        ms(trivial.p99)
    );
    println!(
        "| read | now p50 ms | now p99 ms | as of past p50 ms | as of past p99 ms | past / now |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let read = "query($id: ID!, $at: DateTime) { configurationItem(id: $id, asOf: $at) { name version attributes outgoing { type { name } target { name } } } }";
    let now = time_http(
        &client,
        &url,
        read,
        json!({ "id": changed_ci, "at": null }),
        300,
    )
    .await;
    let then = time_http(
        &client,
        &url,
        read,
        json!({ "id": changed_ci, "at": past }),
        300,
    )
    .await;
    line("a CI with its outgoing relationships", &now, &then);
    let list = "query($at: DateTime) { configurationItems(asOf: $at, first: 50, filter: { class: \"application\" }) { nodes { name version } } }";
    let now = time_http(&client, &url, list, json!({ "at": null }), 100).await;
    let then = time_http(&client, &url, list, json!({ "at": past }), 100).await;
    line("a page of 50 applications", &now, &then);
    let impact = "query($id: ID!, $at: DateTime) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, asOf: $at }) { totalAffectedCis affectedServices { service { name } } } }";
    let now = time_http(
        &client,
        &url,
        impact,
        json!({ "id": median.1, "at": null }),
        100,
    )
    .await;
    let started = Instant::now();
    post(&client, &url, impact, json!({ "id": median.1, "at": past })).await;
    let first_answer = started.elapsed();
    let then = time_http(
        &client,
        &url,
        impact,
        json!({ "id": median.1, "at": past }),
        100,
    )
    .await;
    println!(
        "| impact as of the past, the first answer for that instant (the graph rewound, then kept) | | | {:.3} | | {:.0} |",
        ms(first_answer),
        first_answer.as_secs_f64() / now.p50.as_secs_f64()
    );
    line(
        &format!("impact of a median server ({} CIs)", median.0),
        &now,
        &then,
    );

    // changesBetween over one round: 10,000 changes, read whole a page of 500 at a time.
    let page = "query($from: DateTime!, $to: DateTime!, $after: String) { changesBetween(from: $from, to: $to, first: 500, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { kind entityId at actor fields { field before after } } } }";
    let mut samples: Vec<Duration> = Vec::new();
    let mut listed = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut after: Option<String> = None;
        listed = 0;
        loop {
            let data = post(
                &client,
                &url,
                page,
                json!({ "from": round_from, "to": round_to, "after": after }),
            )
            .await;
            let connection = &data["changesBetween"];
            listed += connection["nodes"].as_array().map_or(0, Vec::len);
            if connection["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = connection["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned);
        }
        samples.push(started.elapsed());
    }
    let whole = timing(samples);
    println!(
        "\nchangesBetween over one round: {listed} changes listed in pages of 500: p50 {:.0} ms (target under 1,000 ms)",
        ms(whole.p50)
    );

    // Storage: the version tables against the audit trail.
    let versions = one_number(&db, "SELECT (SELECT COUNT(*) FROM configuration_item_version) + (SELECT COUNT(*) FROM relationship_version) + (SELECT COUNT(*) FROM service_version) + (SELECT COUNT(*) FROM service_member_version)").await;
    let events = one_number(&db, "SELECT COUNT(*) FROM audit_event").await;
    let mut version_bytes = 0.0;
    for table in [
        "configuration_item_version",
        "relationship_version",
        "service_version",
        "service_member_version",
    ] {
        version_bytes += table_bytes(&db, table).await;
    }
    let audit_bytes = table_bytes(&db, "audit_event").await;
    println!(
        "storage: {versions:.0} versions take {:.1} MB ({:.0} bytes per version); the audit trail's {events:.0} events take {:.1} MB; versions / audit trail = {:.2} (target at most 2)",
        version_bytes / 1e6,
        version_bytes / versions.max(1.0),
        audit_bytes / 1e6,
        version_bytes / audit_bytes.max(1.0)
    );
}

#[tokio::main]
async fn main() {
    let size = common::size();
    println!("# History benchmark");
    let dir = tempfile::tempdir().expect("temporary directory");
    if common::measures("sqlite") {
        let config = DbConfig::new(format!(
            "sqlite://{}/history.db?mode=rwc",
            dir.path().display()
        ));
        run("SQLite", config, size).await;
    }
    if !common::measures("postgres") {
        return;
    }
    let Some((admin, server)) = common::postgres().await else {
        return;
    };
    let name = format!("cmdb_bench_history_{}", Uuid::new_v4().simple());
    common::create_database(&admin, &name).await;
    run("PostgreSQL", DbConfig::new(server.database(&name)), size).await;
    common::drop_database(&admin, &name).await;
}
