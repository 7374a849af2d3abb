//! `Incident`: the type, its queries and mutations, and the priority matrix.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use entity::values;
use entity::{incident, incident_service, priority_rule};
use uuid::Uuid;

use super::audit::{AuditEventConnection, history_of};
use super::ci::ConfigurationItem;
use super::context::{actor, db, graph_cache, limits, loaders, parse_id, parse_ids, patch};
use super::customer::{AffectedCustomer, affected_customers, service_by_id};
use super::loaders::{CiById, IncidentById, IncidentCis, IncidentServices};
use super::pagination::{self, TotalCount, connection, connection_type};
use super::service::Service;
use crate::domain::audit::EntityType;
use crate::domain::incident as incidents;

mod filter;

pub use filter::IncidentFilter;

/// A three-step scale for the impact and urgency of an incident.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::Level")]
pub enum Level {
    /// Little effect, or it can wait.
    Low,
    /// Some users or some functions; soon.
    Medium,
    /// Many users or a whole business function; now.
    High,
}

/// Where an incident is in its life: `NEW -> IN_PROGRESS <-> ON_HOLD`,
/// `IN_PROGRESS -> RESOLVED -> CLOSED`, and `RESOLVED` may be reopened to `IN_PROGRESS`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::IncidentState")]
pub enum IncidentState {
    /// Reported, nobody working on it yet.
    New,
    /// Being worked on (the first time it gets here is its response).
    InProgress,
    /// Waiting on someone else.
    OnHold,
    /// Service restored; can be reopened.
    Resolved,
    /// Confirmed resolved; final.
    Closed,
}

/// How badly a service is hit.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::ServiceState")]
pub enum ServiceImpact {
    /// Works, with less redundancy or capacity.
    Degraded,
    /// Out of service: counts against availability.
    Down,
}

/// How a service came to be listed on an incident.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::Origin")]
pub enum ServiceOrigin {
    /// Derived from the affected CIs by impact analysis; recomputed when they change.
    Analysis,
    /// Named by a person; stays until removed by a person.
    Manual,
}

/// An unplanned interruption or degradation of a service.
pub struct Incident(pub incident::Model);

impl super::lean::ReadyFields for Incident {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        (name == "id").then(|| super::lean::scalar(ID(self.0.id.to_string())))
    }
}

connection_type!(
    IncidentConnection,
    IncidentEdge,
    Incident,
    "A page of incidents.",
    "An incident in a page, with its cursor."
);

/// Incidents by id, in the order of `ids`, skipping those that no longer exist.
pub(super) async fn incidents_by_ids(ctx: &Context<'_>, ids: &[Uuid]) -> Result<Vec<Incident>> {
    let found = loaders(ctx)?
        .load_many(ids.iter().copied().map(IncidentById))
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(&IncidentById(*id)).cloned().map(Incident))
        .collect())
}

/// CIs by id, in the order of `ids`, skipping those that no longer exist.
pub(super) async fn cis_by_ids(ctx: &Context<'_>, ids: &[Uuid]) -> Result<Vec<ConfigurationItem>> {
    let found = loaders(ctx)?
        .load_many(ids.iter().copied().map(CiById))
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            found
                .get(&CiById(*id))
                .cloned()
                .map(ConfigurationItem::shared)
        })
        .collect())
}

/// An unplanned interruption or degradation of a service.
#[Object]
impl Incident {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Human-readable number, unique and sequential, e.g. `INC-000123`.
    async fn number(&self) -> &str {
        &self.0.number
    }

    /// One line saying what is wrong.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// How much of the business is affected.
    async fn impact(&self) -> Level {
        self.0.impact.into()
    }

    /// How soon it must be dealt with.
    async fn urgency(&self) -> Level {
        self.0.urgency.into()
    }

    /// 1 (most urgent) to 5, from impact and urgency by the priority matrix.
    async fn priority(&self) -> i32 {
        self.0.priority
    }

    /// The priority as people say it: `P1` to `P5`.
    async fn priority_label(&self) -> String {
        format!("P{}", self.0.priority)
    }

    /// The impact the affected services suggest (a critical service hit suggests `HIGH`);
    /// null when no service is affected.
    async fn suggested_impact(&self) -> Option<Level> {
        self.0.suggested_impact.map(Into::into)
    }

    /// Whether it is handled as a major incident.
    async fn major(&self) -> bool {
        self.0.major
    }

    /// The team working on it.
    async fn assignee_group(&self) -> Option<&str> {
        self.0.assignee_group.as_deref()
    }

    /// Where it is in its life.
    async fn state(&self) -> IncidentState {
        self.0.state.into()
    }

    /// What was done to resolve it.
    async fn resolution_notes(&self) -> Option<&str> {
        self.0.resolution_notes.as_deref()
    }

    /// When it started.
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }

    /// When work first started (its response).
    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged_at
    }

    /// When it was resolved; cleared when reopened.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }

    /// When it was closed.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
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

    /// The CIs it affects.
    async fn affected_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        let ids = loaders(ctx)?
            .load_one(IncidentCis(self.0.id))
            .await?
            .unwrap_or_default();
        cis_by_ids(ctx, &ids).await
    }

    /// The impact analysis of its CIs (downstream, the default depth) on the estate as it
    /// was when the incident opened: what it hit then, whatever changed since. Null when it
    /// names no CI.
    async fn impact_at_open(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::impact::ImpactReport>> {
        let ci_ids = loaders(ctx)?
            .load_one(IncidentCis(self.0.id))
            .await?
            .unwrap_or_default();
        if ci_ids.is_empty() {
            return Ok(None);
        }
        let request = crate::domain::impact::ImpactRequest {
            ci_ids,
            direction: crate::domain::impact::analysis::Direction::Downstream,
            max_depth: None,
            relationship_types: None,
            include_retired: false,
            limit: None,
            as_of: Some(self.0.opened_at),
        };
        Ok(Some(super::impact::ImpactReport::of(ctx, &request).await?))
    }

    /// The services it affects, derived from the CIs or named by hand, worst first.
    async fn affected_services(&self, ctx: &Context<'_>) -> Result<Vec<IncidentService>> {
        let mut rows = loaders(ctx)?
            .load_one(IncidentServices(self.0.id))
            .await?
            .unwrap_or_default();
        rows.sort_by(|a, b| b.state.cmp(&a.state).then(a.service_id.cmp(&b.service_id)));
        Ok(rows.into_iter().map(IncidentService).collect())
    }

    /// The customers of the affected services, with the targets that apply to this
    /// incident's priority.
    async fn affected_customers(&self, ctx: &Context<'_>) -> Result<Vec<AffectedCustomer>> {
        let rows = loaders(ctx)?
            .load_one(IncidentServices(self.0.id))
            .await?
            .unwrap_or_default();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.service_id).collect();
        affected_customers(ctx, &ids, Some(self.0.priority)).await
    }

    /// The audit events of this incident, newest first.
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
            EntityType::Incident,
            self.0.id.to_string(),
            pagination::window(ctx, first, after, last, before)?,
        )
        .await
    }
}

/// A service an incident affects.
pub struct IncidentService(incident_service::Model);

/// A service an incident affects.
#[Object]
impl IncidentService {
    /// The service.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        service_by_id(ctx, self.0.service_id).await
    }

    /// Derived by analysis or named by hand.
    async fn origin(&self) -> ServiceOrigin {
        self.0.origin.into()
    }

    /// How badly it is hit; `DOWN` counts against its availability.
    async fn state(&self) -> ServiceImpact {
        self.0.state.into()
    }
}

/// One cell of the impact x urgency matrix.
pub struct PriorityRule(priority_rule::Model);

/// One cell of the impact x urgency matrix.
#[Object]
impl PriorityRule {
    /// The impact.
    async fn impact(&self) -> Level {
        self.0.impact.into()
    }

    /// The urgency.
    async fn urgency(&self) -> Level {
        self.0.urgency.into()
    }

    /// The priority they give, 1 (most urgent) to 5.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
}

/// Queries about incidents.
#[derive(Default)]
pub struct IncidentQuery;

/// Queries about incidents.
#[Object]
impl IncidentQuery {
    /// The incident with this id; null with a `NOT_FOUND` error when there is none.
    async fn incident(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Incident>> {
        let id = parse_id("id", &id)?;
        Ok(Some(Incident(incidents::get(db(ctx)?, id).await?)))
    }

    /// The incident with this number (`INC-000123`).
    async fn incident_by_number(
        &self,
        ctx: &Context<'_>,
        number: String,
    ) -> Result<Option<Incident>> {
        Ok(Some(Incident(
            incidents::get_by_number(db(ctx)?, &number).await?,
        )))
    }

    /// Incidents matching the filter, newest first, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        filter: Option<IncidentFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<IncidentConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = incidents::list(db(ctx)?, &filter, &window).await?;
        let total = TotalCount::new(move |db| {
            let filter = filter.clone();
            Box::pin(async move { incidents::count(&db, &filter).await })
        });
        Ok(connection(page, total, Incident))
    }

    /// The impact x urgency matrix that gives incidents their priority, highest impact first.
    async fn priority_matrix(&self, ctx: &Context<'_>) -> Result<Vec<PriorityRule>> {
        Ok(incidents::priority_matrix(db(ctx)?)
            .await?
            .into_iter()
            .map(PriorityRule)
            .collect())
    }
}

/// A service named by hand as affected.
#[derive(InputObject)]
pub struct AffectedServiceInput {
    /// The service.
    pub service_id: ID,
    /// How badly it is hit; `DOWN` when not given.
    #[graphql(default_with = "ServiceImpact::Down")]
    pub state: ServiceImpact,
}

fn manual_services(
    field: &str,
    services: Vec<AffectedServiceInput>,
) -> Result<Vec<incidents::ManualService>, crate::error::Error> {
    services
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(incidents::ManualService {
                service_id: parse_id(&format!("{field}[{i}].serviceId"), &s.service_id)?,
                state: s.state.into(),
            })
        })
        .collect()
}

/// An incident to open.
#[derive(InputObject)]
pub struct CreateIncidentInput {
    /// One line saying what is wrong.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// How much of the business is affected; when not given, the impact the affected
    /// services suggest, else `MEDIUM`.
    pub impact: Option<Level>,
    /// How soon it must be dealt with; `MEDIUM` when not given.
    #[graphql(default_with = "Level::Medium")]
    pub urgency: Level,
    /// Whether it is handled as a major incident.
    #[graphql(default)]
    pub major: bool,
    /// The team working on it.
    pub assignee_group: Option<String>,
    /// The CIs it affects; the affected services are derived from them.
    #[graphql(default)]
    pub ci_ids: Vec<ID>,
    /// Services affected that analysis would not find.
    #[graphql(default)]
    pub services: Vec<AffectedServiceInput>,
    /// When it started, when recorded after the fact; now when not given.
    pub opened_at: Option<DateTime<Utc>>,
}

/// Changes to an incident. Omitted fields stay; lists given replace the current ones.
#[derive(InputObject, Default)]
pub struct UpdateIncidentInput {
    /// New title.
    pub title: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New impact (the priority follows).
    pub impact: Option<Level>,
    /// New urgency (the priority follows).
    pub urgency: Option<Level>,
    /// Major or not.
    pub major: Option<bool>,
    /// New team; null clears it.
    pub assignee_group: MaybeUndefined<String>,
    /// The affected CIs; the derived services are recomputed.
    pub ci_ids: Option<Vec<ID>>,
    /// The services named by hand.
    pub services: Option<Vec<AffectedServiceInput>>,
}

/// Mutations of incidents.
#[derive(Default)]
pub struct IncidentMutation;

/// Mutations of incidents.
#[Object]
impl IncidentMutation {
    /// Opens an incident: numbers it, derives its affected services and its priority.
    async fn create_incident(
        &self,
        ctx: &Context<'_>,
        input: CreateIncidentInput,
    ) -> Result<Incident> {
        let new = incidents::NewIncident {
            title: input.title,
            description: input.description,
            impact: input.impact.map(Into::into),
            urgency: input.urgency.into(),
            major: input.major,
            assignee_group: input.assignee_group,
            ci_ids: parse_ids("input.ciIds", &input.ci_ids)?,
            services: manual_services("input.services", input.services)?,
            opened_at: input.opened_at,
        };
        let cache: &Arc<_> = graph_cache(ctx)?;
        Ok(Incident(
            incidents::create(db(ctx)?, cache, limits(ctx)?, &actor(ctx), new).await?,
        ))
    }

    /// Changes an incident. With `expectedVersion`, only if it is still at that version.
    async fn update_incident(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateIncidentInput,
    ) -> Result<Incident> {
        let id = parse_id("id", &id)?;
        let changes = incidents::IncidentChanges {
            title: input.title,
            description: patch(input.description),
            impact: input.impact.map(Into::into),
            urgency: input.urgency.map(Into::into),
            major: input.major,
            assignee_group: patch(input.assignee_group),
            ci_ids: input
                .ci_ids
                .map(|ids| parse_ids("input.ciIds", &ids))
                .transpose()?,
            services: input
                .services
                .map(|s| manual_services("input.services", s))
                .transpose()?,
        };
        Ok(Incident(
            incidents::update(
                db(ctx)?,
                graph_cache(ctx)?,
                limits(ctx)?,
                &actor(ctx),
                id,
                expected_version,
                changes,
            )
            .await?,
        ))
    }

    /// Moves an incident along its lifecycle; any move the lifecycle does not allow is an
    /// `INVALID_TRANSITION` error that changes nothing. `at` records when it happened (now
    /// when not given). Resolving needs `resolutionNotes`.
    async fn transition_incident(
        &self,
        ctx: &Context<'_>,
        id: ID,
        to: IncidentState,
        at: Option<DateTime<Utc>>,
        resolution_notes: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Incident> {
        let id = parse_id("id", &id)?;
        Ok(Incident(
            incidents::transition(
                db(ctx)?,
                &actor(ctx),
                id,
                expected_version,
                to.into(),
                at,
                resolution_notes,
            )
            .await?,
        ))
    }

    /// Sets one cell of the priority matrix. Incidents keep their priority until their
    /// impact or urgency changes.
    async fn set_priority_rule(
        &self,
        ctx: &Context<'_>,
        impact: Level,
        urgency: Level,
        priority: i32,
    ) -> Result<PriorityRule> {
        Ok(PriorityRule(
            incidents::set_priority_rule(
                db(ctx)?,
                &actor(ctx),
                impact.into(),
                urgency.into(),
                priority,
            )
            .await?,
        ))
    }
}
