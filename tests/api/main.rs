//! Integration tests: each boots the real application (the same `app()` as `cmdb serve`) on
//! a database of its own, migrated by the real migrations, and speaks GraphQL over HTTP.
//!
//! Backend: SQLite in a temporary directory by default; set `CMDB_TEST_DATABASE_URL` to a
//! `postgres://` URL to run the same suite on PostgreSQL (each test then gets a schema of
//! its own, dropped at the end). `TEST_LOG=1` shows the server's logs, `TEST_SQL=1` every SQL statement.

mod helpers;

mod access;
mod admission;
mod audit;
mod backup;
mod browser;
mod caches;
mod catalog;
mod changes;
mod concurrency;
mod configuration_items;
mod discovery;
mod errors;
mod escalation;
mod health;
mod history;
mod http;
mod impact;
mod incidents;
mod live;
mod n_plus_one;
mod nested;
mod pagination;
mod protocol;
mod records;
mod relationship_drift;
mod relationships;
mod relay;
mod robustness;
mod schema;
mod service_levels;
mod services;
mod subscriptions;
mod time_travel;
mod webhooks;
