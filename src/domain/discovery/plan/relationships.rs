//! The relationships of a batch: their ends (CIs of this batch, CIs the source reported
//! before, or CIs by id), whether each is new, changed or the same, and which sightings to
//! write.

use std::collections::HashMap;

use entity::relationship;
use entity::values::LifecycleStatus;
use sea_orm::prelude::Json;
use serde_json::Map;
use uuid::Uuid;

use super::super::super::audit::{Action, EntityType, Event};
use super::super::super::{Error, Result, json_without_nul};
use super::super::batch::{CiRef, Mode, Outcome, RelationshipResult, UpsertBatch};
use super::{Context, Placed, Plan, Snapshot};

fn refused(index: usize, err: Error) -> RelationshipResult {
    RelationshipResult {
        index,
        relationship_id: None,
        outcome: Outcome::Rejected,
        error: Some(err.within(&format!("relationships[{index}]")).into()),
    }
}

/// The attributes of a reported relationship: none reported, or an object without nulls.
fn attributes_of(attributes: &Option<Json>) -> Result<Option<Json>> {
    if let Some(attributes) = attributes {
        json_without_nul("attributes", attributes)?;
    }
    match attributes {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(map)) => Ok(Some(Json::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))),
        Some(_) => Err(Error::invalid(
            "attributes",
            "`attributes` must be a JSON object",
        )),
    }
}

/// Decides every relationship of the batch.
pub(super) fn decide(
    cx: &Context,
    batch: &UpsertBatch,
    placed: &Placed,
    snapshot: &Snapshot,
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<()> {
    let resolve = |end: &CiRef| -> Option<Uuid> {
        match end {
            CiRef::ExternalId(id) => placed
                .by_external_id
                .get(id)
                .copied()
                .or_else(|| snapshot.known.get(id).map(|k| k.ci_id)),
            CiRef::Id(id) => Some(*id),
        }
    };
    // A CI's status: as this batch leaves it, else as stored.
    let known_status: HashMap<Uuid, LifecycleStatus> = snapshot
        .known
        .values()
        .map(|k| (k.ci_id, k.status))
        .collect();
    let status_of = |id: &Uuid| {
        placed
            .statuses
            .get(id)
            .or_else(|| snapshot.statuses.get(id))
            .or_else(|| known_status.get(id))
            .copied()
    };
    let mut results: Vec<Option<RelationshipResult>> = vec![None; batch.relationships.len()];
    let mut keys: HashMap<(Uuid, Uuid, i32), usize> = HashMap::new();
    for (index, input) in batch.relationships.iter().enumerate() {
        let relationship_type = match cx.types.resolve("type", input.type_name.trim()) {
            Ok(t) => t,
            Err(err) => {
                results[index] = Some(refused(index, err));
                continue;
            }
        };
        let mut ends = [Uuid::nil(); 2];
        let mut failed = None;
        for (slot, (field, end)) in [("source", &input.source), ("target", &input.target)]
            .into_iter()
            .enumerate()
        {
            match resolve(end) {
                None => {
                    let name = match end {
                        CiRef::ExternalId(id) => id.clone(),
                        CiRef::Id(id) => id.to_string(),
                    };
                    failed = Some(Error::NotFound {
                        message: format!(
                            "source `{}` has reported no CI with externalId `{name}`",
                            cx.source
                        ),
                        field: Some(field.to_owned()),
                    });
                }
                Some(id) => match status_of(&id) {
                    None => failed = Some(Error::not_found("configuration item", id).within(field)),
                    Some(LifecycleStatus::Retired) => {
                        failed = Some(Error::invalid(
                            field,
                            format!("configuration item {id} is retired"),
                        ))
                    }
                    Some(_) => ends[slot] = id,
                },
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(err) = failed {
            results[index] = Some(refused(index, err));
            continue;
        }
        if ends[0] == ends[1] {
            results[index] = Some(refused(
                index,
                Error::invalid("target", "a configuration item cannot relate to itself"),
            ));
            continue;
        }
        let attributes = match attributes_of(&input.attributes) {
            Ok(attributes) => attributes,
            Err(err) => {
                results[index] = Some(refused(index, err));
                continue;
            }
        };
        let key = (ends[0], ends[1], relationship_type.id);
        if let Some(first) = keys.insert(key, index) {
            results[index] = Some(refused(
                index,
                Error::invalid(
                    "target",
                    format!("repeats relationships[{first}]: same source, target and type"),
                ),
            ));
            continue;
        }
        let (id, outcome) = match snapshot.relationships.get(&key) {
            Some(stored) => {
                let sighted = match (&stored.sighting, cx.mode) {
                    // A full sync records when it saw each relationship.
                    (_, Mode::FullSync) | (None, _) => true,
                    // A merge records new sightings and revives stale ones.
                    (Some(sighting), Mode::Merge) => sighting.stale,
                };
                if sighted {
                    plan.sightings.push(stored.row.id);
                }
                match attributes {
                    Some(attributes) if attributes != stored.row.attributes => {
                        let mut after = stored.row.clone();
                        after.attributes = attributes;
                        plan.events.push(Event::new(
                            EntityType::Relationship,
                            after.id,
                            Action::Update,
                            Some(&stored.row),
                            Some(&after),
                        )?);
                        plan.updated_relationships.push((stored.row.clone(), after));
                        (stored.row.id, Outcome::Updated)
                    }
                    _ => (stored.row.id, Outcome::Unchanged),
                }
            }
            None => {
                let row = relationship::Model {
                    id: new_id(),
                    source_id: ends[0],
                    target_id: ends[1],
                    type_id: relationship_type.id,
                    attributes: attributes.unwrap_or_else(|| Json::Object(Map::new())),
                    created_at: cx.at,
                };
                plan.events.push(Event::new(
                    EntityType::Relationship,
                    row.id,
                    Action::Create,
                    None,
                    Some(&row),
                )?);
                plan.sightings.push(row.id);
                let id = row.id;
                plan.created_relationships.push(row);
                (id, Outcome::Created)
            }
        };
        results[index] = Some(RelationshipResult {
            index,
            relationship_id: Some(id),
            outcome,
            error: None,
        });
    }
    plan.relationship_results = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            result.unwrap_or_else(|| RelationshipResult {
                index,
                relationship_id: None,
                outcome: Outcome::Rejected,
                error: Some(
                    Error::internal(anyhow::anyhow!("relationship {index} was not processed"))
                        .into(),
                ),
            })
        })
        .collect();
    Ok(())
}
