//! The audit trail: who changed what, when, with the full state before and after.
//!
//! Writers call [`record`] (or [`record_all`]) with the same connection as their change, so
//! the event commits or rolls back with it. Full states rather than diffs are kept so that the
//! state of any entity at any past moment can be rebuilt from the trail alone.

use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    prelude::Json, sea_query::Condition,
};
use serde::Serialize;

use super::Result;
use super::pagination::{Page, PageWindow, SortKey, fetch_page};

/// Who makes a change: the name of the token that sent it (or of the server itself), and,
/// for discovery writes, the source the sender says the data comes from. Both are kept: the
/// token answers "who may be held to account", the source "where the data came from".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    source: Option<String>,
}

/// A name cut to what the audit trail stores: blank becomes `anonymous`, at most 255
/// characters.
fn stored_name(name: &str) -> String {
    let name: String = name.trim().chars().take(255).collect();
    if name.is_empty() {
        "anonymous".into()
    } else {
        name
    }
}

impl Actor {
    /// The actor of changes made by the server itself (seeding, demo data).
    pub fn system() -> Self {
        Actor::named("system")
    }

    /// An actor by name; blank names become `anonymous`, long ones are cut to 255 characters.
    pub fn named(name: &str) -> Self {
        Actor {
            name: stored_name(name),
            source: None,
        }
    }

    /// The same actor, writing what the discovery source `source` reported.
    pub fn for_source(&self, source: &str) -> Self {
        Actor {
            name: self.name.clone(),
            source: Some(stored_name(source)),
        }
    }

    /// The name recorded in the audit trail.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The discovery source recorded beside the name, if any.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }
}

/// The kind of entity an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    ConfigurationItem,
    Relationship,
    Service,
    CiClass,
    RelationshipType,
    ReconciliationRule,
    ApiToken,
    Incident,
    Change,
    Customer,
    ServiceLevel,
    PriorityRule,
    Webhook,
    Baseline,
}

impl EntityType {
    /// The stored form, also the GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::ConfigurationItem => "CONFIGURATION_ITEM",
            EntityType::Relationship => "RELATIONSHIP",
            EntityType::Service => "SERVICE",
            EntityType::CiClass => "CI_CLASS",
            EntityType::RelationshipType => "RELATIONSHIP_TYPE",
            EntityType::ReconciliationRule => "RECONCILIATION_RULE",
            EntityType::ApiToken => "API_TOKEN",
            EntityType::Incident => "INCIDENT",
            EntityType::Change => "CHANGE",
            EntityType::Customer => "CUSTOMER",
            EntityType::ServiceLevel => "SERVICE_LEVEL",
            EntityType::PriorityRule => "PRIORITY_RULE",
            EntityType::Webhook => "WEBHOOK",
            EntityType::Baseline => "BASELINE",
        }
    }

    /// The entity type of a stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [
            EntityType::ConfigurationItem,
            EntityType::Relationship,
            EntityType::Service,
            EntityType::CiClass,
            EntityType::RelationshipType,
            EntityType::ReconciliationRule,
            EntityType::ApiToken,
            EntityType::Incident,
            EntityType::Change,
            EntityType::Customer,
            EntityType::ServiceLevel,
            EntityType::PriorityRule,
            EntityType::Webhook,
            EntityType::Baseline,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Retire,
    Delete,
    AddMembers,
    RemoveMembers,
    Transition,
    Approve,
    Reject,
    Assess,
    Revert,
}

impl Action {
    /// The stored form, also the GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Update => "UPDATE",
            Action::Retire => "RETIRE",
            Action::Delete => "DELETE",
            Action::AddMembers => "ADD_MEMBERS",
            Action::RemoveMembers => "REMOVE_MEMBERS",
            Action::Transition => "TRANSITION",
            Action::Approve => "APPROVE",
            Action::Reject => "REJECT",
            Action::Assess => "ASSESS",
            Action::Revert => "REVERT",
        }
    }

    /// The action of a stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Action::Create,
            Action::Update,
            Action::Retire,
            Action::Delete,
            Action::AddMembers,
            Action::RemoveMembers,
            Action::Transition,
            Action::Approve,
            Action::Reject,
            Action::Assess,
            Action::Revert,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// One event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event {
    pub entity_type: EntityType,
    pub entity_id: String,
    pub action: Action,
    pub before: Option<Json>,
    pub after: Option<Json>,
}

impl Event {
    /// An event with the states serialised from any serialisable snapshot.
    pub fn new<S: Serialize>(
        entity_type: EntityType,
        entity_id: impl ToString,
        action: Action,
        before: Option<&S>,
        after: Option<&S>,
    ) -> Result<Self> {
        Ok(Event {
            entity_type,
            entity_id: entity_id.to_string(),
            action,
            before: before.map(serde_json::to_value).transpose()?,
            after: after.map(serde_json::to_value).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_parse_back() {
        for t in [
            EntityType::ConfigurationItem,
            EntityType::Service,
            EntityType::CiClass,
        ] {
            assert_eq!(EntityType::parse(t.as_str()), Some(t));
        }
        for a in [Action::Create, Action::Retire, Action::RemoveMembers] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("nonsense"), None);
    }

    #[test]
    fn blank_actors_are_anonymous() {
        assert_eq!(Actor::named("  ").name(), "anonymous");
        assert_eq!(Actor::named(" discovery ").name(), "discovery");
    }
}

/// Makes this transaction's audit ids follow commit order: on PostgreSQL, writers take
/// turns (a transaction-scoped advisory lock per schema, held to the commit) from just
/// before their audit rows take ids until they commit. Otherwise a reader of the trail
/// could see id 11 committed before id 10, move its cursor past 10 and never see it.
/// SQLite needs nothing: its writers already take turns for the whole transaction.
pub(super) async fn take_commit_turn(db: &impl ConnectionTrait) -> Result<()> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    db.execute_unprepared(
        "SELECT pg_advisory_xact_lock(hashtext('cmdb_event_order:' || current_schema()))",
    )
    .await?;
    Ok(())
}

/// Writes the events of a unit of work to the trail, in its transaction, in as few
/// statements as the engines allow, all stamped `occurred_at`; returns their ids, in the
/// order of the events. Only the unit of work calls this: it is how every write is audited.
pub(super) async fn write(
    db: &impl ConnectionTrait,
    actor: &Actor,
    events: &[Event],
    occurred_at: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut rows = super::bulk::Rows::new(
        "audit_event",
        &[
            "occurred_at",
            "actor",
            "source",
            "entity_type",
            "entity_id",
            "action",
            "before",
            "after",
        ],
    );
    for event in events {
        rows.push(vec![
            occurred_at.into(),
            actor.name().into(),
            actor.source().map(str::to_owned).into(),
            event.entity_type.as_str().into(),
            event.entity_id.as_str().into(),
            event.action.as_str().into(),
            event.before.clone().into(),
            event.after.clone().into(),
        ]);
    }
    let mut written = super::bulk::insert_returning(db, rows, "id, entity_id").await?;
    // Ids are taken in the order the rows are inserted, which is the order of the events;
    // checked, because the versions of the history name the event that wrote them.
    written.sort_by_key(|(id, _)| *id);
    let in_order = written.len() == events.len()
        && written
            .iter()
            .zip(events)
            .all(|((_, entity_id), event)| *entity_id == event.entity_id);
    if !in_order {
        return Err(super::Error::internal(anyhow::anyhow!(
            "the audit trail returned {} ids for {} events, or not in their order",
            written.len(),
            events.len()
        )));
    }
    Ok(written.into_iter().map(|(id, _)| id).collect())
}

/// Which events to list; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Kinds of record whose events the reader may not see (left out of every answer).
    pub hidden: Vec<EntityType>,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub source: Option<String>,
    pub action: Option<Action>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn condition(&self) -> Condition {
        let mut condition = Condition::all();
        if !self.hidden.is_empty() {
            condition = condition.add(
                audit_event::Column::EntityType.is_not_in(self.hidden.iter().map(|t| t.as_str())),
            );
        }
        if let Some(entity_type) = self.entity_type {
            condition = condition.add(audit_event::Column::EntityType.eq(entity_type.as_str()));
        }
        if let Some(entity_id) = &self.entity_id {
            condition = condition.add(audit_event::Column::EntityId.eq(entity_id.as_str()));
        }
        if let Some(actor) = &self.actor {
            condition = condition.add(audit_event::Column::Actor.eq(actor.as_str()));
        }
        if let Some(source) = &self.source {
            condition = condition.add(audit_event::Column::Source.eq(source.as_str()));
        }
        if let Some(action) = self.action {
            condition = condition.add(audit_event::Column::Action.eq(action.as_str()));
        }
        if let Some(since) = self.since {
            condition = condition.add(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = self.until {
            condition = condition.add(audit_event::Column::OccurredAt.lt(until));
        }
        condition
    }
}

/// The first and last ids of the events stamped in `[since, until)` (either end open when
/// not given); `None` when there are none. Ids follow commit order and so do the stamps, so
/// a time window is an id range: reading it along the primary key never walks the events
/// before or after it. Both ends are found through the instants' index, in its order
/// (`MIN(id) WHERE occurred_at >= $1` would walk the primary key over every earlier event).
pub(super) async fn id_range(
    db: &impl ConnectionTrait,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Option<(Option<i64>, Option<i64>)>> {
    let mut first = None;
    if let Some(since) = since {
        let sql = "SELECT id FROM audit_event WHERE occurred_at >= $1 \
                   ORDER BY occurred_at, id LIMIT 1";
        match db
            .query_one_raw(super::bulk::statement(db, sql, vec![since.into()]))
            .await?
        {
            Some(row) => first = Some(row.try_get_by_index::<i64>(0)?),
            None => return Ok(None),
        }
    }
    let mut last = None;
    if let Some(until) = until {
        let sql = "SELECT id FROM audit_event WHERE occurred_at < $1 \
                   ORDER BY occurred_at DESC, id DESC LIMIT 1";
        match db
            .query_one_raw(super::bulk::statement(db, sql, vec![until.into()]))
            .await?
        {
            Some(row) => last = Some(row.try_get_by_index::<i64>(0)?),
            None => return Ok(None),
        }
    }
    Ok(Some((first, last)))
}

/// `filter`'s condition, with its time window also as a range of ids (see [`id_range`]).
async fn bounded(db: &impl ConnectionTrait, filter: &AuditFilter) -> Result<Condition> {
    let mut condition = filter.condition();
    if filter.since.is_none() && filter.until.is_none() {
        return Ok(condition);
    }
    match id_range(db, filter.since, filter.until).await? {
        None => condition = condition.add(audit_event::Column::Id.lt(0)),
        Some((first, last)) => {
            if let Some(first) = first {
                condition = condition.add(audit_event::Column::Id.gte(first));
            }
            if let Some(last) = last {
                condition = condition.add(audit_event::Column::Id.lte(last));
            }
        }
    }
    Ok(condition)
}

/// A page of events in the order they happened, or newest first when `newest_first`.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    newest_first: bool,
    window: &PageWindow,
) -> Result<Page<audit_event::Model>> {
    let select = audit_event::Entity::find().filter(bounded(db, filter).await?);
    let key = SortKey::by_id(
        audit_event::Column::Id,
        super::pagination::KeyKind::Int,
        newest_first,
        if newest_first {
            "audit:desc"
        } else {
            "audit:asc"
        },
    );
    fetch_page(db, select, &key, window, |event| {
        (None, super::pagination::KeyValue::Int(event.id))
    })
    .await
}

/// The event with this id when it matches `filter` (so that events hidden from the caller
/// stay hidden whichever way they are asked for).
pub async fn find(
    db: &impl ConnectionTrait,
    id: i64,
    filter: &AuditFilter,
) -> Result<Option<audit_event::Model>> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Id.eq(id))
        .filter(filter.condition())
        .one(db)
        .await?)
}

/// How many events match, for `totalCount`.
pub async fn count(db: &impl ConnectionTrait, filter: &AuditFilter) -> Result<u64> {
    Ok(audit_event::Entity::find()
        .filter(bounded(db, filter).await?)
        .select_only()
        .column(audit_event::Column::Id)
        .count(db)
        .await?)
}
