//! Reading what a batch is decided against, in a few set-based statements whatever the
//! batch's size: the CIs the source knows by the batch's external ids, the CIs the new
//! items' identity keys name, the CIs the items may be (locked for the write), when each
//! source last saw them, the statuses of CIs named by id, and the stored relationships the
//! batch's relationships may be, with this source's sightings.
//!
//! Each statement takes its keys as one JSON parameter and answers with one row holding a
//! JSON array: one round trip whatever the number of rows (SQLite's driver hands every row
//! from its own thread to the caller's, and that hand-over costs more than reading it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::configuration_item;
use entity::values::LifecycleStatus;
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::super::bulk::statement;
use super::super::relationship_type::TypeCatalog;
use super::batch::CiRef;
use super::plan::{IdentityKey, Known, Needs, Sighting, Snapshot, StoredRelationship};
use crate::error::{Error, Result};

/// Loads the snapshot a batch from `source` needs.
pub async fn load(
    db: &impl ConnectionTrait,
    source: &str,
    needs: &Needs,
    types: &TypeCatalog,
) -> Result<Snapshot> {
    let started = std::time::Instant::now();
    let mut steps: Vec<(&str, f64)> = Vec::new();
    let mut mark = |step: &'static str| {
        steps.push((step, started.elapsed().as_secs_f64() * 1000.0));
    };
    let mut snapshot = Snapshot {
        known: known(db, source, &needs.external_ids).await?,
        ..Snapshot::default()
    };
    mark("known");
    let unknown: Vec<&IdentityKey> = needs
        .identity
        .iter()
        .filter(|(external_id, _)| !snapshot.known.contains_key(external_id))
        .map(|(_, key)| key)
        .collect();
    snapshot.identity = identity_matches(db, &unknown).await?;
    mark("identity");

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
    mark("cis");
    snapshot.last_seen = last_seen(db, &candidates).await?;
    mark("last_seen");

    let mut by_id: Vec<Uuid> = needs
        .ci_ids
        .iter()
        .filter(|id| !snapshot.cis.contains_key(id))
        .copied()
        .collect();
    by_id.sort();
    snapshot.statuses = statuses(db, &by_id).await?;
    mark("statuses");

    if needs.relationships {
        // Only relationships between CIs that are stored can be stored: resolve the ends
        // through what the source knows (and ids), the types through the catalogue.
        let resolve = |end: &CiRef| match end {
            CiRef::ExternalId(id) => snapshot.known.get(id).map(|k| k.ci_id),
            CiRef::Id(id) => Some(*id),
        };
        let mut keys: Vec<(Uuid, Uuid, i32)> = needs
            .relationship_keys
            .iter()
            .filter_map(|(source, target, type_name)| {
                let type_id = types.resolve("type", type_name).ok()?.id;
                Some((resolve(source)?, resolve(target)?, type_id))
            })
            .collect();
        keys.sort();
        keys.dedup();
        snapshot.relationships = relationships(db, source, &keys).await?;
        mark("relationships");
    }
    tracing::trace!(?steps, "discovery snapshot loaded (ms since start)");
    Ok(snapshot)
}

/// Runs a statement answering one row with one column `rows`: a JSON array (as text).
async fn json_rows(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<Json>> {
    let row = db.query_one_raw(statement(db, sql, values)).await?;
    let text: Option<String> = match row {
        Some(row) => row.try_get("", "rows")?,
        None => None,
    };
    match text {
        None => Ok(Vec::new()),
        Some(text) => match serde_json::from_str(&text)? {
            Json::Array(rows) => Ok(rows),
            Json::Null => Ok(Vec::new()),
            other => Err(Error::internal(anyhow::anyhow!(
                "a snapshot query answered {other} instead of rows"
            ))),
        },
    }
}

/// Reading the values of a JSON row, whatever engine wrote it.
fn text(value: &Json) -> Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| shape("text", value))
}

fn optional_text(value: &Json) -> Result<Option<String>> {
    match value {
        Json::Null => Ok(None),
        other => text(other).map(Some),
    }
}

fn uuid(value: &Json) -> Result<Uuid> {
    Uuid::parse_str(&text(value)?).map_err(|_| shape("a uuid", value))
}

fn time(value: &Json) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&text(value)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| shape("a time", value))
}

/// A boolean: PostgreSQL answers `true`, SQLite `1`.
fn flag(value: &Json) -> Result<bool> {
    match value {
        Json::Bool(b) => Ok(*b),
        Json::Number(n) => Ok(n.as_i64().is_some_and(|n| n != 0)),
        other => Err(shape("a flag", other)),
    }
}

fn integer(value: &Json) -> Result<i32> {
    value
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| shape("an integer", value))
}

fn status(value: &Json) -> Result<LifecycleStatus> {
    serde_json::from_value(value.clone()).map_err(|_| shape("a status", value))
}

fn shape(what: &str, value: &Json) -> Error {
    Error::internal(anyhow::anyhow!(
        "a snapshot row holds {value} where {what} belongs"
    ))
}

/// The text form of a uuid column in a JSON row: SQLite keeps uuids as blobs.
fn uuid_text(db: &impl ConnectionTrait, column: &str) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("{column}::text"),
        _ => format!("lower(hex({column}))"),
    }
}

/// A uuid column compared with the text of a JSON value.
fn uuid_from_text(db: &impl ConnectionTrait, text: &str) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("({text})::uuid"),
        _ => format!("unhex(replace({text}, '-', ''))"),
    }
}

/// `SELECT <aggregate>(<row>) AS rows`: one JSON array of rows, as text.
fn aggregate(db: &impl ConnectionTrait, row: &str) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("SELECT CAST(json_agg({row}) AS text) AS rows"),
        _ => format!("SELECT json_group_array({row}) AS rows"),
    }
}

fn array_of(db: &impl ConnectionTrait, columns: &[String]) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("json_build_array({})", columns.join(", ")),
        _ => format!("json_array({})", columns.join(", ")),
    }
}

/// The elements of a JSON array parameter, as a table `w` with one column `v`.
fn elements(db: &impl ConnectionTrait, parameter: &str) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("jsonb_array_elements(CAST({parameter} AS jsonb)) AS w(v)"),
        _ => format!("(SELECT value AS v FROM json_each({parameter})) AS w"),
    }
}

/// The join of the key list `w` to the first table: SQLite must walk the keys and look
/// each up by index (`CROSS JOIN` keeps its planner from scanning the table instead).
fn first_join(db: &impl ConnectionTrait) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "JOIN",
        _ => "CROSS JOIN",
    }
}

/// `w.v` when it is a JSON string, as text.
fn scalar_text(db: &impl ConnectionTrait) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "(w.v #>> '{}')",
        _ => "w.v",
    }
}

/// `w.v` when it is a uuid's text, as the uuid column type.
fn scalar_uuid(db: &impl ConnectionTrait) -> String {
    uuid_from_text(db, scalar_text(db))
}

/// Element `i` of the JSON array `w.v`, as text.
fn element(i: usize) -> String {
    format!("(w.v ->> {i})")
}

/// The CIs this source knows by these external ids.
async fn known(
    db: &impl ConnectionTrait,
    source: &str,
    external_ids: &[String],
) -> Result<HashMap<String, Known>> {
    let mut found = HashMap::with_capacity(external_ids.len());
    if external_ids.is_empty() {
        return Ok(found);
    }
    let row = array_of(
        db,
        &[
            "i.external_id".into(),
            uuid_text(db, "i.ci_id"),
            "c.status".into(),
            "i.last_seen_at".into(),
            "i.stale".into(),
            "i.scope".into(),
        ],
    );
    let sql = format!(
        "{} FROM {} {} ci_identifier i ON i.source = $1 AND i.external_id = {} \
         JOIN configuration_item c ON c.id = i.ci_id",
        aggregate(db, &row),
        elements(db, "$2"),
        first_join(db),
        scalar_text(db)
    );
    let rows = json_rows(
        db,
        &sql,
        vec![source.into(), serde_json::to_string(external_ids)?.into()],
    )
    .await?;
    for row in rows {
        found.insert(
            text(&row[0])?,
            Known {
                ci_id: uuid(&row[1])?,
                status: status(&row[2])?,
                last_seen_at: time(&row[3])?,
                stale: flag(&row[4])?,
                scope: optional_text(&row[5])?,
            },
        );
    }
    Ok(found)
}

/// The CIs each identity key names.
async fn identity_matches(
    db: &impl ConnectionTrait,
    keys: &[&IdentityKey],
) -> Result<HashMap<IdentityKey, Vec<Uuid>>> {
    let mut found: HashMap<IdentityKey, Vec<Uuid>> = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let wanted: Vec<Json> = keys
        .iter()
        .map(|(class_id, attribute, value)| json!([class_id, attribute, value]))
        .collect();
    let row = array_of(
        db,
        &[
            "k.class_id".into(),
            "k.attribute".into(),
            "k.value".into(),
            uuid_text(db, "k.ci_id"),
        ],
    );
    let class = match db.get_database_backend() {
        DbBackend::Postgres => format!("CAST({} AS integer)", element(0)),
        _ => element(0),
    };
    let sql = format!(
        "{} FROM {} {} identity_key k ON k.class_id = {class} AND k.attribute = {} \
         AND k.value = {}",
        aggregate(db, &row),
        elements(db, "$1"),
        first_join(db),
        element(1),
        element(2)
    );
    for row in json_rows(db, &sql, vec![serde_json::to_string(&wanted)?.into()]).await? {
        let key: IdentityKey = (integer(&row[0])?, text(&row[1])?, text(&row[2])?);
        found.entry(key).or_default().push(uuid(&row[3])?);
    }
    for ids in found.values_mut() {
        ids.sort();
        ids.dedup();
    }
    Ok(found)
}

/// The ids as a JSON array of their text.
fn id_list(ids: &[Uuid]) -> Result<String> {
    Ok(serde_json::to_string(
        &ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
    )?)
}

/// The CIs, whole; on PostgreSQL locked until the write ends, so that people's edits to
/// them wait for the batch and none is lost.
async fn cis(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, configuration_item::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(found);
    }
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT CAST(json_agg(c) AS text) AS rows FROM (\
             SELECT ci.* FROM configuration_item ci \
             WHERE ci.id IN (SELECT CAST(value AS uuid) FROM jsonb_array_elements_text(CAST($1 AS jsonb))) \
             FOR UPDATE) c"
            .to_owned(),
        _ => format!(
            "SELECT json_group_array(json_object('id', {id}, 'class_id', c.class_id, \
             'name', c.name, 'description', c.description, 'status', c.status, \
             'environment', c.environment, 'criticality', c.criticality, 'owner', c.owner, \
             'attributes', json(c.attributes), 'version', c.version, \
             'created_at', c.created_at, 'updated_at', c.updated_at, \
             'provenance', json(c.provenance))) AS rows \
             FROM configuration_item c WHERE c.id IN \
             (SELECT {key} FROM json_each($1))",
            id = uuid_text(db, "c.id"),
            key = uuid_from_text(db, "value"),
        ),
    };
    for row in json_rows(db, &sql, vec![id_list(ids)?.into()]).await? {
        let ci: configuration_item::Model = serde_json::from_value(row)?;
        found.insert(ci.id, ci);
    }
    Ok(found)
}

/// When each source last reported each of the CIs.
async fn last_seen(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<(Uuid, String), DateTime<Utc>>> {
    let mut seen: HashMap<(Uuid, String), DateTime<Utc>> = HashMap::new();
    if ids.is_empty() {
        return Ok(seen);
    }
    let row = array_of(
        db,
        &[
            uuid_text(db, "i.ci_id"),
            "i.source".into(),
            "i.last_seen_at".into(),
        ],
    );
    let sql = format!(
        "{} FROM {} {} ci_identifier i ON i.ci_id = {}",
        aggregate(db, &row),
        elements(db, "$1"),
        first_join(db),
        scalar_uuid(db)
    );
    for row in json_rows(db, &sql, vec![id_list(ids)?.into()]).await? {
        let key = (uuid(&row[0])?, text(&row[1])?);
        let at = time(&row[2])?;
        let entry = seen.entry(key).or_insert(at);
        if at > *entry {
            *entry = at;
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
    if ids.is_empty() {
        return Ok(found);
    }
    let row = array_of(db, &[uuid_text(db, "c.id"), "c.status".into()]);
    let sql = format!(
        "{} FROM {} {} configuration_item c ON c.id = {}",
        aggregate(db, &row),
        elements(db, "$1"),
        first_join(db),
        scalar_uuid(db)
    );
    for row in json_rows(db, &sql, vec![id_list(ids)?.into()]).await? {
        found.insert(uuid(&row[0])?, status(&row[1])?);
    }
    Ok(found)
}

/// The stored relationships with these (source, target, type) keys, each with this
/// source's sighting.
async fn relationships(
    db: &impl ConnectionTrait,
    source: &str,
    keys: &[(Uuid, Uuid, i32)],
) -> Result<HashMap<(Uuid, Uuid, i32), StoredRelationship>> {
    let mut found = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(found);
    }
    let wanted: Vec<Json> = keys
        .iter()
        .map(|(s, t, k)| json!([s.to_string(), t.to_string(), k]))
        .collect();
    let attributes = match db.get_database_backend() {
        DbBackend::Postgres => "r.attributes",
        _ => "json(r.attributes)",
    };
    let row = array_of(
        db,
        &[
            uuid_text(db, "r.id"),
            uuid_text(db, "r.source_id"),
            uuid_text(db, "r.target_id"),
            "r.type_id".into(),
            attributes.into(),
            "r.created_at".into(),
            "s.last_seen_at".into(),
            "s.stale".into(),
            "s.scope".into(),
        ],
    );
    let type_id = match db.get_database_backend() {
        DbBackend::Postgres => format!("CAST({} AS integer)", element(2)),
        _ => element(2),
    };
    let sql = format!(
        "{} FROM {} {} relationship r ON r.source_id = {} AND r.target_id = {} \
         AND r.type_id = {type_id} \
         LEFT JOIN relationship_sighting s ON s.relationship_id = r.id AND s.source = $1",
        aggregate(db, &row),
        elements(db, "$2"),
        first_join(db),
        uuid_from_text(db, &element(0)),
        uuid_from_text(db, &element(1)),
    );
    let rows = json_rows(
        db,
        &sql,
        vec![source.into(), serde_json::to_string(&wanted)?.into()],
    )
    .await?;
    for row in rows {
        let stored = entity::relationship::Model {
            id: uuid(&row[0])?,
            source_id: uuid(&row[1])?,
            target_id: uuid(&row[2])?,
            type_id: integer(&row[3])?,
            attributes: row[4].clone(),
            created_at: time(&row[5])?,
        };
        let sighting = match &row[6] {
            Json::Null => None,
            seen => Some(Sighting {
                last_seen_at: time(seen)?,
                stale: flag(&row[7])?,
                scope: optional_text(&row[8])?,
            }),
        };
        found.insert(
            (stored.source_id, stored.target_id, stored.type_id),
            StoredRelationship {
                row: stored,
                sighting,
            },
        );
    }
    Ok(found)
}
