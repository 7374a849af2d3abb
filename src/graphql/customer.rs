//! `Customer`, `ServiceLevel` and `ServiceReport`: who consumes the services, what each
//! service promises, and how it kept its promises over a period.

use std::collections::HashSet;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::values::PriorityTarget as StoredTarget;
use entity::{customer, customer_service, service_level};
use uuid::Uuid;

use super::audit::{AuditEventConnection, history_of};
use super::change::ChangeState;
use super::ci::TextFilter;
use super::context::{actor, db, loaders, parse_id, patch};
use super::incident::Incident;
use super::loaders::{CustomerById, CustomersOfService, ServiceById, ServiceLevelOf};
use super::pagination::{self, TotalCount, connection, connection_type};
use super::service::Service;
use crate::domain::TextMatch;
use crate::domain::audit::EntityType;
use crate::domain::{customer as customers, service_level as service_levels};
use crate::error::Error;

/// An organisation or department that consumes services.
pub struct Customer(pub customer::Model);

impl super::lean::ReadyFields for Customer {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        (name == "id").then(|| super::lean::scalar(ID(self.0.id.to_string())))
    }
}

connection_type!(
    CustomerConnection,
    CustomerEdge,
    Customer,
    "A page of customers.",
    "A customer in a page, with its cursor."
);

/// An organisation or department that consumes services.
#[Object]
impl Customer {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique name, e.g. `Finance`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The person to talk to.
    async fn contact_name(&self) -> Option<&str> {
        self.0.contact_name.as_deref()
    }

    /// Their email address.
    async fn contact_email(&self) -> Option<&str> {
        self.0.contact_email.as_deref()
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Grows by one with every change, including changes to the services consumed.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the customer was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the customer last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The services the customer consumes, with the agreement for each.
    async fn services(&self, ctx: &Context<'_>) -> Result<Vec<CustomerServiceLink>> {
        let links = loaders(ctx)?
            .load_one(super::loaders::ServicesOfCustomer(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(links.into_iter().map(CustomerServiceLink).collect())
    }

    /// The audit events of this customer, newest first.
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
            EntityType::Customer,
            self.0.id.to_string(),
            pagination::window(ctx, first, after, last, before)?,
        )
        .await
    }
}

/// A service a customer consumes.
pub struct CustomerServiceLink(customer_service::Model);

/// A service a customer consumes.
#[Object]
impl CustomerServiceLink {
    /// The service.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        service_by_id(ctx, self.0.service_id).await
    }

    /// The name of the service level agreement that applies, e.g. `Gold`.
    async fn agreement(&self) -> Option<&str> {
        self.0.agreement.as_deref()
    }

    /// Since when the customer consumes it.
    async fn since(&self) -> DateTime<Utc> {
        self.0.added_at
    }

    /// The targets the service promises.
    async fn service_level(&self, ctx: &Context<'_>) -> Result<Option<ServiceLevel>> {
        service_level_of(ctx, self.0.service_id).await
    }
}

pub(super) async fn service_by_id(ctx: &Context<'_>, id: Uuid) -> Result<Service> {
    loaders(ctx)?
        .load_one(ServiceById(id))
        .await?
        .map(|s| Service(s, None))
        .ok_or_else(|| Error::not_found("service", id).into())
}

pub(super) async fn service_level_of(
    ctx: &Context<'_>,
    service_id: Uuid,
) -> Result<Option<ServiceLevel>> {
    Ok(loaders(ctx)?
        .load_one(ServiceLevelOf(service_id))
        .await?
        .map(ServiceLevel))
}

/// A customer consuming a service hit by an incident, a change or a failure: who to tell,
/// under which agreement, and (for an incident) the targets that apply to it.
pub struct AffectedCustomer {
    link: customer_service::Model,
    /// The priority of the incident, when there is one.
    priority: Option<i32>,
}

/// The customers consuming any of `service_ids`, by service then customer.
pub(super) async fn affected_customers(
    ctx: &Context<'_>,
    service_ids: &[Uuid],
    priority: Option<i32>,
) -> Result<Vec<AffectedCustomer>> {
    let keys: Vec<CustomersOfService> = service_ids
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(CustomersOfService)
        .collect();
    let found = loaders(ctx)?.load_many(keys).await?;
    let mut links: Vec<customer_service::Model> = found.into_values().flatten().collect();
    let order: Vec<Uuid> = service_ids.to_vec();
    links.sort_by_key(|l| (order.iter().position(|s| *s == l.service_id), l.customer_id));
    Ok(links
        .into_iter()
        .map(|link| AffectedCustomer { link, priority })
        .collect())
}

impl AffectedCustomer {
    async fn target(&self, ctx: &Context<'_>) -> Result<Option<StoredTarget>> {
        let Some(priority) = self.priority else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .load_one(ServiceLevelOf(self.link.service_id))
            .await?
            .and_then(|level| service_levels::target_for(&level, priority).cloned()))
    }
}

/// A customer consuming a hit service.
#[Object]
impl AffectedCustomer {
    /// The customer.
    async fn customer(&self, ctx: &Context<'_>) -> Result<Customer> {
        loaders(ctx)?
            .load_one(CustomerById(self.link.customer_id))
            .await?
            .map(Customer)
            .ok_or_else(|| Error::not_found("customer", self.link.customer_id).into())
    }

    /// The hit service they consume.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        service_by_id(ctx, self.link.service_id).await
    }

    /// The name of their service level agreement.
    async fn agreement(&self) -> Option<&str> {
        self.link.agreement.as_deref()
    }

    /// The targets the service promises.
    async fn service_level(&self, ctx: &Context<'_>) -> Result<Option<ServiceLevel>> {
        service_level_of(ctx, self.link.service_id).await
    }

    /// For an incident: the response target for its priority, in minutes.
    async fn response_target_minutes(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        Ok(self.target(ctx).await?.and_then(|t| t.response_minutes))
    }

    /// For an incident: the resolution target for its priority, in minutes.
    async fn resolution_target_minutes(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        Ok(self.target(ctx).await?.and_then(|t| t.resolution_minutes))
    }
}

/// What a service promises: availability over a period, and how fast incidents of each
/// priority are answered and resolved.
pub struct ServiceLevel(pub service_level::Model);

/// Response and resolution targets for incidents of one priority.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "PriorityTargetInput")]
pub struct PriorityTarget {
    /// 1 (most urgent) to 5.
    pub priority: i32,
    /// Minutes from opening to the start of work (`IN_PROGRESS`).
    pub response_minutes: Option<i64>,
    /// Minutes from opening to resolution.
    pub resolution_minutes: Option<i64>,
}

/// What a service promises.
#[Object]
impl ServiceLevel {
    /// Percent of the time the service must not be down, e.g. 99.9.
    async fn availability_target(&self) -> Option<f64> {
        self.0.availability_target
    }

    /// Targets per incident priority, most urgent first.
    async fn targets(&self) -> Vec<PriorityTarget> {
        self.0
            .targets
            .0
            .iter()
            .map(|t| PriorityTarget {
                priority: t.priority,
                response_minutes: t.response_minutes,
                resolution_minutes: t.resolution_minutes,
            })
            .collect()
    }

    /// Grows by one with every change.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the targets last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// How many incidents met a target.
#[derive(SimpleObject)]
pub struct TargetCompliance {
    /// Answered (or resolved) within the target.
    pub met: usize,
    /// Answered late, or not answered and already past the target.
    pub missed: usize,
    /// Not answered yet, still within the target.
    pub pending: usize,
    /// Incidents whose priority has no such target.
    pub without_target: usize,
    /// `met / (met + missed)`, from 0 to 1; null when none is decided.
    pub share: Option<f64>,
}

impl From<&service_levels::Compliance> for TargetCompliance {
    fn from(c: &service_levels::Compliance) -> Self {
        TargetCompliance {
            met: c.met,
            missed: c.missed,
            pending: c.pending,
            without_target: c.without_target,
            share: c.share(),
        }
    }
}

/// How many incidents of one priority.
#[derive(SimpleObject)]
pub struct PriorityCount {
    /// 1 to 5.
    pub priority: i32,
    /// Incidents of that priority.
    pub count: usize,
}

/// How many changes reached one outcome.
#[derive(SimpleObject)]
pub struct OutcomeCount {
    /// `COMPLETED`, `FAILED` or `ROLLED_BACK`.
    pub outcome: ChangeState,
    /// Changes with that outcome.
    pub count: usize,
}

/// A stretch of time the service was down, and the incidents that made it so.
pub struct Outage(service_levels::Outage);

/// A stretch of time the service was down.
#[Object]
impl Outage {
    /// When it started (or the start of the period).
    async fn start(&self) -> DateTime<Utc> {
        self.0.start
    }

    /// When it ended (or the end of the period, or now).
    async fn end(&self) -> DateTime<Utc> {
        self.0.end
    }

    /// Its length in minutes.
    async fn minutes(&self) -> f64 {
        (self.0.end - self.0.start).num_milliseconds() as f64 / 60_000.0
    }

    /// The incidents that had the service down.
    async fn incidents(&self, ctx: &Context<'_>) -> Result<Vec<Incident>> {
        super::incident::incidents_by_ids(ctx, &self.0.incident_ids).await
    }
}

/// A service measured over a period against its targets.
pub struct ServiceReport(service_levels::ServiceReport);

fn minutes(delta: chrono::TimeDelta) -> f64 {
    delta.num_milliseconds() as f64 / 60_000.0
}

/// A service measured over a period against its targets.
#[Object]
impl ServiceReport {
    /// The service.
    async fn service(&self) -> Service {
        Service(self.0.service.clone(), None)
    }

    /// Start of the period (included).
    async fn from(&self) -> DateTime<Utc> {
        self.0.from
    }

    /// End of the period (excluded).
    async fn to(&self) -> DateTime<Utc> {
        self.0.to
    }

    /// The targets measured against; null when the service has none.
    async fn service_level(&self) -> Option<ServiceLevel> {
        self.0.level.clone().map(ServiceLevel)
    }

    /// Incidents affecting the service opened in the period.
    async fn incident_count(&self) -> usize {
        self.0.incidents.len()
    }

    /// Those incidents, newest first (at most `first`).
    async fn incidents(
        &self,
        #[graphql(default = 100, validator(minimum = 0, maximum = 1000))] first: i32,
    ) -> Vec<Incident> {
        self.0
            .incidents
            .iter()
            .take(first as usize)
            .cloned()
            .map(Incident)
            .collect()
    }

    /// How many incidents of each priority, most urgent first.
    async fn incidents_by_priority(&self) -> Vec<PriorityCount> {
        self.0
            .incidents_by_priority
            .iter()
            .map(|(priority, count)| PriorityCount {
                priority: *priority,
                count: *count,
            })
            .collect()
    }

    /// Mean time from opening to resolution of the resolved ones, in minutes.
    async fn mean_time_to_resolve_minutes(&self) -> Option<f64> {
        self.0.mean_time_to_resolve.map(minutes)
    }

    /// Incidents answered within their priority's response target.
    async fn response(&self) -> TargetCompliance {
        (&self.0.response).into()
    }

    /// Incidents resolved within their priority's resolution target.
    async fn resolution(&self) -> TargetCompliance {
        (&self.0.resolution).into()
    }

    /// Percent of the period (up to now) during which no incident had the service down.
    async fn availability_percent(&self) -> f64 {
        self.0.availability
    }

    /// Whether the availability met the target; null without a target.
    async fn availability_met(&self) -> Option<bool> {
        self.0
            .level
            .as_ref()
            .and_then(|l| l.availability_target)
            .map(|target| self.0.availability >= target)
    }

    /// Minutes during which the service was down, overlapping incidents counted once.
    async fn downtime_minutes(&self) -> f64 {
        minutes(self.0.downtime)
    }

    /// The stretches of downtime and the incidents behind each.
    async fn outages(&self) -> Vec<Outage> {
        self.0.outages.iter().cloned().map(Outage).collect()
    }

    /// Finished changes hitting the service, by outcome.
    async fn changes_by_outcome(&self) -> Vec<OutcomeCount> {
        self.0
            .changes_by_outcome
            .iter()
            .map(|(outcome, count)| OutcomeCount {
                outcome: (*outcome).into(),
                count: *count,
            })
            .collect()
    }

    /// Completed changes over finished ones, from 0 to 1; null when none finished.
    async fn change_success_rate(&self) -> Option<f64> {
        self.0.change_success_rate
    }
}

/// Queries about customers and service levels.
#[derive(Default)]
pub struct CustomerQuery;

/// Queries about customers and service levels.
#[Object]
impl CustomerQuery {
    /// The customer with this id; null with a `NOT_FOUND` error when there is none.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        let id = parse_id("id", &id)?;
        Ok(Some(Customer(customers::get(db(ctx)?, id).await?)))
    }

    /// Customers, by name, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        name: Option<TextFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<CustomerConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let name: Option<TextMatch> = name.map(Into::into);
        let page = customers::list(db(ctx)?, name.as_ref(), &window).await?;
        let total = TotalCount::new(move |db| {
            let name = name.clone();
            Box::pin(async move { customers::count(&db, name.as_ref()).await })
        });
        Ok(connection(page, total, Customer))
    }

    /// A service measured over `[from, to)`: incidents by priority, mean time to resolve,
    /// response and resolution targets met, availability, and changes by outcome.
    async fn service_report(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ServiceReport> {
        let service_id = parse_id("serviceId", &service_id)?;
        Ok(ServiceReport(
            service_levels::report(db(ctx)?, service_id, from, to).await?,
        ))
    }
}

mod mutation;
pub use mutation::*;
