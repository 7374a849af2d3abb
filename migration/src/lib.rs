//! Schema migrations of the cmdb database, applied in order by [`Migrator`].
//!
//! Invariants: a migration that has been merged is never edited (add a new one instead),
//! and this crate never imports the `entity` crate, so that old migrations keep meaning
//! what they meant when they were written.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_core_schema;
mod m20261126_000002_seed_catalog;
mod m20261126_000003_graph_changes;
mod m20261126_000004_discovery;
mod m20261126_000005_api_tokens;
mod m20261126_000006_service_management;
mod m20261202_000007_record_integrity;
mod m20261204_000008_records_keep_their_links;
mod m20261204_000009_names_ignore_case;
mod m20261204_000010_webhooks;
mod m20261205_000011_history;

/// Every migration of the cmdb schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_core_schema::Migration),
            Box::new(m20261126_000002_seed_catalog::Migration),
            Box::new(m20261126_000003_graph_changes::Migration),
            Box::new(m20261126_000004_discovery::Migration),
            Box::new(m20261126_000005_api_tokens::Migration),
            Box::new(m20261126_000006_service_management::Migration),
            Box::new(m20261202_000007_record_integrity::Migration),
            Box::new(m20261204_000008_records_keep_their_links::Migration),
            Box::new(m20261204_000009_names_ignore_case::Migration),
            Box::new(m20261204_000010_webhooks::Migration),
            Box::new(m20261205_000011_history::Migration),
        ]
    }
}
