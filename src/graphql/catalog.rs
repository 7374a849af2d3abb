//! The catalogue: CI classes and relationship types, their queries and their management.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::values::{self, AttributeDefinition as AttributeDefinitionModel};
use entity::{ci_class, relationship_type};

use super::context::{actor, classes as class_catalog, db, patch, relationship_types};
use super::lean::{self, ReadyFields};
use crate::domain::ci_class::{self as classes, ClassCatalog};
use crate::domain::node::GlobalId;
use crate::domain::relationship_type as types;
use crate::error::Error;

/// The value type of a class attribute.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::AttributeType")]
pub enum AttributeType {
    /// A JSON string.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Float,
    /// true or false.
    Boolean,
    /// An RFC 3339 date-time string, such as `2026-01-31T12:00:00Z`.
    Datetime,
    /// Any JSON value.
    Json,
}

/// Which way the failure of one end of a relationship hits the other.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "values::Propagation")]
pub enum Propagation {
    /// A failing target hits its source (`app depends_on db`: the db failing hits the app).
    TargetToSource,
    /// A failing source hits its target (`rack contains server`).
    SourceToTarget,
    /// Either end failing hits the other.
    Both,
    /// Impact does not travel along this relationship.
    None,
}

/// One attribute a CI class declares.
#[derive(SimpleObject)]
pub struct AttributeDefinition {
    /// Attribute name, the key in a CI's `attributes`.
    pub name: String,
    /// The type its values must have.
    #[graphql(name = "type")]
    pub kind: AttributeType,
    /// Whether every CI of the class must have it.
    pub required: bool,
    /// Whether CIs should have it: the health report lists those without it.
    pub recommended: bool,
    /// What the attribute means.
    pub description: Option<String>,
}

impl From<AttributeDefinitionModel> for AttributeDefinition {
    fn from(definition: AttributeDefinitionModel) -> Self {
        AttributeDefinition {
            name: definition.name,
            kind: definition.kind.into(),
            required: definition.required,
            recommended: definition.recommended,
            description: definition.description,
        }
    }
}

/// The class with this id, from the request's catalogue.
pub(super) async fn class_by_id(ctx: &Context<'_>, id: i32) -> async_graphql::Result<CiClass> {
    Ok(CiClass::of(class_catalog(ctx).await?, id)?)
}

/// A kind of configuration item, with the attributes its CIs may or must have. Classes form
/// a tree: a class inherits the attributes of its ancestors.
pub struct CiClass {
    model: Arc<ci_class::Model>,
    catalog: Arc<ClassCatalog>,
}

impl CiClass {
    /// A class, with the catalogue it belongs to for walking the tree.
    pub fn new(model: Arc<ci_class::Model>, catalog: Arc<ClassCatalog>) -> Self {
        CiClass { model, catalog }
    }

    /// The class of that id in the catalogue; `NOT_FOUND` when it has none.
    pub fn of(catalog: Arc<ClassCatalog>, id: i32) -> Result<Self, Error> {
        let model = catalog
            .shared(id)
            .ok_or_else(|| Error::not_found("CI class", id))?;
        Ok(CiClass { model, catalog })
    }
}

impl ReadyFields for CiClass {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        let class = &self.model;
        Some(match name {
            "id" => lean::scalar(ID(GlobalId::ci_class(class.id))),
            "name" => lean::text(&class.name),
            "label" => lean::text(&class.label),
            "description" => lean::optional_text(class.description.as_deref()),
            "discoveryOverridesManual" => lean::scalar(class.discovery_overrides_manual),
            "createdAt" => lean::scalar(class.created_at),
            "updatedAt" => lean::scalar(class.updated_at),
            _ => return None,
        })
    }
}

/// A kind of configuration item, with the attributes its CIs may or must have. Classes
/// form a tree: a class inherits the attributes of its ancestors.
#[Object]
impl CiClass {
    /// Globally unique identifier (`CiClass:<n>`); classes are named by `name` in inputs.
    pub(crate) async fn id(&self) -> ID {
        ID(GlobalId::ci_class(self.model.id))
    }

    /// Unique name, used to refer to the class (`server`, `virtual_machine`).
    async fn name(&self) -> &str {
        &self.model.name
    }

    /// Human-readable name.
    async fn label(&self) -> &str {
        &self.model.label
    }

    /// What CIs of this class are.
    async fn description(&self) -> Option<&str> {
        self.model.description.as_deref()
    }

    /// The class this one specialises.
    async fn parent(&self) -> Option<CiClass> {
        let parent = self
            .model
            .parent_id
            .and_then(|id| self.catalog.shared(id))?;
        Some(CiClass::new(parent, self.catalog.clone()))
    }

    /// Direct subclasses.
    async fn subclasses(&self) -> Vec<CiClass> {
        self.catalog
            .children(self.model.id)
            .into_iter()
            .filter_map(|c| CiClass::of(self.catalog.clone(), c.id).ok())
            .collect()
    }

    /// The attributes this class declares itself.
    async fn attributes(&self) -> Vec<AttributeDefinition> {
        self.model
            .attributes
            .0
            .iter()
            .cloned()
            .map(Into::into)
            .collect()
    }

    /// All attributes that apply to its CIs: inherited ones first, overridden by this
    /// class's own.
    async fn effective_attributes(&self) -> Vec<AttributeDefinition> {
        self.catalog
            .effective_attributes(self.model.id)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// The attributes that identify a CI of this class, in the order discovery tries them:
    /// the class's own, or else inherited from the nearest ancestor that has some.
    async fn identifier_attributes(&self) -> Vec<String> {
        self.catalog.effective_identifiers(self.model.id)
    }

    /// Whether discovery may overwrite values people set by hand on CIs of this class
    /// (by default people win).
    async fn discovery_overrides_manual(&self) -> bool {
        self.model.discovery_overrides_manual
    }

    /// When the class was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// When the class last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

/// A kind of relationship between CIs, such as `depends_on`.
pub struct RelationshipType(pub Arc<relationship_type::Model>);

impl ReadyFields for RelationshipType {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        let t = &self.0;
        Some(match name {
            "id" => lean::scalar(ID(GlobalId::relationship_type(t.id))),
            "name" => lean::text(&t.name),
            "inverseLabel" => lean::text(&t.inverse_label),
            "propagation" => lean::enumeration(Propagation::from(t.propagation)),
            "membership" => lean::scalar(t.membership),
            "description" => lean::optional_text(t.description.as_deref()),
            "createdAt" => lean::scalar(t.created_at),
            "updatedAt" => lean::scalar(t.updated_at),
            _ => return None,
        })
    }
}

/// A kind of relationship between CIs, such as `depends_on`, with the rule saying which
/// way impact travels along it.
#[Object]
impl RelationshipType {
    /// Globally unique identifier (`RelationshipType:<n>`); types are named by `name` in
    /// inputs.
    pub(crate) async fn id(&self) -> ID {
        ID(GlobalId::relationship_type(self.0.id))
    }

    /// Unique name, used to refer to the type (`depends_on`).
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// How the relationship reads from the target's side (`used_by` for `depends_on`).
    async fn inverse_label(&self) -> &str {
        &self.0.inverse_label
    }

    /// Which way impact travels along relationships of this type.
    async fn propagation(&self) -> Propagation {
        self.0.propagation.into()
    }

    /// Whether the source is a member of the target (`member_of`): only members count
    /// toward a redundancy group's `min_healthy_members`; anything else a group needs is a
    /// dependency whose failure takes it down.
    async fn membership(&self) -> bool {
        self.0.membership
    }

    /// What the relationship means.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// When the type was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the type last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Queries of the catalogue.
#[derive(Default)]
pub struct CatalogQuery;

/// Queries of the catalogue.
#[Object]
impl CatalogQuery {
    /// All CI classes, by name.
    async fn ci_classes(&self, ctx: &Context<'_>) -> Result<Vec<CiClass>> {
        let catalog = class_catalog(ctx).await?;
        Ok(catalog
            .all()
            .iter()
            .map(|c| CiClass::new(c.clone(), catalog.clone()))
            .collect())
    }

    /// The class of that name; null with a `NOT_FOUND` error when there is none.
    async fn ci_class(&self, ctx: &Context<'_>, name: String) -> Result<Option<CiClass>> {
        let catalog = class_catalog(ctx).await?;
        let id = catalog.by_name(&name)?.id;
        Ok(Some(CiClass::of(catalog, id)?))
    }

    /// All relationship types, by name.
    async fn relationship_types(&self, ctx: &Context<'_>) -> Result<Vec<RelationshipType>> {
        let catalog = relationship_types(ctx).await?;
        Ok(catalog
            .all()
            .iter()
            .cloned()
            .map(RelationshipType)
            .collect())
    }

    /// The relationship type of that name; null with a `NOT_FOUND` error when there is none.
    async fn relationship_type(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<Option<RelationshipType>> {
        let catalog = relationship_types(ctx).await?;
        Ok(Some(RelationshipType(Arc::new(
            catalog.by_name(&name)?.clone(),
        ))))
    }
}

/// An attribute for a class to declare.
#[derive(InputObject)]
pub struct AttributeDefinitionInput {
    /// Attribute name: letters, digits, `_`, `-`, `.`, starting with a letter.
    pub name: String,
    /// The type its values must have.
    #[graphql(name = "type")]
    pub kind: AttributeType,
    /// Whether every CI of the class must have it.
    #[graphql(default)]
    pub required: bool,
    /// Whether CIs should have it: the health report lists those without it.
    #[graphql(default)]
    pub recommended: bool,
    /// What the attribute means.
    pub description: Option<String>,
}

impl From<AttributeDefinitionInput> for AttributeDefinitionModel {
    fn from(input: AttributeDefinitionInput) -> Self {
        AttributeDefinitionModel {
            name: input.name,
            kind: input.kind.into(),
            required: input.required,
            recommended: input.recommended,
            description: input.description,
        }
    }
}

/// A CI class to create.
#[derive(InputObject)]
pub struct CreateCiClassInput {
    /// Unique name: lower-case letters, digits and `_`, starting with a letter.
    pub name: String,
    /// Human-readable name; derived from the name when not given.
    pub label: Option<String>,
    /// What CIs of this class are.
    pub description: Option<String>,
    /// Name of the class this one specialises.
    pub parent: Option<String>,
    /// The attributes it declares (besides those it inherits).
    pub attributes: Option<Vec<AttributeDefinitionInput>>,
    /// Attributes that identify its CIs, in priority order.
    pub identifier_attributes: Option<Vec<String>>,
    /// Whether discovery may overwrite values people set by hand (false when not given).
    #[graphql(default)]
    pub discovery_overrides_manual: bool,
}

/// Changes to a CI class. Existing CIs are not rewritten: new definitions apply to their
/// next change of attributes.
#[derive(InputObject, Default)]
pub struct UpdateCiClassInput {
    /// New label.
    pub label: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// Replaces the attributes the class declares.
    pub attributes: Option<Vec<AttributeDefinitionInput>>,
    /// Replaces the class's own identifier attributes.
    pub identifier_attributes: Option<Vec<String>>,
    /// Whether discovery may overwrite values people set by hand.
    pub discovery_overrides_manual: Option<bool>,
}

/// A relationship type to create.
#[derive(InputObject)]
pub struct CreateRelationshipTypeInput {
    /// Unique name: lower-case letters, digits and `_`, starting with a letter.
    pub name: String,
    /// How the relationship reads from the target's side.
    pub inverse_label: String,
    /// Which way impact travels.
    pub propagation: Propagation,
    /// Whether the source is a member of the target, counted toward redundancy.
    #[graphql(default)]
    pub membership: bool,
    /// What the relationship means.
    pub description: Option<String>,
}

/// Changes to a relationship type.
#[derive(InputObject, Default)]
pub struct UpdateRelationshipTypeInput {
    /// New inverse label.
    pub inverse_label: Option<String>,
    /// New propagation rule.
    pub propagation: Option<Propagation>,
    /// Whether the source is a member of the target, counted toward redundancy.
    pub membership: Option<bool>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
}

/// Management of the catalogue.
#[derive(Default)]
pub struct CatalogMutation;

/// Management of the catalogue.
#[Object]
impl CatalogMutation {
    /// Creates a CI class.
    async fn create_ci_class(
        &self,
        ctx: &Context<'_>,
        input: CreateCiClassInput,
    ) -> Result<CiClass> {
        let new = classes::NewClass {
            name: input.name,
            label: input.label,
            description: input.description,
            parent: input.parent,
            attributes: input
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            identifier_attributes: input.identifier_attributes.unwrap_or_default(),
            discovery_overrides_manual: input.discovery_overrides_manual,
        };
        let db = db(ctx)?;
        let model = classes::create(db, &actor(ctx), new).await?;
        Ok(CiClass::of(
            Arc::new(ClassCatalog::load(db).await?),
            model.id,
        )?)
    }

    /// Changes a CI class.
    async fn update_ci_class(
        &self,
        ctx: &Context<'_>,
        name: String,
        input: UpdateCiClassInput,
    ) -> Result<CiClass> {
        let changes = classes::ClassChanges {
            label: input.label,
            description: patch(input.description),
            attributes: input
                .attributes
                .map(|list| list.into_iter().map(Into::into).collect()),
            identifier_attributes: input.identifier_attributes,
            discovery_overrides_manual: input.discovery_overrides_manual,
        };
        let db = db(ctx)?;
        let model = classes::update(db, &actor(ctx), &name, changes).await?;
        Ok(CiClass::of(
            Arc::new(ClassCatalog::load(db).await?),
            model.id,
        )?)
    }

    /// Deletes a CI class that no CI and no subclass uses; returns its id.
    async fn delete_ci_class(&self, ctx: &Context<'_>, name: String) -> Result<ID> {
        let deleted = classes::delete(db(ctx)?, &actor(ctx), &name).await?;
        Ok(ID(GlobalId::ci_class(deleted.id)))
    }

    /// Creates a relationship type.
    async fn create_relationship_type(
        &self,
        ctx: &Context<'_>,
        input: CreateRelationshipTypeInput,
    ) -> Result<RelationshipType> {
        let new = types::NewRelationshipType {
            name: input.name,
            inverse_label: input.inverse_label,
            propagation: input.propagation.into(),
            membership: input.membership,
            description: input.description,
        };
        Ok(RelationshipType(Arc::new(
            types::create(db(ctx)?, &actor(ctx), new).await?,
        )))
    }

    /// Changes a relationship type.
    async fn update_relationship_type(
        &self,
        ctx: &Context<'_>,
        name: String,
        input: UpdateRelationshipTypeInput,
    ) -> Result<RelationshipType> {
        let changes = types::RelationshipTypeChanges {
            inverse_label: input.inverse_label,
            propagation: input.propagation.map(Into::into),
            membership: input.membership,
            description: patch(input.description),
        };
        Ok(RelationshipType(Arc::new(
            types::update(db(ctx)?, &actor(ctx), &name, changes).await?,
        )))
    }

    /// Deletes a relationship type that no relationship uses; returns its id.
    async fn delete_relationship_type(&self, ctx: &Context<'_>, name: String) -> Result<ID> {
        let deleted = types::delete(db(ctx)?, &actor(ctx), &name).await?;
        Ok(ID(GlobalId::relationship_type(deleted.id)))
    }
}
