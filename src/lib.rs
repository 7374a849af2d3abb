//! cmdb: a configuration management database with a GraphQL API.
//!
//! Layers, each knowing only the ones below it: [`cli`] → [`http`] → [`graphql`] →
//! [`domain`] → the `entity` crate. See ARCHITECTURE.md for the map and the invariants.

pub mod backup;
pub mod cli;
pub mod console;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod import;
pub mod limits;
pub mod metrics;
pub mod settings;
pub mod telemetry;

pub use error::{Error, Result};

/// An HTTP client builder with TLS ready: rustls on ring, the one crypto provider the
/// binary carries (installed for the process on first use). Every outgoing HTTP client
/// (webhook deliveries, the benchmarks' and tests' clients) starts here.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// An HTTP client with the default settings (see [`http_client_builder`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .unwrap_or_else(|err| panic!("an HTTP client with default settings builds: {err}"))
}
