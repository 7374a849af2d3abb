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
