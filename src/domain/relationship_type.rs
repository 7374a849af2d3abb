//! Relationship types: the kinds of edge between CIs, as data, each with the rule saying
//! which way impact travels along it.

use std::collections::HashMap;
use std::sync::Arc;

use entity::relationship;
use entity::relationship_type;
use entity::values::Propagation;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use super::audit::{Action, Actor, EntityType, Event};
use super::unit_of_work::UnitOfWork;
use super::{Error, Patch, Result, identifier, now, optional_text, required_text, text_limits};

/// Every relationship type, indexed by id and by name.
#[derive(Debug, Clone)]
pub struct TypeCatalog {
    types: Vec<Arc<relationship_type::Model>>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<i32, usize>,
}

impl TypeCatalog {
    /// Reads all relationship types.
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self> {
        let types = relationship_type::Entity::find()
            .order_by_asc(relationship_type::Column::Name)
            .all(db)
            .await?;
        Ok(Self::new(types))
    }

    /// A catalogue of these types (tests build one without a database).
    pub fn new(types: impl IntoIterator<Item = impl Into<Arc<relationship_type::Model>>>) -> Self {
        let types: Vec<Arc<relationship_type::Model>> = types.into_iter().map(Into::into).collect();
        let by_name = types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let by_id = types.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        TypeCatalog {
            types,
            by_name,
            by_id,
        }
    }

    /// All types, by name.
    pub fn all(&self) -> &[Arc<relationship_type::Model>] {
        &self.types
    }

    /// The type of that id.
    pub fn get(&self, id: i32) -> Option<&relationship_type::Model> {
        self.by_id.get(&id).map(|&i| &*self.types[i])
    }

    /// The type of that id, shared (for answers that outlive a borrow of the catalogue).
    pub fn shared(&self, id: i32) -> Option<Arc<relationship_type::Model>> {
        self.by_id.get(&id).map(|&i| self.types[i].clone())
    }

    /// The type of that name, or `NOT_FOUND`.
    pub fn by_name(&self, name: &str) -> Result<&relationship_type::Model> {
        self.by_name
            .get(name)
            .map(|&i| &*self.types[i])
            .ok_or_else(|| Error::not_found("relationship type", name))
    }

    /// The type named by an input field, or a `VALIDATION` error about that field.
    pub fn resolve(&self, field: &str, name: &str) -> Result<&relationship_type::Model> {
        self.by_name(name).map_err(|_| {
            Error::invalid(
                field,
                format!("there is no relationship type named `{name}`"),
            )
        })
    }

    /// Ids of the named types; every name must exist.
    pub fn ids_of(&self, field: &str, names: &[String]) -> Result<Vec<i32>> {
        names
            .iter()
            .map(|name| self.resolve(field, name).map(|t| t.id))
            .collect()
    }
}

/// A relationship type to create.
#[derive(Debug, Clone)]
pub struct NewRelationshipType {
    pub name: String,
    pub inverse_label: String,
    pub propagation: Propagation,
    /// Whether the source is a member of the target (counts toward redundancy).
    pub membership: bool,
    pub description: Option<String>,
}

/// Changes to a relationship type; its name is fixed.
#[derive(Debug, Clone, Default)]
pub struct RelationshipTypeChanges {
    pub inverse_label: Option<String>,
    pub propagation: Option<Propagation>,
    pub membership: Option<bool>,
    pub description: Patch<String>,
}

/// Creates a relationship type.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewRelationshipType,
) -> Result<relationship_type::Model> {
    let name = identifier("name", input.name.trim())?;
    let inverse_label = required_text("inverseLabel", &input.inverse_label, text_limits::SHORT)?;
    let description = input
        .description
        .map(|d| optional_text("description", &d, text_limits::DESCRIPTION))
        .transpose()?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let exists = relationship_type::Entity::find()
        .filter(relationship_type::Column::Name.eq(name.as_str()))
        .count(txn)
        .await?;
    if exists > 0 {
        return Err(Error::Conflict(format!(
            "a relationship type named `{name}` already exists"
        )));
    }
    let at = now();
    let model = relationship_type::ActiveModel {
        id: NotSet,
        name: Set(name),
        inverse_label: Set(inverse_label),
        propagation: Set(input.propagation),
        membership: Set(input.membership),
        description: Set(description),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(txn)
    .await?;
    uow.record(Event::new(
        EntityType::RelationshipType,
        model.id,
        Action::Create,
        None,
        Some(&model),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Changes a relationship type. A new propagation rule applies to the next impact analysis.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
    changes: RelationshipTypeChanges,
) -> Result<relationship_type::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    // Writers of one type take turns (see `lock_row`).
    super::lock_row(
        txn,
        relationship_type::Entity::find().filter(relationship_type::Column::Name.eq(name)),
    )
    .await?;
    let before = TypeCatalog::load(txn).await?.by_name(name)?.clone();
    let mut after = before.clone();
    if let Some(label) = changes.inverse_label {
        after.inverse_label = required_text("inverseLabel", &label, text_limits::SHORT)?;
    }
    if let Some(propagation) = changes.propagation {
        after.propagation = propagation;
    }
    if let Some(membership) = changes.membership {
        after.membership = membership;
    }
    after.description = changes
        .description
        .try_map(|d| optional_text("description", &d, text_limits::DESCRIPTION))?
        .apply(after.description);
    if after == before {
        return Ok(before);
    }
    after.updated_at = now();
    let mut active: relationship_type::ActiveModel = before.clone().into();
    active.inverse_label = Set(after.inverse_label.clone());
    active.propagation = Set(after.propagation);
    active.membership = Set(after.membership);
    active.description = Set(after.description.clone());
    active.updated_at = Set(after.updated_at);
    let model = active.update(txn).await?;
    uow.record(Event::new(
        EntityType::RelationshipType,
        model.id,
        Action::Update,
        Some(&before),
        Some(&model),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Deletes a relationship type that no relationship uses.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
) -> Result<relationship_type::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let model = TypeCatalog::load(txn).await?.by_name(name)?.clone();
    let in_use = relationship::Entity::find()
        .filter(relationship::Column::TypeId.eq(model.id))
        .count(txn)
        .await?;
    if in_use > 0 {
        return Err(Error::Conflict(format!(
            "relationship type `{name}` is used by {in_use} relationship(s); delete them first"
        )));
    }
    relationship_type::Entity::delete_by_id(model.id)
        .exec(txn)
        .await?;
    uow.record(Event::new(
        EntityType::RelationshipType,
        model.id,
        Action::Delete,
        Some(&model),
        None,
    )?);
    uow.commit().await?;
    Ok(model)
}
