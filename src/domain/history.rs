//! History you can query: the versions of records, and the one-off replay of the trail
//! written before versions were kept. Reads "as of" an instant are in [`super::as_of`].
//!
//! Every version of a CI, a relationship, a service and a service membership is kept with
//! the interval it was current (`valid_from` inclusive, `valid_to` exclusive, open while
//! current), written by the unit of work in the transaction of the change ([`record`]), from
//! the same audit events, so history and audit trail never disagree. A version table has the
//! record table's columns, so a read "as of" an instant is the ordinary read over the version
//! table narrowed to the rows valid then ([`super::as_of`]): set-based, through the same filters and
//! pagination as the current read. Instants are those of the audit trail (the commit's
//! stamp), so "as of the instant event n was written" includes event n.

pub mod baseline;
pub mod diff;
pub mod record;
pub mod revert;

use chrono::{DateTime, Utc};
use entity::configuration_item;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryTrait,
    sea_query::{Alias, Expr, ExprTrait},
};
use uuid::Uuid;

use super::as_of::Table;
use super::audit::{Action, EntityType, Event};
use super::{Result, bulk};

/// One version of a CI, with the interval it was current and the event that wrote it.
#[derive(Debug, Clone)]
pub struct CiVersion {
    pub state: configuration_item::Model,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub audit_event_id: i64,
}

/// Version `version` of a CI (the last written, should one write have made it twice).
pub async fn ci_version(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
) -> Result<Option<CiVersion>> {
    let sql = "SELECT audit_event_id, valid_from, valid_to FROM configuration_item_version \
               WHERE id = $1 AND version = $2 ORDER BY audit_event_id DESC LIMIT 1";
    let Some(row) = db
        .query_one_raw(bulk::statement(db, sql, vec![id.into(), version.into()]))
        .await?
    else {
        return Ok(None);
    };
    let audit_event_id: i64 = row.try_get_by_index(0)?;
    let valid_from: DateTime<Utc> = row.try_get_by_index(1)?;
    let valid_to: Option<DateTime<Utc>> = row.try_get_by_index(2)?;
    let mut select = configuration_item::Entity::find();
    let query = QueryTrait::query(&mut select);
    query
        .from_clear()
        .from_as(
            Alias::new(Table::ConfigurationItem.name()),
            Alias::new("configuration_item"),
        )
        .and_where(
            Expr::col((
                Alias::new("configuration_item"),
                Alias::new("audit_event_id"),
            ))
            .eq(audit_event_id),
        );
    let Some(state) = select.one(db).await? else {
        return Ok(None);
    };
    Ok(Some(CiVersion {
        state,
        valid_from,
        valid_to,
        audit_event_id,
    }))
}

/// Replays the audit trail written before versions were kept into the version tables, once
/// (the migration that made them noted how far), so older history reads as of its times.
/// Runs before the server serves; a second instance starting at once waits and finds it done.
pub async fn backfill(db: &DatabaseConnection) -> Result<()> {
    let txn = crate::db::begin_write(db).await?;
    let lock = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => " FOR UPDATE",
        _ => "",
    };
    let through: i64 = match txn
        .query_one_raw(bulk::statement(
            &txn,
            &format!("SELECT through FROM history_backfill WHERE id = 1{lock}"),
            vec![],
        ))
        .await?
    {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    if through == 0 {
        txn.commit().await?;
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut after = 0_i64;
    let mut replayed = 0_usize;
    loop {
        let rows = txn
            .query_all_raw(bulk::statement(
                &txn,
                "SELECT id, occurred_at, entity_type, entity_id, action, before, after \
                 FROM audit_event WHERE id > $1 AND id <= $2 \
                 AND entity_type IN ('CONFIGURATION_ITEM', 'RELATIONSHIP', 'SERVICE') \
                 ORDER BY id LIMIT 2000",
                vec![after.into(), through.into()],
            ))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get_by_index(0)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let entity_type: String = row.try_get_by_index(2)?;
            let action: String = row.try_get_by_index(4)?;
            let (Some(entity_type), Some(action)) =
                (EntityType::parse(&entity_type), Action::parse(&action))
            else {
                continue;
            };
            let id: i64 = row.try_get_by_index(0)?;
            let at: DateTime<Utc> = row.try_get_by_index(1)?;
            let event = Event {
                entity_type,
                entity_id: row.try_get_by_index(3)?,
                action,
                before: row.try_get_by_index(5)?,
                after: row.try_get_by_index(6)?,
            };
            events.push((id, at, event));
        }
        let stamped: Vec<record::Stamped> = events
            .iter()
            .map(|(audit_id, at, event)| record::Stamped {
                audit_id: *audit_id,
                at: *at,
                event,
            })
            .collect();
        record::record(&txn, &stamped).await?;
        replayed += stamped.len();
    }
    txn.execute_raw(bulk::statement(
        &txn,
        "UPDATE history_backfill SET through = 0 WHERE id = 1",
        vec![],
    ))
    .await?;
    txn.commit().await?;
    tracing::info!(
        events = replayed,
        seconds = started.elapsed().as_secs_f64(),
        "history: the audit trail written before versions were kept is now readable as of its times"
    );
    Ok(())
}
