//! `ConfigurationItem`: the type, its queries and its mutations.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use entity::configuration_item;
use entity::values;
use serde_json::Value;

use super::audit::{AuditEventConnection, history_of};
use super::catalog::CiClass;
use super::change::Change;
use super::context::{actor, db, loaders, parse_id, patch, relationship_types};
use super::discovery::{DiscoveryRecord, FieldProvenance};
use super::incident::Incident;
use super::lean::{self, Lean, ReadyFields};
use super::loaders::{
    ChangesOfCi, CiById, IdentifiersOf, IncidentsOfCi, RelationshipsOf, ServicesOf,
};
use super::pagination::{self, TotalCount, connection, connection_type};
use super::relationship::Relationship;
use super::service::Service;
use crate::domain::audit::EntityType;
use crate::domain::discovery::provenance;
use crate::domain::{as_of, ci, incident as incidents, relationship as relationships};
use crate::error::Error;

/// Where a configuration item is in its life.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::LifecycleStatus")]
pub enum LifecycleStatus {
    /// Ordered or designed, not yet running.
    Planned,
    /// Running and supporting what depends on it.
    InService,
    /// Temporarily out of normal operation for maintenance.
    UnderMaintenance,
    /// Decommissioned; kept for the record and out of impact analysis.
    Retired,
}

/// How much the business suffers when a CI or service fails.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::Criticality")]
pub enum Criticality {
    /// Inconvenience only.
    Low,
    /// Degrades a business activity.
    Medium,
    /// Stops a business activity.
    High,
    /// Stops the business, or breaks law or safety.
    Critical,
}

/// A managed component of the estate: a server, a VM, a database, an application...
/// Read whole, or as a summary ([`ci::Columns::Summary`]) when the selection shows nothing
/// more; the fields beyond a summary read the whole CI first.
/// A CI read as of a past instant (the third field) is read whole, and its nested
/// relationships, services and CIs are read as of the same instant.
pub struct ConfigurationItem(
    pub Arc<configuration_item::Model>,
    pub ci::Columns,
    pub Option<DateTime<Utc>>,
);

impl ConfigurationItem {
    /// Wraps a CI record.
    pub fn new(model: configuration_item::Model) -> Self {
        ConfigurationItem(Arc::new(model), ci::Columns::All, None)
    }

    /// Wraps a shared CI record read whole.
    pub fn shared(model: Arc<configuration_item::Model>) -> Self {
        ConfigurationItem(model, ci::Columns::All, None)
    }

    /// Wraps a CI as it was at `at` (as it is, without), read whole.
    pub fn at(model: configuration_item::Model, at: Option<DateTime<Utc>>) -> Self {
        ConfigurationItem(Arc::new(model), ci::Columns::All, at)
    }

    /// The whole record: this one, or read (batched) when only a summary is at hand.
    async fn whole(&self, ctx: &Context<'_>) -> Result<Arc<configuration_item::Model>> {
        if self.1 == ci::Columns::All {
            return Ok(self.0.clone());
        }
        Ok(loaders(ctx)?
            .load_one(CiById(self.0.id))
            .await?
            .ok_or_else(|| Error::not_found("configuration item", self.0.id))?)
    }
}

/// The fields of a CI that a summary does not hold.
const BEYOND_SUMMARY: [&str; 5] = [
    "description",
    "attributes",
    "createdAt",
    "updatedAt",
    "provenance",
];

/// The columns to read of the CI a nested field returns, from what its selection shows.
pub fn columns_for(selection: async_graphql::Lookahead<'_>) -> Option<ci::Columns> {
    if !selection.exists() {
        None
    } else if BEYOND_SUMMARY
        .iter()
        .any(|field| selection.field(field).exists())
    {
        Some(ci::Columns::All)
    } else {
        Some(ci::Columns::Summary)
    }
}

connection_type!(
    ConfigurationItemConnection,
    ConfigurationItemEdge,
    ConfigurationItem,
    "A page of configuration items.",
    "A configuration item in a page, with its cursor."
);

impl ConfigurationItem {
    /// The relationships at one end of this CI, as the field asks for them: the arguments
    /// go into the loader's key (so the list is filtered and cut in the database), and the
    /// CIs at the other end are read in the same statement when the selection uses them.
    async fn relationships(
        &self,
        ctx: &Context<'_>,
        end: relationships::End,
        types: Option<Vec<String>>,
        first: i32,
    ) -> Result<Vec<Lean<Relationship>>> {
        let types = match types {
            None => None,
            Some(names) => {
                let mut ids = relationship_types(ctx).await?.ids_of("types", &names)?;
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
        };
        let other_end = match end {
            relationships::End::Source => "target",
            relationships::End::Target => "source",
        };
        let as_of = self.2;
        // Read as of an instant, everything is read whole: a later lookup of the rest
        // would read the current record.
        let other_columns = columns_for(ctx.look_ahead().field(other_end)).map(|columns| {
            if as_of.is_some() {
                ci::Columns::All
            } else {
                columns
            }
        });
        let listing_columns = other_columns;
        let selection = ctx.look_ahead();
        let listing = relationships::Listing {
            end,
            whole: as_of.is_some()
                || selection.field("attributes").exists()
                || selection.field("createdAt").exists(),
            types,
            first: u64::try_from(first).unwrap_or_default(),
            other_end: other_columns,
            as_of,
        };
        let listing_whole = listing.whole;
        let list = loaders(ctx)?
            .load_one(RelationshipsOf {
                id: self.0.id,
                args: listing,
            })
            .await?
            .unwrap_or_default();
        Ok(list
            .iter()
            .map(|(relationship, other)| {
                let other = other
                    .as_ref()
                    .map(|ci| (ci.clone(), listing_columns.unwrap_or(ci::Columns::All)));
                Lean(Relationship::listed(
                    relationship,
                    other,
                    end,
                    listing_whole,
                    as_of,
                ))
            })
            .collect())
    }
}

impl ReadyFields for ConfigurationItem {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        let ci = &self.0;
        if self.1 == ci::Columns::Summary && BEYOND_SUMMARY.contains(&name) {
            return None;
        }
        Some(match name {
            "id" => lean::scalar(ID(ci.id.to_string())),
            "name" => lean::text(&ci.name),
            "description" => lean::optional_text(ci.description.as_deref()),
            "status" => lean::enumeration(LifecycleStatus::from(ci.status)),
            "environment" => lean::optional_text(ci.environment.as_deref()),
            "criticality" => ci.criticality.map_or(async_graphql::Value::Null, |c| {
                lean::enumeration(Criticality::from(c))
            }),
            "owner" => lean::optional_text(ci.owner.as_deref()),
            "version" => lean::scalar(ci.version),
            "createdAt" => lean::scalar(ci.created_at),
            "updatedAt" => lean::scalar(ci.updated_at),
            _ => return None,
        })
    }

    fn has_lean_field(&self, name: &str) -> bool {
        name == "ciClass"
    }

    async fn lean_field(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Value> {
        let class = super::catalog::class_by_id(ctx, self.0.class_id).await;
        lean::object(ctx, class.map(Lean)).await
    }
}

/// A managed component of the estate: a server, a VM, a database, an application...
#[Object]
impl ConfigurationItem {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Name, unique only together with its class and environment by convention.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Free text describing the CI.
    async fn description(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.whole(ctx).await?.description.clone())
    }

    /// The class of the CI, which defines the attributes it may have.
    async fn ci_class(&self, ctx: &Context<'_>) -> Result<Lean<CiClass>> {
        Ok(Lean(
            super::catalog::class_by_id(ctx, self.0.class_id).await?,
        ))
    }

    /// Lifecycle status.
    async fn status(&self) -> LifecycleStatus {
        self.0.status.into()
    }

    /// Environment such as `production`, `staging` or `development`.
    async fn environment(&self) -> Option<&str> {
        self.0.environment.as_deref()
    }

    /// How much the business suffers when this CI fails.
    async fn criticality(&self) -> Option<Criticality> {
        self.0.criticality.map(Into::into)
    }

    /// The team responsible for the CI.
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }

    /// Class-specific attributes, as a JSON object.
    async fn attributes(&self, ctx: &Context<'_>) -> Result<Json<Value>> {
        Ok(Json(self.whole(ctx).await?.attributes.clone()))
    }

    /// Starts at 1 and grows by one with every change; pass it back as `expectedVersion`
    /// to update safely.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the CI was recorded.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        Ok(self.whole(ctx).await?.created_at)
    }

    /// When the CI last changed.
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        Ok(self.whole(ctx).await?.updated_at)
    }

    /// Relationships from this CI to others, oldest first, optionally only of the given
    /// types (at most `first`; page through `relationships(filter: { sourceId })` for more).
    #[graphql(complexity = "5 * child_complexity")]
    async fn outgoing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only relationships of these type names.")] types: Option<Vec<String>>,
        #[graphql(
            default = 1000,
            validator(minimum = 0, maximum = 10000),
            desc = "At most this many."
        )]
        first: i32,
    ) -> Result<Vec<Lean<Relationship>>> {
        self.relationships(ctx, relationships::End::Source, types, first)
            .await
    }

    /// Relationships from other CIs to this one, oldest first, optionally only of the given
    /// types (at most `first`; page through `relationships(filter: { targetId })` for more).
    #[graphql(complexity = "5 * child_complexity")]
    async fn incoming(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only relationships of these type names.")] types: Option<Vec<String>>,
        #[graphql(
            default = 1000,
            validator(minimum = 0, maximum = 10000),
            desc = "At most this many."
        )]
        first: i32,
    ) -> Result<Vec<Lean<Relationship>>> {
        self.relationships(ctx, relationships::End::Target, types, first)
            .await
    }

    /// The services this CI is a member of, by name.
    #[graphql(complexity = "2 * child_complexity")]
    async fn services(&self, ctx: &Context<'_>) -> Result<Vec<Lean<Service>>> {
        let list = loaders(ctx)?
            .load_one(ServicesOf {
                id: self.0.id,
                args: self.2,
            })
            .await?;
        Ok(list
            .unwrap_or_default()
            .into_iter()
            .map(|s| Lean(Service(s, self.2)))
            .collect())
    }

    /// The incidents affecting this CI, newest first (at most `first`). Page through
    /// `incidents(filter: { ciId })` for more.
    #[graphql(complexity = "first.max(1) as usize * child_complexity")]
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 0, maximum = 500))] first: i32,
        #[graphql(desc = "Only open ones (not resolved or closed), or only the others.")]
        open: Option<bool>,
    ) -> Result<Vec<Incident>> {
        let key = IncidentsOfCi {
            id: self.0.id,
            args: incidents::Listing {
                open,
                first: u64::try_from(first).unwrap_or_default(),
            },
        };
        let list = loaders(ctx)?.load_one(key).await?;
        Ok(list.unwrap_or_default().into_iter().map(Incident).collect())
    }

    /// The changes touching this CI, newest first (at most `first`). Page through
    /// `changes(filter: { ciId })` for more.
    #[graphql(complexity = "first.max(1) as usize * child_complexity")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, validator(minimum = 0, maximum = 500))] first: i32,
    ) -> Result<Vec<Change>> {
        let key = ChangesOfCi {
            id: self.0.id,
            args: u64::try_from(first).unwrap_or_default(),
        };
        let list = loaders(ctx)?.load_one(key).await?;
        Ok(list.unwrap_or_default().into_iter().map(Change).collect())
    }

    /// Who set each field (a discovery source, or `manual` for people), and when.
    async fn provenance(&self, ctx: &Context<'_>) -> Result<Vec<FieldProvenance>> {
        Ok(provenance::entries(&self.whole(ctx).await?.provenance)
            .into_iter()
            .map(|(field, entry)| FieldProvenance {
                field,
                source: entry.source,
                set_at: entry.at,
            })
            .collect())
    }

    /// How discovery sources know this CI: their ids for it, when they last reported it.
    async fn discovered_by(&self, ctx: &Context<'_>) -> Result<Vec<DiscoveryRecord>> {
        let rows = loaders(ctx)?.load_one(IdentifiersOf(self.0.id)).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Whether every discovery source that reported this CI stopped reporting it (a full
    /// sync no longer found it). False for CIs no source reported.
    async fn stale(&self, ctx: &Context<'_>) -> Result<bool> {
        let rows = loaders(ctx)?
            .load_one(IdentifiersOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(!rows.is_empty() && rows.iter().all(|r| r.stale))
    }

    /// The audit events of this CI, newest first.
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
            EntityType::ConfigurationItem,
            self.0.id.to_string(),
            pagination::window(ctx, first, after, last, before)?,
        )
        .await
    }
}

/// Queries about configuration items.
#[derive(Default)]
pub struct CiQuery;

/// Queries about configuration items.
#[Object]
impl CiQuery {
    /// The CI with this id; null with a `NOT_FOUND` error when there is none.
    ///
    /// With `asOf`, the CI as it was at that instant: null (without an error) when it did
    /// not exist then, readable although deleted since; its `version`, fields,
    /// `outgoing`/`incoming` (with the CIs at their ends), `services` and `ciClass` are as
    /// of the same instant. `incidents`, `changes`, `history`, `discoveredBy` and `stale`
    /// are records of their own and answer as they are now. An instant in the future or
    /// before the first recorded change is `VALIDATION`.
    async fn configuration_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "Read the CI as it was at this instant.")] as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<ConfigurationItem>> {
        let id = parse_id("id", &id)?;
        if let Some(at) = as_of {
            let db = db(ctx)?;
            as_of::check_instant(db, "asOf", at).await?;
            return Ok(as_of::ci_at(db, id, at)
                .await?
                .map(|ci| ConfigurationItem::at(ci, Some(at))));
        }
        let ci = loaders(ctx)?
            .load_one(CiById(id))
            .await?
            .ok_or_else(|| Error::not_found("configuration item", id))?;
        Ok(Some(ConfigurationItem::shared(ci)))
    }

    /// CIs matching the filter, a page at a time (by name unless `orderBy` says otherwise).
    /// With `asOf`, the CIs as they were at that instant, the filter applying to that
    /// state (see `configurationItem`).
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn configuration_items(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConfigurationItemFilter>,
        order_by: Option<ConfigurationItemOrder>,
        #[graphql(desc = "List the CIs as they were at this instant.")] as_of: Option<
            DateTime<Utc>,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ConfigurationItemConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let mut filter = filter.unwrap_or_default().into_domain()?;
        if let Some(at) = as_of {
            as_of::check_instant(db(ctx)?, "asOf", at).await?;
            filter.as_of = Some(at);
        }
        let order = order_by.map(Into::into).unwrap_or_default();
        let catalog = super::context::classes(ctx).await?;
        let page = ci::list(db(ctx)?, &catalog, &filter, order, &window).await?;
        let total = TotalCount::new(move |db| {
            let (filter, catalog) = (filter.clone(), catalog.clone());
            Box::pin(async move { ci::count(&db, &catalog, &filter).await })
        });
        Ok(connection(page, total, move |ci| {
            ConfigurationItem::at(ci, as_of)
        }))
    }
}

mod filter;
mod mutation;
pub use filter::*;
pub use mutation::*;
