//! Requests for change: their lifecycle, approvals and assessment.
//!
//! The assessment answers a change manager's questions before approval, each with its
//! reason: what the change's CIs hit downstream (its blast radius), which services and
//! customers, which open incidents are already there, and which other approved, scheduled
//! or running changes overlap it in time and in blast radius. A risk level follows from
//! these by the rules of [`judge`], every rule that fired listed.
//!
//! Invariants: the lifecycle only moves along [`can_transition`]; an approval or rejection
//! is recorded with who, when and why; every write is audited with the full state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::values::{ChangeState, ChangeType, Decision, RiskLevel};
use entity::{change_approval, change_ci, change_request, change_service};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
    sea_query::{Condition, Query},
};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::impact::GraphCache;
use super::impact::blast::{BlastContext, BlastRadius};
use super::numbering::{self, Sequence};
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{
    Error, Patch, Result, check_version, now, optional_trimmed, patch_trimmed, required_text,
    text_limits,
};
use crate::limits::Limits;

/// Whether a change of `change_type` may go from `from` to `to`. Standard changes are
/// pre-approved: submitting one approves it. Emergency changes may be approved or rejected
/// before their assessment completes.
pub fn can_transition(change_type: ChangeType, from: ChangeState, to: ChangeState) -> bool {
    use ChangeState::*;
    let standard = change_type == ChangeType::Standard;
    let emergency = change_type == ChangeType::Emergency;
    match (from, to) {
        (Draft, Submitted) | (Submitted, Assessed) => !standard,
        (Draft, Approved) => standard,
        (Assessed, Approved) | (Assessed, Rejected) => !standard,
        (Submitted, Approved) | (Submitted, Rejected) => emergency,
        (Approved, Scheduled) | (Scheduled, InProgress) => true,
        (InProgress, Completed) | (InProgress, Failed) | (InProgress, RolledBack) => true,
        (Completed, Closed) | (Failed, Closed) | (RolledBack, Closed) => true,
        _ => false,
    }
}

/// Changes whose blast radius others must not collide with: approved and on their way.
pub const COMMITTED_STATES: [ChangeState; 3] = [
    ChangeState::Approved,
    ChangeState::Scheduled,
    ChangeState::InProgress,
];

/// Changes on the schedule: everything submitted and not yet finished.
pub const ACTIVE_STATES: [ChangeState; 5] = [
    ChangeState::Submitted,
    ChangeState::Assessed,
    ChangeState::Approved,
    ChangeState::Scheduled,
    ChangeState::InProgress,
];

/// Whether the fields that the assessment depends on may still change.
fn editable(state: ChangeState) -> bool {
    matches!(
        state,
        ChangeState::Draft | ChangeState::Submitted | ChangeState::Assessed
    )
}

mod assessment;
mod lifecycle;
mod risk;
pub use assessment::{MAX_SCHEDULE, ScheduledCollision, assess, collisions_between};
use assessment::{compute_assessment, store_assessment, type_name};
pub use lifecycle::*;
pub use risk::*;

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub title: String,
    pub description: Option<String>,
    pub change_type: ChangeType,
    pub planned_start: Option<DateTime<Utc>>,
    pub planned_end: Option<DateTime<Utc>>,
    pub implementation_plan: Option<String>,
    pub backout_plan: Option<String>,
    pub ci_ids: Vec<Uuid>,
}

/// Changes to a change's fields; `ci_ids`, when given, replaces the list.
#[derive(Debug, Clone, Default)]
pub struct ChangeChanges {
    pub title: Option<String>,
    pub description: Patch<String>,
    pub change_type: Option<ChangeType>,
    pub planned_start: Patch<DateTime<Utc>>,
    pub planned_end: Patch<DateTime<Utc>>,
    pub implementation_plan: Patch<String>,
    pub backout_plan: Patch<String>,
    pub ci_ids: Option<Vec<Uuid>>,
}

/// Which changes to list; all given criteria must hold.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub states: Option<Vec<ChangeState>>,
    pub change_type: Option<ChangeType>,
    pub risk: Option<RiskLevel>,
    pub ci_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    /// Changes whose window overlaps `[from, to)`.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl ChangeFilter {
    pub(crate) fn condition(&self) -> Condition {
        use change_request::Column;
        let mut condition = Condition::all();
        if let Some(states) = &self.states {
            condition = condition.add(Column::State.is_in(states.iter().copied()));
        }
        if let Some(change_type) = self.change_type {
            condition = condition.add(Column::ChangeType.eq(change_type));
        }
        if let Some(risk) = self.risk {
            condition = condition.add(Column::Risk.eq(risk));
        }
        if let Some(ci_id) = self.ci_id {
            condition = condition.add(
                Column::Id.in_subquery(
                    Query::select()
                        .column(change_ci::Column::ChangeId)
                        .from(change_ci::Entity)
                        .and_where(change_ci::Column::CiId.eq(ci_id))
                        .to_owned(),
                ),
            );
        }
        if let Some(service_id) = self.service_id {
            condition = condition.add(
                Column::Id.in_subquery(
                    Query::select()
                        .column(change_service::Column::ChangeId)
                        .from(change_service::Entity)
                        .and_where(change_service::Column::ServiceId.eq(service_id))
                        .to_owned(),
                ),
            );
        }
        if let Some((from, to)) = self.window {
            condition = condition
                .add(Column::PlannedStart.lt(to))
                .add(Column::PlannedEnd.gt(from));
        }
        condition
    }
}

/// The full state of a change as the audit trail keeps it.
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(flatten)]
    change: &'a change_request::Model,
    ci_ids: Vec<Uuid>,
    /// The approval or rejection the write recorded, if it recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a change_approval::Model>,
}

impl<'a> Snapshot<'a> {
    /// The snapshot with the decision this write recorded.
    fn deciding(self, decision: Option<&'a change_approval::Model>) -> Self {
        Snapshot { decision, ..self }
    }
}

fn snapshot<'a>(change: &'a change_request::Model, ci_ids: &[Uuid]) -> Snapshot<'a> {
    let mut ci_ids = ci_ids.to_vec();
    ci_ids.sort();
    Snapshot {
        change,
        ci_ids,
        decision: None,
    }
}

/// The change with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<change_request::Model> {
    change_request::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("change", id))
}

/// The change with that id, locked until the write transaction `txn` ends (see
/// [`super::lock_row`]), or `NOT_FOUND`. Every read-modify-write starts here.
pub async fn get_for_update(txn: &impl ConnectionTrait, id: Uuid) -> Result<change_request::Model> {
    super::lock_row(txn, change_request::Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("change", id))
}

/// The change with that number (`CHG-000045`), or `NOT_FOUND`.
pub async fn get_by_number(
    db: &impl ConnectionTrait,
    number: &str,
) -> Result<change_request::Model> {
    change_request::Entity::find()
        .filter(change_request::Column::Number.eq(number.trim()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("change", number))
}

/// The changes among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, change_request::Model>> {
    let column = change_request::Column::Id;
    let rows = super::rows_in::<change_request::Entity>(db, column, ids, &[]).await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

/// One page of changes, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ChangeFilter,
    window: &PageWindow,
) -> Result<Page<change_request::Model>> {
    let select = change_request::Entity::find().filter(filter.condition());
    let key = SortKey::by(
        change_request::Column::CreatedAt,
        KeyKind::Time,
        change_request::Column::Id,
        true,
        "change:created:desc",
    );
    fetch_page(db, select, &key, window, |c| {
        (Some(KeyValue::Time(c.created_at)), KeyValue::Uuid(c.id))
    })
    .await
}

/// How many changes match `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &ChangeFilter) -> Result<u64> {
    Ok(change_request::Entity::find()
        .filter(filter.condition())
        .count(db)
        .await?)
}

/// The CIs each change touches.
pub async fn ci_ids_of(
    db: &impl ConnectionTrait,
    change_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    use change_ci::Column;
    let rows =
        super::rows_in::<change_ci::Entity>(db, Column::ChangeId, change_ids, &[Column::CiId])
            .await?;
    Ok(super::group_by(rows, |row| row.change_id)
        .into_iter()
        .map(|(id, rows)| (id, rows.into_iter().map(|row| row.ci_id).collect()))
        .collect())
}

/// The approvals and rejections of each change, oldest first.
pub async fn approvals_of(
    db: &impl ConnectionTrait,
    change_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<change_approval::Model>>> {
    use change_approval::Column;
    let order = [Column::DecidedAt, Column::Id];
    let rows =
        super::rows_in::<change_approval::Entity>(db, Column::ChangeId, change_ids, &order).await?;
    Ok(super::group_by(rows, |row| row.change_id))
}

/// The changes linked to each owner through `L`, newest first, at most `first` each.
async fn changes_by_link<L: sea_orm::EntityTrait>(
    db: &impl ConnectionTrait,
    owners: &[Uuid],
    owner: L::Column,
    record: L::Column,
    first: u64,
) -> Result<HashMap<Uuid, Vec<change_request::Model>>> {
    use sea_orm::sea_query::{Expr, Order};
    super::nested::linked::<change_request::Entity, L>(
        db,
        owners,
        owner,
        record,
        change_request::Column::Id,
        sea_orm::Condition::all(),
        vec![
            (
                Expr::col((change_request::Entity, change_request::Column::CreatedAt)),
                Order::Desc,
            ),
            (
                Expr::col((change_request::Entity, change_request::Column::Id)),
                Order::Desc,
            ),
        ],
        Some(first),
        None,
    )
    .await
}

/// The changes touching each CI, newest first, at most `first` each.
pub async fn changes_of_cis(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
    first: &u64,
) -> Result<HashMap<Uuid, Vec<change_request::Model>>> {
    changes_by_link::<change_ci::Entity>(
        db,
        ci_ids,
        change_ci::Column::CiId,
        change_ci::Column::ChangeId,
        *first,
    )
    .await
}

/// The changes whose last assessment hits each service, newest first, at most `first`
/// each.
pub async fn changes_of_services(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
    first: &u64,
) -> Result<HashMap<Uuid, Vec<change_request::Model>>> {
    changes_by_link::<change_service::Entity>(
        db,
        service_ids,
        change_service::Column::ServiceId,
        change_service::Column::ChangeId,
        *first,
    )
    .await
}

/// The stored assessment of a change, when it has one.
pub fn assessment_of(change: &change_request::Model) -> Result<Option<Assessment>> {
    change
        .assessment
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|err| Error::internal(anyhow::anyhow!("stored assessment unreadable: {err}")))
}

fn window_of(change: &change_request::Model) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((change.planned_start?, change.planned_end?))
}

fn check_window(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<()> {
    match (start, end) {
        (Some(start), Some(end)) if end <= start => Err(Error::invalid(
            "plannedEnd",
            format!("the planned end ({end}) is not after the planned start ({start})"),
        )),
        (Some(_), None) | (None, Some(_)) => Err(Error::invalid(
            "plannedEnd",
            "give both the planned start and the planned end, or neither",
        )),
        _ => Ok(()),
    }
}

async fn store_cis(db: &impl ConnectionTrait, change_id: Uuid, ci_ids: &[Uuid]) -> Result<()> {
    change_ci::Entity::delete_many()
        .filter(change_ci::Column::ChangeId.eq(change_id))
        .exec(db)
        .await?;
    if !ci_ids.is_empty() {
        change_ci::Entity::insert_many(ci_ids.iter().map(|ci_id| change_ci::ActiveModel {
            change_id: Set(change_id),
            ci_id: Set(*ci_id),
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Writes `after` over `before`, only if nobody changed it in between.
async fn save(
    db: &impl ConnectionTrait,
    before: &change_request::Model,
    after: &change_request::Model,
) -> Result<()> {
    let result = change_request::Entity::update_many()
        .set(after.clone().into_active_model().reset_all())
        .filter(change_request::Column::Id.eq(before.id))
        .filter(change_request::Column::Version.eq(before.version))
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

/// Records a change as a draft.
pub async fn create(
    db: &DatabaseConnection,
    limits: &Limits,
    actor: &Actor,
    new: NewChange,
) -> Result<change_request::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = create_in(&uow, limits, new).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn create_in(
    uow: &UnitOfWork,
    limits: &Limits,
    new: NewChange,
) -> Result<change_request::Model> {
    let title = required_text("title", &new.title, text_limits::NAME)?;
    let description = optional_trimmed("description", new.description, text_limits::DESCRIPTION)?;
    let implementation_plan = optional_trimmed(
        "implementationPlan",
        new.implementation_plan,
        text_limits::DESCRIPTION,
    )?;
    let backout_plan = optional_trimmed("backoutPlan", new.backout_plan, text_limits::DESCRIPTION)?;
    check_window(new.planned_start, new.planned_end)?;
    let ci_ids = super::dedup(new.ci_ids);
    super::check_batch_size(limits, ci_ids.len(), "CIs")?;
    let txn = uow.txn();
    super::ci::ensure_exist(txn, "ciIds", &ci_ids).await?;
    let at = now();
    let model = change_request::Model {
        id: Uuid::now_v7(),
        number: numbering::next(txn, Sequence::Change).await?,
        title,
        description,
        change_type: new.change_type,
        state: ChangeState::Draft,
        risk: None,
        planned_start: new.planned_start,
        planned_end: new.planned_end,
        implementation_plan,
        backout_plan,
        outcome: None,
        review_notes: None,
        assessment: None,
        assessed_at: None,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    model.clone().into_active_model().insert(txn).await?;
    store_cis(txn, model.id, &ci_ids).await?;
    uow.record(Event::new(
        EntityType::Change,
        model.id,
        Action::Create,
        None,
        Some(&snapshot(&model, &ci_ids)),
    )?);
    Ok(model)
}

/// Changes a change's fields, while it is a draft, submitted or assessed. A submitted or
/// assessed change is reassessed when its CIs, window or type change.
pub async fn update(
    db: &DatabaseConnection,
    cache: &GraphCache,
    limits: &Limits,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: ChangeChanges,
) -> Result<change_request::Model> {
    let title = changes
        .title
        .map(|t| required_text("title", &t, text_limits::NAME))
        .transpose()?;
    let description = patch_trimmed("description", changes.description, text_limits::DESCRIPTION)?;
    let implementation_plan = patch_trimmed(
        "implementationPlan",
        changes.implementation_plan,
        text_limits::DESCRIPTION,
    )?;
    let backout_plan = patch_trimmed(
        "backoutPlan",
        changes.backout_plan,
        text_limits::DESCRIPTION,
    )?;
    let ci_ids = changes.ci_ids.map(super::dedup);
    super::check_batch_size(limits, ci_ids.as_ref().map_or(0, Vec::len), "CIs")?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    if !editable(before.state) {
        return Err(Error::InvalidTransition(format!(
            "change {} is {} and can no longer be edited",
            before.number,
            state_name(before.state)
        )));
    }
    let before_cis = ci_ids_of(txn, &[id]).await?.remove(&id).unwrap_or_default();
    let mut after = before.clone();
    if let Some(title) = title {
        after.title = title;
    }
    if let Some(change_type) = changes.change_type {
        if change_type != before.change_type && before.state != ChangeState::Draft {
            return Err(Error::InvalidTransition(format!(
                "the type of change {} can change only while it is a draft",
                before.number
            )));
        }
        after.change_type = change_type;
    }
    after.description = description.apply(after.description);
    after.implementation_plan = implementation_plan.apply(after.implementation_plan);
    after.backout_plan = backout_plan.apply(after.backout_plan);
    after.planned_start = changes.planned_start.apply(after.planned_start);
    after.planned_end = changes.planned_end.apply(after.planned_end);
    check_window(after.planned_start, after.planned_end)?;
    let after_cis = match ci_ids {
        Some(ids) => {
            super::ci::ensure_exist(txn, "input.ciIds", &ids).await?;
            ids
        }
        None => before_cis.clone(),
    };
    let mut sorted_before = before_cis.clone();
    sorted_before.sort();
    let mut sorted_after = after_cis.clone();
    sorted_after.sort();
    let cis_changed = sorted_before != sorted_after;
    if after == before && !cis_changed {
        return Ok(before);
    }
    if cis_changed {
        store_cis(txn, id, &after_cis).await?;
    }
    let window_changed =
        (after.planned_start, after.planned_end) != (before.planned_start, before.planned_end);
    if before.state != ChangeState::Draft && (cis_changed || window_changed) {
        let assessment = compute_assessment(txn, cache, limits, &after, &after_cis).await?;
        store_assessment(txn, &mut after, &assessment).await?;
    }
    after.version = before.version + 1;
    after.updated_at = now();
    save(txn, &before, &after).await?;
    uow.record(Event::new(
        EntityType::Change,
        id,
        Action::Update,
        Some(&snapshot(&before, &before_cis)),
        Some(&snapshot(&after, &after_cis)),
    )?);
    uow.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests;
