//! Incidents: unplanned interruptions, their priority, the CIs and services they hit, and
//! their lifecycle.
//!
//! Invariants: the lifecycle only moves along [`can_transition`]; the priority always
//! follows the impact x urgency matrix at the time impact or urgency was set; services
//! derived by analysis are recomputed whenever the affected CIs change, while services added
//! by hand stay until removed by hand; every write is audited with the full state.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use entity::values::{Criticality, IncidentState, Level, Origin, ServiceState};
use entity::{incident, incident_ci, incident_service, priority_rule};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter,
    sea_query::{Condition, Query},
};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::impact::GraphCache;
use super::impact::blast::blast_radius;
use super::numbering::{self, Sequence};
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{
    Error, Patch, Result, check_version, now, optional_trimmed, patch_trimmed, required_text,
    text_limits,
};
use crate::limits::Limits;

mod links;
mod priority;
mod queries;
use links::*;
pub use priority::*;
pub use queries::*;

/// Whether the lifecycle allows going from `from` to `to`:
/// `NEW -> IN_PROGRESS <-> ON_HOLD`, `IN_PROGRESS -> RESOLVED -> CLOSED`, and a resolved
/// incident may be reopened to `IN_PROGRESS`.
pub fn can_transition(from: IncidentState, to: IncidentState) -> bool {
    use IncidentState::*;
    matches!(
        (from, to),
        (New, InProgress)
            | (InProgress, OnHold)
            | (OnHold, InProgress)
            | (InProgress, Resolved)
            | (Resolved, InProgress)
            | (Resolved, Closed)
    )
}

/// Whether an incident in this state still needs work.
pub fn is_open(state: IncidentState) -> bool {
    !matches!(state, IncidentState::Resolved | IncidentState::Closed)
}

/// A service named by hand as affected by an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManualService {
    pub service_id: Uuid,
    pub state: ServiceState,
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub title: String,
    pub description: Option<String>,
    /// When not given: the impact suggested by the services hit, else medium.
    pub impact: Option<Level>,
    pub urgency: Level,
    pub major: bool,
    pub assignee_group: Option<String>,
    pub ci_ids: Vec<Uuid>,
    pub services: Vec<ManualService>,
    /// When it started, for incidents recorded after the fact; now when not given.
    pub opened_at: Option<DateTime<Utc>>,
}

/// Changes to an incident's fields. Lists, when given, replace the current ones.
#[derive(Debug, Clone, Default)]
pub struct IncidentChanges {
    pub title: Option<String>,
    pub description: Patch<String>,
    pub impact: Option<Level>,
    pub urgency: Option<Level>,
    pub major: Option<bool>,
    pub assignee_group: Patch<String>,
    pub ci_ids: Option<Vec<Uuid>>,
    pub services: Option<Vec<ManualService>>,
}

/// Which incidents to list; all given criteria must hold.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub states: Option<Vec<IncidentState>>,
    pub open: Option<bool>,
    pub priority: Option<i32>,
    pub major: Option<bool>,
    pub ci_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    pub opened_after: Option<DateTime<Utc>>,
    pub opened_before: Option<DateTime<Utc>>,
}

impl IncidentFilter {
    pub(crate) fn condition(&self) -> Condition {
        use incident::Column;
        let mut condition = Condition::all();
        if let Some(states) = &self.states {
            condition = condition.add(Column::State.is_in(states.iter().copied()));
        }
        if let Some(open) = self.open {
            let closed = [IncidentState::Resolved, IncidentState::Closed];
            condition = condition.add(if open {
                Column::State.is_not_in(closed)
            } else {
                Column::State.is_in(closed)
            });
        }
        if let Some(priority) = self.priority {
            condition = condition.add(Column::Priority.eq(priority));
        }
        if let Some(major) = self.major {
            condition = condition.add(Column::Major.eq(major));
        }
        if let Some(ci_id) = self.ci_id {
            condition = condition.add(
                Column::Id.in_subquery(
                    Query::select()
                        .column(incident_ci::Column::IncidentId)
                        .from(incident_ci::Entity)
                        .and_where(incident_ci::Column::CiId.eq(ci_id))
                        .to_owned(),
                ),
            );
        }
        if let Some(service_id) = self.service_id {
            condition = condition.add(
                Column::Id.in_subquery(
                    Query::select()
                        .column(incident_service::Column::IncidentId)
                        .from(incident_service::Entity)
                        .and_where(incident_service::Column::ServiceId.eq(service_id))
                        .to_owned(),
                ),
            );
        }
        if let Some(after) = self.opened_after {
            condition = condition.add(Column::OpenedAt.gte(after));
        }
        if let Some(before) = self.opened_before {
            condition = condition.add(Column::OpenedAt.lt(before));
        }
        condition
    }
}

/// The full state of an incident as the audit trail keeps it.
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(flatten)]
    incident: &'a incident::Model,
    ci_ids: Vec<Uuid>,
    services: Vec<&'a incident_service::Model>,
}

/// The incident with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<incident::Model> {
    incident::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("incident", id))
}

/// The incident with that id, locked until the write transaction `txn` ends (see
/// [`super::lock_row`]), or `NOT_FOUND`. Every read-modify-write starts here.
pub async fn get_for_update(txn: &impl ConnectionTrait, id: Uuid) -> Result<incident::Model> {
    super::lock_row(txn, incident::Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("incident", id))
}

/// The incident with that number (`INC-000123`), or `NOT_FOUND`.
pub async fn get_by_number(db: &impl ConnectionTrait, number: &str) -> Result<incident::Model> {
    incident::Entity::find()
        .filter(incident::Column::Number.eq(number.trim()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("incident", number))
}

/// The incidents among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, incident::Model>> {
    let rows = super::rows_in::<incident::Entity>(db, incident::Column::Id, ids, &[]).await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

fn snapshot<'a>(
    incident: &'a incident::Model,
    ci_ids: &[Uuid],
    services: &'a [incident_service::Model],
) -> Snapshot<'a> {
    let mut ci_ids = ci_ids.to_vec();
    ci_ids.sort();
    let mut services: Vec<&incident_service::Model> = services.iter().collect();
    services.sort_by_key(|s| s.service_id);
    Snapshot {
        incident,
        ci_ids,
        services,
    }
}

/// Opens an incident: numbers it, derives its priority and its affected services.
pub async fn create(
    db: &DatabaseConnection,
    cache: &GraphCache,
    limits: &Limits,
    actor: &Actor,
    new: NewIncident,
) -> Result<incident::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = create_in(&uow, cache, limits, new).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn create_in(
    uow: &UnitOfWork,
    cache: &GraphCache,
    limits: &Limits,
    new: NewIncident,
) -> Result<incident::Model> {
    let title = required_text("title", &new.title, text_limits::NAME)?;
    let description = optional_trimmed("description", new.description, text_limits::DESCRIPTION)?;
    let assignee_group = optional_trimmed("assigneeGroup", new.assignee_group, text_limits::SHORT)?;
    let opened_at = new
        .opened_at
        .map(|at| past_moment("openedAt", at))
        .transpose()?
        .unwrap_or_else(now);
    let ci_ids = super::dedup(new.ci_ids);
    let services = dedup_services(new.services);
    super::check_batch_size(limits, ci_ids.len() + services.len(), "CIs and services")?;
    let txn = uow.txn();
    super::ci::ensure_exist(txn, "ciIds", &ci_ids).await?;
    ensure_services_exist(txn, "services", &services).await?;
    let id = Uuid::now_v7();
    let at = now();
    let (rows, criticalities) = derive_services(txn, cache, limits, id, &ci_ids, &services).await?;
    let suggested = suggested_impact(&criticalities);
    let impact = new.impact.or(suggested).unwrap_or(Level::Medium);
    let model = incident::Model {
        id,
        number: numbering::next(txn, Sequence::Incident).await?,
        title,
        description,
        impact,
        urgency: new.urgency,
        priority: priority_of(txn, impact, new.urgency).await?,
        suggested_impact: suggested,
        major: new.major,
        assignee_group,
        state: IncidentState::New,
        resolution_notes: None,
        opened_at,
        acknowledged_at: None,
        resolved_at: None,
        closed_at: None,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    model.clone().into_active_model().insert(txn).await?;
    store_links(txn, id, &ci_ids, &rows).await?;
    uow.record(Event::new(
        EntityType::Incident,
        id,
        Action::Create,
        None,
        Some(&snapshot(&model, &ci_ids, &rows)),
    )?);
    Ok(model)
}

/// Changes an incident's fields; new affected CIs re-derive its services.
pub async fn update(
    db: &DatabaseConnection,
    cache: &GraphCache,
    limits: &Limits,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: IncidentChanges,
) -> Result<incident::Model> {
    let title = changes
        .title
        .map(|t| required_text("title", &t, text_limits::NAME))
        .transpose()?;
    let description = patch_trimmed("description", changes.description, text_limits::DESCRIPTION)?;
    let assignee_group =
        patch_trimmed("assigneeGroup", changes.assignee_group, text_limits::SHORT)?;
    let ci_ids = changes.ci_ids.map(super::dedup);
    let manual = changes.services.map(dedup_services);
    super::check_batch_size(
        limits,
        ci_ids.as_ref().map_or(0, Vec::len) + manual.as_ref().map_or(0, Vec::len),
        "CIs and services",
    )?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    if before.state == IncidentState::Closed {
        return Err(Error::InvalidTransition(format!(
            "incident {} is closed and can no longer change",
            before.number
        )));
    }
    let (before_cis, before_services) = links_of(txn, id).await?;
    let mut after = before.clone();
    if let Some(title) = title {
        after.title = title;
    }
    after.description = description.apply(after.description);
    after.assignee_group = assignee_group.apply(after.assignee_group);
    if let Some(major) = changes.major {
        after.major = major;
    }
    if let Some(urgency) = changes.urgency {
        after.urgency = urgency;
    }
    if let Some(impact) = changes.impact {
        after.impact = impact;
    }
    let links_change = ci_ids.is_some() || manual.is_some();
    let (after_cis, after_services) = if links_change {
        if let Some(ids) = &ci_ids {
            super::ci::ensure_exist(txn, "input.ciIds", ids).await?;
        }
        if let Some(services) = &manual {
            ensure_services_exist(txn, "input.services", services).await?;
        }
        let ci_ids = ci_ids.unwrap_or_else(|| before_cis.clone());
        let manual = manual.unwrap_or_else(|| {
            before_services
                .iter()
                .filter(|s| s.origin == Origin::Manual)
                .map(|s| ManualService {
                    service_id: s.service_id,
                    state: s.state,
                })
                .collect()
        });
        let (rows, criticalities) =
            derive_services(txn, cache, limits, id, &ci_ids, &manual).await?;
        store_links(txn, id, &ci_ids, &rows).await?;
        after.suggested_impact = suggested_impact(&criticalities);
        (ci_ids, rows)
    } else {
        (before_cis.clone(), before_services.clone())
    };
    if after.impact != before.impact || after.urgency != before.urgency {
        after.priority = priority_of(txn, after.impact, after.urgency).await?;
    }
    let mut sorted_before = before_cis.clone();
    sorted_before.sort();
    let mut sorted_after = after_cis.clone();
    sorted_after.sort();
    let before_snapshot = snapshot(&before, &before_cis, &before_services);
    let same_links = sorted_before == sorted_after
        && serde_json::to_value(&before_snapshot.services)?
            == serde_json::to_value(snapshot(&after, &after_cis, &after_services).services)?;
    if after == before && same_links {
        return Ok(before);
    }
    after.version = before.version + 1;
    after.updated_at = now();
    save(txn, &before, &after).await?;
    uow.record(Event::new(
        EntityType::Incident,
        id,
        Action::Update,
        Some(&before_snapshot),
        Some(&snapshot(&after, &after_cis, &after_services)),
    )?);
    uow.commit().await?;
    Ok(after)
}

/// Moves an incident along its lifecycle, at `at` (now when not given; never before its
/// last recorded moment). Resolving needs resolution notes, given now or before.
pub async fn transition(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    to: IncidentState,
    at: Option<DateTime<Utc>>,
    resolution_notes: Option<String>,
) -> Result<incident::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = transition_in(&uow, id, expected_version, to, at, resolution_notes).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn transition_in(
    uow: &UnitOfWork,
    id: Uuid,
    expected_version: Option<i32>,
    to: IncidentState,
    at: Option<DateTime<Utc>>,
    resolution_notes: Option<String>,
) -> Result<incident::Model> {
    let notes = optional_trimmed(
        "resolutionNotes",
        resolution_notes,
        text_limits::DESCRIPTION,
    )?;
    let at = at.map(|at| past_moment("at", at)).transpose()?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    if !can_transition(before.state, to) {
        return Err(Error::InvalidTransition(format!(
            "incident {} cannot go from {} to {}",
            before.number,
            state_name(before.state),
            state_name(to)
        )));
    }
    let latest = [
        Some(before.opened_at),
        before.acknowledged_at,
        before.resolved_at,
        before.closed_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(before.opened_at);
    let at = at.unwrap_or_else(now);
    if at < latest {
        return Err(Error::invalid(
            "at",
            format!("`at` ({at}) is before the incident's last recorded moment ({latest})"),
        ));
    }
    let mut after = before.clone();
    after.state = to;
    if let Some(notes) = notes {
        after.resolution_notes = Some(notes);
    }
    match to {
        IncidentState::InProgress if before.state == IncidentState::Resolved => {
            after.resolved_at = None;
        }
        IncidentState::InProgress => {
            after.acknowledged_at.get_or_insert(at);
        }
        IncidentState::Resolved => {
            if after.resolution_notes.is_none() {
                return Err(Error::invalid(
                    "resolutionNotes",
                    "resolving an incident needs `resolutionNotes`",
                ));
            }
            after.resolved_at = Some(at);
        }
        IncidentState::Closed => after.closed_at = Some(at),
        IncidentState::OnHold | IncidentState::New => {}
    }
    after.version = before.version + 1;
    after.updated_at = now();
    save(txn, &before, &after).await?;
    record_resolution(txn, &before, &after, at).await?;
    let (ci_ids, services) = links_of(txn, id).await?;
    uow.record(Event::new(
        EntityType::Incident,
        id,
        Action::Transition,
        Some(&snapshot(&before, &ci_ids, &services)),
        Some(&snapshot(&after, &ci_ids, &services)),
    )?);
    Ok(after)
}

/// Keeps the periods an incident spends resolved: a resolution opens one, a reopening
/// closes it, so that reports do not count a resolved incident's time as an outage.
async fn record_resolution(
    txn: &impl ConnectionTrait,
    before: &incident::Model,
    after: &incident::Model,
    at: DateTime<Utc>,
) -> Result<()> {
    use entity::incident_resolution::{ActiveModel, Column, Entity};
    if after.state == IncidentState::Resolved && before.state != IncidentState::Resolved {
        ActiveModel {
            incident_id: Set(after.id),
            resolved_at: Set(at),
            reopened_at: Set(None),
        }
        .insert(txn)
        .await?;
    } else if before.state == IncidentState::Resolved && is_open(after.state) {
        Entity::update_many()
            .col_expr(Column::ReopenedAt, sea_orm::prelude::Expr::value(Some(at)))
            .filter(Column::IncidentId.eq(after.id))
            .filter(Column::ReopenedAt.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The periods each incident spent resolved, by incident, oldest first.
pub async fn resolutions_of(
    db: &impl ConnectionTrait,
    incident_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<entity::incident_resolution::Model>>> {
    use entity::incident_resolution::{Column, Entity};
    let rows =
        super::rows_in::<Entity>(db, Column::IncidentId, incident_ids, &[Column::ResolvedAt])
            .await?;
    Ok(super::group_by(rows, |r| r.incident_id))
}

/// The stored form of a state, for messages.
pub fn state_name(state: IncidentState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
