//! A discovery batch as a source sends it, and the report it gets back: the types every
//! step of an upsert shares, and the checks a batch passes before anything is read.

use uuid::Uuid;

use super::super::{Error, Result, required_text};
use super::check_source;
use super::reconcile::KeepReason;
use crate::limits::Limits;
use entity::values::{Criticality, LifecycleStatus};
use sea_orm::prelude::Json;

/// How a batch relates to what the source reported before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The batch adds to and updates what the source reported; nothing becomes stale.
    Merge,
    /// The batch (or the run of batches sharing a run id) is everything the source has in its
    /// scope: what it reported before in that scope and not now becomes stale.
    FullSync,
}

/// One discovered CI.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub class: String,
    pub name: String,
    pub external_id: String,
    pub attributes: Option<Json>,
    pub description: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub environment: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    /// Attributes to identify the item by, in priority order, instead of the class's.
    pub identifying_attributes: Option<Vec<String>>,
}

/// One end of a discovered relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiRef {
    /// A CI this source knows by this external id (in this batch or before).
    ExternalId(String),
    /// A CI by its id in the CMDB.
    Id(Uuid),
}

/// One discovered relationship.
#[derive(Debug, Clone)]
pub struct RelationshipInput {
    pub source: CiRef,
    pub target: CiRef,
    pub type_name: String,
    pub attributes: Option<Json>,
}

/// One call.
#[derive(Debug, Clone)]
pub struct UpsertBatch {
    pub source: String,
    pub items: Vec<ItemInput>,
    pub relationships: Vec<RelationshipInput>,
    pub mode: Mode,
    pub scope: Option<String>,
    /// Several batches of one full sync share a run id; the last says `final_batch`.
    pub run_id: Option<String>,
    pub final_batch: bool,
    pub dry_run: bool,
    pub atomic: bool,
}

/// What happened to an item or relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// Why an item or relationship was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The code of the [`Error`] that refused it.
    pub code: &'static str,
    pub message: String,
}

impl From<Error> for Rejection {
    fn from(err: Error) -> Self {
        Rejection {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

/// A reported value that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredField {
    pub field: String,
    pub owner: String,
    pub reason: KeepReason,
}

/// The result of one item.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub index: usize,
    pub ci_id: Option<Uuid>,
    pub outcome: Outcome,
    pub changed: Vec<String>,
    /// `externalId`, `attribute:<name>`, or none for a created CI.
    pub identified_by: Option<String>,
    pub ignored: Vec<IgnoredField>,
    pub error: Option<Rejection>,
}

/// The result of one relationship.
#[derive(Debug, Clone)]
pub struct RelationshipResult {
    pub index: usize,
    pub relationship_id: Option<Uuid>,
    pub outcome: Outcome,
    pub error: Option<Rejection>,
}

/// How many of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub stale: usize,
    pub rejected: usize,
}

impl Counts {
    /// Counts one more result.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }
}

/// The answer to a batch.
#[derive(Debug, Clone)]
pub struct UpsertReport {
    pub source: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub run_id: Option<String>,
    /// Whether this call closed a full sync (and so marked what was not reported stale).
    pub run_closed: bool,
    pub items: Counts,
    pub item_results: Vec<ItemResult>,
    pub relationships: Counts,
    pub relationship_results: Vec<RelationshipResult>,
}

/// Checks a batch as a whole: its source, its size, and the full-sync options.
pub fn check_batch(batch: &UpsertBatch, limits: &Limits) -> Result<()> {
    check_source("source", &batch.source)?;
    for (what, count) in [
        ("items", batch.items.len()),
        ("relationships", batch.relationships.len()),
    ] {
        if count > limits.max_batch_size {
            return Err(Error::LimitExceeded(format!(
                "{count} {what} in one batch, over the limit of {} (limit `max_batch_size`)",
                limits.max_batch_size
            )));
        }
    }
    if let Some(scope) = &batch.scope {
        required_text("scope", scope, 255)?;
    }
    if batch.mode == Mode::FullSync && batch.scope.is_none() {
        return Err(Error::invalid(
            "scope",
            "a full sync needs a `scope`: the part of the estate the source reports in full",
        ));
    }
    if let Some(run_id) = &batch.run_id {
        required_text("runId", run_id, 100)?;
        if batch.mode != Mode::FullSync {
            return Err(Error::invalid(
                "runId",
                "a `runId` groups the batches of a full sync",
            ));
        }
    }
    Ok(())
}

/// The result of an item refused with `error`.
pub fn rejected(index: usize, error: Rejection) -> ItemResult {
    ItemResult {
        index,
        ci_id: None,
        outcome: Outcome::Rejected,
        changed: Vec::new(),
        identified_by: None,
        ignored: Vec::new(),
        error: Some(error),
    }
}

/// The report of an atomic batch with a failure: every item not already rejected is
/// rejected as `BATCH_REJECTED`, and nothing was written.
pub fn refuse_all(mut report: UpsertReport) -> UpsertReport {
    let first_item = report
        .item_results
        .iter()
        .find(|r| r.error.is_some())
        .map(|r| r.index);
    let first_relationship = report
        .relationship_results
        .iter()
        .find(|r| r.error.is_some())
        .map(|r| r.index);
    let why = match (first_item, first_relationship) {
        (Some(i), _) => format!("not written: items[{i}] failed and the batch is atomic"),
        (None, Some(i)) => {
            format!("not written: relationships[{i}] failed and the batch is atomic")
        }
        (None, None) => "not written: the batch is atomic".to_owned(),
    };
    let refusal = Rejection::from(Error::BatchRejected(why));
    for r in &mut report.item_results {
        if r.error.is_none() {
            *r = rejected(r.index, refusal.clone());
        }
    }
    for r in &mut report.relationship_results {
        if r.error.is_none() {
            r.relationship_id = None;
            r.outcome = Outcome::Rejected;
            r.error = Some(refusal.clone());
        }
    }
    report.items = Counts {
        rejected: report.item_results.len(),
        ..Counts::default()
    };
    report.relationships = Counts {
        rejected: report.relationship_results.len(),
        ..Counts::default()
    };
    report
}
