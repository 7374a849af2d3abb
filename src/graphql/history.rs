//! History: one version of a CI, what changed between two instants, and reverting a CI to
//! an earlier version. Reads as of an instant are the `asOf` arguments of the record
//! queries themselves.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::audit::AuditEvent;
use super::ci::ConfigurationItem;
use super::context::{actor, db, limits, parse_id, parse_ids};
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::audit::{self, AuditFilter};
use crate::domain::auth::Principal;
use crate::domain::events::service_health;
use crate::domain::history::{self, diff};
use crate::domain::impact::GraphCache;
use crate::domain::{as_of, ci, now};
use crate::error::Error;

/// One version of a CI: its state, the interval it was current, and the write that made it.
pub struct ConfigurationItemVersion(history::CiVersion);

/// One version of a CI: its state, the interval it was current, and the write that made it.
#[Object]
impl ConfigurationItemVersion {
    /// The version number.
    async fn version(&self) -> i32 {
        self.0.state.version
    }

    /// When it became current.
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.valid_from
    }

    /// When it stopped being current; null while it is (or if it is the last before the
    /// CI's deletion, the deletion's instant).
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.valid_to
    }

    /// The CI as this version has it; its nested relationships and services as of the
    /// instant it became current.
    async fn state(&self) -> ConfigurationItem {
        ConfigurationItem::at(self.0.state.clone(), Some(self.0.valid_from))
    }

    /// The audit event of the write that made this version (who, when, before and after).
    async fn event(&self, ctx: &Context<'_>) -> Result<Option<AuditEvent>> {
        let filter = AuditFilter {
            hidden: super::access::hidden_audit_types(ctx.data_opt::<Principal>()),
            ..AuditFilter::default()
        };
        Ok(audit::find(db(ctx)?, self.0.audit_event_id, &filter)
            .await?
            .map(AuditEvent))
    }
}

/// What a difference did.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "diff::DifferenceKind")]
pub enum DifferenceKind {
    /// A CI was created.
    CiCreated,
    /// A CI's fields changed (by an update or a revert).
    CiUpdated,
    /// A CI was retired.
    CiRetired,
    /// A CI was deleted.
    CiDeleted,
    /// A relationship was added.
    RelationshipAdded,
    /// A relationship was removed.
    RelationshipRemoved,
    /// A relationship's attributes changed.
    RelationshipUpdated,
    /// A service was created (with its first members).
    ServiceCreated,
    /// A service's fields changed.
    ServiceUpdated,
    /// A service was deleted (its members left it).
    ServiceDeleted,
    /// CIs were added to a service.
    MembersAdded,
    /// CIs were removed from a service.
    MembersRemoved,
}

/// One field that changed, with its value before and after (null when absent).
pub struct FieldDifference(diff::FieldChange);

/// One field that changed, with its value before and after (null when absent).
#[Object]
impl FieldDifference {
    /// The field: `name`, `status`... or `attributes.<name>` for one attribute.
    async fn field(&self) -> &str {
        &self.0.field
    }

    /// Its value before.
    async fn before(&self) -> Json<Value> {
        Json(self.0.before.clone())
    }

    /// Its value after.
    async fn after(&self) -> Json<Value> {
        Json(self.0.after.clone())
    }
}

/// One change to the CMDB's records between two instants, with who made it and when.
pub struct Difference(diff::Difference);

impl super::lean::ReadyFields for Difference {
    fn ready_field(&self, _name: &str) -> Option<async_graphql::Value> {
        None
    }
}

/// One change to the CMDB's records between two instants, with who made it and when.
#[Object]
impl Difference {
    /// What it did.
    async fn kind(&self) -> DifferenceKind {
        self.0.kind.into()
    }

    /// When it was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.event.occurred_at
    }

    /// Who made it (the token's name).
    async fn actor(&self) -> &str {
        &self.0.event.actor
    }

    /// The discovery source it came from, if any.
    async fn source(&self) -> Option<&str> {
        self.0.event.source.as_deref()
    }

    /// The id of the CI, relationship or service it changed.
    async fn entity_id(&self) -> ID {
        ID(self.0.event.entity_id.clone())
    }

    /// The name of what it changed (after the change; before, for a deletion).
    async fn name(&self) -> Option<String> {
        let state = self.0.event.after.as_ref().or(self.0.event.before.as_ref());
        state
            .and_then(|s| s.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_owned)
    }

    /// The fields that changed, each with its value before and after; attributes one by
    /// one. A creation lists what it set, a deletion what there was.
    async fn fields(&self) -> Vec<FieldDifference> {
        self.0.fields.iter().cloned().map(FieldDifference).collect()
    }

    /// For a service: the CIs that joined it.
    async fn members_added(&self) -> Vec<ID> {
        self.0
            .members_added
            .iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }

    /// For a service: the CIs that left it.
    async fn members_removed(&self) -> Vec<ID> {
        self.0
            .members_removed
            .iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }

    /// The audit event it was read from (with the full states before and after).
    async fn event(&self) -> AuditEvent {
        AuditEvent(self.0.event.clone())
    }
}

connection_type!(
    DifferenceConnection,
    DifferenceEdge,
    Difference,
    "A page of differences, in the order they happened.",
    "A difference in a page, with its cursor."
);

/// Which records `changesBetween` reports on; all when empty.
#[derive(InputObject, Default)]
pub struct ChangeScope {
    /// The service and everything it depends on (its dependency closure as impact analysis
    /// walks it, at either end of the interval): the CIs, their relationships, the service.
    pub service_id: Option<ID>,
    /// These CIs, the relationships with one of them at an end, the services they belong
    /// or belonged to (memberships narrowed to these CIs).
    pub ci_ids: Option<Vec<ID>>,
    /// The CIs matching this filter at either end of the interval, as `ciIds` would name
    /// them. Several scopes narrow each other.
    pub filter: Option<super::ci::ConfigurationItemFilter>,
}

/// The CIs of a service's dependency closure at either end of the interval.
async fn service_scope(
    ctx: &Context<'_>,
    service: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let db = db(ctx)?;
    let cache = ctx.data::<Arc<GraphCache>>()?;
    let mut cis = Vec::new();
    for at in [from, to] {
        let graph = cache.at(db, Some(at)).await?;
        cis.extend_from_slice(service_health::closure(&graph, service, limits(ctx)?).cis());
    }
    cis.sort_unstable();
    cis.dedup();
    Ok(cis)
}

/// History queries.
#[derive(Default)]
pub struct HistoryQuery;

/// History queries.
#[Object]
impl HistoryQuery {
    /// Version `version` of a CI: its state then, when it was current, the write that made
    /// it. Null when the CI never had that version.
    async fn configuration_item_version(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
    ) -> Result<Option<ConfigurationItemVersion>> {
        let id = parse_id("id", &id)?;
        Ok(history::ci_version(db(ctx)?, id, version)
            .await?
            .map(ConfigurationItemVersion))
    }

    /// What changed between two instants (after `from`, up to and including `to`): CIs
    /// created, updated (each field with its values), retired, deleted; relationships
    /// added and removed; service memberships; each with who and when, in the order they
    /// happened. `scope` narrows it to a service's dependency closure or to CIs.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn changes_between(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        #[graphql(desc = "Up to this instant; now when not given.")] to: Option<DateTime<Utc>>,
        scope: Option<ChangeScope>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<DifferenceConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let to = to.unwrap_or_else(now);
        if to < from {
            return Err(Error::invalid("to", "`to` is before `from`").into());
        }
        let db = db(ctx)?;
        as_of::check_instant(db, "from", from).await?;
        as_of::check_instant(db, "to", to).await?;
        let scope = scope.unwrap_or_default();
        let mut ci_ids = match &scope.ci_ids {
            Some(ids) => Some(parse_ids("scope.ciIds", ids)?),
            None => None,
        };
        if let Some(filter) = scope.filter {
            let filter = filter.into_domain()?;
            let catalog = super::context::classes(ctx).await?;
            let mut matching = Vec::new();
            for at in [from, to] {
                let filter = ci::CiFilter {
                    as_of: Some(at),
                    ..filter.clone()
                };
                matching
                    .extend(ci::ids_matching(db, &catalog, &filter, diff::MAX_SCOPE_IDS).await?);
            }
            matching.sort_unstable();
            matching.dedup();
            ci_ids = Some(match ci_ids {
                Some(mut named) => {
                    named.retain(|id| matching.binary_search(id).is_ok());
                    named
                }
                None => matching,
            });
        }
        let service_id = match &scope.service_id {
            Some(id) => Some(parse_id("scope.serviceId", id)?),
            None => None,
        };
        differences(ctx, from, to, ci_ids, service_id, window).await
    }
}

/// The differences of `(from, to]` narrowed to CIs and/or a service's closure, as a page.
pub(super) async fn differences(
    ctx: &Context<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut ci_ids: Option<Vec<Uuid>>,
    service_id: Option<Uuid>,
    window: crate::domain::pagination::PageWindow,
) -> Result<DifferenceConnection> {
    if let Some(service) = service_id {
        let closure = service_scope(ctx, service, from, to).await?;
        ci_ids = Some(match ci_ids {
            Some(mut ids) => {
                ids.retain(|id| closure.contains(id));
                ids
            }
            None => closure,
        });
    }
    let scope = diff::Scope { ci_ids };
    let page = diff::changes_between(db(ctx)?, from, to, &scope, &window).await?;
    let total = TotalCount::new(move |db| {
        let scope = scope.clone();
        Box::pin(async move { diff::count(&db, from, to, &scope).await })
    });
    Ok(connection(page, total, Difference))
}

/// History mutations.
#[derive(Default)]
pub struct HistoryMutation;

/// History mutations.
#[Object]
impl HistoryMutation {
    /// Brings a CI back to the state of one of its earlier versions by writing a new
    /// version equal to it (audited as `REVERT`; history is never rewritten). The class's
    /// attribute rules as they are now apply. `NOT_FOUND` when the CI never had that
    /// version; with `expectedVersion`, `VERSION_MISMATCH` if the CI moved on. Reverting to
    /// the state it already has writes nothing.
    async fn revert_configuration_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        to_version: i32,
        expected_version: Option<i32>,
    ) -> Result<ConfigurationItem> {
        let id = parse_id("id", &id)?;
        let ci = history::revert::revert(db(ctx)?, &actor(ctx), id, to_version, expected_version)
            .await?;
        Ok(ConfigurationItem::new(ci))
    }
}
