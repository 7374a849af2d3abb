//! Impact analysis speed on a 100,000-CI synthetic estate, against the raw recursive SQL
//! query on the same database, in the same run.
//!
//! Run with `cargo bench --bench impact`. It measures SQLite, and PostgreSQL too when one
//! answers at `CMDB_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `CMDB_BENCH_SIZE` changes the number of CIs (default 100000).
//!
//! For the hosts with the median and the largest blast radius (DOWNSTREAM, maxDepth 6) it
//! reports the p50 and p99 latency over HTTP of `impactAnalysis` returning the count and the
//! affected services' names, and returning every affected CI with its path; the p50 of a
//! trivial `{ __typename }` on the same keep-alive connection; and the p50 and p99 of the
//! equivalent recursive SQL query run directly on the database. The server's own time is the
//! impact p50 minus the trivial p50; the ratio compares it with the raw query's p50.

#[path = "support/common.rs"]
mod common;
#[path = "support/estate.rs"]
mod estate;
#[path = "support/in_process.rs"]
mod in_process;
#[path = "support/load.rs"]
mod load;

// The same allocator as the `cmdb` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use cmdb::db::{self, DbConfig};
use cmdb::domain::impact::GraphCache;
use cmdb::domain::impact::analysis::{self, Direction, Options};
use cmdb::domain::relationship_type::TypeCatalog;
use cmdb::limits::Limits;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use common::{Timing, ms, timing};

const MAX_DEPTH: u32 = 6;

struct Backend {
    name: &'static str,
    config: DbConfig,
}

fn peak_memory_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The equivalent recursive query: every CI reached from `start` within six relationships,
/// following each type's propagation rule (type ids by rule are bound as lists), counted
/// once each. Written for each engine's strengths: PostgreSQL evaluates one recursive term
/// (a lateral union of both directions), SQLite accepts one term per direction.
fn recursive_sql(backend: DbBackend, target_to_source: &[i32], source_to_target: &[i32]) -> String {
    let list = |ids: &[i32]| {
        if ids.is_empty() {
            "NULL".to_owned()
        } else {
            ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        }
    };
    let (up, down) = (list(target_to_source), list(source_to_target));
    match backend {
        DbBackend::Postgres => format!(
            "WITH RECURSIVE hit(id, depth) AS (
                SELECT CAST($1 AS uuid), 0
                UNION
                SELECT n.next, h.depth + 1 FROM hit h CROSS JOIN LATERAL (
                    SELECT r.source_id AS next FROM relationship r WHERE r.target_id = h.id AND r.type_id IN ({up})
                    UNION ALL
                    SELECT r.target_id FROM relationship r WHERE r.source_id = h.id AND r.type_id IN ({down})
                ) n WHERE h.depth < 6
            )
            SELECT COUNT(*) AS affected FROM (SELECT id, MIN(depth) FROM hit GROUP BY id) AS reached"
        ),
        _ => format!(
            "WITH RECURSIVE hit(id, depth) AS (
                SELECT ?, 0
                UNION
                SELECT r.source_id, h.depth + 1 FROM hit h JOIN relationship r ON r.target_id = h.id
                 WHERE h.depth < 6 AND r.type_id IN ({up})
                UNION
                SELECT r.target_id, h.depth + 1 FROM hit h JOIN relationship r ON r.source_id = h.id
                 WHERE h.depth < 6 AND r.type_id IN ({down})
            )
            SELECT COUNT(*) AS affected FROM (SELECT id, MIN(depth) FROM hit GROUP BY id) AS reached"
        ),
    }
}

async fn raw_count(db: &DatabaseConnection, sql: &str, start: Uuid) -> i64 {
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, [start.into()]);
    let row = db
        .query_one_raw(statement)
        .await
        .expect("recursive query")
        .expect("a row");
    row.try_get::<i64>("", "affected").expect("a count")
}

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
    response
}

async fn time_http(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    iterations: usize,
) -> Timing {
    for _ in 0..iterations.min(20) {
        post(client, url, query, variables.clone()).await;
    }
    // Timed: the request and reading the whole body; the client does not parse it (the
    // warm-up above checked the answers).
    let body =
        serde_json::to_vec(&json!({ "query": query, "variables": variables })).expect("JSON");
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the server answers");
        assert!(response.status().is_success());
        let bytes = response.bytes().await.expect("a body");
        samples.push(started.elapsed());
        assert!(!bytes.is_empty());
    }
    timing(samples)
}

/// Times the raw query `iterations` times, or for about 20 seconds when it is slow.
async fn time_raw(db: &DatabaseConnection, sql: &str, start: Uuid, iterations: usize) -> Timing {
    let budget = Instant::now();
    raw_count(db, sql, start).await;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        raw_count(db, sql, start).await;
        samples.push(started.elapsed());
        if samples.len() >= 5 && budget.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    timing(samples)
}

const COUNT_QUERY: &str = "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], direction: DOWNSTREAM, maxDepth: 6 }) { totalAffectedCis affectedServices { service { name } } } }";
const FULL_QUERY: &str = "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], direction: DOWNSTREAM, maxDepth: 6, limit: 20000 }) { totalAffectedCis affectedCis { ci { id name } depth state path { id type { name } } } } }";

async fn run(backend: Backend, size: usize) {
    println!("\n## {} ({size} CIs)\n", backend.name);
    let db = db::connect(&backend.config).await.expect("connect");
    cmdb::domain::migrate(&db).await.expect("migrate");
    let estate = estate::generate(size, 42);
    let started = Instant::now();
    let ids = load::load_estate(&db, &estate).await;
    println!(
        "estate: {} CIs, {} relationships, {} services, loaded directly in {:.1} s",
        estate.cis.len(),
        estate.relationships.len(),
        estate.services.len(),
        started.elapsed().as_secs_f64()
    );

    // Fresh statistics, as any database would have them after a load.
    db.execute_unprepared("ANALYZE").await.expect("analyze");
    let types = TypeCatalog::load(&db).await.expect("types");
    let ids_where = |rule: &[entity::values::Propagation]| -> Vec<i32> {
        types
            .all()
            .iter()
            .filter(|t| rule.contains(&t.propagation))
            .map(|t| t.id)
            .collect()
    };
    use entity::values::Propagation::{Both, SourceToTarget, TargetToSource};
    let sql = recursive_sql(
        db.get_database_backend(),
        &ids_where(&[TargetToSource, Both]),
        &ids_where(&[SourceToTarget, Both]),
    );

    // Blast radius of every host, from the same graph the server uses.
    let cache = GraphCache::new();
    let started = Instant::now();
    let graph = cache.current(&db).await.expect("graph");
    println!("graph loaded in {:.2} s", started.elapsed().as_secs_f64());
    let options = Options {
        direction: Direction::Downstream,
        max_depth: MAX_DEPTH,
        types: None,
        include_retired: false,
        max_nodes: usize::MAX,
    };
    let mut radii: Vec<(usize, Uuid)> = estate
        .servers
        .iter()
        .map(|key| {
            let id = ids[*key];
            (analysis::analyse(&graph, &[id], &options).reached.len(), id)
        })
        .collect();
    radii.sort();
    let median = radii[radii.len() / 2];
    let largest = radii[radii.len() - 1];

    let (url, client) = in_process::serve(
        &db,
        cmdb::domain::auth::Role::Viewer,
        Limits::default().max_body_bytes,
    )
    .await;
    // The first analysis loads the server's own graph.
    post(&client, &url, COUNT_QUERY, json!({ "id": median.1 })).await;

    let trivial = time_http(&client, &url, "{ __typename }", json!({}), 400).await;
    println!(
        "trivial query over HTTP: p50 {:.3} ms, p99 {:.3} ms\n",
        ms(trivial.p50),
        ms(trivial.p99)
    );
    if std::env::var_os("CMDB_BENCH_PROFILE").is_some() {
        for query in [
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, limit: 20000 }) { affectedCis { depth state } } }",
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, limit: 20000 }) { affectedCis { ci { id } } } }",
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, limit: 20000 }) { affectedCis { ci { id name } } } }",
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, limit: 20000 }) { affectedCis { path { id } } } }",
            "query($id: ID!) { impactAnalysis(input: { ciIds: [$id], maxDepth: 6, limit: 20000 }) { affectedCis { path { id type { name } } } } }",
            FULL_QUERY,
        ] {
            let t = time_http(&client, &url, query, json!({ "id": largest.1 }), 30).await;
            println!("{:.3} ms  {query}", ms(t.p50));
        }
    }
    println!(
        "| host | affected CIs | query | p50 ms | p99 ms | server's own p50 ms | raw SQL p50 ms | raw SQL p99 ms | own / raw |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for (label, (radius, id)) in [("median", median), ("largest", largest)] {
        let raw_affected = raw_count(&db, &sql, id).await;
        assert_eq!(
            raw_affected as usize, radius,
            "the raw query and the analysis agree"
        );
        let iterations = if radius > 2_000 { 60 } else { 300 };
        let raw = time_raw(&db, &sql, id, iterations).await;
        for (name, query) in [
            ("count + services", COUNT_QUERY),
            ("all CIs with paths", FULL_QUERY),
        ] {
            let http = time_http(&client, &url, query, json!({ "id": id }), iterations).await;
            let own = http.p50.saturating_sub(trivial.p50);
            println!(
                "| {label} | {radius} | {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
                ms(http.p50),
                ms(http.p99),
                ms(own),
                ms(raw.p50),
                ms(raw.p99),
                own.as_secs_f64() / raw.p50.as_secs_f64()
            );
        }
    }
    // Several of the largest hosts at once, to reach the 5,000-CI answer.
    let mut starts: Vec<Uuid> = Vec::new();
    let mut together = 0;
    for (_, id) in radii.iter().rev() {
        starts.push(*id);
        together = analysis::analyse(&graph, &starts, &options).reached.len();
        if together >= 5_000 {
            break;
        }
    }
    let many = "query($ids: [ID!]!) { impactAnalysis(input: { ciIds: $ids, direction: DOWNSTREAM, maxDepth: 6, limit: 20000 }) { totalAffectedCis affectedCis { ci { id name } depth state path { id type { name } } } } }";
    let http = time_http(&client, &url, many, json!({ "ids": starts }), 60).await;
    println!(
        "| {} largest hosts together | {together} | all CIs with paths | {:.3} | {:.3} | {:.3} | n/a | n/a | n/a |",
        starts.len(),
        ms(http.p50),
        ms(http.p99),
        ms(http.p50.saturating_sub(trivial.p50)),
    );
    println!(
        "\npeak memory of the benchmark process so far: {:.0} MB",
        peak_memory_mb()
    );
    if std::env::var_os("CMDB_BENCH_KEEP").is_some() {
        println!("kept the benchmark database: {:?}", backend.config);
    }
}

#[tokio::main]
async fn main() {
    let size = common::size();
    println!("# Impact analysis benchmark");
    let dir = tempfile::tempdir().expect("temporary directory");
    if common::measures("sqlite") {
        run(
            Backend {
                name: "SQLite",
                config: DbConfig::new(format!(
                    "sqlite://{}/bench.db?mode=rwc",
                    dir.path().display()
                )),
            },
            size,
        )
        .await;
    }
    if !common::measures("postgres") {
        return;
    }
    let Some((admin, server)) = common::postgres().await else {
        return;
    };
    let name = format!("cmdb_bench_impact_{}", Uuid::new_v4().simple());
    common::create_database(&admin, &name).await;
    run(
        Backend {
            name: "PostgreSQL",
            config: DbConfig::new(server.database(&name)),
        },
        size,
    )
    .await;
    if std::env::var_os("CMDB_BENCH_KEEP").is_none() {
        common::drop_database(&admin, &name).await;
    }
}
