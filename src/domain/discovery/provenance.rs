//! Provenance: which source set each field of a CI, and when.
//!
//! Kept in the CI's `provenance` JSON document, by field: the core fields by name (`name`,
//! `description`, `status`, `environment`, `criticality`, `owner`) and attributes as
//! `attributes.<name>`. Edits made through the ordinary mutations are stamped `manual`.

use std::collections::BTreeMap;

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

/// Provenance decoded: who set each field, by field.
pub type Fields = BTreeMap<String, Entry>;

/// Reads the stored form: `{"stamps": [["vcenter", "2026-...Z"], ...], "fields": {"name": 0,
/// "attributes.os": 0, ...}}`, each field pointing at the stamp (source and time) that set
/// it. A batch stamps many fields at once, so this is far smaller than one stamp per field.
pub fn decode(provenance: &Json) -> Fields {
    let stamps: Vec<Option<Entry>> = provenance
        .get("stamps")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .map(|stamp| {
                    let source = stamp.get(0)?.as_str()?.to_owned();
                    let at = DateTime::parse_from_rfc3339(stamp.get(1)?.as_str()?).ok()?;
                    Some(Entry {
                        source,
                        at: at.with_timezone(&Utc),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    provenance
        .get("fields")
        .and_then(Json::as_object)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|(field, index)| {
                    let entry = stamps.get(index.as_u64()? as usize)?.clone()?;
                    Some((field.clone(), entry))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The stored form of decoded provenance.
pub fn encode(entries: &Fields) -> Json {
    let mut stamps: Vec<&Entry> = Vec::new();
    let mut fields = Map::new();
    for (field, entry) in entries {
        let index = match stamps.iter().position(|s| *s == entry) {
            Some(index) => index,
            None => {
                stamps.push(entry);
                stamps.len() - 1
            }
        };
        fields.insert(field.clone(), Json::from(index));
    }
    let stamps: Vec<Json> = stamps
        .into_iter()
        .map(|e| {
            json!([
                e.source,
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ])
        })
        .collect();
    json!({ "stamps": stamps, "fields": fields })
}

/// The entry of `field`, if any.
pub fn entry(provenance: &Json, field: &str) -> Option<Entry> {
    decode(provenance).remove(field)
}

/// All entries, by field.
pub fn entries(provenance: &Json) -> Vec<(String, Entry)> {
    decode(provenance).into_iter().collect()
}

/// Records that `source` set `field` at `at`.
pub fn stamp(provenance: &mut Json, field: &str, source: &str, at: DateTime<Utc>) {
    let mut entries = decode(provenance);
    entries.insert(
        field.to_owned(),
        Entry {
            source: source.to_owned(),
            at,
        },
    );
    *provenance = encode(&entries);
}

/// Forgets who set `field` (the field was removed).
pub fn forget(provenance: &mut Json, field: &str) {
    let mut entries = decode(provenance);
    if entries.remove(field).is_some() {
        *provenance = encode(&entries);
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
    if changed.is_empty() {
        return;
    }
    let mut entries = decode(provenance);
    for field in changed {
        let removed = field
            .strip_prefix("attributes.")
            .is_some_and(|name| after.attributes.get(name).is_none());
        if removed {
            entries.remove(field);
        } else {
            entries.insert(
                field.clone(),
                Entry {
                    source: source.to_owned(),
                    at,
                },
            );
        }
    }
    *provenance = encode(&entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_removed_attributes_are_forgotten() {
        let at = crate::domain::now();
        let mut provenance = json!({});
        stamp(&mut provenance, "attributes.os", "vcenter", at);
        stamp(&mut provenance, "attributes.cpu", "vcenter", at);
        stamp(&mut provenance, "name", MANUAL, at);
        assert_eq!(
            provenance["stamps"].as_array().map(Vec::len),
            Some(2),
            "one stamp per source and time"
        );
        assert_eq!(
            entry(&provenance, "attributes.os"),
            Some(Entry {
                source: "vcenter".into(),
                at
            })
        );
        assert_eq!(entries(&provenance).len(), 3);
        forget(&mut provenance, "attributes.os");
        assert_eq!(entry(&provenance, "attributes.os"), None);
    }
}
