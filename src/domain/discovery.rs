//! Discovery ingestion: discovery scripts send batches of CIs and relationships; the CMDB
//! identifies each item (by the source's own id, else by the class's identifier attributes),
//! reconciles what several sources say (which source wins which field), writes only what
//! changed, and in full-sync mode marks what a source stopped reporting as stale.
//!
//! Invariants: an item is never merged into a CI by guesswork (two candidates is
//! `AMBIGUOUS_IDENTITY`); a batch is applied in one transaction, so it is written whole or
//! not at all (rejected items excepted, unless the batch is atomic); an unchanged item writes
//! no CI row, no audit event and no version; discovery writers are serialised, so concurrent
//! runs never create duplicates or lose updates.

pub mod batch;
pub use super::identity;
pub mod plan;
pub mod provenance;
pub mod reconcile;
pub mod rules;
pub mod snapshot;
pub mod statistics;
pub mod upsert;
pub mod write;

use std::collections::HashMap;

use chrono::Duration;
use entity::ci_identifier;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{Error, Result};

/// How discovery behaves where the request does not say.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// After how long without a report a source's values are handed over to lower-ranked
    /// sources, when a rule sets no period of its own.
    pub handover_after: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            handover_after: Duration::days(7),
        }
    }
}

/// Checks a discovery source's name: 1 to 100 letters, digits, `_`, `-`, `.` or `:`. The name
/// `manual` is reserved for edits made by people.
pub fn check_source(field: &str, source: &str) -> Result<String> {
    let source = source.trim();
    let valid = !source.is_empty()
        && source.len() <= 100
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !valid {
        return Err(Error::invalid(
            field,
            format!(
                "`{source}` is not a valid source name: 1 to 100 letters, digits, `_`, `-`, `.` or `:`"
            ),
        ));
    }
    if source == provenance::MANUAL {
        return Err(Error::invalid(
            field,
            "the source name `manual` is reserved for edits made by people",
        ));
    }
    Ok(source.to_owned())
}

/// How the discovery sources know each of the CIs, by CI.
pub async fn identifiers_of(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ci_identifier::Model>>> {
    let mut grouped: HashMap<Uuid, Vec<ci_identifier::Model>> = HashMap::new();
    for chunk in ci_ids.chunks(500) {
        let rows = ci_identifier::Entity::find()
            .filter(ci_identifier::Column::CiId.is_in(chunk.iter().copied()))
            .order_by_asc(ci_identifier::Column::Source)
            .order_by_asc(ci_identifier::Column::ExternalId)
            .all(db)
            .await?;
        for row in rows {
            grouped.entry(row.ci_id).or_default().push(row);
        }
    }
    Ok(grouped)
}
