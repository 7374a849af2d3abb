//! The write side of the graph change log (see the `graph_changes` migration).
//!
//! Writers note the entities they change ([`note`], called by the audit trail for every
//! graph entity) and [`seal`] the notes just before committing: the transaction then takes
//! the next graph version, which serialises graph writers on one row for the shortest
//! possible time and hands versions out in commit order. Readers ([`current`] and
//! [`changes`]) can then trust that every change up to the version they read is visible.

use entity::graph_change;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::Result;
use super::audit::{EntityType, Event};
use crate::error::Error;

/// How many versions of changes are kept; an instance further behind reloads everything.
const KEPT_VERSIONS: i64 = 10_000;

/// The entity kinds the impact graph is built from.
fn in_graph(entity_type: EntityType) -> bool {
    matches!(
        entity_type,
        EntityType::ConfigurationItem
            | EntityType::Relationship
            | EntityType::RelationshipType
            | EntityType::Service
    )
}

/// Notes the graph entities that `events` change, for the transaction's seal.
pub(super) async fn note(db: &impl ConnectionTrait, events: &[Event]) -> Result<()> {
    let mut by_type: Vec<(EntityType, Vec<&str>)> = Vec::new();
    for event in events.iter().filter(|event| in_graph(event.entity_type)) {
        match by_type.iter_mut().find(|(t, _)| *t == event.entity_type) {
            Some((_, ids)) => ids.push(&event.entity_id),
            None => by_type.push((event.entity_type, vec![&event.entity_id])),
        }
    }
    let rows = by_type
        .into_iter()
        .map(|(entity_type, ids)| {
            Ok(graph_change::ActiveModel {
                id: NotSet,
                version: Set(None),
                entity_type: Set(entity_type.as_str().to_owned()),
                entity_ids: Set(serde_json::to_string(&ids)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !rows.is_empty() {
        graph_change::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

pub(crate) fn statement(db: &impl ConnectionTrait, sql: &str) -> Statement {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace("$1", "?"),
    };
    Statement::from_string(db.get_database_backend(), sql)
}

/// Gives the transaction's noted changes the next graph version. Call last before commit.
pub(super) async fn seal(db: &impl ConnectionTrait) -> Result<()> {
    let pending = graph_change::Entity::find()
        .select_only()
        .column(graph_change::Column::Id)
        .filter(graph_change::Column::Version.is_null())
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    if pending.is_none() {
        return Ok(());
    }
    let row = db
        .query_one_raw(statement(
            db,
            "UPDATE graph_state SET version = version + 1 WHERE id = 1 RETURNING version",
        ))
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("graph_state has no row")))?;
    let version: i64 = row.try_get("", "version")?;
    graph_change::Entity::update_many()
        .col_expr(graph_change::Column::Version, version.into())
        .filter(graph_change::Column::Version.is_null())
        .exec(db)
        .await?;
    if version % 1_000 == 0 {
        let below = version - KEPT_VERSIONS;
        graph_change::Entity::delete_many()
            .filter(graph_change::Column::Version.lt(below))
            .exec(db)
            .await?;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            statement(db, "UPDATE graph_state SET pruned_below = $1 WHERE id = 1").sql,
            [below.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The committed graph version, and the oldest version whose changes are still listed.
pub async fn current(db: &impl ConnectionTrait) -> Result<(i64, i64)> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT version, pruned_below FROM graph_state WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("graph_state has no row")))?;
    Ok((
        row.try_get("", "version")?,
        row.try_get("", "pruned_below")?,
    ))
}

/// The entities changed by versions after `after` up to `up_to`, oldest first.
pub async fn changes(
    db: &impl ConnectionTrait,
    after: i64,
    up_to: i64,
) -> Result<Vec<(EntityType, String)>> {
    let rows = graph_change::Entity::find()
        .filter(graph_change::Column::Version.gt(after))
        .filter(graph_change::Column::Version.lte(up_to))
        .order_by_asc(graph_change::Column::Version)
        .order_by_asc(graph_change::Column::Id)
        .all(db)
        .await?;
    let mut changes = Vec::new();
    for row in rows {
        let Some(entity_type) = EntityType::parse(&row.entity_type) else {
            continue;
        };
        let ids: Vec<String> = serde_json::from_str(&row.entity_ids)?;
        changes.extend(ids.into_iter().map(|id| (entity_type, id)));
    }
    Ok(changes)
}
