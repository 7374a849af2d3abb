//! What changed between two instants: the audit trail of CIs, relationships and services
//! read over the interval, each event turned into a difference (the fields that changed,
//! with their values before and after; the members that came or went), with who and when.
//! Narrowed to a scope by the ids of what it touches, so the narrowing is in the query.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use entity::audit_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Select, Value,
    prelude::Json,
    sea_query::{Condition, Expr},
};
use uuid::Uuid;

use super::super::audit::{self, Action, EntityType};
use super::super::events::matching::changed_fields;
use super::super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::super::{Error, Result, bulk};

/// Most records a scope may name once widened (CIs, their relationships, their services):
/// the ids go into the query.
pub const MAX_SCOPE_IDS: usize = 20_000;

/// What a difference did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    CiCreated,
    CiUpdated,
    CiRetired,
    CiDeleted,
    RelationshipAdded,
    RelationshipRemoved,
    RelationshipUpdated,
    ServiceCreated,
    ServiceUpdated,
    ServiceDeleted,
    MembersAdded,
    MembersRemoved,
}

/// One field that changed, with its values before and after (null when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub before: Json,
    pub after: Json,
}

/// One difference: an audit event of a CI, relationship or service, read as a change.
#[derive(Debug, Clone)]
pub struct Difference {
    pub event: audit_event::Model,
    pub kind: DifferenceKind,
    pub fields: Vec<FieldChange>,
    /// For membership changes, the CIs that joined (created, added) or left (removed,
    /// deleted).
    pub members_added: Vec<Uuid>,
    pub members_removed: Vec<Uuid>,
}

/// Which records to report on: all, or only those a set of CIs involves (the CIs, the
/// relationships with one of them at an end, the services they belong or belonged to).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub ci_ids: Option<Vec<Uuid>>,
}

/// The value at `path` (`name`, or `attributes.<name>`) of a state.
fn value_at(state: Option<&Json>, path: &str) -> Json {
    let Some(state) = state else {
        return Json::Null;
    };
    let found = match path.strip_prefix("attributes.") {
        Some(name) => state.get("attributes").and_then(|a| a.get(name)),
        None => state.get(path),
    };
    found.cloned().unwrap_or(Json::Null)
}

/// The members listed in a service state.
fn members(state: Option<&Json>) -> BTreeSet<Uuid> {
    state
        .and_then(|s| s.get("member_ids"))
        .and_then(|ids| serde_json::from_value::<Vec<Uuid>>(ids.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Reads one audit event as a difference (pure).
pub fn difference(event: audit_event::Model) -> Difference {
    let entity_type = EntityType::parse(&event.entity_type);
    let action = Action::parse(&event.action);
    let (before, after) = (event.before.as_ref(), event.after.as_ref());
    let (old_members, new_members) = (members(before), members(after));
    let members_added: Vec<Uuid> = new_members.difference(&old_members).copied().collect();
    let members_removed: Vec<Uuid> = old_members.difference(&new_members).copied().collect();
    let kind = match (entity_type, action, before.is_some(), after.is_some()) {
        (Some(EntityType::ConfigurationItem), Some(Action::Retire), _, _) => {
            DifferenceKind::CiRetired
        }
        (Some(EntityType::ConfigurationItem), _, false, _) => DifferenceKind::CiCreated,
        (Some(EntityType::ConfigurationItem), _, _, false) => DifferenceKind::CiDeleted,
        (Some(EntityType::ConfigurationItem), _, _, _) => DifferenceKind::CiUpdated,
        (Some(EntityType::Relationship), _, false, _) => DifferenceKind::RelationshipAdded,
        (Some(EntityType::Relationship), _, _, false) => DifferenceKind::RelationshipRemoved,
        (Some(EntityType::Relationship), _, _, _) => DifferenceKind::RelationshipUpdated,
        (_, _, false, _) => DifferenceKind::ServiceCreated,
        (_, _, _, false) => DifferenceKind::ServiceDeleted,
        (_, Some(Action::AddMembers), _, _) => DifferenceKind::MembersAdded,
        (_, Some(Action::RemoveMembers), _, _) => DifferenceKind::MembersRemoved,
        _ => DifferenceKind::ServiceUpdated,
    };
    let fields = changed_fields(before, after)
        .into_iter()
        .filter(|field| field != "member_ids")
        .map(|field| FieldChange {
            before: value_at(before, &field),
            after: value_at(after, &field),
            field,
        })
        .collect();
    Difference {
        event,
        kind,
        fields,
        members_added,
        members_removed,
    }
}

/// The ids (as the audit trail writes them) of what `ci_ids` involve at any time: the CIs,
/// every relationship that had one of them at an end, every service they were a member of.
async fn involved(db: &impl ConnectionTrait, ci_ids: &[Uuid]) -> Result<Vec<String>> {
    let mut ids: BTreeSet<String> = ci_ids.iter().map(Uuid::to_string).collect();
    for chunk in ci_ids.chunks(500) {
        let values: Vec<Value> = chunk.iter().map(|id| Value::from(*id)).collect();
        let list = bulk::placeholders(1, chunk.len());
        for sql in [
            format!(
                "SELECT DISTINCT id FROM relationship_version WHERE source_id IN ({list}) \
                 OR target_id IN ({list})"
            ),
            format!(
                "SELECT DISTINCT service_id FROM service_member_version WHERE ci_id IN ({list})"
            ),
        ] {
            for row in db
                .query_all_raw(bulk::statement(db, &sql, values.clone()))
                .await?
            {
                let id: Uuid = row.try_get_by_index(0)?;
                ids.insert(id.to_string());
            }
            if ids.len() > MAX_SCOPE_IDS {
                return Err(Error::LimitExceeded(format!(
                    "the scope involves more than {MAX_SCOPE_IDS} records; name fewer CIs \
                     or a narrower service"
                )));
            }
        }
    }
    Ok(ids.into_iter().collect())
}

/// The events of the interval `(from, to]` about CIs, relationships and services within
/// `scope`: "as of `from`" already includes what happened at `from`.
async fn select(
    db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: &Scope,
) -> Result<Select<audit_event::Entity>> {
    if to < from {
        return Err(Error::invalid("to", "`to` is before `from`"));
    }
    let tick = TimeDelta::microseconds(1);
    // Ids follow commit order and so do the stamps: the interval is a range of ids, found
    // through the instants' index, and read in id order along the primary key. The kinds
    // of record are filtered on an expression so that no engine is tempted to read them
    // through the index by kind (every CI event ever) instead.
    let (first, last) = match audit::id_range(db, Some(from + tick), Some(to + tick)).await? {
        Some((Some(first), Some(last))) => (first, last),
        _ => (1, 0),
    };
    let kinds = [
        EntityType::ConfigurationItem,
        EntityType::Relationship,
        EntityType::Service,
    ]
    .map(|t| format!("'{}'", t.as_str()))
    .join(", ");
    let mut condition = Condition::all()
        .add(audit_event::Column::Id.gte(first))
        .add(audit_event::Column::Id.lte(last))
        .add(Expr::cust(format!(
            "(\"audit_event\".\"entity_type\" || '') IN ({kinds})"
        )));
    if let Some(ci_ids) = &scope.ci_ids {
        condition = condition.add(audit_event::Column::EntityId.is_in(involved(db, ci_ids).await?));
    }
    Ok(audit_event::Entity::find().filter(condition))
}

/// One page of what changed in `(from, to]` within `scope`, in the order it happened.
/// Membership changes of a scoped service name only the scope's CIs.
pub async fn changes_between(
    db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: &Scope,
    window: &PageWindow,
) -> Result<Page<Difference>> {
    let select = select(db, from, to, scope).await?;
    let key = SortKey::by_id(audit_event::Column::Id, KeyKind::Int, false, "changes:asc");
    let page = fetch_page(db, select, &key, window, |event| {
        (None, KeyValue::Int(event.id))
    })
    .await?;
    let keep = |ids: Vec<Uuid>| match &scope.ci_ids {
        Some(scope) => ids.into_iter().filter(|id| scope.contains(id)).collect(),
        None => ids,
    };
    Ok(page.map(|event| {
        let mut difference = difference(event);
        difference.members_added = keep(std::mem::take(&mut difference.members_added));
        difference.members_removed = keep(std::mem::take(&mut difference.members_removed));
        difference
    }))
}

/// How many differences [`changes_between`] would list.
pub async fn count(
    db: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: &Scope,
) -> Result<u64> {
    Ok(select(db, from, to, scope).await?.count(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(
        entity_type: &str,
        action: &str,
        before: Option<Json>,
        after: Option<Json>,
    ) -> audit_event::Model {
        audit_event::Model {
            id: 1,
            occurred_at: Utc::now(),
            actor: "tester".into(),
            source: None,
            entity_type: entity_type.into(),
            entity_id: Uuid::nil().to_string(),
            action: action.into(),
            before,
            after,
        }
    }

    #[test]
    fn an_update_lists_each_changed_field_and_attribute_with_both_values() {
        let before =
            json!({ "name": "web", "version": 1, "attributes": { "port": 80, "os": "linux" } });
        let after =
            json!({ "name": "web-2", "version": 2, "attributes": { "port": 8080, "os": "linux" } });
        let d = difference(event(
            "CONFIGURATION_ITEM",
            "UPDATE",
            Some(before),
            Some(after),
        ));
        assert_eq!(d.kind, DifferenceKind::CiUpdated);
        assert_eq!(
            d.fields,
            vec![
                FieldChange {
                    field: "attributes.port".into(),
                    before: json!(80),
                    after: json!(8080)
                },
                FieldChange {
                    field: "name".into(),
                    before: json!("web"),
                    after: json!("web-2")
                },
            ]
        );
    }

    #[test]
    fn kinds_follow_the_entity_and_what_the_event_did() {
        let state = || Some(json!({ "name": "x" }));
        let kind = |t: &str, a: &str, b, c| difference(event(t, a, b, c)).kind;
        assert_eq!(
            kind("CONFIGURATION_ITEM", "CREATE", None, state()),
            DifferenceKind::CiCreated
        );
        assert_eq!(
            kind("CONFIGURATION_ITEM", "RETIRE", state(), state()),
            DifferenceKind::CiRetired
        );
        assert_eq!(
            kind("CONFIGURATION_ITEM", "DELETE", state(), None),
            DifferenceKind::CiDeleted
        );
        assert_eq!(
            kind("CONFIGURATION_ITEM", "REVERT", state(), state()),
            DifferenceKind::CiUpdated
        );
        assert_eq!(
            kind("RELATIONSHIP", "CREATE", None, state()),
            DifferenceKind::RelationshipAdded
        );
        assert_eq!(
            kind("RELATIONSHIP", "DELETE", state(), None),
            DifferenceKind::RelationshipRemoved
        );
        assert_eq!(
            kind("SERVICE", "ADD_MEMBERS", state(), state()),
            DifferenceKind::MembersAdded
        );
        assert_eq!(
            kind("SERVICE", "UPDATE", state(), state()),
            DifferenceKind::ServiceUpdated
        );
    }

    #[test]
    fn membership_changes_name_the_cis_that_came_and_went() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let d = difference(event(
            "SERVICE",
            "ADD_MEMBERS",
            Some(json!({ "name": "Shop", "member_ids": [a, b] })),
            Some(json!({ "name": "Shop", "member_ids": [a, b, c] })),
        ));
        assert_eq!(d.kind, DifferenceKind::MembersAdded);
        assert_eq!(d.members_added, vec![c]);
        assert!(d.members_removed.is_empty());
        assert!(
            d.fields.is_empty(),
            "member lists are not fields: {:?}",
            d.fields
        );
    }
}
