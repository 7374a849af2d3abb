//! What every benchmark shares: its settings from the environment, timings, and the
//! PostgreSQL databases it makes and drops.

#![allow(dead_code)]

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

/// `CMDB_BENCH_SIZE`: the number of CIs of the estate (default 100,000).
pub fn size() -> usize {
    std::env::var("CMDB_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

/// Whether to measure `engine` (`sqlite` or `postgres`): `CMDB_BENCH_ONLY` names one, or
/// both are measured.
pub fn measures(engine: &str) -> bool {
    let only = std::env::var("CMDB_BENCH_ONLY").unwrap_or_default();
    only.is_empty() || only == engine
}

/// The PostgreSQL server to measure (`CMDB_BENCH_POSTGRES_URL`, default the local one):
/// a connection to it and how to name another database on it; `None` (said) when none
/// answers.
pub async fn postgres() -> Option<(DatabaseConnection, Server)> {
    let url = std::env::var("CMDB_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match sea_orm::Database::connect(url.as_str()).await {
        Ok(admin) => {
            let (path, query) = match url.split_once('?') {
                Some((path, query)) => (path.to_owned(), format!("?{query}")),
                None => (url.clone(), String::new()),
            };
            let base = path
                .rsplit_once('/')
                .map(|(base, _)| base.to_owned())
                .unwrap_or(path.clone());
            Some((admin, Server { base, query }))
        }
        Err(err) => {
            println!("\nPostgreSQL not measured: {err}");
            None
        }
    }
}

/// A PostgreSQL server's URL, without its database name.
pub struct Server {
    base: String,
    query: String,
}

impl Server {
    /// The URL of database `name` on the server.
    pub fn database(&self, name: &str) -> String {
        format!("{}/{name}{}", self.base, self.query)
    }
}

/// Creates a database for a run.
pub async fn create_database(admin: &DatabaseConnection, name: &str) {
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create a benchmark database");
}

/// Drops a run's database, whoever is still connected.
pub async fn drop_database(admin: &DatabaseConnection, name: &str) {
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

/// The median and 99th percentile of some samples.
pub struct Timing {
    pub p50: Duration,
    pub p99: Duration,
}

/// The timing of `samples` (not empty).
pub fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    Timing {
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends one GraphQL body; returns the length of the answer, read whole.
pub async fn send(client: &reqwest::Client, url: &str, body: &[u8]) -> usize {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("the server answers");
    assert!(response.status().is_success());
    response.bytes().await.expect("a body").len()
}
