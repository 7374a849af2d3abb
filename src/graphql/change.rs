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

/// One rule of the risk judgement that fired.
#[derive(SimpleObject)]
pub struct RiskReason {
    /// Stable name of the rule: `BLAST_RADIUS`, `CRITICAL_SERVICE_DOWN`,
    /// `CRITICAL_SERVICE_DEGRADED`, `HIGH_SERVICE_DOWN`, `OPEN_INCIDENT`,
    /// `OPEN_MAJOR_INCIDENT`, `COLLISION`, `NO_WINDOW`, `COMBINED_HIGH_RISKS` or `EMERGENCY`.
    pub rule: String,
    /// The risk this rule alone gives.
    pub level: RiskLevel,
    /// What was found.
    pub message: String,
}

/// A service in a change's blast radius.
pub struct AssessedService(changes::AssessedService);

/// A service in a change's blast radius.
#[Object]
impl AssessedService {
    /// The service.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        service_by_id(ctx, self.0.service_id).await
    }

    /// How badly the change would hit it if it went wrong.
    async fn state(&self) -> ServiceImpact {
        self.0.state.into()
    }

    /// Its criticality when assessed.
    async fn criticality(&self) -> Option<Criticality> {
        self.0.criticality.map(Into::into)
    }
}

/// Another change overlapping a change in time and in blast radius.
pub struct AssessmentCollision(changes::Collision);

/// Another change overlapping a change in time and in blast radius.
#[Object]
impl AssessmentCollision {
    /// The other change.
    async fn change(&self, ctx: &Context<'_>) -> Result<Change> {
        change_by_id(ctx, self.0.change_id).await
    }

    /// Start of the shared time.
    async fn overlap_start(&self) -> DateTime<Utc> {
        self.0.overlap_start
    }

    /// End of the shared time.
    async fn overlap_end(&self) -> DateTime<Utc> {
        self.0.overlap_end
    }

    /// How many CIs both blast radii hold.
    async fn shared_ci_count(&self) -> usize {
        self.0.shared_ci_count
    }

    /// The first of them (at most 200).
    async fn shared_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.shared_ci_ids).await
    }
}

/// What a change would hit and how risky it is, each finding with its reason.
pub struct ChangeAssessment(changes::Assessment);

/// What a change would hit and how risky it is.
#[Object]
impl ChangeAssessment {
    /// When it was computed.
    async fn assessed_at(&self) -> DateTime<Utc> {
        self.0.assessed_at
    }

    /// The risk: the highest level any rule gives, critical for several high findings,
    /// one level up for an emergency.
    async fn risk(&self) -> RiskLevel {
        self.0.risk.into()
    }

    /// Every rule that fired.
    async fn reasons(&self) -> Vec<RiskReason> {
        self.0
            .reasons
            .iter()
            .map(|r| RiskReason {
                rule: r.rule.clone(),
                level: r.level.into(),
                message: r.message.clone(),
            })
            .collect()
    }

    /// How many CIs the change's CIs hit downstream, themselves included.
    async fn blast_radius(&self) -> usize {
        self.0.blast_radius
    }

    /// The first CIs of the blast radius (at most 200), nearest first.
    async fn blast_radius_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.blast_radius_ci_ids).await
    }

    /// The services hit, worst first.
    async fn affected_services(&self) -> Vec<AssessedService> {
        self.0
            .affected_services
            .iter()
            .cloned()
            .map(AssessedService)
            .collect()
    }

    /// The customers of those services, with their agreements.
    async fn affected_customers(&self, ctx: &Context<'_>) -> Result<Vec<AffectedCustomer>> {
        let ids: Vec<Uuid> = self
            .0
            .affected_services
            .iter()
            .map(|s| s.service_id)
            .collect();
        super::customer::affected_customers(ctx, &ids, None).await
    }

    /// Incidents open on CIs of the blast radius when assessed.
    async fn open_incidents(&self, ctx: &Context<'_>) -> Result<Vec<Incident>> {
        incidents_by_ids(ctx, &self.0.open_incident_ids).await
    }

    /// Approved, scheduled or running changes overlapping this one in time and in blast
    /// radius.
    async fn collisions(&self) -> Vec<AssessmentCollision> {
        self.0
            .collisions
            .iter()
            .cloned()
            .map(AssessmentCollision)
            .collect()
    }
}

/// Two changes on the schedule that overlap in time and in blast radius.
pub struct ChangeCollision(changes::ScheduledCollision);

/// Two changes on the schedule that overlap in time and in blast radius.
#[Object]
impl ChangeCollision {
    /// The change that starts first (or has the lower number).
    async fn first(&self) -> Change {
        Change(self.0.first.clone())
    }

    /// The other change.
    async fn second(&self) -> Change {
        Change(self.0.second.clone())
    }

    /// Start of the shared time within the period asked about.
    async fn overlap_start(&self) -> DateTime<Utc> {
        self.0.overlap_start
    }

    /// End of the shared time within the period asked about.
    async fn overlap_end(&self) -> DateTime<Utc> {
        self.0.overlap_end
    }

    /// How many CIs both blast radii hold.
    async fn shared_ci_count(&self) -> usize {
        self.0.shared_ci_count
    }

    /// The first of them (at most 200).
    async fn shared_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.shared_ci_ids).await
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
    fn into_domain(self) -> Result<changes::ChangeFilter, Error> {
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

/// A change to record (as a draft).
#[derive(InputObject)]
pub struct CreateChangeInput {
    /// One line saying what changes.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Standard, normal or emergency; normal when not given.
    #[graphql(name = "type", default_with = "ChangeType::Normal")]
    pub change_type: ChangeType,
    /// Start of the planned window.
    pub planned_start: Option<DateTime<Utc>>,
    /// End of the planned window.
    pub planned_end: Option<DateTime<Utc>>,
    /// How it will be carried out.
    pub implementation_plan: Option<String>,
    /// How it will be undone.
    pub backout_plan: Option<String>,
    /// The CIs it touches.
    #[graphql(default)]
    pub ci_ids: Vec<ID>,
}

/// Changes to a change, while it is a draft, submitted or assessed. Omitted fields stay;
/// optional fields set to null are cleared.
#[derive(InputObject, Default)]
pub struct UpdateChangeInput {
    /// New title.
    pub title: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New type (drafts only).
    #[graphql(name = "type")]
    pub change_type: Option<ChangeType>,
    /// New start of the window; null clears it.
    pub planned_start: MaybeUndefined<DateTime<Utc>>,
    /// New end of the window; null clears it.
    pub planned_end: MaybeUndefined<DateTime<Utc>>,
    /// New implementation plan; null clears it.
    pub implementation_plan: MaybeUndefined<String>,
    /// New back-out plan; null clears it.
    pub backout_plan: MaybeUndefined<String>,
    /// The CIs it touches (replaces the list).
    pub ci_ids: Option<Vec<ID>>,
}

/// Moves a change to `to`, with the approver's comment or the outcome's notes, and the
/// review notes.
async fn move_change(
    ctx: &Context<'_>,
    id: &ID,
    expected_version: Option<i32>,
    to: values::ChangeState,
    comment: Option<String>,
    review_notes: Option<String>,
) -> Result<Change> {
    let details = changes::TransitionDetails {
        comment,
        review_notes,
    };
    let id = parse_id("id", id)?;
    Ok(Change(
        changes::transition(
            db(ctx)?,
            graph_cache(ctx)?,
            limits(ctx)?,
            &actor(ctx),
            id,
            expected_version,
            to,
            details,
        )
        .await?,
    ))
}

/// Mutations of changes. A move the lifecycle does not allow is an `INVALID_TRANSITION`
/// error that changes nothing.
#[derive(Default)]
pub struct ChangeMutation;

/// Mutations of changes.
#[Object]
impl ChangeMutation {
    /// Records a change as a draft.
    async fn create_change(&self, ctx: &Context<'_>, input: CreateChangeInput) -> Result<Change> {
        let new = changes::NewChange {
            title: input.title,
            description: input.description,
            change_type: input.change_type.into(),
            planned_start: input.planned_start,
            planned_end: input.planned_end,
            implementation_plan: input.implementation_plan,
            backout_plan: input.backout_plan,
            ci_ids: parse_ids("input.ciIds", &input.ci_ids)?,
        };
        Ok(Change(
            changes::create(db(ctx)?, limits(ctx)?, &actor(ctx), new).await?,
        ))
    }

    /// Changes a draft, submitted or assessed change; a submitted or assessed one is
    /// reassessed when its CIs or window change.
    async fn update_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateChangeInput,
    ) -> Result<Change> {
        let id = parse_id("id", &id)?;
        let update = changes::ChangeChanges {
            title: input.title,
            description: patch(input.description),
            change_type: input.change_type.map(Into::into),
            planned_start: patch(input.planned_start),
            planned_end: patch(input.planned_end),
            implementation_plan: patch(input.implementation_plan),
            backout_plan: patch(input.backout_plan),
            ci_ids: input
                .ci_ids
                .map(|ids| parse_ids("input.ciIds", &ids))
                .transpose()?,
        };
        Ok(Change(
            changes::update(
                db(ctx)?,
                graph_cache(ctx)?,
                limits(ctx)?,
                &actor(ctx),
                id,
                expected_version,
                update,
            )
            .await?,
        ))
    }

    /// Submits a draft: it is assessed at once. A standard change is pre-approved and goes
    /// straight to `APPROVED`.
    async fn submit_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Submitted,
            None,
            None,
        )
        .await
    }

    /// Recomputes the assessment as things stand now; a submitted change becomes
    /// `ASSESSED`.
    async fn assess_change(&self, ctx: &Context<'_>, id: ID) -> Result<Change> {
        let id = parse_id("id", &id)?;
        Ok(Change(
            changes::assess(db(ctx)?, graph_cache(ctx)?, limits(ctx)?, &actor(ctx), id).await?,
        ))
    }

    /// Approves an assessed change (an emergency change also when only submitted),
    /// recording who, when and why.
    async fn approve_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Approved,
            comment,
            None,
        )
        .await
    }

    /// Rejects an assessed change (an emergency change also when only submitted),
    /// recording who, when and why.
    async fn reject_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Rejected,
            comment,
            None,
        )
        .await
    }

    /// Schedules an approved change in its planned window.
    async fn schedule_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Scheduled,
            None,
            None,
        )
        .await
    }

    /// Starts carrying out a scheduled change.
    async fn start_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::InProgress,
            None,
            None,
        )
        .await
    }

    /// Records how a change in progress ended.
    async fn complete_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        outcome: ChangeOutcome,
        notes: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(ctx, &id, expected_version, outcome.into(), notes, None).await
    }

    /// Closes a finished change after its review.
    async fn close_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        review_notes: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Closed,
            None,
            review_notes,
        )
        .await
    }
}
