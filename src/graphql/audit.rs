//! `AuditEvent`: the trail of every write, queryable.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::audit_event;
use serde_json::Value;

use super::ci::SortDirection;
use super::context::db;
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::audit::{self, Action, AuditFilter, EntityType};
use crate::domain::auth::Principal;
use crate::domain::node::GlobalId;
use crate::domain::pagination::PageWindow;
use crate::error::Error;

/// The kind of entity an audit event is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "EntityType")]
pub enum AuditEntityType {
    /// A configuration item.
    ConfigurationItem,
    /// A relationship.
    Relationship,
    /// A service (including its membership).
    Service,
    /// A CI class.
    CiClass,
    /// A relationship type.
    RelationshipType,
    /// A reconciliation rule of a class.
    ReconciliationRule,
    /// An API token (never the token itself).
    ApiToken,
    /// An incident (with its affected CIs and services).
    Incident,
    /// A request for change (with its CIs).
    Change,
    /// A customer (with the services it consumes).
    Customer,
    /// The targets of a service.
    ServiceLevel,
    /// A cell of the priority matrix.
    PriorityRule,
    /// A webhook (never its secret).
    Webhook,
    /// A baseline (a named reference point in time).
    Baseline,
}

/// What an audited write did.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Action")]
pub enum AuditAction {
    /// Created the entity.
    Create,
    /// Changed the entity.
    Update,
    /// Retired a configuration item.
    Retire,
    /// Deleted the entity.
    Delete,
    /// Added members to a service.
    AddMembers,
    /// Removed members from a service (or services from a customer).
    RemoveMembers,
    /// Moved an incident or a change along its lifecycle.
    Transition,
    /// Approved a change.
    Approve,
    /// Rejected a change.
    Reject,
    /// Recomputed a change's assessment.
    Assess,
    /// Brought a configuration item back to the state of an earlier version (a new version;
    /// history is never rewritten).
    Revert,
}

/// One write, with who made it, when, and the full state before and after.
pub struct AuditEvent(pub audit_event::Model);

impl super::lean::ReadyFields for AuditEvent {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        (name == "id").then(|| super::lean::scalar(ID(GlobalId::audit_event(self.0.id))))
    }
}

connection_type!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "A page of audit events.",
    "An audit event in a page, with its cursor."
);

/// One write, with who made it, when, and the full state before and after.
#[Object]
impl AuditEvent {
    /// Globally unique identifier (`AuditEvent:<n>`, `n` growing with time).
    pub(crate) async fn id(&self) -> ID {
        ID(GlobalId::audit_event(self.0.id))
    }

    /// When the write committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// Who made it: the name of the API token that sent the write (`system` for the
    /// server's own writes).
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// For discovery writes: the source the sender said the data came from (`vcenter`);
    /// null for everything else.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }

    /// The kind of entity written.
    async fn entity_type(&self) -> Result<AuditEntityType> {
        EntityType::parse(&self.0.entity_type)
            .map(Into::into)
            .ok_or_else(|| unknown("entity type", &self.0.entity_type))
    }

    /// The id of the entity written.
    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }

    /// What the write did.
    async fn action(&self) -> Result<AuditAction> {
        Action::parse(&self.0.action)
            .map(Into::into)
            .ok_or_else(|| unknown("action", &self.0.action))
    }

    /// The full state before the write; null for a creation.
    async fn before(&self) -> Option<Json<Value>> {
        self.0.before.clone().map(Json)
    }

    /// The full state after the write; null for a deletion.
    async fn after(&self) -> Option<Json<Value>> {
        self.0.after.clone().map(Json)
    }
}

fn unknown(what: &str, value: &str) -> async_graphql::Error {
    Error::internal(anyhow::anyhow!("audit event with unknown {what} `{value}`")).into()
}

/// Which audit events to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Kind of entity.
    pub entity_type: Option<AuditEntityType>,
    /// Id of the entity.
    pub entity_id: Option<ID>,
    /// Exact actor name.
    pub actor: Option<String>,
    /// Exact discovery source.
    pub source: Option<String>,
    /// Kind of write.
    pub action: Option<AuditAction>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

/// A page of audit events.
async fn page(
    ctx: &Context<'_>,
    filter: AuditFilter,
    newest_first: bool,
    window: PageWindow,
) -> Result<AuditEventConnection> {
    let page = audit::list(db(ctx)?, &filter, newest_first, &window).await?;
    let total = TotalCount::new(move |db| {
        let filter = filter.clone();
        Box::pin(async move { audit::count(&db, &filter).await })
    });
    Ok(connection(page, total, AuditEvent))
}

/// The history of one entity, newest first.
pub async fn history_of(
    ctx: &Context<'_>,
    entity_type: EntityType,
    entity_id: String,
    window: PageWindow,
) -> Result<AuditEventConnection> {
    let filter = AuditFilter {
        entity_type: Some(entity_type),
        entity_id: Some(entity_id),
        ..Default::default()
    };
    page(ctx, filter, true, window).await
}

/// Queries of the audit trail.
#[derive(Default)]
pub struct AuditQuery;

/// Queries of the audit trail.
#[Object]
impl AuditQuery {
    /// Audit events matching the filter, newest first unless `order` is `ASC`.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        #[graphql(default_with = "SortDirection::Desc")] order: SortDirection,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AuditEventConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let filter = filter.unwrap_or_default();
        let hidden = super::access::hidden_audit_types(ctx.data_opt::<Principal>());
        let entity_type: Option<EntityType> = filter.entity_type.map(Into::into);
        if let Some(asked) = entity_type
            && hidden.contains(&asked)
        {
            return Err(Error::Forbidden(format!(
                "audit events of {} records are for admins",
                asked.as_str()
            ))
            .into());
        }
        let filter = AuditFilter {
            hidden,
            entity_type,
            entity_id: filter.entity_id.map(|id| id.0),
            actor: filter.actor,
            source: filter.source,
            action: filter.action.map(Into::into),
            since: filter.since,
            until: filter.until,
        };
        page(ctx, filter, order == SortDirection::Desc, window).await
    }
}
