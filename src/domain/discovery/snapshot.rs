//! Reading what a batch is decided against, in a few set-based statements whatever the
//! batch's size: the CIs the source knows by the batch's external ids (one statement), the
//! CIs the new items' identity keys name (one), the CIs the items may be, locked for the
//! write (one per thousand), when each source last saw them, and the stored relationships
//! (with this source's sightings) the batch's relationships may be.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::values::LifecycleStatus;
use entity::{ci_identifier, configuration_item, relationship};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Value,
};
use uuid::Uuid;

use super::super::bulk::{placeholders, statement};
use super::plan::{IdentityKey, Known, Needs, Sighting, Snapshot, StoredRelationship};
use crate::error::Result;

/// Rows a statement names by id at a time: within every engine's parameter limit.
const IDS_PER_STATEMENT: usize = 1_000;

/// Loads the snapshot a batch from `source` needs.
pub async fn load(db: &impl ConnectionTrait, source: &str, needs: &Needs) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        known: known(db, source, &needs.external_ids).await?,
        ..Snapshot::default()
    };
    let unknown: Vec<&IdentityKey> = needs
        .identity
        .iter()
        .filter(|(external_id, _)| !snapshot.known.contains_key(external_id))
        .map(|(_, key)| key)
        .collect();
    snapshot.identity = identity_matches(db, &unknown).await?;

    // The CIs the items may be: known by external id or named by an identity key.
    let mut candidates: Vec<Uuid> = needs
        .item_external_ids
        .iter()
        .filter_map(|external_id| snapshot.known.get(external_id))
        .map(|known| known.ci_id)
        .chain(snapshot.identity.values().flatten().copied())
        .collect();
    candidates.sort();
    candidates.dedup();
    snapshot.cis = cis(db, &candidates).await?;
    snapshot.last_seen = last_seen(db, &candidates).await?;

    let mut by_id: Vec<Uuid> = needs
        .ci_ids
        .iter()
        .filter(|id| !snapshot.cis.contains_key(id))
        .copied()
        .collect();
    by_id.sort();
    snapshot.statuses = statuses(db, &by_id).await?;

    if needs.relationships {
        // Relationships start at CIs that are stored already: known, matched or by id.
        let mut sources: Vec<Uuid> = snapshot
            .known
            .values()
            .map(|k| k.ci_id)
            .chain(candidates.iter().copied())
            .chain(needs.ci_ids.iter().copied())
            .collect();
        sources.sort();
        sources.dedup();
        snapshot.relationships = relationships(db, source, &sources).await?;
    }
    Ok(snapshot)
}

/// The CIs this source knows by these external ids: one statement, the ids as one JSON
/// array.
async fn known(
    db: &impl ConnectionTrait,
    source: &str,
    external_ids: &[String],
) -> Result<HashMap<String, Known>> {
    let mut found = HashMap::with_capacity(external_ids.len());
    if external_ids.is_empty() {
        return Ok(found);
    }
    let list = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT jsonb_array_elements_text(CAST($2 AS jsonb))",
        _ => "SELECT value FROM json_each($2)",
    };
    let sql = format!(
        "SELECT i.external_id, i.ci_id, c.status, i.last_seen_at, i.stale, i.scope \
         FROM ci_identifier i JOIN configuration_item c ON c.id = i.ci_id \
         WHERE i.source = $1 AND i.external_id IN ({list})"
    );
    let rows = db
        .query_all_raw(statement(
            db,
            &sql,
            vec![source.into(), serde_json::to_string(external_ids)?.into()],
        ))
        .await?;
    for row in rows {
        let external_id: String = row.try_get("", "external_id")?;
        found.insert(
            external_id,
            Known {
                ci_id: row.try_get("", "ci_id")?,
                status: row.try_get::<LifecycleStatus>("", "status")?,
                last_seen_at: row.try_get("", "last_seen_at")?,
                stale: row.try_get("", "stale")?,
                scope: row.try_get("", "scope")?,
            },
        );
    }
    Ok(found)
}

/// The CIs each identity key names: one statement, the keys as one JSON array.
async fn identity_matches(
    db: &impl ConnectionTrait,
    keys: &[&IdentityKey],
) -> Result<HashMap<IdentityKey, Vec<Uuid>>> {
    let mut found: HashMap<IdentityKey, Vec<Uuid>> = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let wanted: Vec<serde_json::Value> = keys
        .iter()
        .map(|(class_id, attribute, value)| serde_json::json!([class_id, attribute, value]))
        .collect();
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT k.class_id, k.attribute, k.value, k.ci_id FROM identity_key k \
             JOIN jsonb_array_elements(CAST($1 AS jsonb)) AS w(v) \
               ON k.class_id = (w.v ->> 0)::int AND k.attribute = w.v ->> 1 AND k.value = w.v ->> 2"
        }
        _ => {
            "SELECT k.class_id, k.attribute, k.value, k.ci_id FROM json_each($1) w \
             JOIN identity_key k ON k.class_id = w.value ->> 0 AND k.attribute = w.value ->> 1 \
               AND k.value = w.value ->> 2"
        }
    };
    let rows = db
        .query_all_raw(statement(
            db,
            sql,
            vec![serde_json::to_string(&wanted)?.into()],
        ))
        .await?;
    for row in rows {
        let key: IdentityKey = (
            row.try_get("", "class_id")?,
            row.try_get("", "attribute")?,
            row.try_get("", "value")?,
        );
        found
            .entry(key)
            .or_default()
            .push(row.try_get("", "ci_id")?);
    }
    for ids in found.values_mut() {
        ids.sort();
        ids.dedup();
    }
    Ok(found)
}

/// The CIs, whole; on PostgreSQL locked until the write ends, so that people's edits to
/// them wait for the batch and none is lost.
async fn cis(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, configuration_item::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = configuration_item::Entity::find()
            .filter(configuration_item::Column::Id.is_in(chunk.iter().copied()));
        if db.get_database_backend() == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        for ci in query.all(db).await? {
            found.insert(ci.id, ci);
        }
    }
    Ok(found)
}

/// When each source last reported each of the CIs.
async fn last_seen(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<(Uuid, String), DateTime<Utc>>> {
    let mut seen: HashMap<(Uuid, String), DateTime<Utc>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = ci_identifier::Entity::find()
            .select_only()
            .column(ci_identifier::Column::CiId)
            .column(ci_identifier::Column::Source)
            .column(ci_identifier::Column::LastSeenAt)
            .filter(ci_identifier::Column::CiId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (ci_id, source, at) in rows {
            let entry = seen.entry((ci_id, source)).or_insert(at);
            if at > *entry {
                *entry = at;
            }
        }
    }
    Ok(seen)
}

/// The statuses of CIs named by id.
async fn statuses(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, LifecycleStatus>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(Uuid, LifecycleStatus)> = configuration_item::Entity::find()
            .select_only()
            .column(configuration_item::Column::Id)
            .column(configuration_item::Column::Status)
            .filter(configuration_item::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// The stored relationships leaving these CIs, each with this source's sighting.
async fn relationships(
    db: &impl ConnectionTrait,
    source: &str,
    sources: &[Uuid],
) -> Result<HashMap<(Uuid, Uuid, i32), StoredRelationship>> {
    let mut found = HashMap::new();
    for chunk in sources.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT r.id, r.source_id, r.target_id, r.type_id, r.attributes, r.created_at, \
                    s.last_seen_at, s.stale, s.scope \
             FROM relationship r \
             LEFT JOIN relationship_sighting s ON s.relationship_id = r.id AND s.source = $1 \
             WHERE r.source_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut values: Vec<Value> = vec![source.into()];
        values.extend(chunk.iter().map(|id| Value::from(*id)));
        for row in db.query_all_raw(statement(db, &sql, values)).await? {
            let stored = relationship::Model {
                id: row.try_get("", "id")?,
                source_id: row.try_get("", "source_id")?,
                target_id: row.try_get("", "target_id")?,
                type_id: row.try_get("", "type_id")?,
                attributes: row.try_get("", "attributes")?,
                created_at: row.try_get("", "created_at")?,
            };
            let last_seen_at: Option<DateTime<Utc>> = row.try_get("", "last_seen_at")?;
            let sighting = match last_seen_at {
                Some(last_seen_at) => Some(Sighting {
                    last_seen_at,
                    stale: row.try_get("", "stale")?,
                    scope: row.try_get("", "scope")?,
                }),
                None => None,
            };
            found.insert(
                (stored.source_id, stored.target_id, stored.type_id),
                StoredRelationship {
                    row: stored,
                    sighting,
                },
            );
        }
    }
    Ok(found)
}
