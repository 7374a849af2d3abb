//! `Relationship`: the type, its queries and its bulk mutations.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::{configuration_item, relationship, relationship_type};
use serde_json::Value;
use uuid::Uuid;

use super::catalog::RelationshipType;
use super::ci::ConfigurationItem;
use super::context::{actor, db, limits, loaders, parse_id, parse_ids, relationship_types};
use super::lean::{self, Lean, ReadyFields};
use super::loaders::{AssertionsOf, CiAt, CiById, RelationshipById};
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::as_of;
use crate::domain::ci;
use crate::domain::impact::PathStep;
use crate::domain::relationship::{self as relationships, End, assertions};
use crate::error::Error;

/// A typed, directed link from a source CI to a target CI, such as
/// `shop-api depends_on shop-db`. Known either fully or, when it comes from the impact
/// graph, by its ends and type only (the rest is loaded if asked for).
pub struct Relationship {
    id: Uuid,
    source_id: Uuid,
    target_id: Uuid,
    type_id: i32,
    full: Option<Arc<relationship::Model>>,
    known_type: Option<Arc<relationship_type::Model>>,
    known_source: Option<(Arc<configuration_item::Model>, ci::Columns)>,
    known_target: Option<(Arc<configuration_item::Model>, ci::Columns)>,
    /// Read as of this instant: its ends are read as of it too.
    as_of: Option<DateTime<Utc>>,
}

impl Relationship {
    /// A relationship read from the database.
    pub fn new(model: relationship::Model) -> Self {
        Relationship {
            id: model.id,
            source_id: model.source_id,
            target_id: model.target_id,
            type_id: model.type_id,
            full: Some(Arc::new(model)),
            known_type: None,
            known_source: None,
            known_target: None,
            as_of: None,
        }
    }

    /// A relationship as it was at `at` (as it is, without).
    pub fn at(model: relationship::Model, at: Option<DateTime<Utc>>) -> Self {
        Relationship {
            as_of: at,
            ..Relationship::new(model)
        }
    }

    /// A relationship listed under the CI at `end`, with the CI at its other end when it
    /// was read with it; `whole` when its attributes and times were read too.
    pub fn listed(
        model: &Arc<relationship::Model>,
        other_end: Option<(Arc<configuration_item::Model>, ci::Columns)>,
        end: End,
        whole: bool,
        as_of: Option<DateTime<Utc>>,
    ) -> Self {
        let (known_source, known_target) = match end {
            End::Source => (None, other_end),
            End::Target => (other_end, None),
        };
        Relationship {
            id: model.id,
            source_id: model.source_id,
            target_id: model.target_id,
            type_id: model.type_id,
            full: whole.then(|| model.clone()),
            known_type: None,
            known_source,
            known_target,
            as_of,
        }
    }

    /// A relationship known by its ends and type, with the type's record when at hand.
    pub fn known(step: &PathStep, known_type: Option<Arc<relationship_type::Model>>) -> Self {
        Relationship {
            id: step.id,
            source_id: step.source,
            target_id: step.target,
            type_id: step.type_id,
            full: None,
            known_type,
            known_source: None,
            known_target: None,
            as_of: None,
        }
    }

    /// The same relationship, its ends read as of `at` when given.
    pub fn read_as_of(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.as_of = at;
        self
    }

    /// Its type, from the request's catalogue.
    async fn type_of(&self, ctx: &Context<'_>) -> Result<Lean<RelationshipType>> {
        if let Some(known) = &self.known_type {
            return Ok(Lean(RelationshipType(known.clone())));
        }
        let found = relationship_types(ctx)
            .await?
            .shared(self.type_id)
            .ok_or_else(|| Error::not_found("relationship type", self.type_id))?;
        Ok(Lean(RelationshipType(found)))
    }

    /// The CI at its other end from `end`: the target seen from the source, the source
    /// seen from the target.
    async fn end(&self, ctx: &Context<'_>, from: End) -> Result<Lean<ConfigurationItem>> {
        let (known, id) = match from {
            End::Source => (&self.known_target, self.target_id),
            End::Target => (&self.known_source, self.source_id),
        };
        match (known, self.as_of) {
            (Some((ci, columns)), as_of) => {
                Ok(Lean(ConfigurationItem(ci.clone(), *columns, as_of)))
            }
            (None, None) => Ok(Lean(ci_by_id(ctx, id).await?)),
            (None, Some(at)) => {
                let ci = loaders(ctx)?
                    .load_one(CiAt { id, args: at })
                    .await?
                    .ok_or_else(|| Error::not_found("configuration item", id))?;
                Ok(Lean(ConfigurationItem::at(ci, Some(at))))
            }
        }
    }

    async fn model(&self, ctx: &Context<'_>) -> Result<Arc<relationship::Model>> {
        if let Some(model) = &self.full {
            return Ok(model.clone());
        }
        Ok(Arc::new(
            loaders(ctx)?
                .load_one(RelationshipById(self.id))
                .await?
                .ok_or_else(|| Error::not_found("relationship", self.id))?,
        ))
    }
}

connection_type!(
    RelationshipConnection,
    RelationshipEdge,
    Relationship,
    "A page of relationships.",
    "A relationship in a page, with its cursor."
);

async fn ci_by_id(ctx: &Context<'_>, id: uuid::Uuid) -> Result<ConfigurationItem> {
    let ci = loaders(ctx)?
        .load_one(CiById(id))
        .await?
        .ok_or_else(|| Error::not_found("configuration item", id))?;
    Ok(ConfigurationItem::shared(ci))
}

impl ReadyFields for Relationship {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        match name {
            "id" => Some(lean::scalar(ID(self.id.to_string()))),
            "createdAt" => self.full.as_ref().map(|r| lean::scalar(r.created_at)),
            _ => None,
        }
    }

    fn has_lean_field(&self, name: &str) -> bool {
        matches!(name, "type" | "source" | "target")
    }

    async fn lean_field(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Value> {
        match ctx.item.node.name.node.as_str() {
            "type" => lean::object(ctx, self.type_of(ctx).await).await,
            "source" => lean::object(ctx, self.end(ctx, End::Target).await).await,
            _ => lean::object(ctx, self.end(ctx, End::Source).await).await,
        }
    }
}

/// A typed, directed link from a source CI to a target CI.
#[Object]
impl Relationship {
    /// Stable identifier (a UUID).
    pub(crate) async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The kind of relationship, which also says how impact travels along it.
    #[graphql(name = "type")]
    async fn relationship_type(&self, ctx: &Context<'_>) -> Result<Lean<RelationshipType>> {
        self.type_of(ctx).await
    }

    /// The CI the relationship starts from.
    async fn source(&self, ctx: &Context<'_>) -> Result<Lean<ConfigurationItem>> {
        self.end(ctx, End::Target).await
    }

    /// The CI the relationship points to.
    async fn target(&self, ctx: &Context<'_>) -> Result<Lean<ConfigurationItem>> {
        self.end(ctx, End::Source).await
    }

    /// Free attributes of the relationship (a port, a protocol...), as a JSON object.
    async fn attributes(&self, ctx: &Context<'_>) -> Result<Json<Value>> {
        Ok(Json(self.model(ctx).await?.attributes.clone()))
    }

    /// When the relationship was recorded.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        Ok(self.model(ctx).await?.created_at)
    }

    /// Who asserts it: the person who declared it (`DECLARED`), and each discovery source
    /// that reported it (`OBSERVED`, with when it first and last did).
    async fn asserted_by(&self, ctx: &Context<'_>) -> Result<Vec<RelationshipAssertion>> {
        Ok(loaders(ctx)?
            .load_one(AssertionsOf(self.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(RelationshipAssertion)
            .collect())
    }
}

/// How a relationship was asserted.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "assertions::AssertionKind")]
pub enum AssertionKind {
    /// By a person, through the API.
    Declared,
    /// By a discovery source, reporting it.
    Observed,
}

/// One party asserting a relationship.
pub struct RelationshipAssertion(assertions::Assertion);

/// One party asserting a relationship.
#[Object]
impl RelationshipAssertion {
    /// The discovery source, or the person (token name) who declared it.
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// Declared by a person or observed by a source.
    async fn kind(&self) -> AssertionKind {
        self.0.kind.into()
    }

    /// When it was first asserted.
    async fn first_seen_at(&self) -> DateTime<Utc> {
        self.0.first_seen_at
    }

    /// When it was last asserted (for a declaration, when it was declared).
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }

    /// For an observation: the source's last full sync no longer found it.
    async fn stale(&self) -> bool {
        self.0.stale
    }
}

/// An observed relationship that contradicts a declared one.
pub struct RelationshipContradiction {
    observed: relationship::Model,
    declared: relationship::Model,
}

/// An observed relationship that contradicts a declared one: the same source CI and type,
/// another target.
#[Object]
impl RelationshipContradiction {
    /// What the source reports.
    async fn observed(&self) -> Relationship {
        Relationship::new(self.observed.clone())
    }

    /// What people declared.
    async fn declared(&self) -> Relationship {
        Relationship::new(self.declared.clone())
    }
}

/// Where people and a discovery source disagree about relationships.
pub struct RelationshipDrift {
    drift: assertions::Drift,
    first: usize,
}

/// Where people and a discovery source disagree about relationships.
#[Object]
impl RelationshipDrift {
    /// How many declared relationships the source has not observed within the period.
    async fn unobserved_count(&self) -> usize {
        self.drift.unobserved.len()
    }

    /// The first of them, oldest first.
    async fn unobserved(&self) -> Vec<Relationship> {
        self.drift
            .unobserved
            .iter()
            .take(self.first)
            .cloned()
            .map(Relationship::new)
            .collect()
    }

    /// How many observed relationships contradict a declared one.
    async fn contradiction_count(&self) -> usize {
        self.drift.contradictions.len()
    }

    /// The first of them.
    async fn contradictions(&self) -> Vec<RelationshipContradiction> {
        self.drift
            .contradictions
            .iter()
            .take(self.first)
            .map(|(observed, declared)| RelationshipContradiction {
                observed: observed.clone(),
                declared: declared.clone(),
            })
            .collect()
    }
}

/// Which relationships to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct RelationshipFilter {
    /// Relationships with this CI at either end.
    pub ci_id: Option<ID>,
    /// Relationships from this CI.
    pub source_id: Option<ID>,
    /// Relationships to this CI.
    pub target_id: Option<ID>,
    /// Any of these type names.
    pub types: Option<Vec<String>>,
}

impl RelationshipFilter {
    fn into_domain(self) -> Result<relationships::RelationshipFilter, Error> {
        let id = |field: &str, id: Option<ID>| id.map(|id| parse_id(field, &id)).transpose();
        Ok(relationships::RelationshipFilter {
            ci_id: id("filter.ciId", self.ci_id)?,
            source_id: id("filter.sourceId", self.source_id)?,
            target_id: id("filter.targetId", self.target_id)?,
            types: self.types,
            as_of: None,
        })
    }
}

/// Queries about relationships.
#[derive(Default)]
pub struct RelationshipQuery;

/// Queries about relationships.
#[Object]
impl RelationshipQuery {
    /// The relationship with this id; null with a `NOT_FOUND` error when there is none.
    /// With `asOf`, as it was then (null when it did not exist then), its ends as of the
    /// same instant.
    async fn relationship(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "Read the relationship as it was at this instant.")] as_of: Option<
            DateTime<Utc>,
        >,
    ) -> Result<Option<Relationship>> {
        let id = parse_id("id", &id)?;
        let db = db(ctx)?;
        let Some(at) = as_of else {
            return Ok(Some(Relationship::new(relationships::get(db, id).await?)));
        };
        as_of::check_instant(db, "asOf", at).await?;
        Ok(relationships::get_at(db, id, at)
            .await?
            .map(|r| Relationship::at(r, Some(at))))
    }

    /// Where people and discovery source `source` disagree: relationships people declared
    /// that the source has not observed within `staleAfterHours`, and relationships it
    /// observes that contradict a declared one (the same source CI and type, another
    /// target).
    async fn relationship_drift(
        &self,
        ctx: &Context<'_>,
        source: String,
        #[graphql(default = 168, validator(minimum = 1, maximum = 87600))] stale_after_hours: i32,
        #[graphql(
            default = 100,
            validator(minimum = 0, maximum = 1000),
            desc = "Most listed of each."
        )]
        first: i32,
    ) -> Result<RelationshipDrift> {
        let drift = assertions::drift(
            db(ctx)?,
            &source,
            chrono::TimeDelta::hours(i64::from(stale_after_hours)),
            crate::domain::now(),
        )
        .await?;
        Ok(RelationshipDrift {
            drift,
            first: usize::try_from(first).unwrap_or_default(),
        })
    }

    /// Relationships matching the filter, oldest first, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn relationships(
        &self,
        ctx: &Context<'_>,
        filter: Option<RelationshipFilter>,
        #[graphql(
            desc = "List the relationships as they were at this instant (their ends as of it too)."
        )]
        as_of: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelationshipConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let mut filter = filter.unwrap_or_default().into_domain()?;
        if let Some(at) = as_of {
            as_of::check_instant(db(ctx)?, "asOf", at).await?;
            filter.as_of = Some(at);
        }
        let page = relationships::list(db(ctx)?, &filter, &window).await?;
        let total = TotalCount::new(move |db| {
            let filter = filter.clone();
            Box::pin(async move { relationships::count(&db, &filter).await })
        });
        Ok(connection(page, total, move |r| Relationship::at(r, as_of)))
    }
}

/// A relationship to create.
#[derive(InputObject)]
pub struct CreateRelationshipInput {
    /// The CI the relationship starts from.
    pub source_id: ID,
    /// The CI the relationship points to.
    pub target_id: ID,
    /// Relationship type name, such as `depends_on`.
    #[graphql(name = "type")]
    pub relationship_type: String,
    /// Free attributes, as a JSON object.
    pub attributes: Option<Json<Value>>,
}

/// Mutations of relationships.
#[derive(Default)]
pub struct RelationshipMutation;

/// Mutations of relationships.
#[Object]
impl RelationshipMutation {
    /// Creates all the relationships or none. An error names the failing item as
    /// `input[i]`: an unknown CI (`NOT_FOUND`), a self-relationship or unknown type
    /// (`VALIDATION`), a duplicate (`CONFLICT`), too many items (`LIMIT_EXCEEDED`).
    async fn create_relationships(
        &self,
        ctx: &Context<'_>,
        input: Vec<CreateRelationshipInput>,
    ) -> Result<Vec<Relationship>> {
        let new = input
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Ok(relationships::NewRelationship {
                    source_id: parse_id(&format!("input[{i}].sourceId"), &item.source_id)?,
                    target_id: parse_id(&format!("input[{i}].targetId"), &item.target_id)?,
                    type_name: item.relationship_type,
                    attributes: item.attributes.map(|a| a.0),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let created = relationships::create_many(db(ctx)?, &actor(ctx), new, limits(ctx)?).await?;
        Ok(created.into_iter().map(Relationship::new).collect())
    }

    /// Deletes all the relationships or none (an unknown id fails the call); returns the
    /// ids deleted.
    async fn delete_relationships(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<ID>> {
        let ids = parse_ids("ids", &ids)?;
        let deleted = relationships::delete_many(db(ctx)?, &actor(ctx), ids, limits(ctx)?).await?;
        Ok(deleted.into_iter().map(|r| ID(r.id.to_string())).collect())
    }
}
