//! The GraphQL API: thin resolvers over the domain layer.
//!
//! Each resolver takes what it needs from the context, turns its arguments into domain
//! types, calls one domain function and wraps the result. Nested fields go through the
//! request's loaders. Errors reach clients only through `error.rs`, always with a code.
//! The schema's shape is built by [`schema_builder`] without any database, so the SDL can be
//! exported and checked without a server.

mod audit;
mod catalog;
mod ci;
mod context;
mod discovery;
mod error;
mod impact;
mod loaders;
mod pagination;
mod relationship;
mod service;

use async_graphql::{EmptySubscription, MergedObject, Request, Response, Schema, SchemaBuilder};
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::audit::Actor;
use crate::domain::discovery::DiscoveryConfig;
use crate::domain::impact::GraphCache;
use crate::limits::Limits;

pub use error::{PARSE_FAILED, VALIDATION_FAILED};

/// Everything that can be read.
#[derive(MergedObject, Default)]
pub struct Query(
    ci::CiQuery,
    relationship::RelationshipQuery,
    service::ServiceQuery,
    catalog::CatalogQuery,
    audit::AuditQuery,
    impact::ImpactQuery,
    discovery::DiscoveryQuery,
);

/// Everything that can be changed. Every mutation is audited and all-or-nothing.
#[derive(MergedObject, Default)]
pub struct Mutation(
    ci::CiMutation,
    relationship::RelationshipMutation,
    service::ServiceMutation,
    catalog::CatalogMutation,
    discovery::DiscoveryMutation,
);

/// The executable schema.
pub type CmdbSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema's shape, with no data attached: for exporting the SDL and for building the
/// server's schema.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The schema a server runs: the shape, the database and the limits.
pub fn build_schema(
    db: DatabaseConnection,
    limits: Limits,
    discovery: DiscoveryConfig,
) -> CmdbSchema {
    schema_builder()
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .data(db)
        .data(limits)
        .data(Arc::new(GraphCache::new()))
        .data(Arc::new(discovery))
        .finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// Runs one GraphQL request on behalf of `actor`, with loaders of its own.
pub async fn execute(schema: &CmdbSchema, actor: Actor, request: Request) -> Response {
    let tasks = loaders::LoaderTasks::default();
    let query = request.query.clone();
    let mut request = request.data(actor);
    if let Some(db) = schema.data::<DatabaseConnection>() {
        request = request.data(loaders::for_request(db.clone(), &tasks));
    }
    let mut response = tasks.drive(schema.execute(request)).await;
    error::add_codes(&query, &mut response);
    response
}
