//! What resolvers take from the request context: the database, the limits, the actor and
//! the request's loaders. Set once by the HTTP layer (per request) and the schema builder.

use std::sync::Arc;

use async_graphql::{Context, ID, MaybeUndefined};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::loaders::{Catalogs, Loaders};
use crate::domain::Patch;
use crate::domain::audit::Actor;
use crate::domain::ci_class::ClassCatalog;
use crate::domain::impact::GraphCache;
use crate::domain::relationship_type::TypeCatalog;
use crate::error::Error;
use crate::limits::Limits;

/// The database connection pool.
pub fn db<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// The limits in force.
pub fn limits<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Limits> {
    ctx.data::<Limits>()
}

/// Who is making the request; `anonymous` when nobody said.
pub fn actor(ctx: &Context<'_>) -> Actor {
    ctx.data_opt::<Actor>()
        .cloned()
        .unwrap_or_else(|| Actor::named(""))
}

/// The server's relationship graph, kept current with the change log.
pub fn graph_cache<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<GraphCache>> {
    ctx.data::<Arc<GraphCache>>()
}

/// The loaders of this request.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>()
}

/// The class catalogue, read once per request.
pub async fn classes(ctx: &Context<'_>) -> async_graphql::Result<Arc<ClassCatalog>> {
    Ok(ctx.data::<Catalogs>()?.classes().await?)
}

/// The relationship type catalogue, read once per request.
pub async fn relationship_types(ctx: &Context<'_>) -> async_graphql::Result<Arc<TypeCatalog>> {
    Ok(ctx.data::<Catalogs>()?.types().await?)
}

/// Parses an id argument, naming the argument when it is not a UUID.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, Error> {
    Uuid::parse_str(id.as_str()).map_err(|_| {
        Error::invalid(
            field,
            format!("{field}: `{}` is not a valid id", id.as_str()),
        )
    })
}

/// Parses a list of ids, naming the position of the first that is not a UUID.
pub fn parse_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>, Error> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| parse_id(&format!("{field}[{i}]"), id))
        .collect()
}

/// An optional input field as a domain patch: absent keeps, null clears, a value sets.
pub fn patch<T, U: From<T>>(value: MaybeUndefined<T>) -> Patch<U> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(value) => Patch::Set(value.into()),
    }
}
