//! Provenance: which source set each field of a CI, and when.
//!
//! Kept in the CI's `provenance` JSON object, keyed by field: the core fields by name (`name`,
//! `description`, `status`, `environment`, `criticality`, `owner`) and attributes as
//! `attributes.<name>`. Edits made through the ordinary mutations are stamped `manual`.

use chrono::{DateTime, Utc};
use entity::configuration_item;
use serde_json::{Map, Value as Json, json};

/// The source of edits made by people through the ordinary mutations.
pub const MANUAL: &str = "manual";

/// The provenance key of an attribute.
pub fn attribute_key(name: &str) -> String {
    format!("attributes.{name}")
}

/// Who set a field, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub at: DateTime<Utc>,
}

/// The entry of `field`, if any.
pub fn entry(provenance: &Json, field: &str) -> Option<Entry> {
    let value = provenance.get(field)?;
    Some(Entry {
        source: value.get("source")?.as_str()?.to_owned(),
        at: value
            .get("at")?
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
            .with_timezone(&Utc),
    })
}

/// All entries, by field.
pub fn entries(provenance: &Json) -> Vec<(String, Entry)> {
    let Some(object) = provenance.as_object() else {
        return Vec::new();
    };
    let mut list: Vec<(String, Entry)> = object
        .keys()
        .filter_map(|field| entry(provenance, field).map(|e| (field.clone(), e)))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// Records that `source` set `field` at `at`.
pub fn stamp(provenance: &mut Json, field: &str, source: &str, at: DateTime<Utc>) {
    if !provenance.is_object() {
        *provenance = Json::Object(Map::new());
    }
    if let Some(object) = provenance.as_object_mut() {
        object.insert(
            field.to_owned(),
            json!({ "source": source, "at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true) }),
        );
    }
}

/// Forgets who set `field` (the field was removed).
pub fn forget(provenance: &mut Json, field: &str) {
    if let Some(object) = provenance.as_object_mut() {
        object.remove(field);
    }
}

/// The fields whose values differ between two states of a CI (`before` absent: every field
/// `after` has a value for).
pub fn changed_fields(
    before: Option<&configuration_item::Model>,
    after: &configuration_item::Model,
) -> Vec<String> {
    let mut changed = Vec::new();
    let core: [(&str, Json, Option<Json>); 6] = [
        ("name", json!(after.name), before.map(|b| json!(b.name))),
        (
            "description",
            json!(after.description),
            before.map(|b| json!(b.description)),
        ),
        (
            "status",
            json!(after.status),
            before.map(|b| json!(b.status)),
        ),
        (
            "environment",
            json!(after.environment),
            before.map(|b| json!(b.environment)),
        ),
        (
            "criticality",
            json!(after.criticality),
            before.map(|b| json!(b.criticality)),
        ),
        ("owner", json!(after.owner), before.map(|b| json!(b.owner))),
    ];
    for (field, new, old) in core {
        let differs = match old {
            Some(old) => old != new,
            None => !new.is_null(),
        };
        if differs {
            changed.push(field.to_owned());
        }
    }
    let empty = Map::new();
    let new_attributes = after.attributes.as_object().unwrap_or(&empty);
    let old_attributes = before
        .and_then(|b| b.attributes.as_object())
        .unwrap_or(&empty);
    let mut keys: Vec<&String> = new_attributes.keys().chain(old_attributes.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if new_attributes.get(key) != old_attributes.get(key) {
            changed.push(attribute_key(key));
        }
    }
    changed
}

/// Stamps every changed field with `source`, and forgets removed attributes.
pub fn stamp_changes(
    provenance: &mut Json,
    after: &configuration_item::Model,
    changed: &[String],
    source: &str,
    at: DateTime<Utc>,
) {
    for field in changed {
        let removed = field
            .strip_prefix("attributes.")
            .is_some_and(|name| after.attributes.get(name).is_none());
        if removed {
            forget(provenance, field);
        } else {
            stamp(provenance, field, source, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_removed_attributes_are_forgotten() {
        let at = crate::domain::now();
        let mut provenance = json!({});
        stamp(&mut provenance, "attributes.os", "vcenter", at);
        stamp(&mut provenance, "name", MANUAL, at);
        assert_eq!(
            entry(&provenance, "attributes.os"),
            Some(Entry {
                source: "vcenter".into(),
                at
            })
        );
        assert_eq!(entries(&provenance).len(), 2);
        forget(&mut provenance, "attributes.os");
        assert_eq!(entry(&provenance, "attributes.os"), None);
    }
}
