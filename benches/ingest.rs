//! Discovery ingestion speed: loading a 100,000-CI synthetic estate through
//! `upsertConfigurationItems` over HTTP, against the raw multi-row upsert of the same rows on
//! the same database engine, in the same run.
//!
//! Run with `cargo bench --bench ingest`. It measures SQLite, and PostgreSQL too when one
//! answers at `CMDB_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `CMDB_BENCH_SIZE` changes the number of CIs (default 100000).
//!
//! The server is the release `cmdb` binary in its own process, so its memory is its own.
//! Two clients send batches concurrently (`CMDB_BENCH_CLIENTS`), as a discovery script that
//! prepares its next batch while the previous one is written.
//! Reported: the first load (CIs and their relationships, batches of 1,000), the same load
//! again with nothing changed, and again with 10% of the items' attributes changed, each in
//! CIs per second; the raw-SQL rate (`INSERT ... ON CONFLICT DO UPDATE` of the same CI and
//! relationship rows in batches of 1,000); and the server's peak memory.

#[path = "support/common.rs"]
mod common;
#[path = "support/estate.rs"]
mod estate;
#[path = "support/server.rs"]
mod server;
#[path = "support/upserts.rs"]
mod upserts;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cmdb::db::{self, DbConfig};
use cmdb::domain::ci_class::ClassCatalog;
use cmdb::domain::relationship_type::TypeCatalog;
use entity::values::LifecycleStatus;
use entity::{configuration_item, relationship};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use upserts::BATCH;

/// The request bodies of one load: the item batches (every `change_every`-th item with
/// changed attributes), and the relationship batches.
fn bodies(estate: &estate::Estate, change_every: Option<usize>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let changed = |key: usize| change_every.is_some_and(|n| key.is_multiple_of(n));
    (
        upserts::item_bodies(estate, |_| true, changed, 2),
        upserts::relationship_bodies(estate),
    )
}

/// Totals of the reports: items and relationships, each created/updated/unchanged/rejected.
type Totals = ([u64; 4], [u64; 4]);

/// Sends the bodies with `clients` concurrent clients (a script sending its next batch while
/// the previous one is written); returns the totals.
async fn send_all(url: &str, token: &str, bodies: &[Vec<u8>], clients: usize) -> Totals {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies = std::sync::Arc::new(bodies.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, bodies, url, token) = (
            next.clone(),
            bodies.clone(),
            url.to_owned(),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let client = cmdb::http_client_builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut totals: Totals = ([0; 4], [0; 4]);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(body) = bodies.get(i) else { break };
                let response: Value = client
                    .post(format!("{url}/graphql"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the server answers")
                    .json()
                    .await
                    .expect("JSON");
                assert!(response.get("errors").is_none(), "errors: {response}");
                let report = &response["data"]["upsertConfigurationItems"];
                for (k, key) in ["created", "updated", "unchanged", "rejected"]
                    .iter()
                    .enumerate()
                {
                    totals.0[k] += report[key].as_u64().unwrap_or_default();
                    totals.1[k] += report["relationships"][key].as_u64().unwrap_or_default();
                }
            }
            totals
        }));
    }
    let mut totals: Totals = ([0; 4], [0; 4]);
    for task in tasks {
        let (items, relationships) = task.await.expect("a client finished");
        for k in 0..4 {
            totals.0[k] += items[k];
            totals.1[k] += relationships[k];
        }
    }
    totals
}

/// Loads the items, then the relationships; returns the time taken, the totals and the
/// server's peak resident memory seen.
async fn load(
    server: &server::Server,
    bodies: &(Vec<Vec<u8>>, Vec<Vec<u8>>),
    clients: usize,
) -> (Duration, Totals, u64) {
    let pid = server.child.id();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(server::vm_kb(pid, "VmRSS:").unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let (items, _) = send_all(&server.url, &server.token, &bodies.0, clients).await;
    let (_, relationships) = send_all(&server.url, &server.token, &bodies.1, clients).await;
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.await.unwrap_or_default();
    (elapsed, (items, relationships), peak)
}

/// The raw limit: multi-row upserts of the same CI and relationship rows, 1,000 at a time.
async fn raw(config: &DbConfig, estate: &estate::Estate) -> Duration {
    let db = db::connect(config).await.expect("connect");
    cmdb::domain::migrate(&db).await.expect("migrate");
    let classes = ClassCatalog::load(&db).await.expect("classes");
    let types = TypeCatalog::load(&db).await.expect("types");
    let type_ids: HashMap<&str, i32> = types
        .all()
        .iter()
        .map(|t| (t.name.as_str(), t.id))
        .collect();
    let ids: Vec<Uuid> = estate.cis.iter().map(|_| Uuid::now_v7()).collect();
    let at = cmdb::domain::now();
    let started = Instant::now();
    for chunk in estate.cis.chunks(BATCH) {
        let rows = chunk.iter().map(|ci| configuration_item::ActiveModel {
            id: Set(ids[ci.key]),
            class_id: Set(classes.by_name(ci.class).expect("class").id),
            name: Set(ci.name.clone()),
            description: Set(None),
            status: Set(LifecycleStatus::InService),
            environment: Set(None),
            criticality: Set(None),
            owner: Set(None),
            attributes: Set(ci.attributes.clone()),
            version: Set(1),
            created_at: Set(at),
            updated_at: Set(at),
            provenance: Set(json!({})),
        });
        configuration_item::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(configuration_item::Column::Id)
                    .update_columns([
                        configuration_item::Column::Name,
                        configuration_item::Column::Attributes,
                        configuration_item::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&db)
            .await
            .expect("raw CI upsert");
    }
    for chunk in estate.relationships.chunks(BATCH) {
        let rows = chunk.iter().map(|r| relationship::ActiveModel {
            id: Set(Uuid::now_v7()),
            source_id: Set(ids[r.source]),
            target_id: Set(ids[r.target]),
            type_id: Set(type_ids[r.kind]),
            attributes: Set(json!({})),
            created_at: Set(at),
        });
        relationship::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    relationship::Column::SourceId,
                    relationship::Column::TargetId,
                    relationship::Column::TypeId,
                ])
                .update_column(relationship::Column::Attributes)
                .to_owned(),
            )
            .exec_without_returning(&db)
            .await
            .expect("raw relationship upsert");
    }
    started.elapsed()
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

async fn run(name: &str, server_url: String, raw_config: DbConfig, size: usize) {
    println!("\n## {name} ({size} CIs)\n");
    let estate = estate::generate(size, 42);
    let cis = estate.cis.len();
    println!(
        "estate: {cis} CIs, {} relationships; batches of {BATCH}",
        estate.relationships.len()
    );
    let raw_time = raw(&raw_config, &estate).await;
    let raw_rate = rate(cis, raw_time);
    println!(
        "raw multi-row upsert of the same CI and relationship rows: {:.1} s, {:.0} CIs/s",
        raw_time.as_secs_f64(),
        raw_rate
    );

    let server = server::start(&server_url, "discovery").await;
    let first = bodies(&estate, None);
    let changed = bodies(&estate, Some(10));
    let clients: usize = std::env::var("CMDB_BENCH_CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2);
    println!("\n{clients} concurrent clients; items first, then relationships\n");
    println!(
        "| load | time s | CIs/s | vs raw SQL | vs first load | items created/updated/unchanged/rejected | relationships created/updated/unchanged/rejected |"
    );
    println!("|---|---:|---:|---:|---:|---|---|");
    let mut first_rate = 0.0;
    let mut peak = 0;
    for (label, bodies) in [
        ("first load", &first),
        ("same again, nothing changed", &first),
        ("10% of items changed", &changed),
    ] {
        let (elapsed, (items, relationships), rss) = load(&server, bodies, clients).await;
        peak = peak.max(rss);
        let r = rate(cis, elapsed);
        if first_rate == 0.0 {
            first_rate = r;
        }
        println!(
            "| {label} | {:.1} | {:.0} | {:.2} | {:.2} | {}/{}/{}/{} | {}/{}/{}/{} |",
            elapsed.as_secs_f64(),
            r,
            r / raw_rate,
            r / first_rate,
            items[0],
            items[1],
            items[2],
            items[3],
            relationships[0],
            relationships[1],
            relationships[2],
            relationships[3],
        );
    }
    let hwm = server::vm_kb(server.child.id(), "VmHWM:").unwrap_or(peak);
    println!(
        "\nserver peak memory (VmHWM): {:.0} MB",
        hwm as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    let size = common::size();
    println!("# Discovery ingestion benchmark");
    let dir = tempfile::tempdir().expect("temporary directory");
    if common::measures("sqlite") {
        run(
            "SQLite",
            format!("sqlite://{}/server.db?mode=rwc", dir.path().display()),
            DbConfig::new(format!("sqlite://{}/raw.db?mode=rwc", dir.path().display())),
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
    let suffix = Uuid::new_v4().simple().to_string();
    let (server_db, raw_db) = (
        format!("cmdb_bench_server_{suffix}"),
        format!("cmdb_bench_raw_{suffix}"),
    );
    for name in [&server_db, &raw_db] {
        common::create_database(&admin, name).await;
    }
    run(
        "PostgreSQL",
        server.database(&server_db),
        DbConfig::new(server.database(&raw_db)),
        size,
    )
    .await;
    for name in [&server_db, &raw_db] {
        common::drop_database(&admin, name).await;
    }
}
