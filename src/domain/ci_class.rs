//! CI classes: the kinds of configuration item, kept as data so that users extend the model
//! without a release. A class may have a parent; it inherits the parent's attribute
//! definitions (a redefinition of the same name in the child wins) and, when it declares
//! none itself, its identifier attributes.
//!
//! This module also holds attribute validation: a CI's attributes are checked against the
//! effective definitions of its class on every write.

use std::collections::HashSet;
use std::sync::Arc;

use entity::ci_class;
use entity::configuration_item;
use entity::values::{AttributeDefinition, AttributeDefinitions, AttributeNames, AttributeType};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    prelude::Json,
};
use serde_json::Map;

use super::audit::{Action, Actor, EntityType, Event};
use super::unit_of_work::UnitOfWork;
use super::{Error, Patch, Result, identifier, now, optional_text, required_text, text_limits};

/// Largest serialised size of one CI's attributes.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

pub use super::class_catalog::ClassCatalog;

/// Checks `attributes` against `definitions` and returns them normalised: a JSON object
/// without null values, integral floats of integer attributes turned into integers.
/// Attributes the class does not declare are kept as they are.
pub fn validate_attributes(
    class_name: &str,
    definitions: &[AttributeDefinition],
    attributes: Json,
) -> Result<Json> {
    super::json_without_nul("attributes", &attributes)?;
    let object = match attributes {
        Json::Null => Map::new(),
        Json::Object(object) => object,
        _ => {
            return Err(Error::invalid(
                "attributes",
                "`attributes` must be a JSON object",
            ));
        }
    };
    let mut normalised = Map::new();
    for (name, value) in object {
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid(
                "attributes",
                "attribute names must have 1 to 100 characters",
            ));
        }
        if !value.is_null() {
            normalised.insert(name, value);
        }
    }
    for definition in definitions {
        let field = format!("attributes.{}", definition.name);
        match normalised.get_mut(&definition.name) {
            None if definition.required => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "attribute `{}` is required by class `{class_name}`",
                        definition.name
                    ),
                ));
            }
            None => {}
            Some(value) => {
                if let Some(fixed) = check_type(definition.kind, value).map_err(|expected| {
                    Error::invalid(
                        field.clone(),
                        format!(
                            "attribute `{}` of class `{class_name}` must be {expected}",
                            definition.name
                        ),
                    )
                })? {
                    *value = fixed;
                }
            }
        }
    }
    let normalised = Json::Object(normalised);
    let size = serde_json::to_vec(&normalised)?.len();
    if size > MAX_ATTRIBUTES_BYTES {
        return Err(Error::LimitExceeded(format!(
            "attributes take {size} bytes, over the limit of {MAX_ATTRIBUTES_BYTES} bytes \
             (limit `max_attributes_bytes`)"
        )));
    }
    Ok(normalised)
}

/// `Ok(None)` when the value fits, `Ok(Some(v))` when it fits once normalised to `v`,
/// `Err(description of the expected type)` otherwise.
fn check_type(
    kind: AttributeType,
    value: &Json,
) -> std::result::Result<Option<Json>, &'static str> {
    match kind {
        AttributeType::String => value.is_string().then_some(None).ok_or("a string"),
        AttributeType::Boolean => value.is_boolean().then_some(None).ok_or("a boolean"),
        AttributeType::Float => value.is_number().then_some(None).ok_or("a number"),
        AttributeType::Json => Ok(None),
        AttributeType::Integer => {
            if value.is_i64() || value.is_u64() {
                Ok(None)
            } else {
                match value.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        Ok(Some(Json::from(f as i64)))
                    }
                    _ => Err("an integer"),
                }
            }
        }
        AttributeType::Datetime => match value.as_str() {
            Some(text) if chrono::DateTime::parse_from_rfc3339(text).is_ok() => Ok(None),
            _ => Err("an RFC 3339 date-time string, such as 2026-01-31T12:00:00Z"),
        },
    }
}

/// A class to create.
#[derive(Debug, Clone, Default)]
pub struct NewClass {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub parent: Option<String>,
    pub attributes: Vec<AttributeDefinition>,
    pub identifier_attributes: Vec<String>,
    pub discovery_overrides_manual: bool,
}

/// Changes to a class. Its name and parent are fixed once created: CIs and clients refer
/// to classes by name.
#[derive(Debug, Clone, Default)]
pub struct ClassChanges {
    pub label: Option<String>,
    pub description: Patch<String>,
    pub attributes: Option<Vec<AttributeDefinition>>,
    pub identifier_attributes: Option<Vec<String>>,
    pub discovery_overrides_manual: Option<bool>,
}

fn default_label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

fn check_definitions(definitions: &[AttributeDefinition]) -> Result<Vec<AttributeDefinition>> {
    let mut seen = HashSet::new();
    let mut checked = Vec::with_capacity(definitions.len());
    for (i, definition) in definitions.iter().enumerate() {
        let field = format!("attributes[{i}].name");
        let name = definition.name.trim();
        let valid = !name.is_empty()
            && name.len() <= 100
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(Error::invalid(
                field,
                format!(
                    "`{name}` is not a valid attribute name: letters, digits, `_`, `-` and `.`, \
                     starting with a letter, at most 100 characters"
                ),
            ));
        }
        if !seen.insert(name.to_owned()) {
            return Err(Error::invalid(
                field,
                format!("attribute `{name}` is defined twice"),
            ));
        }
        let description = definition
            .description
            .as_deref()
            .map(|d| {
                optional_text(
                    &format!("attributes[{i}].description"),
                    d,
                    text_limits::DESCRIPTION,
                )
            })
            .transpose()?;
        checked.push(AttributeDefinition {
            name: name.to_owned(),
            kind: definition.kind,
            required: definition.required,
            recommended: definition.recommended && !definition.required,
            description,
        });
    }
    Ok(checked)
}

/// Identifier attributes must be attributes the class (or an ancestor) declares.
fn check_identifiers(catalog: &ClassCatalog, class_id: i32) -> Result<()> {
    let Some(class) = catalog.get(class_id) else {
        return Ok(());
    };
    let effective = catalog.effective_attributes(class_id);
    for name in &class.identifier_attributes.0 {
        if !effective.iter().any(|d| &d.name == name) {
            return Err(Error::invalid(
                "identifierAttributes",
                format!(
                    "identifier attribute `{name}` is not an attribute of class `{}`",
                    class.name
                ),
            ));
        }
    }
    Ok(())
}

/// Creates a class.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewClass,
) -> Result<ci_class::Model> {
    let name = identifier("name", input.name.trim())?;
    let label = match input.label {
        Some(label) => required_text("label", &label, text_limits::SHORT)?,
        None => default_label(&name),
    };
    let description = input
        .description
        .map(|d| optional_text("description", &d, text_limits::DESCRIPTION))
        .transpose()?;
    let attributes = check_definitions(&input.attributes)?;

    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let catalog = ClassCatalog::load(txn).await?;
    if catalog.by_name(&name).is_ok() {
        return Err(Error::Conflict(format!(
            "a CI class named `{name}` already exists"
        )));
    }
    let parent_id = match &input.parent {
        Some(parent) => Some(catalog.resolve("parent", parent)?.id),
        None => None,
    };
    let at = now();
    let model = ci_class::ActiveModel {
        id: NotSet,
        name: Set(name),
        label: Set(label),
        description: Set(description),
        parent_id: Set(parent_id),
        attributes: Set(AttributeDefinitions(attributes)),
        identifier_attributes: Set(AttributeNames(input.identifier_attributes)),
        created_at: Set(at),
        updated_at: Set(at),
        discovery_overrides_manual: Set(input.discovery_overrides_manual),
    }
    .insert(txn)
    .await?;
    let mut classes = catalog.all().to_vec();
    classes.push(Arc::new(model.clone()));
    check_identifiers(&ClassCatalog::new(classes), model.id)?;
    uow.record(Event::new(
        EntityType::CiClass,
        model.id,
        Action::Create,
        None,
        Some(&model),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Changes a class. CIs are not rewritten: the new definitions apply to their next write.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
    changes: ClassChanges,
) -> Result<ci_class::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    lock_class(txn, name).await?;
    let catalog = ClassCatalog::load(txn).await?;
    let before = catalog.by_name(name)?.clone();
    let mut after = before.clone();
    if let Some(label) = changes.label {
        after.label = required_text("label", &label, text_limits::SHORT)?;
    }
    after.description = changes
        .description
        .try_map(|d| optional_text("description", &d, text_limits::DESCRIPTION))?
        .apply(after.description);
    if let Some(attributes) = changes.attributes {
        after.attributes = AttributeDefinitions(check_definitions(&attributes)?);
    }
    if let Some(identifiers) = changes.identifier_attributes {
        after.identifier_attributes = AttributeNames(identifiers);
    }
    if let Some(overrides) = changes.discovery_overrides_manual {
        after.discovery_overrides_manual = overrides;
    }
    if after == before {
        return Ok(before);
    }
    after.updated_at = now();
    let classes: Vec<_> = catalog
        .all()
        .iter()
        .map(|c| {
            if c.id == after.id {
                Arc::new(after.clone())
            } else {
                c.clone()
            }
        })
        .collect();
    let updated = ClassCatalog::new(classes);
    for id in updated.with_descendants(after.id) {
        check_identifiers(&updated, id)?;
    }
    let mut active: ci_class::ActiveModel = after.clone().into();
    active.label = Set(after.label.clone());
    active.description = Set(after.description.clone());
    active.attributes = Set(after.attributes.clone());
    active.identifier_attributes = Set(after.identifier_attributes.clone());
    active.discovery_overrides_manual = Set(after.discovery_overrides_manual);
    active.updated_at = Set(after.updated_at);
    let model = active.update(txn).await?;
    // Identity keys follow the identifier attributes of the class and its subclasses.
    let rekey: Vec<i32> = updated
        .with_descendants(model.id)
        .into_iter()
        .filter(|id| updated.effective_identifiers(*id) != catalog.effective_identifiers(*id))
        .collect();
    if !rekey.is_empty() {
        let cis = configuration_item::Entity::find()
            .filter(configuration_item::Column::ClassId.is_in(rekey))
            .all(txn)
            .await?;
        let refs: Vec<&configuration_item::Model> = cis.iter().collect();
        super::identity::replace(txn, &updated, &refs).await?;
    }
    uow.record(Event::new(
        EntityType::CiClass,
        model.id,
        Action::Update,
        Some(&before),
        Some(&model),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Locks the class of that name until the write transaction ends, so that writers of one
/// class (and of its reconciliation rules) take turns (see [`super::lock_row`]).
pub async fn lock_class(txn: &impl ConnectionTrait, name: &str) -> Result<()> {
    super::lock_row(
        txn,
        ci_class::Entity::find().filter(ci_class::Column::Name.eq(name)),
    )
    .await?;
    Ok(())
}

/// Deletes a class that no CI and no subclass uses.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, name: &str) -> Result<ci_class::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let catalog = ClassCatalog::load(txn).await?;
    let class = catalog.by_name(name)?.clone();
    let children = catalog.children(class.id);
    if !children.is_empty() {
        return Err(Error::Conflict(format!(
            "class `{name}` still has subclasses ({}); delete them first",
            children
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let in_use = configuration_item::Entity::find()
        .filter(configuration_item::Column::ClassId.eq(class.id))
        .count(txn)
        .await?;
    if in_use > 0 {
        return Err(Error::Conflict(format!(
            "class `{name}` is the class of {in_use} configuration item(s); delete or reclassify them first"
        )));
    }
    ci_class::Entity::delete_by_id(class.id).exec(txn).await?;
    uow.record(Event::new(
        EntityType::CiClass,
        class.id,
        Action::Delete,
        Some(&class),
        None,
    )?);
    uow.commit().await?;
    Ok(class)
}

#[cfg(test)]
mod tests;
