//! Which events a follower wants, decided on the event alone (no database round trip per
//! event and follower), and what an event changed. Pure functions.

use entity::configuration_item;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, prelude::Json,
};
use uuid::Uuid;

use crate::domain::change::ChangeFilter;
use crate::domain::ci::CiFilter;
use crate::domain::class_catalog::ClassCatalog;
use crate::domain::incident::IncidentFilter;
use crate::domain::{Result, TextMatch};

/// Fields every change moves and that say nothing of what changed.
const BOOKKEEPING: &[&str] = &["version", "updated_at", "provenance"];

/// The fields that differ between two states of a record, in a stable order: top-level
/// fields by name, and inside `attributes` each attribute as `attributes.<name>`. A create
/// lists every field it set; a delete every field it had.
pub fn changed_fields(before: Option<&Json>, after: Option<&Json>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let as_map = |state: Option<&Json>| match state {
        Some(Json::Object(map)) => map.clone(),
        _ => empty.clone(),
    };
    let (before, after) = (as_map(before), as_map(after));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changed = Vec::new();
    for key in keys {
        if BOOKKEEPING.contains(&key.as_str()) {
            continue;
        }
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        match (key.as_str(), old, new) {
            ("attributes", old, new) => {
                let old = old.and_then(Json::as_object).cloned().unwrap_or_default();
                let new = new.and_then(Json::as_object).cloned().unwrap_or_default();
                let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
                names.sort();
                names.dedup();
                changed.extend(
                    names
                        .into_iter()
                        .filter(|name| old.get(*name) != new.get(*name))
                        .map(|name| format!("attributes.{name}")),
                );
            }
            _ => changed.push(key.clone()),
        }
    }
    changed
}

/// Whether `ci` matches `filter`, as the CI list would decide it. `classes` answers the
/// class filter (none given: nothing matches one); `is_member(ci, service)` the service
/// filter (from the in-memory graph).
pub fn ci_matches(
    filter: &CiFilter,
    ci: &configuration_item::Model,
    classes: Option<&ClassCatalog>,
    is_member: impl Fn(Uuid, Uuid) -> bool,
) -> bool {
    if let Some(ids) = &filter.ids
        && !ids.contains(&ci.id)
    {
        return false;
    }
    if let Some(class) = &filter.class {
        let Some(classes) = classes else {
            return false;
        };
        let Ok(class) = classes.by_name(class) else {
            return false;
        };
        if !classes.with_descendants(class.id).contains(&ci.class_id) {
            return false;
        }
    }
    if let Some(statuses) = &filter.statuses
        && !statuses.contains(&ci.status)
    {
        return false;
    }
    if filter.environment.is_some() && filter.environment != ci.environment {
        return false;
    }
    if filter.owner.is_some() && filter.owner != ci.owner {
        return false;
    }
    if filter.criticality.is_some() && filter.criticality != ci.criticality {
        return false;
    }
    if let Some(name) = &filter.name
        && !text_matches(name, &ci.name)
    {
        return false;
    }
    for (attribute, value) in &filter.attributes {
        if ci.attributes.get(attribute) != Some(value) {
            return false;
        }
    }
    if let Some(since) = filter.updated_since
        && ci.updated_at < since
    {
        return false;
    }
    if let Some(service) = filter.service_id
        && !is_member(ci.id, service)
    {
        return false;
    }
    true
}

/// The ids a snapshot lists under `field` (`ci_ids`), or that its `field` objects name
/// under `key` (`services` → `service_id`).
fn listed(state: &Json, field: &str, key: Option<&str>) -> Vec<Uuid> {
    let items = state
        .get(field)
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| match key {
            Some(key) => item.get(key),
            None => Some(item),
        })
        .filter_map(|id| serde_json::from_value(id.clone()).ok())
        .collect()
}

/// Whether the incident, as the event left it (as it was, for a deletion), matches
/// `filter` as the incident list would decide it.
pub fn incident_matches(
    filter: &IncidentFilter,
    before: Option<&Json>,
    after: Option<&Json>,
) -> bool {
    let Some(state) = after.or(before) else {
        return false;
    };
    let Ok(incident) = serde_json::from_value::<entity::incident::Model>(state.clone()) else {
        return false;
    };
    filter
        .states
        .as_ref()
        .is_none_or(|states| states.contains(&incident.state))
        && filter
            .open
            .is_none_or(|open| crate::domain::incident::is_open(incident.state) == open)
        && filter.priority.is_none_or(|p| incident.priority == p)
        && filter.major.is_none_or(|major| incident.major == major)
        && filter
            .ci_id
            .is_none_or(|ci| listed(state, "ci_ids", None).contains(&ci))
        && filter
            .service_id
            .is_none_or(|service| listed(state, "services", Some("service_id")).contains(&service))
        && filter.opened_after.is_none_or(|t| incident.opened_at >= t)
        && filter.opened_before.is_none_or(|t| incident.opened_at < t)
}

/// Whether the change, as the event left it, matches `filter` as the change list would
/// decide it. Only the services a change's assessment hits are not in the event: for
/// `serviceId`, `hits_service` says whether its assessment (as stored now) names it.
pub fn change_matches(
    filter: &ChangeFilter,
    before: Option<&Json>,
    after: Option<&Json>,
    hits_service: impl Fn(Uuid) -> bool,
) -> bool {
    let Some(state) = after.or(before) else {
        return false;
    };
    let Ok(change) = serde_json::from_value::<entity::change_request::Model>(state.clone()) else {
        return false;
    };
    filter
        .states
        .as_ref()
        .is_none_or(|states| states.contains(&change.state))
        && filter.change_type.is_none_or(|t| change.change_type == t)
        && filter.risk.is_none_or(|risk| change.risk == Some(risk))
        && filter
            .ci_id
            .is_none_or(|ci| listed(state, "ci_ids", None).contains(&ci))
        && filter.window.is_none_or(|(from, to)| {
            change.planned_start.is_some_and(|start| start < to)
                && change.planned_end.is_some_and(|end| end > from)
        })
        && filter.service_id.is_none_or(hits_service)
}

/// Whether the change's stored assessment names the service (one indexed lookup).
pub async fn change_hits_service(
    db: &impl ConnectionTrait,
    change: Uuid,
    service: Uuid,
) -> Result<bool> {
    Ok(entity::change_service::Entity::find()
        .filter(entity::change_service::Column::ChangeId.eq(change))
        .filter(entity::change_service::Column::ServiceId.eq(service))
        .count(db)
        .await?
        > 0)
}

fn text_matches(matcher: &TextMatch, text: &str) -> bool {
    let text = text.to_lowercase();
    match matcher {
        TextMatch::Equals(wanted) => text == wanted.to_lowercase(),
        TextMatch::StartsWith(prefix) => text.starts_with(&prefix.to_lowercase()),
        TextMatch::Contains(part) => text.contains(&part.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_name_attributes_one_by_one_and_skip_bookkeeping() {
        let before = json!({"name": "a", "version": 1, "attributes": {"cpu": 2, "ram": 4}});
        let after =
            json!({"name": "b", "version": 2, "attributes": {"cpu": 2, "ram": 8, "os": "x"}});
        assert_eq!(
            changed_fields(Some(&before), Some(&after)),
            ["attributes.os", "attributes.ram", "name"]
        );
        assert!(changed_fields(Some(&before), Some(&before)).is_empty());
        assert_eq!(
            changed_fields(None, Some(&json!({"name": "a", "version": 1}))),
            ["name"]
        );
    }

    #[test]
    fn names_match_ignoring_case_as_the_list_does() {
        assert!(text_matches(&TextMatch::Equals("ESX-03".into()), "esx-03"));
        assert!(text_matches(
            &TextMatch::StartsWith("Pay".into()),
            "payment-db"
        ));
        assert!(text_matches(
            &TextMatch::Contains("MENT".into()),
            "payment-db"
        ));
        assert!(!text_matches(
            &TextMatch::Contains("x".into()),
            "payment-db"
        ));
    }
}
