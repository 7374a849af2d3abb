//! The GraphQL API: thin resolvers over the domain layer.
//!
//! Each resolver takes what it needs from the context, turns its arguments into domain
//! types, calls one domain function and wraps the result. Nested fields go through the
//! request's loaders. Errors reach clients only through `error.rs`, always with a code.
//! The schema's shape is built by [`schema_builder`] without any database, so the SDL can be
//! exported and checked without a server.

mod access;
mod audit;
mod catalog;
mod change;
mod ci;
mod context;
mod customer;
mod discovery;
mod error;
mod health;
mod impact;
mod incident;
mod loaders;
mod pagination;
mod relationship;
mod service;
mod tokens;

use async_graphql::{EmptySubscription, MergedObject, Request, Response, Schema, SchemaBuilder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::DatabaseConnection;

use crate::domain::audit::Actor;
use crate::domain::auth::{Principal, TokenCache};
use crate::domain::impact::GraphCache;
use crate::error::Error;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::settings::Settings;

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
    tokens::TokenQuery,
    incident::IncidentQuery,
    change::ChangeQuery,
    customer::CustomerQuery,
    health::HealthQuery,
);

/// Everything that can be changed. Every mutation is audited and all-or-nothing.
#[derive(MergedObject, Default)]
pub struct Mutation(
    ci::CiMutation,
    relationship::RelationshipMutation,
    service::ServiceMutation,
    catalog::CatalogMutation,
    discovery::DiscoveryMutation,
    tokens::TokenMutation,
    incident::IncidentMutation,
    change::ChangeMutation,
    customer::CustomerMutation,
);

/// The executable schema.
pub type CmdbSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema's shape, with no data attached: for exporting the SDL and for building the
/// server's schema.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The schema a server runs: the shape, the database and the settings.
pub fn build_schema(
    db: DatabaseConnection,
    settings: Settings,
    metrics: Arc<Metrics>,
    tokens: Arc<TokenCache>,
) -> CmdbSchema {
    schema_builder()
        .limit_depth(settings.limits.max_query_depth)
        .limit_complexity(settings.limits.max_query_complexity)
        .data(db)
        .data(settings.limits.clone())
        .data(Arc::new(GraphCache::new()))
        .data(Arc::new(settings.discovery.clone()))
        .data(AccessPolicy {
            allow_anonymous_read: settings.allow_anonymous_read,
        })
        .data(metrics)
        .data(tokens)
        .finish()
}

/// Whether requests without a token may read.
#[derive(Debug, Clone, Copy)]
struct AccessPolicy {
    allow_anonymous_read: bool,
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// Runs one GraphQL request for `principal` (none: an anonymous request): checks access
/// and limits, then executes it with loaders of its own, within the request time limit.
pub async fn execute(
    schema: &CmdbSchema,
    principal: Option<Principal>,
    request: Request,
) -> Response {
    let limits = schema.data::<Limits>().cloned().unwrap_or_default();
    let allow_anonymous_read = schema
        .data::<AccessPolicy>()
        .is_some_and(|p| p.allow_anonymous_read);
    if carries_nul(&request) {
        return refusal(Error::Validation {
            message: "text in a request must not contain the NUL character".into(),
            field: None,
        });
    }
    if let Some(inspection) = access::inspect(&request.query, request.operation_name.as_deref())
        && let Err(err) = access::authorize(
            principal.as_ref(),
            allow_anonymous_read,
            &inspection,
            &limits,
        )
    {
        return refusal(err);
    }
    let actor = principal
        .as_ref()
        .map(Principal::actor)
        .unwrap_or_else(|| Actor::named(""));
    let tasks = loaders::LoaderTasks::default();
    let query = request.query.clone();
    let mut request = request.data(actor);
    if let Some(principal) = principal {
        request = request.data(principal);
    }
    if let Some(db) = schema.data::<DatabaseConnection>() {
        request = request.data(loaders::for_request(db.clone(), &tasks));
    }
    let commit_started = Arc::new(AtomicBool::new(false));
    let execution = crate::domain::COMMIT_STARTED
        .scope(commit_started.clone(), tasks.drive(schema.execute(request)));
    let mut execution = std::pin::pin!(execution);
    let mut response = match tokio::time::timeout(limits.request_timeout, &mut execution).await {
        Ok(response) => response,
        // Once a commit has started, the write may be stored: the request runs to its end,
        // so that its answer tells the truth.
        Err(_) if commit_started.load(Ordering::SeqCst) => execution.await,
        // Dropping the execution drops its open transaction, which rolls back.
        Err(_) => refusal(Error::LimitExceeded(format!(
            "the request took longer than {} ms and was cancelled; nothing it was writing was kept \
             (limit `request_timeout`)",
            limits.request_timeout.as_millis()
        ))),
    };
    error::add_codes(&query, &mut response);
    response
}

/// Whether the request holds the NUL character anywhere: databases cannot store it in text,
/// so it is refused before anything runs, whatever field it is in.
fn carries_nul(request: &Request) -> bool {
    fn in_value(value: &async_graphql::Value) -> bool {
        match value {
            async_graphql::Value::String(text) => text.contains('\0'),
            async_graphql::Value::List(items) => items.iter().any(in_value),
            async_graphql::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || in_value(v))
            }
            _ => false,
        }
    }
    let query = request.query.to_ascii_lowercase();
    request.query.contains('\0')
        || query.contains("\\u0000")
        || query.contains("\\u{0}")
        || request
            .variables
            .iter()
            .any(|(name, value)| name.contains('\0') || in_value(value))
}

/// A response refusing the whole request.
fn refusal(err: Error) -> Response {
    let error: async_graphql::Error = err.into();
    Response::from_errors(vec![error.into_server_error(async_graphql::Pos::default())])
}
