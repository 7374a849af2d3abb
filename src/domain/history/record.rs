//! Writing versions: each audit event about a CI, a relationship or a service closes the
//! version it replaces and opens the one it writes, in the transaction of the change.
//!
//! Planning is pure ([`plan`]): given the versions open before the events (read for just the
//! records touched) and the events in order, it says which rows to insert and which open rows
//! to close, and when. Several events about one record in one write leave the earlier
//! versions closed at the instant they were opened: readable by version, never "as of".

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{configuration_item, relationship, service};
use sea_orm::{ConnectionTrait, Value, prelude::Json};
use uuid::Uuid;

use super::super::Result;
use super::super::as_of::Table;
use super::super::audit::{EntityType, Event};
use super::super::bulk::{self, Rows};

/// An audit event as written: its id and instant beside it.
#[derive(Debug, Clone, Copy)]
pub struct Stamped<'a> {
    pub audit_id: i64,
    pub at: DateTime<Utc>,
    pub event: &'a Event,
}

/// Where a record's open version is: already stored (by the audit id that wrote it) or
/// among the rows this plan inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    Stored(i64),
    New(usize),
}

/// The versions open before the events, for the records they touch.
#[derive(Debug, Default)]
pub struct Open {
    pub cis: HashMap<Uuid, i64>,
    pub relationships: HashMap<Uuid, i64>,
    pub services: HashMap<Uuid, i64>,
    /// Per service, its open memberships by CI.
    pub members: HashMap<Uuid, HashMap<Uuid, i64>>,
}

/// One version to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow<M> {
    pub state: M,
    pub audit_id: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// One membership version to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub service_id: Uuid,
    pub ci_id: Uuid,
    pub audit_id: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// A stored open version to close: the row written by `audit_id` (and, for a membership,
/// its CI) stops being valid at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub table: Table,
    pub audit_id: i64,
    pub ci_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// What a set of events does to the version tables.
#[derive(Debug, Default)]
pub struct Plan {
    pub cis: Vec<VersionRow<configuration_item::Model>>,
    pub relationships: Vec<VersionRow<relationship::Model>>,
    pub services: Vec<VersionRow<service::Model>>,
    pub members: Vec<MemberRow>,
    pub closes: Vec<Close>,
}

/// The records of a table whose open version is known, as the plan goes.
struct Tracker<M> {
    table: Table,
    open: HashMap<Uuid, Opened>,
    rows: Vec<VersionRow<M>>,
}

impl<M> Tracker<M> {
    fn new(table: Table, stored: HashMap<Uuid, i64>) -> Self {
        Tracker {
            table,
            open: stored
                .into_iter()
                .map(|(id, audit)| (id, Opened::Stored(audit)))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The record `id` changed at `stamp`: its open version ends, `after` (if it still
    /// exists) begins.
    fn step(&mut self, closes: &mut Vec<Close>, id: Uuid, stamp: &Stamped, after: Option<M>) {
        match self.open.remove(&id) {
            Some(Opened::Stored(audit_id)) => closes.push(Close {
                table: self.table,
                audit_id,
                ci_id: None,
                at: stamp.at,
            }),
            Some(Opened::New(index)) => self.rows[index].valid_to = Some(stamp.at),
            None => {}
        }
        if let Some(state) = after {
            self.rows.push(VersionRow {
                state,
                audit_id: stamp.audit_id,
                valid_from: stamp.at,
                valid_to: None,
            });
            self.open.insert(id, Opened::New(self.rows.len() - 1));
        }
    }
}

/// The state an event leaves, decoded; `None` when the record is gone (or the state cannot
/// be read, which is logged: old trails may hold shapes no longer written).
fn decode<M: serde::de::DeserializeOwned>(event: &Event, defaults: &[(&str, Json)]) -> Option<M> {
    let mut state = event.after.clone()?;
    if let Json::Object(fields) = &mut state {
        for (name, value) in defaults {
            fields.entry(*name).or_insert_with(|| value.clone());
        }
    }
    match serde_json::from_value(state) {
        Ok(model) => Some(model),
        Err(err) => {
            tracing::warn!(
                entity = event.entity_id,
                error = %err,
                "an audit event's state could not be read into a version; skipped"
            );
            None
        }
    }
}

/// The members a service event leaves (none when the service is deleted).
fn members_after(event: &Event) -> Vec<Uuid> {
    event
        .after
        .as_ref()
        .and_then(|state| state.get("member_ids"))
        .and_then(|ids| serde_json::from_value(ids.clone()).ok())
        .unwrap_or_default()
}

/// Plans the versions `events` (in the order written) make, given the versions open before.
pub fn plan(open: Open, events: &[Stamped]) -> Plan {
    let mut closes = Vec::new();
    let mut cis = Tracker::new(Table::ConfigurationItem, open.cis);
    let mut relationships = Tracker::new(Table::Relationship, open.relationships);
    let mut services = Tracker::new(Table::Service, open.services);
    let mut members: HashMap<Uuid, HashMap<Uuid, Opened>> = open
        .members
        .into_iter()
        .map(|(service, cis)| {
            let cis = cis
                .into_iter()
                .map(|(ci, audit)| (ci, Opened::Stored(audit)))
                .collect();
            (service, cis)
        })
        .collect();
    let mut member_rows: Vec<MemberRow> = Vec::new();
    for stamp in events {
        let event = stamp.event;
        let Ok(id) = Uuid::parse_str(&event.entity_id) else {
            continue;
        };
        match event.entity_type {
            EntityType::ConfigurationItem => {
                let after = decode(event, &[("provenance", Json::Object(Default::default()))]);
                cis.step(&mut closes, id, stamp, after);
            }
            EntityType::Relationship => {
                let after = decode(event, &[]);
                relationships.step(&mut closes, id, stamp, after);
            }
            EntityType::Service => {
                let after = decode(event, &[]);
                services.step(&mut closes, id, stamp, after);
                let wanted = members_after(event);
                let current = members.entry(id).or_default();
                let leaving: Vec<Uuid> = current
                    .keys()
                    .filter(|ci| !wanted.contains(ci))
                    .copied()
                    .collect();
                for ci in leaving {
                    match current.remove(&ci) {
                        Some(Opened::Stored(audit_id)) => closes.push(Close {
                            table: Table::ServiceMember,
                            audit_id,
                            ci_id: Some(ci),
                            at: stamp.at,
                        }),
                        Some(Opened::New(index)) => member_rows[index].valid_to = Some(stamp.at),
                        None => {}
                    }
                }
                for ci in wanted {
                    if let std::collections::hash_map::Entry::Vacant(entry) = current.entry(ci) {
                        member_rows.push(MemberRow {
                            service_id: id,
                            ci_id: ci,
                            audit_id: stamp.audit_id,
                            valid_from: stamp.at,
                            valid_to: None,
                        });
                        entry.insert(Opened::New(member_rows.len() - 1));
                    }
                }
            }
            _ => {}
        }
    }
    Plan {
        cis: cis.rows,
        relationships: relationships.rows,
        services: services.rows,
        members: member_rows,
        closes,
    }
}

/// The ids of the records of `entity_type` the events touch.
fn touched(events: &[Stamped], entity_type: EntityType) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|s| s.event.entity_type == entity_type)
        .filter_map(|s| Uuid::parse_str(&s.event.entity_id).ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The open versions of the records `events` touch.
async fn load_open(db: &impl ConnectionTrait, events: &[Stamped<'_>]) -> Result<Open> {
    let mut open = Open::default();
    for (table, entity_type) in [
        (Table::ConfigurationItem, EntityType::ConfigurationItem),
        (Table::Relationship, EntityType::Relationship),
        (Table::Service, EntityType::Service),
    ] {
        let ids = touched(events, entity_type);
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, audit_event_id FROM {} WHERE valid_to IS NULL AND id IN ({})",
                table.name(),
                bulk::placeholders(1, chunk.len())
            );
            let values = chunk.iter().map(|id| Value::from(*id)).collect();
            for row in db.query_all_raw(bulk::statement(db, &sql, values)).await? {
                let id: Uuid = row.try_get_by_index(0)?;
                let audit: i64 = row.try_get_by_index(1)?;
                match table {
                    Table::ConfigurationItem => open.cis.insert(id, audit),
                    Table::Relationship => open.relationships.insert(id, audit),
                    _ => open.services.insert(id, audit),
                };
            }
        }
    }
    let services = touched(events, EntityType::Service);
    for chunk in services.chunks(500) {
        let sql = format!(
            "SELECT service_id, ci_id, audit_event_id FROM service_member_version \
             WHERE valid_to IS NULL AND service_id IN ({})",
            bulk::placeholders(1, chunk.len())
        );
        let values = chunk.iter().map(|id| Value::from(*id)).collect();
        for row in db.query_all_raw(bulk::statement(db, &sql, values)).await? {
            let service: Uuid = row.try_get_by_index(0)?;
            let ci: Uuid = row.try_get_by_index(1)?;
            let audit: i64 = row.try_get_by_index(2)?;
            open.members.entry(service).or_default().insert(ci, audit);
        }
    }
    Ok(open)
}

/// Version rows of a table: the record's columns, then the version's own.
fn version_rows<E>(table: Table, rows: Vec<VersionRow<E::Model>>) -> Rows
where
    E: sea_orm::EntityTrait,
    E::Model: sea_orm::ModelTrait<Entity = E>,
{
    let (states, intervals): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|row| (row.state, (row.audit_id, row.valid_from, row.valid_to)))
        .unzip();
    let mut out = Rows::of_models::<E>(&states);
    out.table = table.name().to_owned();
    out.columns
        .extend(["audit_event_id", "valid_from", "valid_to"].map(str::to_owned));
    for (row, (audit_id, from, to)) in out.rows.iter_mut().zip(intervals) {
        row.extend([audit_id.into(), from.into(), to.into()]);
    }
    out
}

/// Writes what the plan says: closes first, then the new versions.
async fn write(db: &impl ConnectionTrait, plan: Plan) -> Result<()> {
    let mut closes: HashMap<(Table, DateTime<Utc>, Option<i64>), Vec<Value>> = HashMap::new();
    for close in plan.closes {
        match close.ci_id {
            // Memberships are closed per service row and CI.
            Some(ci) => closes
                .entry((close.table, close.at, Some(close.audit_id)))
                .or_default()
                .push(ci.into()),
            None => closes
                .entry((close.table, close.at, None))
                .or_default()
                .push(close.audit_id.into()),
        }
    }
    for ((table, at, audit_id), keys) in closes {
        for chunk in keys.chunks(500) {
            let (sql, mut values) = match audit_id {
                Some(audit_id) => (
                    format!(
                        "UPDATE {} SET valid_to = $1 WHERE audit_event_id = $2 AND ci_id IN ({})",
                        table.name(),
                        bulk::placeholders(3, chunk.len())
                    ),
                    vec![at.into(), audit_id.into()],
                ),
                None => (
                    format!(
                        "UPDATE {} SET valid_to = $1 WHERE audit_event_id IN ({})",
                        table.name(),
                        bulk::placeholders(2, chunk.len())
                    ),
                    vec![at.into()],
                ),
            };
            values.extend(chunk.iter().cloned());
            db.execute_raw(bulk::statement(db, &sql, values)).await?;
        }
    }
    bulk::insert(
        db,
        version_rows::<configuration_item::Entity>(Table::ConfigurationItem, plan.cis),
        "",
    )
    .await?;
    bulk::insert(
        db,
        version_rows::<relationship::Entity>(Table::Relationship, plan.relationships),
        "",
    )
    .await?;
    bulk::insert(
        db,
        version_rows::<service::Entity>(Table::Service, plan.services),
        "",
    )
    .await?;
    let mut members = Rows::new(
        Table::ServiceMember.name(),
        &[
            "service_id",
            "ci_id",
            "added_at",
            "audit_event_id",
            "valid_from",
            "valid_to",
        ],
    );
    for row in plan.members {
        members.push(vec![
            row.service_id.into(),
            row.ci_id.into(),
            row.valid_from.into(),
            row.audit_id.into(),
            row.valid_from.into(),
            row.valid_to.into(),
        ]);
    }
    bulk::insert(db, members, "").await?;
    Ok(())
}

/// Records the versions the events make, in the caller's transaction.
pub async fn record(db: &impl ConnectionTrait, events: &[Stamped<'_>]) -> Result<()> {
    let relevant = |s: &&Stamped| {
        matches!(
            s.event.entity_type,
            EntityType::ConfigurationItem | EntityType::Relationship | EntityType::Service
        )
    };
    let events: Vec<Stamped> = events.iter().filter(relevant).copied().collect();
    if events.is_empty() {
        return Ok(());
    }
    let open = load_open(db, &events).await?;
    write(db, plan(open, &events)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    use crate::domain::audit::Action;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second)
            .single()
            .expect("an instant")
    }

    fn ci_state(id: Uuid, name: &str, version: i32) -> Json {
        json!({
            "id": id, "class_id": 1, "name": name, "description": null, "status": "IN_SERVICE",
            "environment": null, "criticality": null, "owner": null, "attributes": {},
            "version": version, "created_at": at(0), "updated_at": at(0)
        })
    }

    fn event(entity_type: EntityType, id: Uuid, after: Option<Json>) -> Event {
        Event {
            entity_type,
            entity_id: id.to_string(),
            action: Action::Update,
            before: None,
            after,
        }
    }

    #[test]
    fn each_event_closes_the_version_it_replaces_and_opens_its_own() {
        let id = Uuid::from_u128(7);
        let events = [
            event(
                EntityType::ConfigurationItem,
                id,
                Some(ci_state(id, "a", 2)),
            ),
            event(
                EntityType::ConfigurationItem,
                id,
                Some(ci_state(id, "b", 3)),
            ),
            event(EntityType::ConfigurationItem, id, None),
        ];
        let stamped: Vec<Stamped> = events
            .iter()
            .zip([(10, 1), (11, 1), (12, 2)])
            .map(|(event, (audit_id, second))| Stamped {
                audit_id,
                at: at(second),
                event,
            })
            .collect();
        let open = Open {
            cis: [(id, 5)].into_iter().collect(),
            ..Open::default()
        };
        let plan = plan(open, &stamped);
        // The stored version (written by event 5) ends when the first event is written.
        assert_eq!(
            plan.closes,
            vec![Close {
                table: Table::ConfigurationItem,
                audit_id: 5,
                ci_id: None,
                at: at(1)
            }]
        );
        type Interval = (i64, i32, DateTime<Utc>, Option<DateTime<Utc>>);
        let intervals: Vec<Interval> = plan
            .cis
            .iter()
            .map(|row| {
                (
                    row.audit_id,
                    row.state.version,
                    row.valid_from,
                    row.valid_to,
                )
            })
            .collect();
        assert_eq!(
            intervals,
            vec![
                // Replaced within the same write: kept, never current.
                (10, 2, at(1), Some(at(1))),
                // Current until the deletion.
                (11, 3, at(1), Some(at(2))),
            ]
        );
        // The provenance missing from an old state is filled in.
        assert_eq!(plan.cis[0].state.provenance, json!({}));
    }

    #[test]
    fn memberships_follow_the_members_a_service_event_leaves() {
        let (service, web, db) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let state = |members: &[Uuid]| {
            json!({
                "id": service, "name": "Shop", "kind": "BUSINESS", "description": null,
                "owner": null, "criticality": null, "version": 1, "created_at": at(0),
                "updated_at": at(0), "member_ids": members
            })
        };
        let events = [
            event(EntityType::Service, service, Some(state(&[db]))),
            event(EntityType::Service, service, None),
        ];
        let stamped = [
            Stamped {
                audit_id: 20,
                at: at(3),
                event: &events[0],
            },
            Stamped {
                audit_id: 21,
                at: at(4),
                event: &events[1],
            },
        ];
        let open = Open {
            services: [(service, 9)].into_iter().collect(),
            members: [(service, [(web, 9)].into_iter().collect())]
                .into_iter()
                .collect(),
            ..Open::default()
        };
        let plan = plan(open, &stamped);
        assert!(plan.closes.contains(&Close {
            table: Table::ServiceMember,
            audit_id: 9,
            ci_id: Some(web),
            at: at(3),
        }));
        assert_eq!(
            plan.members,
            vec![MemberRow {
                service_id: service,
                ci_id: db,
                audit_id: 20,
                valid_from: at(3),
                valid_to: Some(at(4)),
            }],
            "db joined, then left with the service's deletion"
        );
        assert_eq!(plan.services.len(), 1);
        assert_eq!(plan.services[0].valid_to, Some(at(4)));
    }
}
