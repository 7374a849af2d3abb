//! `Change` (a request for change): the type, its assessment, its queries and mutations,
//! and the change schedule's collisions.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::values;
use entity::{change_approval, change_request};
use uuid::Uuid;

use super::audit::{AuditEventConnection, history_of};
use super::ci::{ConfigurationItem, Criticality};
use super::context::{actor, db, graph_cache, limits, loaders, parse_id, parse_ids, patch};
use super::customer::{AffectedCustomer, service_by_id};
use super::incident::{Incident, ServiceImpact, cis_by_ids, incidents_by_ids};
use super::loaders::{ChangeApprovals, ChangeById, ChangeCis};
use super::pagination::{self, TotalCount, connection, connection_type};
use super::service::Service;
use crate::domain::audit::EntityType;
use crate::domain::change as changes;
use crate::error::Error;

mod assessment;
mod mutation;
pub use assessment::*;
pub use mutation::*;

/// The kind of a request for change.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::ChangeType")]
pub enum ChangeType {
    /// Pre-approved and low-risk: submitting it approves it.
    Standard,
    /// Submitted, assessed, then approved or rejected.
    Normal,
    /// Urgent: may be approved or rejected before its assessment completes.
    Emergency,
}

/// Where a change is in its life: `DRAFT -> SUBMITTED -> ASSESSED -> APPROVED | REJECTED`,
/// `APPROVED -> SCHEDULED -> IN_PROGRESS -> COMPLETED | FAILED | ROLLED_BACK -> CLOSED`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::ChangeState")]
pub enum ChangeState {
    /// Being written.
    Draft,
    /// Submitted for assessment (assessed automatically on submission).
    Submitted,
    /// Assessment reviewed; waiting for a decision.
    Assessed,
    /// May go ahead.
    Approved,
    /// May not go ahead; final.
    Rejected,
    /// Approved and planned in its window.
    Scheduled,
    /// Being carried out.
    InProgress,
    /// Done as planned.
    Completed,
    /// Carried out and did not work.
    Failed,
    /// Undone by its back-out plan.
    RolledBack,
    /// Reviewed after the fact; final.
    Closed,
}

/// How risky a change is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::RiskLevel")]
pub enum RiskLevel {
    /// Nothing important in the way.
    Low,
    /// Worth a look.
    Medium,
    /// Needs care, or a better window.
    High,
    /// Several high risks together.
    Critical,
}

/// A decision on a change.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::Decision")]
pub enum ApprovalDecision {
    /// It may go ahead.
    Approved,
    /// It may not.
    Rejected,
}

/// How a change ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ChangeOutcome {
    /// Done as planned.
    Completed,
    /// Carried out and did not work.
    Failed,
    /// Undone by its back-out plan.
    RolledBack,
}

impl From<ChangeOutcome> for values::ChangeState {
    fn from(outcome: ChangeOutcome) -> Self {
        match outcome {
            ChangeOutcome::Completed => values::ChangeState::Completed,
            ChangeOutcome::Failed => values::ChangeState::Failed,
            ChangeOutcome::RolledBack => values::ChangeState::RolledBack,
        }
    }
}

/// A request for change.
pub struct Change(pub change_request::Model);

impl super::lean::ReadyFields for Change {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        (name == "id").then(|| super::lean::scalar(ID(self.0.id.to_string())))
    }
}

connection_type!(
    ChangeConnection,
    ChangeEdge,
    Change,
    "A page of changes.",
    "A change in a page, with its cursor."
);

async fn change_by_id(ctx: &Context<'_>, id: Uuid) -> Result<Change> {
    loaders(ctx)?
        .load_one(ChangeById(id))
        .await?
        .map(Change)
        .ok_or_else(|| Error::not_found("change", id).into())
}

/// A request for change.
#[Object]
impl Change {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Human-readable number, unique and sequential, e.g. `CHG-000045`.
    async fn number(&self) -> &str {
        &self.0.number
    }

    /// One line saying what changes.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Standard, normal or emergency.
    #[graphql(name = "type")]
    async fn change_type(&self) -> ChangeType {
        self.0.change_type.into()
    }

    /// Where it is in its life.
    async fn state(&self) -> ChangeState {
        self.0.state.into()
    }

    /// The risk its last assessment found; null before any.
    async fn risk(&self) -> Option<RiskLevel> {
        self.0.risk.map(Into::into)
    }

    /// Start of the planned window.
    async fn planned_start(&self) -> Option<DateTime<Utc>> {
        self.0.planned_start
    }

    /// End of the planned window.
    async fn planned_end(&self) -> Option<DateTime<Utc>> {
        self.0.planned_end
    }

    /// How it will be carried out.
    async fn implementation_plan(&self) -> Option<&str> {
        self.0.implementation_plan.as_deref()
    }

    /// How it will be undone if it goes wrong.
    async fn backout_plan(&self) -> Option<&str> {
        self.0.backout_plan.as_deref()
    }

    /// How it ended: `COMPLETED`, `FAILED` or `ROLLED_BACK`; null until then.
    async fn outcome(&self) -> Option<ChangeState> {
        self.0.outcome.map(Into::into)
    }

    /// What its review (or its outcome) noted.
    async fn review_notes(&self) -> Option<&str> {
        self.0.review_notes.as_deref()
    }

    /// Grows by one with every change.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The CIs it touches.
    async fn affected_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        let ids = loaders(ctx)?
            .load_one(ChangeCis(self.0.id))
            .await?
            .unwrap_or_default();
        cis_by_ids(ctx, &ids).await
    }

    /// Who approved or rejected it, when and why, oldest first.
    async fn approvals(&self, ctx: &Context<'_>) -> Result<Vec<ChangeApproval>> {
        Ok(loaders(ctx)?
            .load_one(ChangeApprovals(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(ChangeApproval)
            .collect())
    }

    /// Its last assessment: blast radius, services, customers, open incidents, collisions
    /// and the risk with its reasons. Null before submission.
    async fn assessment(&self) -> Result<Option<ChangeAssessment>> {
        Ok(changes::assessment_of(&self.0)?.map(ChangeAssessment))
    }

    /// The audit events of this change, newest first.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEventConnection> {
        history_of(
            ctx,
            EntityType::Change,
            self.0.id.to_string(),
            pagination::window(ctx, first, after, last, before)?,
        )
        .await
    }
}

/// A decision on a change.
pub struct ChangeApproval(change_approval::Model);

/// A decision on a change.
#[Object]
impl ChangeApproval {
    /// Approved or rejected.
    async fn decision(&self) -> ApprovalDecision {
        self.0.decision.into()
    }

    /// Who decided (the API token's name).
    async fn approver(&self) -> &str {
        &self.0.approver
    }

    /// Why.
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }

    /// When.
    async fn decided_at(&self) -> DateTime<Utc> {
        self.0.decided_at
    }
}

/// A period of time.
#[derive(InputObject)]
pub struct PeriodInput {
    /// Start (included).
    pub from: DateTime<Utc>,
    /// End (excluded).
    pub to: DateTime<Utc>,
}

/// Which changes to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct ChangeFilter {
    /// Any of these states.
    pub states: Option<Vec<ChangeState>>,
    /// Only this type.
    #[graphql(name = "type")]
    pub change_type: Option<ChangeType>,
    /// Only this risk.
    pub risk: Option<RiskLevel>,
    /// Only those touching this CI.
    pub ci_id: Option<ID>,
    /// Only those whose blast radius hits this service.
    pub service_id: Option<ID>,
    /// Only those whose window overlaps this period.
    pub window: Option<PeriodInput>,
}

impl ChangeFilter {
    pub(super) fn into_domain(self) -> Result<changes::ChangeFilter, Error> {
        Ok(changes::ChangeFilter {
            states: self
                .states
                .map(|states| states.into_iter().map(Into::into).collect()),
            change_type: self.change_type.map(Into::into),
            risk: self.risk.map(Into::into),
            ci_id: self
                .ci_id
                .map(|id| parse_id("filter.ciId", &id))
                .transpose()?,
            service_id: self
                .service_id
                .map(|id| parse_id("filter.serviceId", &id))
                .transpose()?,
            window: self.window.map(|p| (p.from, p.to)),
        })
    }
}

/// Queries about changes.
#[derive(Default)]
pub struct ChangeQuery;

/// Queries about changes.
#[Object]
impl ChangeQuery {
    /// The change with this id; null with a `NOT_FOUND` error when there is none.
    async fn change(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Change>> {
        let id = parse_id("id", &id)?;
        Ok(Some(Change(changes::get(db(ctx)?, id).await?)))
    }

    /// The change with this number (`CHG-000045`).
    async fn change_by_number(&self, ctx: &Context<'_>, number: String) -> Result<Option<Change>> {
        Ok(Some(Change(
            changes::get_by_number(db(ctx)?, &number).await?,
        )))
    }

    /// Changes matching the filter, newest first, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        filter: Option<ChangeFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ChangeConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = changes::list(db(ctx)?, &filter, &window).await?;
        let total = TotalCount::new(move |db| {
            let filter = filter.clone();
            Box::pin(async move { changes::count(&db, &filter).await })
        });
        Ok(connection(page, total, Change))
    }

    /// The change schedule's conflicts in `[from, to)`: pairs of submitted to running
    /// changes whose windows overlap and whose blast radii share CIs, earliest first.
    async fn change_collisions(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChangeCollision>> {
        Ok(
            changes::collisions_between(db(ctx)?, graph_cache(ctx)?, limits(ctx)?, from, to)
                .await?
                .into_iter()
                .map(ChangeCollision)
                .collect(),
        )
    }
}
