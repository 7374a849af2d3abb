//! Live updates: how long an event takes from its commit to a subscriber's socket, alone
//! and with 1,000 subscribers while discovery writes 1,000 CIs a second, and what the
//! subscribers cost the server.
//!
//! Run with `cargo bench --bench live`. It measures SQLite, and PostgreSQL too when one
//! answers at `CMDB_BENCH_POSTGRES_URL` (there also across two instances: the write on one,
//! the subscriber on the other). `CMDB_BENCH_LIVE_SIZE` sets the estate (default 10,000
//! CIs; the subscribers' cost depends on the estate's services, not its size).
//!
//! Latency is the subscriber's receipt time minus the event's `at` (stamped by the server as
//! the write commits; same machine, same clock). The baseline, measured in the same run, is
//! the p50 of a trivial `{ __typename }` round trip over HTTP: the ratios say how many such
//! round trips an event's delivery costs. Memory is the server's peak resident size, CPU
//! its share of one core over the loaded period.

#[path = "support/common.rs"]
mod common;
#[path = "support/estate.rs"]
mod estate;
#[path = "support/load.rs"]
mod load;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;

use common::{ms, timing};

const PROBES: usize = 200;
const SUBSCRIBERS: usize = 1_000;
const PER_CONNECTION: usize = 20;
const LOAD_SECONDS: u64 = 10;
const LOAD_PER_SECOND: usize = 1_000;
const BATCH: usize = 100;

fn size() -> usize {
    std::env::var("CMDB_BENCH_LIVE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// Options of every server of the benchmark: room for its subscribers.
const OPTIONS: &[&str] = &[
    "--subscriptions-per-token",
    "5000",
    "--subscriptions-per-connection",
    "50",
    "--max-batch-size",
    "5000",
];

#[tokio::main]
async fn main() {
    let total = size();
    let estate = estate::generate(total, 42);
    println!(
        "live updates, {total}-CI estate, {} services",
        estate.services.len()
    );
    if common::measures("sqlite") {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/live.db?mode=rwc", dir.path().display());
        prepare(&url, &estate).await;
        let token = server::token(&url, "admin");
        let a = server::serve(&url, token, OPTIONS).await;
        measure("SQLite", &a, &a).await;
    }
    if common::measures("postgres")
        && let Some((admin, pg)) = common::postgres().await
    {
        let name = "cmdb_bench_live";
        common::drop_database(&admin, name).await;
        common::create_database(&admin, name).await;
        let url = pg.database(name);
        prepare(&url, &estate).await;
        let token = server::token(&url, "admin");
        let a = server::serve(&url, token.clone(), OPTIONS).await;
        measure("PostgreSQL", &a, &a).await;
        let b = server::serve(&url, token, OPTIONS).await;
        measure("PostgreSQL, write on A, subscriber on B", &a, &b).await;
        drop((a, b));
        common::drop_database(&admin, name).await;
    }
}

/// Migrates the database and loads the estate.
async fn prepare(url: &str, estate: &estate::Estate) {
    let db = cmdb::db::connect(&cmdb::db::DbConfig::new(url))
        .await
        .expect("connect");
    cmdb::domain::migrate(&db).await.expect("migrate");
    load::load_estate(&db, estate).await;
}

/// Where to send GraphQL requests, and with which token.
#[derive(Clone)]
struct Endpoint {
    url: String,
    token: String,
}

impl Endpoint {
    fn of(server: &server::Server) -> Self {
        Endpoint {
            url: server.url.clone(),
            token: server.token.clone(),
        }
    }
}

async fn graphql(
    client: &reqwest::Client,
    server: &Endpoint,
    query: &str,
    variables: Value,
) -> Value {
    let response: Value = client
        .post(format!("{}/graphql", server.url))
        .bearer_auth(&server.token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    assert!(response["errors"].is_null(), "{response}");
    response["data"].clone()
}

/// Opens a connection and starts `subscriptions` on it; every event's latency goes to
/// `latencies` (tagged with the connection's `tag`).
async fn subscriber(
    server: &Endpoint,
    subscriptions: Vec<(String, Value)>,
    tag: usize,
    latencies: mpsc::UnboundedSender<(usize, Duration)>,
) -> tokio::task::JoinHandle<()> {
    let url = format!("{}/graphql/ws", server.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("a request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a WebSocket");
    let send = |message: Value| Message::Text(message.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", server.token) } })))
        .await
        .expect("init");
    let ack = socket.next().await.expect("an ack").expect("an ack");
    assert!(ack.to_text().unwrap_or_default().contains("connection_ack"));
    for (i, (query, variables)) in subscriptions.into_iter().enumerate() {
        socket
            .send(send(json!({ "id": i.to_string(), "type": "subscribe", "payload": { "query": query, "variables": variables } })))
            .await
            .expect("subscribe");
    }
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let received = Utc::now();
            if std::env::var_os("BENCH_DEBUG").is_some() {
                eprintln!("{tag}: {text}");
            }
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let data = &message["payload"]["data"];
            let at = data["configurationItemChanged"]["at"]
                .as_str()
                .or(data["serviceImpactChanged"]["at"].as_str())
                .and_then(|at| at.parse::<DateTime<Utc>>().ok());
            if let Some(at) = at {
                let latency = (received - at).to_std().unwrap_or_default();
                let _ = latencies.send((tag, latency));
            } else if !message["payload"]["errors"].is_null() {
                eprintln!("a subscriber was told: {}", message["payload"]["errors"]);
            }
        }
    })
}

const PROBE: &str =
    "subscription($ids: [ID!]) { configurationItemChanged(filter: { ids: $ids }) { eventId at } }";
const IMPACT: &str = "subscription($service: ID!) { serviceImpactChanged(serviceId: $service) { eventId at before after } }";
const BY_NAME: &str = "subscription($name: String!) { configurationItemChanged(filter: { name: { equals: $name } }) { eventId at ci { name } } }";

/// The ids of the probe CI, of the services, and of the CIs the load updates.
async fn ids(client: &reqwest::Client, server: &Endpoint) -> (String, Vec<String>) {
    let services = graphql(
        client,
        server,
        "{ services(first: 500) { nodes { id } } }",
        json!({}),
    )
    .await;
    let services: Vec<String> = services["services"]["nodes"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    let vms = graphql(
        client,
        server,
        "{ configurationItems(filter: { class: \"virtual_machine\" }, first: 500) { nodes { id } } }",
        json!({}),
    )
    .await;
    let mut vms: Vec<String> = vms["configurationItems"]["nodes"]
        .as_array()
        .expect("CIs")
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    let probe = vms.pop().expect("a VM");
    (probe, services)
}

async fn probe_latency(
    client: &reqwest::Client,
    writer: &Endpoint,
    probe: &str,
    receiver: &mut mpsc::UnboundedReceiver<(usize, Duration)>,
    rounds: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        graphql(
            client,
            writer,
            "mutation($id: ID!, $p: JSON!) { updateConfigurationItem(id: $id, input: { attributePatch: $p }) { version } }",
            // A value never written before, so that every round is a change.
            json!({ "id": probe, "p": { "bench_round": format!("{round}-{}", Utc::now().timestamp_nanos_opt().unwrap_or_default()) } }),
        )
        .await;
        loop {
            let (tag, latency) = tokio::time::timeout(Duration::from_secs(60), receiver.recv())
                .await
                .expect("the probe's event arrives")
                .expect("the probe listens");
            if tag == usize::MAX {
                samples.push(latency);
                break;
            }
        }
    }
    samples
}

async fn measure(label: &str, writer_server: &server::Server, reader_server: &server::Server) {
    let client = cmdb::http_client();
    let (writer, reader) = (&Endpoint::of(writer_server), &Endpoint::of(reader_server));
    // Baseline: a trivial round trip on a keep-alive connection.
    let mut trivial = Vec::new();
    for _ in 0..PROBES {
        let started = Instant::now();
        graphql(&client, reader, "{ __typename }", json!({})).await;
        trivial.push(started.elapsed());
    }
    let trivial = timing(trivial);
    let (probe, services) = ids(&client, writer).await;
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let _probe = subscriber(
        reader,
        vec![(PROBE.into(), json!({ "ids": [probe] }))],
        usize::MAX,
        sender.clone(),
    )
    .await;
    // Let the subscription start: the first probe's event is not counted.
    probe_latency(&client, writer, &probe, &mut receiver, 1).await;
    let alone = timing(probe_latency(&client, writer, &probe, &mut receiver, PROBES).await);

    // 1,000 subscribers: half on services' impact (each judging every event against its
    // service's closure), half on one CI of the load each (one update per batch each).
    let mut plan: Vec<(String, Value)> = Vec::new();
    for i in 0..SUBSCRIBERS {
        if i % 2 == 0 && !services.is_empty() {
            plan.push((
                IMPACT.into(),
                json!({ "service": services[(i / 2) % services.len()] }),
            ));
        } else {
            plan.push((
                BY_NAME.into(),
                json!({ "name": format!("live-{}", (i / 2) % BATCH) }),
            ));
        }
    }
    let (busy_sender, mut busy) = mpsc::unbounded_channel();
    let mut connections = Vec::new();
    for (tag, chunk) in plan.chunks(PER_CONNECTION).enumerate() {
        connections.push(subscriber(reader, chunk.to_vec(), tag, busy_sender.clone()).await);
    }
    let drain = tokio::spawn(async move {
        let mut count = 0usize;
        while busy.recv().await.is_some() {
            count += 1;
        }
        count
    });
    let pid = reader_server.child.id();
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    // Discovery load: batches of updates at LOAD_PER_SECOND, the probe measured meanwhile.
    let load = {
        let (client, writer) = (client.clone(), writer.clone());
        tokio::spawn(async move {
            let mut sent = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(
                (1000 * BATCH / LOAD_PER_SECOND) as u64,
            ));
            let deadline = Instant::now() + Duration::from_secs(LOAD_SECONDS);
            let mut round = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                round += 1;
                let items: Vec<Value> = (0..BATCH)
                    .map(|i| json!({ "class": "server", "name": format!("live-{i}"), "externalId": format!("live-{i}"),
                                      "attributes": { "serial_number": format!("LIVE-{i}"), "cpu_count": round } }))
                    .collect();
                graphql(&client, &writer, "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { created updated } }",
                    json!({ "input": { "source": "bench-discovery", "items": items } })).await;
                sent += BATCH;
            }
            sent
        })
    };
    // Fewer probes under load, so that a saturated server still ends the run.
    let loaded = timing(probe_latency(&client, writer, &probe, &mut receiver, PROBES / 4).await);
    let sent = load.await.expect("the load runs");
    let elapsed = started.elapsed();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / ticks_per_second() / elapsed.as_secs_f64();
    let peak_mb = server::vm_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;

    // An unchanged reload emits nothing.
    let newest = |data: Value| data["auditEvents"]["nodes"][0]["id"].clone();
    let items: Vec<Value> = (0..BATCH)
        .map(|i| json!({ "class": "server", "name": format!("live-{i}"), "externalId": format!("live-{i}"),
                          "attributes": { "serial_number": format!("LIVE-{i}"), "cpu_count": 0 } }))
        .collect();
    let upsert = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { unchanged } }";
    let input = json!({ "input": { "source": "bench-discovery", "items": items } });
    graphql(&client, writer, upsert, input.clone()).await;
    let before = newest(
        graphql(
            &client,
            writer,
            "{ auditEvents(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await,
    );
    graphql(&client, writer, upsert, input).await;
    let after = newest(
        graphql(
            &client,
            writer,
            "{ auditEvents(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await,
    );
    for connection in connections {
        connection.abort();
    }
    drop(busy_sender);
    drop(sender);
    let delivered = tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);

    let ratio = |d: Duration| ms(d) / ms(trivial.p50);
    println!("\n{label}");
    println!(
        "  baseline: trivial query round trip p50 {:.2} ms",
        ms(trivial.p50)
    );
    println!(
        "  one subscriber:          commit -> socket p50 {:.2} ms ({:.1}x baseline), p99 {:.2} ms ({:.1}x)",
        ms(alone.p50),
        ratio(alone.p50),
        ms(alone.p99),
        ratio(alone.p99)
    );
    println!(
        "  {SUBSCRIBERS} subscribers + discovery: p50 {:.2} ms ({:.1}x), p99 {:.2} ms ({:.1}x); {sent} CIs written in {:.1} s ({:.0}/s)",
        ms(loaded.p50),
        ratio(loaded.p50),
        ms(loaded.p99),
        ratio(loaded.p99),
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  server: peak memory {peak_mb:.0} MB, CPU {:.0}% of a core; {delivered} events delivered to the {SUBSCRIBERS} subscribers",
        cpu * 100.0
    );
    println!(
        "  unchanged discovery reload: newest event before {before}, after {after} ({})",
        if before == after {
            "no event"
        } else {
            "EVENTS EMITTED"
        }
    );
}

/// The process's user and system CPU time, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command: state is field 0, utime 11, stime 12.
    field(11) + field(12)
}

fn ticks_per_second() -> f64 {
    100.0
}
