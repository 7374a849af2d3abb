//! Who asserts a relationship. People declare one (created through the API: its creation is
//! in the audit trail without a discovery source); discovery sources observe one (their
//! sightings, with when each first and last reported it). Drift is where the two disagree:
//! a declared relationship a source no longer (or never) observes, and an observed one that
//! contradicts a declared one (same source CI and type, another target).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use entity::{relationship, relationship_sighting};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Value};
use uuid::Uuid;

use super::super::{Result, bulk};

/// How an assertion was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    /// By a person, through the API.
    Declared,
    /// By a discovery source, reporting it.
    Observed,
}

/// One party asserting a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The discovery source, or the person (token name) who declared it.
    pub source: String,
    pub kind: AssertionKind,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// For an observation: the source's last full sync no longer found it.
    pub stale: bool,
}

/// Who declared each of `ids` (if a person did), from the audit trail.
async fn declarations(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
) -> Result<Vec<(Uuid, Assertion)>> {
    let mut sql = "SELECT entity_id, actor, occurred_at FROM audit_event \
                   WHERE entity_type = 'RELATIONSHIP' AND action = 'CREATE' AND source IS NULL"
        .to_owned();
    let mut values: Vec<Value> = Vec::new();
    if let Some(ids) = ids {
        sql.push_str(&format!(
            " AND entity_id IN ({})",
            bulk::placeholders(1, ids.len())
        ));
        values = ids.iter().map(|id| Value::from(id.to_string())).collect();
    }
    let rows = db.query_all_raw(bulk::statement(db, &sql, values)).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get_by_index(0)?;
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        let at: DateTime<Utc> = row.try_get_by_index(2)?;
        found.push((
            id,
            Assertion {
                source: row.try_get_by_index(1)?,
                kind: AssertionKind::Declared,
                first_seen_at: at,
                last_seen_at: at,
                stale: false,
            },
        ));
    }
    Ok(found)
}

/// Who asserts each of the relationships: the person who declared it, then each discovery
/// source that observed it, by source name.
pub async fn assertions_of(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Assertion>>> {
    let mut found: HashMap<Uuid, Vec<Assertion>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for (id, assertion) in declarations(db, Some(chunk)).await? {
            found.entry(id).or_default().push(assertion);
        }
        let mut sightings = relationship_sighting::Entity::find()
            .filter(relationship_sighting::Column::RelationshipId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        sightings.sort_by(|a, b| a.source.cmp(&b.source));
        for sighting in sightings {
            found
                .entry(sighting.relationship_id)
                .or_default()
                .push(Assertion {
                    source: sighting.source,
                    kind: AssertionKind::Observed,
                    first_seen_at: sighting.first_seen_at,
                    last_seen_at: sighting.last_seen_at,
                    stale: sighting.stale,
                });
        }
    }
    Ok(found)
}

/// Where people and a discovery source disagree.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    /// Declared relationships the source has not observed within the period.
    pub unobserved: Vec<relationship::Model>,
    /// Observed relationships (first) contradicting a declared one (second): the same
    /// source CI and type, another target.
    pub contradictions: Vec<(relationship::Model, relationship::Model)>,
}

/// The relationships `source` observed since `since` (and still reports).
async fn observed_since(
    db: &impl ConnectionTrait,
    source: Option<&str>,
    since: DateTime<Utc>,
) -> Result<HashSet<Uuid>> {
    let mut query = relationship_sighting::Entity::find()
        .filter(relationship_sighting::Column::LastSeenAt.gte(since))
        .filter(relationship_sighting::Column::Stale.eq(false));
    if let Some(source) = source {
        query = query.filter(relationship_sighting::Column::Source.eq(source));
    }
    Ok(query
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.relationship_id)
        .collect())
}

/// The relationships people declared that still exist, oldest first.
async fn declared(db: &impl ConnectionTrait) -> Result<Vec<relationship::Model>> {
    let ids: Vec<Uuid> = declarations(db, None)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut found: Vec<relationship::Model> =
        super::get_many(db, &ids).await?.into_values().collect();
    found.sort_by_key(|r| (r.created_at, r.id));
    Ok(found)
}

/// Drift between people and `source` over the last `stale_after` before `now`.
pub async fn drift(
    db: &impl ConnectionTrait,
    source: &str,
    stale_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Drift> {
    let declared = declared(db).await?;
    let observed = observed_since(db, Some(source), now - stale_after).await?;
    let unobserved: Vec<relationship::Model> = declared
        .into_iter()
        .filter(|r| !observed.contains(&r.id))
        .collect();
    let mut by_end: HashMap<(Uuid, i32), Vec<&relationship::Model>> = HashMap::new();
    for r in &unobserved {
        by_end.entry((r.source_id, r.type_id)).or_default().push(r);
    }
    let mut contradictions = Vec::new();
    let starts: Vec<Uuid> = by_end.keys().map(|(source, _)| *source).collect();
    for chunk in starts.chunks(500) {
        let mut candidates = relationship::Entity::find()
            .filter(relationship::Column::SourceId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        candidates.sort_by_key(|r| (r.created_at, r.id));
        for candidate in candidates.into_iter().filter(|c| observed.contains(&c.id)) {
            for declared in by_end
                .get(&(candidate.source_id, candidate.type_id))
                .into_iter()
                .flatten()
            {
                if declared.target_id != candidate.target_id {
                    contradictions.push((candidate.clone(), (*declared).clone()));
                }
            }
        }
    }
    Ok(Drift {
        unobserved,
        contradictions,
    })
}

/// How many declared relationships no discovery source has observed since `since`.
pub async fn unobserved_count(db: &impl ConnectionTrait, since: DateTime<Utc>) -> Result<usize> {
    let declared = declared(db).await?;
    let observed = observed_since(db, None, since).await?;
    Ok(declared
        .iter()
        .filter(|r| !observed.contains(&r.id))
        .count())
}
