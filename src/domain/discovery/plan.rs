//! The decisions of a batch, as a pure function of the batch and a snapshot of what is
//! stored: [`plan`] says which item is which CI (or a new one, or refused, and why), what
//! each reported field does (written, or kept and why), which relationships are new, and
//! every row and event the write must produce. No I/O happens here, so the decisions can be
//! tested against a reference model; [`super::snapshot`] loads what they need and
//! [`super::write`] carries them out.

mod items;
#[cfg(test)]
mod reference;
mod relationships;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::values::LifecycleStatus;
use entity::{configuration_item, relationship};
use uuid::Uuid;

use super::super::audit::Event;
use super::super::ci_class::ClassCatalog;
use super::super::relationship_type::TypeCatalog;
use super::batch::{ItemResult, Mode, RelationshipResult, UpsertBatch};
use super::rules::RuleSet;
use crate::error::Result;

pub use items::{Prepared, prepare};

/// (class, identifier attribute, normalised value): one identity key.
pub type IdentityKey = (i32, String, String);

/// What the batch is decided against, besides the snapshot.
pub struct Context<'a> {
    pub source: &'a str,
    pub at: DateTime<Utc>,
    pub mode: Mode,
    pub scope: Option<&'a str>,
    pub catalog: &'a ClassCatalog,
    pub types: &'a TypeCatalog,
    pub rules: &'a RuleSet,
}

/// What the source reported before under one external id.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub ci_id: Uuid,
    pub status: LifecycleStatus,
    pub last_seen_at: DateTime<Utc>,
    pub stale: bool,
    pub scope: Option<String>,
}

/// This source's sighting of a stored relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub last_seen_at: DateTime<Utc>,
    pub stale: bool,
    pub scope: Option<String>,
}

/// A stored relationship, with this source's sighting of it if any.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRelationship {
    pub row: relationship::Model,
    pub sighting: Option<Sighting>,
}

/// What is stored, as far as the batch needs to know.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The CIs this source knows, by the external ids the batch names.
    pub known: HashMap<String, Known>,
    /// The CIs each identity key of the batch's new items names.
    pub identity: HashMap<IdentityKey, Vec<Uuid>>,
    /// The CIs the items may be, whole (locked for the write on PostgreSQL).
    pub cis: HashMap<Uuid, configuration_item::Model>,
    /// When each source last reported each of those CIs.
    pub last_seen: HashMap<(Uuid, String), DateTime<Utc>>,
    /// The statuses of CIs the relationships name by id.
    pub statuses: HashMap<Uuid, LifecycleStatus>,
    /// Stored relationships from the CIs the relationships may start at.
    pub relationships: HashMap<(Uuid, Uuid, i32), StoredRelationship>,
}

/// What a snapshot must hold for a batch: computed from the prepared items and the
/// relationships, before anything is read.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// External ids named by items and by relationship ends.
    pub external_ids: Vec<String>,
    /// External ids of the items.
    pub item_external_ids: Vec<String>,
    /// Whether the batch has relationships (and so needs the stored ones).
    pub relationships: bool,
    /// The identity keys of the items, for those the source does not know yet.
    pub identity: Vec<(String, IdentityKey)>,
    /// CIs relationship ends name by id.
    pub ci_ids: Vec<Uuid>,
    /// The relationships' ends and type names, for finding the stored ones.
    pub relationship_keys: Vec<(super::batch::CiRef, super::batch::CiRef, String)>,
}

/// Everything the write must do, decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub item_results: Vec<ItemResult>,
    pub relationship_results: Vec<RelationshipResult>,
    pub created_cis: Vec<configuration_item::Model>,
    /// Each updated CI before and after; the write checks nobody changed it meanwhile.
    pub updated_cis: Vec<(configuration_item::Model, configuration_item::Model)>,
    /// CIs whose identity keys are to be (re)written: created ones and those whose
    /// attributes changed.
    pub rekeyed: Vec<Uuid>,
    /// External ids the source uses for the first time, with their CI.
    pub new_identifiers: Vec<(String, Uuid)>,
    /// External ids the source reported again, to mark seen.
    pub seen_identifiers: Vec<String>,
    pub created_relationships: Vec<relationship::Model>,
    pub updated_relationships: Vec<(relationship::Model, relationship::Model)>,
    /// Relationships whose sighting by this source is to be written.
    pub sightings: Vec<Uuid>,
    /// The audit events, in the order of the writes.
    pub events: Vec<Event>,
}

impl Plan {
    /// Whether the plan writes any record (and so any event).
    pub fn changes_records(&self) -> bool {
        !self.events.is_empty()
    }
}

/// What the snapshot of a batch must hold.
pub fn needs(batch: &UpsertBatch, prepared: &[Prepared]) -> Needs {
    let item_external_ids: Vec<String> = prepared.iter().map(|p| p.external_id.clone()).collect();
    let mut external_ids = item_external_ids.clone();
    // Refused items too: the source still reported them (see `plan`).
    external_ids.extend(batch.items.iter().map(|i| i.external_id.trim().to_owned()));
    let mut ci_ids = Vec::new();
    for relationship in &batch.relationships {
        for end in [&relationship.source, &relationship.target] {
            match end {
                super::batch::CiRef::ExternalId(id) => external_ids.push(id.clone()),
                super::batch::CiRef::Id(id) => ci_ids.push(*id),
            }
        }
    }
    external_ids.sort();
    external_ids.dedup();
    ci_ids.sort();
    ci_ids.dedup();
    let identity = prepared
        .iter()
        .flat_map(|item| {
            item.identity_keys()
                .into_iter()
                .map(|key| (item.external_id.clone(), key))
        })
        .collect();
    Needs {
        external_ids,
        item_external_ids,
        relationships: !batch.relationships.is_empty(),
        relationship_keys: batch
            .relationships
            .iter()
            .map(|r| {
                (
                    r.source.clone(),
                    r.target.clone(),
                    r.type_name.trim().to_owned(),
                )
            })
            .collect(),
        identity,
        ci_ids,
    }
}

/// Decides a whole batch. `prepared` are the items that passed their own checks (see
/// [`prepare`]), `refused` the results of those that did not; `new_id` makes the ids of new
/// CIs and relationships.
pub fn plan(
    cx: &Context,
    batch: &UpsertBatch,
    prepared: Vec<Prepared>,
    refused: Vec<ItemResult>,
    snapshot: &Snapshot,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut results: Vec<Option<ItemResult>> = vec![None; batch.items.len()];
    for result in refused {
        let index = result.index;
        results[index] = Some(result);
    }
    let placed = items::decide(cx, prepared, snapshot, &mut results, &mut plan, new_id)?;
    // A refused item was still reported: the CI the source already knows by that id is
    // seen, not gone. (A full sync would otherwise mark it stale for a value it sent wrong.)
    for (index, result) in results.iter().enumerate() {
        let refused = result.as_ref().is_some_and(|r| r.error.is_some());
        let external_id = batch.items[index].external_id.trim();
        if refused
            && snapshot.known.contains_key(external_id)
            && !plan.seen_identifiers.iter().any(|seen| seen == external_id)
        {
            plan.seen_identifiers.push(external_id.to_owned());
        }
    }
    plan.item_results = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| result.unwrap_or_else(|| items::unprocessed(index)))
        .collect();
    relationships::decide(cx, batch, &placed, snapshot, &mut plan, new_id)?;
    Ok(plan)
}

/// Where each item of the batch went: external id → CI and its status after the batch.
#[derive(Debug, Clone, Default)]
pub struct Placed {
    pub by_external_id: HashMap<String, Uuid>,
    pub statuses: HashMap<Uuid, LifecycleStatus>,
}
