//! Identity keys: the normalised values of a CI's identifier attributes (serial number,
//! FQDN...), kept in a table so that discovery finds an existing CI with one index lookup
//! per attribute, however the CI was recorded (by discovery or by hand).
//!
//! Values are compared trimmed and lower-cased: `SN123 ` and `sn123` identify the same CI.

use std::collections::HashMap;

use entity::{configuration_item, identity_key};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value as Json;
use uuid::Uuid;

use super::class_catalog::ClassCatalog;
use crate::error::Result;

/// The longest identifier value kept.
const MAX_VALUE: usize = 512;

/// The normalised form of an identifier value; none for values that cannot identify.
pub fn normalise(value: &Json) -> Option<String> {
    let text = match value {
        Json::String(s) => s.trim().to_lowercase(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_VALUE).then_some(text)
}

/// The identity keys of a CI: (attribute, value) for each identifier attribute it has.
pub fn keys(identifiers: &[String], attributes: &Json) -> Vec<(String, String)> {
    identifiers
        .iter()
        .filter_map(|name| {
            attributes
                .get(name)
                .and_then(normalise)
                .map(|value| (name.clone(), value))
        })
        .collect()
}

/// Replaces the identity keys of the given CIs by those of their current attributes.
pub async fn replace(
    db: &impl ConnectionTrait,
    catalog: &ClassCatalog,
    cis: &[&configuration_item::Model],
) -> Result<()> {
    for chunk in cis.chunks(500) {
        identity_key::Entity::delete_many()
            .filter(identity_key::Column::CiId.is_in(chunk.iter().map(|ci| ci.id)))
            .exec(db)
            .await?;
    }
    insert(db, catalog, cis).await
}

/// Records the identity keys of CIs that have none yet (new CIs).
pub async fn insert(
    db: &impl ConnectionTrait,
    catalog: &ClassCatalog,
    cis: &[&configuration_item::Model],
) -> Result<()> {
    let rows: Vec<identity_key::ActiveModel> = cis
        .iter()
        .flat_map(|ci| {
            keys(&catalog.effective_identifiers(ci.class_id), &ci.attributes)
                .into_iter()
                .map(move |(attribute, value)| identity_key::ActiveModel {
                    class_id: Set(ci.class_id),
                    attribute: Set(attribute),
                    value: Set(value),
                    ci_id: Set(ci.id),
                })
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        identity_key::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The CIs of `class_id` whose `attribute` has one of `values`, by value.
pub async fn lookup(
    db: &impl ConnectionTrait,
    class_id: i32,
    attribute: &str,
    values: &[String],
) -> Result<HashMap<String, Vec<Uuid>>> {
    let mut found: HashMap<String, Vec<Uuid>> = HashMap::new();
    for chunk in values.chunks(500) {
        let rows = identity_key::Entity::find()
            .filter(identity_key::Column::ClassId.eq(class_id))
            .filter(identity_key::Column::Attribute.eq(attribute))
            .filter(identity_key::Column::Value.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for row in rows {
            found.entry(row.value).or_default().push(row.ci_id);
        }
    }
    for ids in found.values_mut() {
        ids.sort();
        ids.dedup();
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifier_values_are_trimmed_and_lower_cased() {
        assert_eq!(normalise(&json!(" SN-123 ")), Some("sn-123".into()));
        assert_eq!(normalise(&json!(42)), Some("42".into()));
        assert_eq!(normalise(&json!("")), None);
        assert_eq!(normalise(&json!({"a": 1})), None);
        let keys = keys(
            &["serial_number".into(), "fqdn".into()],
            &json!({ "fqdn": "Web-01.Example.com", "os": "linux" }),
        );
        assert_eq!(
            keys,
            vec![("fqdn".to_string(), "web-01.example.com".to_string())]
        );
    }
}
