//! Nested read speed: the page a front-end asks for all day (100 applications, each with
//! its outgoing relationships, their type, their target's name and class, and the
//! application's services), over HTTP from the `cmdb` binary, against one JSON-building SQL
//! statement answering the same document from the same database, in the same run.
//!
//! Run with `cargo bench --bench read`. It measures SQLite, and PostgreSQL too when one
//! answers at `CMDB_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `CMDB_BENCH_SIZE` changes the number of CIs (default 100000), `CMDB_BENCH_ONLY=sqlite`
//! or `postgres` measures one engine, `CMDB_BENCH_SECONDS` sets how long each concurrent
//! run lasts (default 10), `CMDB_BENCH_KEEP=DIR` keeps the SQLite database in DIR.
//!
//! Reported: one request alone (p50, p99) and under 16 concurrent clients (requests per
//! second, p50), for the GraphQL query and for the raw statement; the ratios between them.
//! With `CMDB_BENCH_PROFILE` set it also times growing parts of the query, to show where
//! the time goes.

#[path = "support/common.rs"]
mod common;
#[path = "support/estate.rs"]
mod estate;
#[path = "support/load.rs"]
mod load;
#[path = "support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cmdb::db::{self, DbConfig};
use cmdb::domain::ci_class::ClassCatalog;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use common::{Timing, ms, send, timing};

const PAGE: usize = 100;
const CLIENTS: usize = 16;

/// The query under test.
const QUERY: &str = "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name outgoing { id type { name } target { id name ciClass { name } } } services { id name } } } } }";

/// Parts of the query, each adding one level, for `CMDB_BENCH_PROFILE`.
const PARTS: [&str; 6] = [
    "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name } } } }",
    "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name outgoing { id } } } } }",
    "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name outgoing { id type { name } } } } } }",
    "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name outgoing { id target { id name } } } } } }",
    "{ configurationItems(first: 100, filter: { class: \"application\" }) { edges { node { id name outgoing { id target { id name ciClass { name } } } } } } }",
    QUERY,
];

/// A UUID column as the API writes it: SQLite stores UUIDs as 16-byte blobs.
fn uuid_text(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("{column}::text"),
        _ => {
            let h = format!("hex({column})");
            format!(
                "lower(substr({h},1,8)||'-'||substr({h},9,4)||'-'||substr({h},13,4)||'-'||substr({h},17,4)||'-'||substr({h},21))"
            )
        }
    }
}

/// The same document from one statement: the page of applications (by name, then id),
/// each with its outgoing relationships (oldest first) and services (by name).
fn raw_sql(backend: DbBackend, class_ids: &[i32]) -> String {
    let classes = class_ids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (object, array, empty) = match backend {
        DbBackend::Postgres => ("json_build_object", "json_agg", "'[]'::json"),
        _ => ("json_object", "json_group_array", "json('[]')"),
    };
    let (ci_id, r_id, t_id, s_id) = (
        uuid_text(backend, "c.id"),
        uuid_text(backend, "r.id"),
        uuid_text(backend, "t.id"),
        uuid_text(backend, "s.id"),
    );
    // SQLite keeps the order of a subquery's rows in json_group_array; PostgreSQL takes
    // ORDER BY inside the aggregate.
    let (order_r, order_s, order_page, r_from, s_from) = match backend {
        DbBackend::Postgres => (
            " ORDER BY r.created_at, r.id",
            " ORDER BY s.name, s.id",
            " ORDER BY c.name, c.id",
            "relationship r".to_owned(),
            "service_member m JOIN service s ON s.id = m.service_id".to_owned(),
        ),
        _ => (
            "",
            "",
            "",
            "(SELECT * FROM relationship WHERE source_id = c.id ORDER BY created_at, id) r"
                .to_owned(),
            "(SELECT s.* , m.ci_id FROM service_member m JOIN service s ON s.id = m.service_id WHERE m.ci_id = c.id ORDER BY s.name, s.id) s JOIN service_member m ON m.ci_id = s.ci_id AND m.service_id = s.id".to_owned(),
        ),
    };
    format!(
        "SELECT {array}({object}('id', {ci_id}, 'name', c.name,
            'outgoing', (SELECT COALESCE({array}({object}('id', {r_id},
                    'type', {object}('name', y.name),
                    'target', {object}('id', {t_id}, 'name', t.name, 'ciClass', {object}('name', k.name))){order_r}), {empty})
                FROM {r_from}
                JOIN relationship_type y ON y.id = r.type_id
                JOIN configuration_item t ON t.id = r.target_id
                JOIN ci_class k ON k.id = t.class_id
                WHERE r.source_id = c.id),
            'services', (SELECT COALESCE({array}({object}('id', {s_id}, 'name', s.name){order_s}), {empty})
                FROM {s_from} WHERE m.ci_id = c.id)){order_page}) AS page
         FROM (SELECT id, name FROM configuration_item WHERE class_id IN ({classes})
               ORDER BY name, id LIMIT {PAGE}) c"
    )
}

async fn raw_page(db: &DatabaseConnection, sql: &str) -> Value {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("the raw statement")
        .expect("a row");
    let text: String = match db.get_database_backend() {
        DbBackend::Postgres => row
            .try_get::<Value>("", "page")
            .map(|v| v.to_string())
            .expect("JSON"),
        _ => row.try_get::<String>("", "page").expect("JSON text"),
    };
    serde_json::from_str(&text).expect("JSON")
}

/// A client with the server's token.
fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header"),
    );
    cmdb::http_client_builder()
        .pool_max_idle_per_host(1)
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Times `query` alone, one request after another.
async fn alone(client: &reqwest::Client, url: &str, query: &str, iterations: usize) -> Timing {
    let body = serde_json::to_vec(&json!({ "query": query })).expect("JSON");
    for _ in 0..10 {
        send(client, url, &body).await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let len = send(client, url, &body).await;
        samples.push(started.elapsed());
        assert!(len > 0);
    }
    timing(samples)
}

async fn raw_alone(db: &DatabaseConnection, sql: &str, iterations: usize) -> Timing {
    for _ in 0..10 {
        raw_page(db, sql).await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        raw_page(db, sql).await;
        samples.push(started.elapsed());
    }
    timing(samples)
}

/// Runs `one` from `CLIENTS` tasks at once for `seconds`; returns requests per second and
/// the p50 latency.
async fn concurrently<F, Fut>(seconds: u64, one: F) -> (f64, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let one = Arc::new(one);
    let running = Arc::new(AtomicBool::new(true));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (one, running, done) = (one.clone(), running.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while running.load(Ordering::Relaxed) {
                let t = Instant::now();
                one().await;
                samples.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    running.store(false, Ordering::Relaxed);
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("a client"));
    }
    let elapsed = started.elapsed();
    (
        done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        timing(samples).p50,
    )
}

/// The GraphQL answer's page in the raw statement's shape.
fn graphql_page(answer: &Value) -> Value {
    let edges = answer["data"]["configurationItems"]["edges"]
        .as_array()
        .expect("edges");
    Value::Array(edges.iter().map(|e| e["node"].clone()).collect())
}

async fn run(name: &str, config: DbConfig, size: usize) {
    println!("\n## {name} ({size} CIs)\n");
    let db = db::connect(&config).await.expect("connect");
    cmdb::domain::migrate(&db).await.expect("migrate");
    let estate = estate::generate(size, 42);
    let started = Instant::now();
    load::load_estate(&db, &estate).await;
    db.execute_unprepared("ANALYZE").await.expect("analyze");
    println!(
        "estate: {} CIs, {} relationships, {} services, loaded directly in {:.1} s",
        estate.cis.len(),
        estate.relationships.len(),
        estate.services.len(),
        started.elapsed().as_secs_f64()
    );
    let classes = ClassCatalog::load(&db).await.expect("classes");
    let application = classes.by_name("application").expect("seeded class").id;
    let sql = raw_sql(
        db.get_database_backend(),
        &classes.with_descendants(application),
    );

    let server = server::start(&config.url, "viewer").await;
    let url = format!("{}/graphql", server.url);
    let http = client(&server.token);

    // Both answer the same document.
    let answer: Value = http
        .post(&url)
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    assert!(answer.get("errors").is_none(), "errors: {answer}");
    let page = graphql_page(&answer);
    assert_eq!(
        page,
        raw_page(&db, &sql).await,
        "the raw page and the API's"
    );
    let relationships: usize = page
        .as_array()
        .expect("a page")
        .iter()
        .map(|ci| ci["outgoing"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "page: {} CIs, {relationships} relationships, {} bytes of JSON\n",
        page.as_array().map_or(0, Vec::len),
        answer.to_string().len()
    );

    if std::env::var_os("CMDB_BENCH_PROFILE").is_some() {
        for part in PARTS {
            let t = alone(&http, &url, part, 100).await;
            println!("{:.3} ms  {part}", ms(t.p50));
        }
        println!();
    }

    let trivial = alone(&http, &url, "{ __typename }", 300).await;
    let api = alone(&http, &url, QUERY, 200).await;
    let raw = raw_alone(&db, &sql, 200).await;
    let seconds: u64 = std::env::var("CMDB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let api_concurrent = {
        let body = Arc::new(serde_json::to_vec(&json!({ "query": QUERY })).expect("JSON"));
        let token = server.token.clone();
        let url = url.clone();
        let clients: Arc<Vec<reqwest::Client>> =
            Arc::new((0..CLIENTS).map(|_| client(&token)).collect());
        let next = Arc::new(AtomicU64::new(0));
        concurrently(seconds, move || {
            let (body, url, clients, next) =
                (body.clone(), url.clone(), clients.clone(), next.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % CLIENTS;
                send(&clients[i], &url, &body).await;
            }
        })
        .await
    };
    let raw_concurrent = {
        let sql = Arc::new(sql.clone());
        let db = db::connect(&DbConfig {
            max_connections: CLIENTS as u32,
            ..config.clone()
        })
        .await
        .expect("connect");
        concurrently(seconds, move || {
            let (db, sql) = (db.clone(), sql.clone());
            async move {
                raw_page(&db, &sql).await;
            }
        })
        .await
    };
    let hwm = server::vm_kb(server.child.id(), "VmHWM:").unwrap_or_default();

    println!("| measure | GraphQL over HTTP | raw statement | GraphQL / raw |");
    println!("|---|---:|---:|---:|");
    println!(
        "| one request alone, p50 ms | {:.3} | {:.3} | {:.2}x the time |",
        ms(api.p50),
        ms(raw.p50),
        api.p50.as_secs_f64() / raw.p50.as_secs_f64()
    );
    println!(
        "| one request alone, p99 ms | {:.3} | {:.3} | {:.2}x the time |",
        ms(api.p99),
        ms(raw.p99),
        api.p99.as_secs_f64() / raw.p99.as_secs_f64()
    );
    println!(
        "| {CLIENTS} concurrent clients, requests/s | {:.0} | {:.0} | {:.2}x the throughput |",
        api_concurrent.0,
        raw_concurrent.0,
        api_concurrent.0 / raw_concurrent.0
    );
    println!(
        "| {CLIENTS} concurrent clients, p50 ms | {:.1} | {:.1} | {:.2}x the time |",
        ms(api_concurrent.1),
        ms(raw_concurrent.1),
        api_concurrent.1.as_secs_f64() / raw_concurrent.1.as_secs_f64()
    );
    println!(
        "\ntrivial `{{ __typename }}` over HTTP: p50 {:.3} ms; server peak memory (VmHWM) {:.0} MB",
        ms(trivial.p50),
        hwm as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    let size = common::size();
    println!("# Nested read benchmark");
    let dir = tempfile::tempdir().expect("temporary directory");
    // `CMDB_BENCH_KEEP=DIR` leaves the SQLite database in DIR, for profiling a server on it.
    let kept = std::env::var("CMDB_BENCH_KEEP").ok();
    let sqlite_dir = kept.unwrap_or_else(|| dir.path().display().to_string());
    if common::measures("sqlite") {
        let url = format!("sqlite://{sqlite_dir}/read.db?mode=rwc");
        run("SQLite", DbConfig::new(url), size).await;
    }
    if !common::measures("postgres") {
        return;
    }
    let Some((admin, server)) = common::postgres().await else {
        return;
    };
    let name = format!("cmdb_bench_read_{}", Uuid::new_v4().simple());
    common::create_database(&admin, &name).await;
    run("PostgreSQL", DbConfig::new(server.database(&name)), size).await;
    common::drop_database(&admin, &name).await;
}
