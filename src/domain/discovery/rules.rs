//! Reconciliation rules: for a class and a field, the sources in order of authority.
//!
//! A rule applies to its class and its subclasses; a rule for the field itself wins over a
//! rule for `*` (every field), and a subclass's rule over its parent's.

use std::collections::HashMap;

use chrono::Duration;
use entity::reconciliation_rule::{self, Column, Entity};
use entity::values::AttributeNames;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use super::super::audit::{Action, Actor, EntityType, Event};
use super::super::ci_class::ClassCatalog;
use super::super::{Error, Result, now};
use super::provenance::attribute_key;
use super::reconcile::Ranking;
use crate::domain::unit_of_work::UnitOfWork;

/// The core fields discovery may set, besides attributes.
pub const CORE_FIELDS: [&str; 6] = [
    "name",
    "description",
    "status",
    "environment",
    "criticality",
    "owner",
];

/// The field key a rule is stored under: core fields and `*` as they are, attributes as
/// `attributes.<name>` (given with or without the prefix).
pub fn field_key(field: &str) -> String {
    if field == "*" || CORE_FIELDS.contains(&field) || field.starts_with("attributes.") {
        field.to_owned()
    } else {
        attribute_key(field)
    }
}

/// Every rule, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: HashMap<(i32, String), Ranking>,
}

impl RuleSet {
    /// Reads every rule; `default_stale_after` applies to rules that set no period.
    pub async fn load(db: &impl ConnectionTrait, default_stale_after: Duration) -> Result<Self> {
        let rules = Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|rule| {
                let stale_after = rule
                    .stale_after_seconds
                    .map(Duration::seconds)
                    .unwrap_or(default_stale_after);
                (
                    (rule.class_id, rule.attribute),
                    Ranking {
                        sources: rule.sources.0,
                        stale_after,
                    },
                )
            })
            .collect();
        Ok(RuleSet { rules })
    }

    /// Whether there is no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The ranking for `field` of CIs of `class_id`.
    pub fn ranking(&self, catalog: &ClassCatalog, class_id: i32, field: &str) -> Option<&Ranking> {
        for class in catalog.lineage(class_id) {
            if let Some(ranking) = self.rules.get(&(class.id, field.to_owned())) {
                return Some(ranking);
            }
            if let Some(ranking) = self.rules.get(&(class.id, "*".to_owned())) {
                return Some(ranking);
            }
        }
        None
    }
}

/// A rule to set.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub class: String,
    pub field: String,
    pub sources: Vec<String>,
    pub stale_after_seconds: Option<i64>,
}

#[derive(Serialize)]
struct Snapshot<'a> {
    class: &'a str,
    #[serde(flatten)]
    rule: &'a reconciliation_rule::Model,
}

fn entity_id(class: &str, field: &str) -> String {
    format!("{class}:{field}")
}

/// Sets (creates or replaces) the rule of a class and field.
pub async fn set(
    db: &DatabaseConnection,
    actor: &Actor,
    input: RuleInput,
) -> Result<reconciliation_rule::Model> {
    let field = field_key(input.field.trim());
    if field.is_empty() || field.len() > 120 {
        return Err(Error::invalid(
            "attribute",
            "`attribute` must have 1 to 120 characters",
        ));
    }
    let mut sources = Vec::new();
    for (i, source) in input.sources.iter().enumerate() {
        let source = super::check_source(&format!("sources[{i}]"), source)?;
        if sources.contains(&source) {
            return Err(Error::invalid(
                format!("sources[{i}]"),
                format!("source `{source}` is listed twice"),
            ));
        }
        sources.push(source);
    }
    if sources.is_empty() {
        return Err(Error::invalid("sources", "list at least one source"));
    }
    if input.stale_after_seconds.is_some_and(|s| s <= 0) {
        return Err(Error::invalid(
            "staleAfterHours",
            "the staleness period must be positive",
        ));
    }
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    crate::domain::ci_class::lock_class(txn, input.class.trim()).await?;
    let catalog = ClassCatalog::load(txn).await?;
    let class = catalog.resolve("class", input.class.trim())?.clone();
    let before = Entity::find_by_id((class.id, field.clone()))
        .one(txn)
        .await?;
    let at = now();
    let model = match &before {
        Some(existing) => {
            let mut active: reconciliation_rule::ActiveModel = existing.clone().into();
            active.sources = Set(AttributeNames(sources));
            active.stale_after_seconds = Set(input.stale_after_seconds);
            active.updated_at = Set(at);
            active.update(txn).await?
        }
        None => {
            reconciliation_rule::ActiveModel {
                class_id: Set(class.id),
                attribute: Set(field.clone()),
                sources: Set(AttributeNames(sources)),
                stale_after_seconds: Set(input.stale_after_seconds),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(txn)
            .await?
        }
    };
    let action = if before.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    let before = before.as_ref().map(|rule| Snapshot {
        class: &class.name,
        rule,
    });
    let after = Snapshot {
        class: &class.name,
        rule: &model,
    };
    uow.record(Event::new(
        EntityType::ReconciliationRule,
        entity_id(&class.name, &field),
        action,
        before.as_ref(),
        Some(&after),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Deletes the rule of a class and field.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    class: &str,
    field: &str,
) -> Result<reconciliation_rule::Model> {
    let field = field_key(field.trim());
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let catalog = ClassCatalog::load(txn).await?;
    let class = catalog.resolve("class", class.trim())?.clone();
    let rule = Entity::find_by_id((class.id, field.clone()))
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("reconciliation rule", entity_id(&class.name, &field)))?;
    Entity::delete_by_id((class.id, field.clone()))
        .exec(txn)
        .await?;
    let snapshot = Snapshot {
        class: &class.name,
        rule: &rule,
    };
    uow.record(Event::new(
        EntityType::ReconciliationRule,
        entity_id(&class.name, &field),
        Action::Delete,
        Some(&snapshot),
        None,
    )?);
    uow.commit().await?;
    Ok(rule)
}

/// The rules, of one class (and its ancestors' rules are not included) or all.
pub async fn list(
    db: &impl ConnectionTrait,
    class: Option<&str>,
) -> Result<Vec<reconciliation_rule::Model>> {
    let mut query = Entity::find()
        .order_by_asc(Column::ClassId)
        .order_by_asc(Column::Attribute);
    if let Some(class) = class {
        let catalog = ClassCatalog::load(db).await?;
        let class = catalog.resolve("class", class)?;
        query = query.filter(Column::ClassId.eq(class.id));
    }
    Ok(query.all(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_fields_name_core_fields_and_attributes() {
        assert_eq!(field_key("name"), "name");
        assert_eq!(field_key("*"), "*");
        assert_eq!(field_key("serial_number"), "attributes.serial_number");
        assert_eq!(field_key("attributes.os"), "attributes.os");
    }
}
