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

/// The impact an incident deserves from the services it hits: a critical service hit
/// makes it high; a high-criticality service down makes it high and degraded medium; a
/// medium one down makes it medium. `None` when it hits no service.
pub fn suggested_impact(services: &[(Option<Criticality>, ServiceState)]) -> Option<Level> {
    services
        .iter()
        .map(|(criticality, state)| match (criticality, state) {
            (Some(Criticality::Critical), _) => Level::High,
            (Some(Criticality::High), ServiceState::Down) => Level::High,
            (Some(Criticality::High), ServiceState::Degraded) => Level::Medium,
            (Some(Criticality::Medium), ServiceState::Down) => Level::Medium,
            _ => Level::Low,
        })
        .max()
}

/// The impact x urgency matrix, row by row.
pub async fn priority_matrix(db: &impl ConnectionTrait) -> Result<Vec<priority_rule::Model>> {
    let mut rules = priority_rule::Entity::find().all(db).await?;
    rules.sort_by(|a, b| b.impact.cmp(&a.impact).then(b.urgency.cmp(&a.urgency)));
    Ok(rules)
}

/// The priority the matrix gives to `impact` and `urgency`.
pub async fn priority_of(db: &impl ConnectionTrait, impact: Level, urgency: Level) -> Result<i32> {
    priority_rule::Entity::find_by_id((impact, urgency))
        .one(db)
        .await?
        .map(|rule| rule.priority)
        .ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "the priority matrix has no cell for {impact:?} x {urgency:?}"
            ))
        })
}

/// Sets one cell of the priority matrix. Existing incidents keep their priority until
/// their impact or urgency changes.
pub async fn set_priority_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    impact: Level,
    urgency: Level,
    priority: i32,
) -> Result<priority_rule::Model> {
    if !(1..=5).contains(&priority) {
        return Err(Error::invalid(
            "priority",
            format!("priority {priority} is not between 1 (most urgent) and 5"),
        ));
    }
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = super::lock_row(txn, priority_rule::Entity::find_by_id((impact, urgency))).await?;
    let after = priority_rule::Model {
        impact,
        urgency,
        priority,
    };
    if before.as_ref() == Some(&after) {
        return Ok(after);
    }
    priority_rule::Entity::delete_many()
        .filter(priority_rule::Column::Impact.eq(impact))
        .filter(priority_rule::Column::Urgency.eq(urgency))
        .exec(txn)
        .await?;
    after.clone().into_active_model().insert(txn).await?;
    uow.record(Event::new(
        EntityType::PriorityRule,
        format!("{}:{}", level_name(impact), level_name(urgency)),
        Action::Update,
        before.as_ref(),
        Some(&after),
    )?);
    uow.commit().await?;
    Ok(after)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::High => "HIGH",
        Level::Medium => "MEDIUM",
        Level::Low => "LOW",
    }
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
    fn condition(&self) -> Condition {
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

/// One page of incidents, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &IncidentFilter,
    window: &PageWindow,
) -> Result<Page<incident::Model>> {
    let select = incident::Entity::find().filter(filter.condition());
    let key = SortKey::by(
        incident::Column::OpenedAt,
        KeyKind::Time,
        incident::Column::Id,
        true,
        "incident:opened:desc",
    );
    fetch_page(db, select, &key, window, |i| {
        (Some(KeyValue::Time(i.opened_at)), KeyValue::Uuid(i.id))
    })
    .await
}

/// How many incidents match `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &IncidentFilter) -> Result<u64> {
    Ok(incident::Entity::find()
        .filter(filter.condition())
        .count(db)
        .await?)
}

/// The affected CI ids of each incident.
pub async fn ci_ids_of(
    db: &impl ConnectionTrait,
    incident_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    use incident_ci::Column;
    let rows = super::rows_in::<incident_ci::Entity>(
        db,
        Column::IncidentId,
        incident_ids,
        &[Column::CiId],
    )
    .await?;
    Ok(super::group_by(rows, |row| row.incident_id)
        .into_iter()
        .map(|(id, rows)| (id, rows.into_iter().map(|row| row.ci_id).collect()))
        .collect())
}

/// The affected services of each incident, with how they came to be listed.
pub async fn services_of(
    db: &impl ConnectionTrait,
    incident_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<incident_service::Model>>> {
    let column = incident_service::Column::IncidentId;
    let rows = super::rows_in::<incident_service::Entity>(db, column, incident_ids, &[]).await?;
    Ok(super::group_by(rows, |row| row.incident_id))
}

/// How a nested field lists incidents: only open ones (or only the others), and at most
/// how many per owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    pub open: Option<bool>,
    pub first: u64,
}

/// The incidents linked to each owner through `L`, newest first, as `listing` says.
async fn incidents_by_link<L: sea_orm::EntityTrait>(
    db: &impl ConnectionTrait,
    owners: &[Uuid],
    owner: L::Column,
    record: L::Column,
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    use sea_orm::sea_query::{Expr, Order};
    let closed = [IncidentState::Resolved, IncidentState::Closed];
    let condition = match listing.open {
        None => sea_orm::Condition::all(),
        Some(true) => sea_orm::Condition::all().add(incident::Column::State.is_not_in(closed)),
        Some(false) => sea_orm::Condition::all().add(incident::Column::State.is_in(closed)),
    };
    super::nested::linked::<incident::Entity, L>(
        db,
        owners,
        owner,
        record,
        incident::Column::Id,
        condition,
        vec![
            (
                Expr::col((incident::Entity, incident::Column::OpenedAt)),
                Order::Desc,
            ),
            (
                Expr::col((incident::Entity, incident::Column::Id)),
                Order::Desc,
            ),
        ],
        Some(listing.first),
    )
    .await
}

/// The incidents that affect each CI, newest first, as `listing` says.
pub async fn incidents_of_cis(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    incidents_by_link::<incident_ci::Entity>(
        db,
        ci_ids,
        incident_ci::Column::CiId,
        incident_ci::Column::IncidentId,
        listing,
    )
    .await
}

/// The incidents that affect each service, newest first, as `listing` says.
pub async fn incidents_of_services(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    incidents_by_link::<incident_service::Entity>(
        db,
        service_ids,
        incident_service::Column::ServiceId,
        incident_service::Column::IncidentId,
        listing,
    )
    .await
}

/// The open incidents on any of `ci_ids`, newest first.
pub async fn open_on_cis(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
) -> Result<Vec<incident::Model>> {
    let links =
        super::rows_in::<incident_ci::Entity>(db, incident_ci::Column::CiId, ci_ids, &[]).await?;
    let ids = super::dedup(links.into_iter().map(|l| l.incident_id).collect());
    let mut open: Vec<incident::Model> = get_many(db, &ids)
        .await?
        .into_values()
        .filter(|i| is_open(i.state))
        .collect();
    open.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(b.id.cmp(&a.id)));
    Ok(open)
}

async fn ensure_services_exist(
    db: &impl ConnectionTrait,
    field: &str,
    services: &[ManualService],
) -> Result<()> {
    let ids: Vec<Uuid> = services.iter().map(|s| s.service_id).collect();
    let found = super::service::get_many(db, &ids).await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.contains_key(id) {
            return Err(Error::not_found("service", id).within(&format!("{field}[{i}]")));
        }
    }
    Ok(())
}

fn dedup_services(services: Vec<ManualService>) -> Vec<ManualService> {
    let mut seen = HashSet::new();
    services
        .into_iter()
        .filter(|s| seen.insert(s.service_id))
        .collect()
}

/// A moment given by a client: not in the future (a minute of clock skew allowed).
fn past_moment(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if at > now() + TimeDelta::minutes(1) {
        return Err(Error::invalid(
            field,
            format!("`{field}` ({at}) is in the future"),
        ));
    }
    Ok(at)
}

/// The services an incident with these CIs and hand-named services affects: derived ones
/// from the blast radius of the CIs, hand-named ones as given (at the worse state when also
/// derived); with the criticality of each, for the suggested impact.
async fn derive_services(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    incident_id: Uuid,
    ci_ids: &[Uuid],
    manual: &[ManualService],
) -> Result<(
    Vec<incident_service::Model>,
    Vec<(Option<Criticality>, ServiceState)>,
)> {
    let radius = blast_radius(db, cache, limits, ci_ids).await?;
    let mut rows: Vec<incident_service::Model> = manual
        .iter()
        .map(|m| incident_service::Model {
            incident_id,
            service_id: m.service_id,
            origin: Origin::Manual,
            state: m.state,
        })
        .collect();
    let manual_ids: Vec<Uuid> = manual.iter().map(|m| m.service_id).collect();
    for (service, state) in &radius.services {
        if let Some(row) = rows.iter_mut().find(|r| r.service_id == service.id) {
            row.state = row.state.max(*state);
            continue;
        }
        rows.push(incident_service::Model {
            incident_id,
            service_id: service.id,
            origin: Origin::Analysis,
            state: *state,
        });
    }
    let mut services = super::service::get_many(db, &manual_ids).await?;
    for (service, _) in radius.services {
        services.insert(service.id, service);
    }
    let criticalities = rows
        .iter()
        .map(|row| {
            (
                services.get(&row.service_id).and_then(|s| s.criticality),
                row.state,
            )
        })
        .collect();
    Ok((rows, criticalities))
}

/// Replaces the stored affected CIs and services of an incident.
async fn store_links(
    db: &impl ConnectionTrait,
    incident_id: Uuid,
    ci_ids: &[Uuid],
    services: &[incident_service::Model],
) -> Result<()> {
    incident_ci::Entity::delete_many()
        .filter(incident_ci::Column::IncidentId.eq(incident_id))
        .exec(db)
        .await?;
    incident_service::Entity::delete_many()
        .filter(incident_service::Column::IncidentId.eq(incident_id))
        .exec(db)
        .await?;
    if !ci_ids.is_empty() {
        incident_ci::Entity::insert_many(ci_ids.iter().map(|ci_id| incident_ci::ActiveModel {
            incident_id: Set(incident_id),
            ci_id: Set(*ci_id),
        }))
        .exec_without_returning(db)
        .await?;
    }
    if !services.is_empty() {
        incident_service::Entity::insert_many(
            services
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Writes `after` over `before`, only if nobody changed it in between.
async fn save(
    db: &impl ConnectionTrait,
    before: &incident::Model,
    after: &incident::Model,
) -> Result<()> {
    let result = incident::Entity::update_many()
        .set(after.clone().into_active_model().reset_all())
        .filter(incident::Column::Id.eq(before.id))
        .filter(incident::Column::Version.eq(before.version))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        let current = get(db, before.id).await?;
        return Err(Error::VersionMismatch {
            expected: before.version,
            actual: current.version,
        });
    }
    Ok(())
}

async fn links_of(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<(Vec<Uuid>, Vec<incident_service::Model>)> {
    let ci_ids = ci_ids_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let services = services_of(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok((ci_ids, services))
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
mod tests {
    use super::*;
    use IncidentState::*;

    #[test]
    fn the_lifecycle_allows_exactly_its_transitions() {
        let all = [New, InProgress, OnHold, Resolved, Closed];
        let allowed = [
            (New, InProgress),
            (InProgress, OnHold),
            (OnHold, InProgress),
            (InProgress, Resolved),
            (Resolved, InProgress),
            (Resolved, Closed),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    can_transition(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn critical_services_raise_the_suggested_impact() {
        assert_eq!(suggested_impact(&[]), None);
        assert_eq!(
            suggested_impact(&[(Some(Criticality::Low), ServiceState::Down)]),
            Some(Level::Low)
        );
        assert_eq!(
            suggested_impact(&[
                (Some(Criticality::Low), ServiceState::Down),
                (Some(Criticality::Critical), ServiceState::Degraded)
            ]),
            Some(Level::High)
        );
        assert_eq!(
            suggested_impact(&[(Some(Criticality::High), ServiceState::Degraded)]),
            Some(Level::Medium)
        );
        assert_eq!(
            suggested_impact(&[(Some(Criticality::Medium), ServiceState::Down)]),
            Some(Level::Medium)
        );
    }

    #[test]
    fn open_incidents_are_those_not_resolved_or_closed() {
        assert!(is_open(New) && is_open(InProgress) && is_open(OnHold));
        assert!(!is_open(Resolved) && !is_open(Closed));
    }
}
