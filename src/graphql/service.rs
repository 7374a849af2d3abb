//! `Service`: the type, its queries and its mutations.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use entity::service;
use entity::values;

use super::audit::{AuditEventConnection, history_of};
use super::change::Change;
use super::ci::{ConfigurationItem, Criticality, TextFilter};
use super::context::{actor, db, limits, loaders, parse_id, parse_ids, patch};
use super::customer::{AffectedCustomer, ServiceLevel, affected_customers, service_level_of};
use super::incident::Incident;
use super::lean::{self, Lean, ReadyFields};
use super::loaders::{ChangesOfService, IncidentsOfService, MembersOf};
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::as_of;
use crate::domain::audit::EntityType;
use crate::domain::incident as incidents;
use crate::domain::service as services;

/// Whether a service is offered to the business or to other IT services.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::ServiceKind")]
pub enum ServiceKind {
    /// Offered to the business (payroll, online shop).
    Business,
    /// Offered to other IT services (database platform, network).
    Technical,
}

/// A business or technical service, made of member CIs.
pub struct Service(pub service::Model, pub Option<DateTime<Utc>>);

connection_type!(
    ServiceConnection,
    ServiceEdge,
    Service,
    "A page of services.",
    "A service in a page, with its cursor."
);

impl ReadyFields for Service {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        let service = &self.0;
        Some(match name {
            "id" => lean::scalar(ID(service.id.to_string())),
            "name" => lean::text(&service.name),
            "kind" => lean::enumeration(ServiceKind::from(service.kind)),
            "description" => lean::optional_text(service.description.as_deref()),
            "owner" => lean::optional_text(service.owner.as_deref()),
            "criticality" => service.criticality.map_or(async_graphql::Value::Null, |c| {
                lean::enumeration(Criticality::from(c))
            }),
            "version" => lean::scalar(service.version),
            "createdAt" => lean::scalar(service.created_at),
            "updatedAt" => lean::scalar(service.updated_at),
            _ => return None,
        })
    }
}

/// A business or technical service, made of member CIs.
#[Object]
impl Service {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Business or technical.
    async fn kind(&self) -> ServiceKind {
        self.0.kind.into()
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The accountable team or person.
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }

    /// How much the business suffers when the service fails.
    async fn criticality(&self) -> Option<Criticality> {
        self.0.criticality.map(Into::into)
    }

    /// Grows by one with every change, including membership changes.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the service was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the service last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The CIs that make up the service, in the order they were added. For large services,
    /// page through `configurationItems(filter: { serviceId })` instead.
    #[graphql(complexity = "10 * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 1000,
            validator(minimum = 0, maximum = 10000),
            desc = "At most this many."
        )]
        first: i32,
    ) -> Result<Vec<Lean<ConfigurationItem>>> {
        let key = MembersOf {
            id: self.0.id,
            args: services::MemberListing {
                first: u64::try_from(first).unwrap_or_default(),
                as_of: self.1,
            },
        };
        let list = loaders(ctx)?.load_one(key).await?;
        Ok(list
            .unwrap_or_default()
            .into_iter()
            .map(|ci| Lean(ConfigurationItem::at(ci, self.1)))
            .collect())
    }

    /// The incidents affecting this service, newest first (at most `first`). Page through
    /// `incidents(filter: { serviceId })` for more.
    #[graphql(complexity = "first.max(1) as usize * child_complexity")]
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 0, maximum = 500))] first: i32,
        #[graphql(desc = "Only open ones (not resolved or closed), or only the others.")]
        open: Option<bool>,
    ) -> Result<Vec<Incident>> {
        let key = IncidentsOfService {
            id: self.0.id,
            args: incidents::Listing {
                open,
                first: u64::try_from(first).unwrap_or_default(),
            },
        };
        let list = loaders(ctx)?.load_one(key).await?;
        Ok(list.unwrap_or_default().into_iter().map(Incident).collect())
    }

    /// The changes whose assessed blast radius hits this service, newest first (at most
    /// `first`). Page through `changes(filter: { serviceId })` for more.
    #[graphql(complexity = "first.max(1) as usize * child_complexity")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 0, maximum = 500))] first: i32,
    ) -> Result<Vec<Change>> {
        let key = ChangesOfService {
            id: self.0.id,
            args: u64::try_from(first).unwrap_or_default(),
        };
        let list = loaders(ctx)?.load_one(key).await?;
        Ok(list.unwrap_or_default().into_iter().map(Change).collect())
    }

    /// What the service promises: availability, response and resolution targets.
    async fn service_level(&self, ctx: &Context<'_>) -> Result<Option<ServiceLevel>> {
        service_level_of(ctx, self.0.id).await
    }

    /// The customers consuming this service, with their agreements.
    async fn customers(&self, ctx: &Context<'_>) -> Result<Vec<AffectedCustomer>> {
        affected_customers(ctx, &[self.0.id], None).await
    }

    /// The audit events of this service, newest first.
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
            EntityType::Service,
            self.0.id.to_string(),
            pagination::window(ctx, first, after, last, before)?,
        )
        .await
    }
}

/// Which services to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct ServiceFilter {
    /// Business or technical.
    pub kind: Option<ServiceKind>,
    /// Exact criticality.
    pub criticality: Option<Criticality>,
    /// Name match.
    pub name: Option<TextFilter>,
}

/// Queries about services.
#[derive(Default)]
pub struct ServiceQuery;

/// Queries about services.
#[Object]
impl ServiceQuery {
    /// The service with this id; null with a `NOT_FOUND` error when there is none. With
    /// `asOf`, the service as it was then (null when it did not exist then), its `members`
    /// as of the same instant.
    async fn service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "Read the service as it was at this instant (see `configurationItem`).")]
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<Service>> {
        let id = parse_id("id", &id)?;
        let db = db(ctx)?;
        match as_of {
            None => Ok(Some(Service(services::get(db, id).await?, None))),
            Some(at) => {
                as_of::check_instant(db, "asOf", at).await?;
                Ok(services::get_at(db, id, at)
                    .await?
                    .map(|s| Service(s, Some(at))))
            }
        }
    }

    /// Services matching the filter, by name, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn services(
        &self,
        ctx: &Context<'_>,
        filter: Option<ServiceFilter>,
        #[graphql(
            desc = "List the services as they were at this instant (the filter applies to that state)."
        )]
        as_of: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ServiceConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        if let Some(at) = as_of {
            as_of::check_instant(db(ctx)?, "asOf", at).await?;
        }
        let filter = filter.unwrap_or_default();
        let filter = services::ServiceFilter {
            kind: filter.kind.map(Into::into),
            criticality: filter.criticality.map(Into::into),
            name: filter.name.map(Into::into),
            as_of,
        };
        let page = services::list(db(ctx)?, &filter, &window).await?;
        let total = TotalCount::new(move |db| {
            let filter = filter.clone();
            Box::pin(async move { services::count(&db, &filter).await })
        });
        Ok(connection(page, total, move |s| Service(s, as_of)))
    }
}

/// A service to record.
#[derive(InputObject)]
pub struct CreateServiceInput {
    /// Unique name.
    pub name: String,
    /// Business or technical; business when not given.
    #[graphql(default_with = "ServiceKind::Business")]
    pub kind: ServiceKind,
    /// Free text.
    pub description: Option<String>,
    /// Accountable team or person.
    pub owner: Option<String>,
    /// Business criticality.
    pub criticality: Option<Criticality>,
    /// The first member CIs.
    pub member_ids: Option<Vec<ID>>,
}

/// Changes to a service. Omitted fields stay; optional fields set to null are cleared.
#[derive(InputObject, Default)]
pub struct UpdateServiceInput {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<ServiceKind>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New owner; null clears it.
    pub owner: MaybeUndefined<String>,
    /// New criticality; null clears it.
    pub criticality: MaybeUndefined<Criticality>,
}

/// Mutations of services.
#[derive(Default)]
pub struct ServiceMutation;

/// Mutations of services.
#[Object]
impl ServiceMutation {
    /// Records a new service, with its first members if given.
    async fn create_service(
        &self,
        ctx: &Context<'_>,
        input: CreateServiceInput,
    ) -> Result<Service> {
        let new = services::NewService {
            name: input.name,
            kind: input.kind.into(),
            description: input.description,
            owner: input.owner,
            criticality: input.criticality.map(Into::into),
            member_ids: parse_ids("input.memberIds", &input.member_ids.unwrap_or_default())?,
        };
        Ok(Service(
            services::create(db(ctx)?, &actor(ctx), new, limits(ctx)?).await?,
            None,
        ))
    }

    /// Changes a service. With `expectedVersion`, only if it is still at that version.
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateServiceInput,
    ) -> Result<Service> {
        let id = parse_id("id", &id)?;
        let changes = services::ServiceChanges {
            name: input.name,
            kind: input.kind.map(Into::into),
            description: patch(input.description),
            owner: patch(input.owner),
            criticality: patch(input.criticality),
        };
        Ok(Service(
            services::update(db(ctx)?, &actor(ctx), id, expected_version, changes).await?,
            None,
        ))
    }

    /// Adds CIs to a service; CIs already in it are ignored, an unknown CI fails the call.
    async fn add_service_members(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        ci_ids: Vec<ID>,
    ) -> Result<Service> {
        let service_id = parse_id("serviceId", &service_id)?;
        let ci_ids = parse_ids("ciIds", &ci_ids)?;
        Ok(Service(
            services::add_members(db(ctx)?, &actor(ctx), service_id, ci_ids, limits(ctx)?).await?,
            None,
        ))
    }

    /// Removes CIs from a service; CIs not in it are ignored.
    async fn remove_service_members(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        ci_ids: Vec<ID>,
    ) -> Result<Service> {
        let service_id = parse_id("serviceId", &service_id)?;
        let ci_ids = parse_ids("ciIds", &ci_ids)?;
        Ok(Service(
            services::remove_members(db(ctx)?, &actor(ctx), service_id, ci_ids, limits(ctx)?)
                .await?,
            None,
        ))
    }

    /// Deletes a service (its CIs stay); returns its id.
    async fn delete_service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<ID> {
        let id = parse_id("id", &id)?;
        let deleted = services::delete(db(ctx)?, &actor(ctx), id, expected_version).await?;
        Ok(ID(deleted.id.to_string()))
    }
}
