//! The GraphQL API: thin resolvers over the domain layer.
//!
//! Each resolver takes what it needs from the context, turns its arguments into domain
//! types, calls one domain function and wraps the result. Nested fields go through the
//! request's loaders. Errors reach clients only through `error.rs`, always with a code.
//! The schema's shape is built by [`schema_builder`] without any database, so the SDL can be
//! exported and checked without a server.

mod access;
mod admission;
mod audit;
mod baseline;
mod catalog;
mod change;
mod ci;
mod context;
mod customer;
mod discovery;
mod error;
mod health;
mod history;
mod impact;
mod incident;
mod lean;
pub mod live;
mod loaders;
mod node;
mod pagination;
mod persisted;
mod relationship;
mod service;
mod subscription;
mod tokens;
mod webhook;

use async_graphql::parser::types::OperationType;
use async_graphql::{MergedObject, Request, Response, Schema, SchemaBuilder};
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::CommitGate;
use crate::domain::audit::Actor;
use crate::domain::auth::{Principal, TokenCache};
use crate::domain::changes::ChangeWatch;
use crate::domain::events::EventHub;
use crate::domain::impact::GraphCache;
use crate::error::Error;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::settings::Settings;
use access::{AccessPolicy, Guarded};

pub use error::{PARSE_FAILED, VALIDATION_FAILED};
pub use persisted::{PersistedQueries, sha256_hex};

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
    node::NodeQuery,
    webhook::WebhookQuery,
    history::HistoryQuery,
    baseline::BaselineQuery,
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
    webhook::WebhookMutation,
    history::HistoryMutation,
    baseline::BaselineMutation,
);

impl access::Root for Query {
    const OPERATION: OperationType = OperationType::Query;
}

impl access::Root for Mutation {
    const OPERATION: OperationType = OperationType::Mutation;
}

pub use subscription::Subscription;

/// The executable schema. Its query and mutation roots check access as each root field
/// resolves; subscriptions are admitted (and checked) before they start.
pub type CmdbSchema = Schema<Guarded<Query>, Guarded<Mutation>, Subscription>;

/// The schema's shape, with no data attached: for exporting the SDL and for building the
/// server's schema.
pub fn schema_builder() -> SchemaBuilder<Guarded<Query>, Guarded<Mutation>, Subscription> {
    Schema::build(Guarded::default(), Guarded::default(), Subscription)
}

/// The schema a server runs: the shape, the database and the settings. It attaches no
/// extension: `lean.rs` resolves hot objects without the per-field extension hooks.
pub fn build_schema(
    db: DatabaseConnection,
    settings: Settings,
    metrics: Arc<Metrics>,
    tokens: Arc<TokenCache>,
    watch: Arc<ChangeWatch>,
    hub: Arc<EventHub>,
) -> CmdbSchema {
    schema_builder()
        .limit_depth(settings.limits.max_query_depth)
        .limit_complexity(settings.limits.max_query_complexity)
        .limit_directives(settings.limits.max_directives_per_location)
        .data(db)
        .data(settings.limits.clone())
        .data(Arc::new(GraphCache::watched(watch.clone())))
        .data(Arc::new(loaders::SharedCatalogs::watched(watch)))
        .data(Arc::new(settings.discovery.clone()))
        .data(hub)
        .data(settings.webhooks.policy.clone())
        .data(AccessPolicy {
            allow_anonymous_read: settings.allow_anonymous_read,
        })
        .data(metrics)
        .data(tokens)
        .data(Arc::new(PersistedQueries::default()))
        .finish()
}

/// The schema in SDL, as checked in at `schema.graphql`. It declares every directive
/// introspection lists: async-graphql leaves `@deprecated` out of its SDL while no field is
/// deprecated, and a client comparing the file with the live schema would see them differ.
pub fn sdl() -> String {
    let sdl = schema_builder().finish().sdl();
    if sdl.contains("directive @deprecated") {
        return sdl;
    }
    const DEPRECATED: &str = "\"\"\"\nMarks an element of a GraphQL schema as no longer supported.\n\"\"\"\n\
        directive @deprecated(reason: String = \"No longer supported\") on FIELD_DEFINITION | \
        ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE\n";
    match sdl.find("schema {") {
        Some(at) => format!("{}{DEPRECATED}{}", &sdl[..at], &sdl[at..]),
        None => format!("{sdl}{DEPRECATED}"),
    }
}

/// Documents up to this size are parsed on the request's own task: they cannot take long.
/// Larger ones are parsed on the blocking pool, so that no worker thread of the runtime
/// waits on one.
const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// Runs one GraphQL request for `principal` (none: an anonymous request). Each step is
/// bounded before the next is paid for: the caller may read at all; the document's size
/// and lexical shape; its parse, off the runtime's worker threads when large; its size once
/// fragments are expanded; then every root field against the caller's role. Only then does
/// it execute, with loaders of its own. The whole runs within the request time limit, and
/// the answer carries a bounded number of errors, none quoting the document.
///
/// A `GET` may carry only a query (`transport`): links, prefetches and caches repeat
/// `GET`s, so a write must never ride on one.
///
/// Also returns what the request did, as a label for metrics (see
/// [`access::metric_label`]).
pub async fn execute(
    schema: &CmdbSchema,
    principal: Option<Principal>,
    request: Request,
    transport: Transport,
) -> (Response, String) {
    let limits = schema.data::<Limits>().cloned().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let admission = admit(schema, principal, request, transport, &limits, deadline).await;
    let (mut response, label) = match admission {
        Ok(admitted) => {
            let label = access::metric_label(admitted.inspection.as_ref());
            (run(schema, admitted, &limits, deadline).await, label)
        }
        Err(response) => (response, "other".to_owned()),
    };
    error::add_codes(&mut response);
    error::bound_errors(&mut response, limits.max_response_errors);
    (response, label)
}

/// A request that passed admission, with its document parsed.
struct Admitted {
    request: Request,
    principal: Option<Principal>,
    inspection: Option<access::Inspection>,
}

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// An HTTP `POST`: any operation.
    Post,
    /// An HTTP `GET`: queries only.
    Get,
    /// A WebSocket message: any operation, subscriptions included.
    Socket,
}

async fn admit(
    schema: &CmdbSchema,
    principal: Option<Principal>,
    mut request: Request,
    transport: Transport,
    limits: &Limits,
    deadline: tokio::time::Instant,
) -> Result<Admitted, Response> {
    let policy = schema.data::<AccessPolicy>().copied().unwrap_or_default();
    access::check_read(principal.as_ref(), policy.allow_anonymous_read).map_err(refusal)?;
    let persisted = schema.data::<Arc<PersistedQueries>>();
    let to_persist = match persisted {
        Some(store) => store.resolve(&mut request).map_err(refusal)?,
        None => None,
    };
    admission::scan(&request.query, limits).map_err(refusal)?;
    if carries_nul(&request) {
        return Err(refusal(Error::Validation {
            message: "text in a request must not contain the NUL character".into(),
            field: None,
        }));
    }
    let operation_name = request.operation_name.clone();
    let expansion_limits = limits.clone();
    let prepare = move |query: &str| {
        let document = admission::parse(query).map_err(|f| Box::new(parse_refusal(f)))?;
        admission::check_expansion(&document, &expansion_limits)
            .map_err(|e| Box::new(refusal(e)))?;
        let inspection = access::inspect(&document, operation_name.as_deref());
        Ok::<_, Box<Response>>((document, inspection))
    };
    let (document, inspection) = if request.query.len() <= INLINE_PARSE_BYTES {
        prepare(&request.query).map_err(|r| *r)?
    } else {
        let query = std::mem::take(&mut request.query);
        let parsing = tokio::task::spawn_blocking(move || (prepare(&query), query));
        match tokio::time::timeout_at(deadline, parsing).await {
            Ok(Ok((prepared, query))) => {
                request.query = query;
                prepared.map_err(|r| *r)?
            }
            Ok(Err(join)) => return Err(refusal(Error::internal(join))),
            Err(_) => return Err(refusal(timed_out(limits))),
        }
    };
    if let Some(inspection) = &inspection {
        if transport == Transport::Get && inspection.operation != OperationType::Query {
            return Err(refusal(Error::MethodNotAllowed(
                "only queries may be sent with GET: send mutations with POST".into(),
            )));
        }
        access::authorize(
            principal.as_ref(),
            policy.allow_anonymous_read,
            inspection,
            limits,
        )
        .map_err(refusal)?;
    }
    if let (Some(store), Some(hash)) = (persisted, to_persist) {
        store.keep(hash, &request.query);
    }
    request.set_parsed_query(document);
    Ok(Admitted {
        request,
        principal,
        inspection,
    })
}

async fn run(
    schema: &CmdbSchema,
    admitted: Admitted,
    limits: &Limits,
    deadline: tokio::time::Instant,
) -> Response {
    let Admitted {
        request, principal, ..
    } = admitted;
    let actor = principal
        .as_ref()
        .map(Principal::actor)
        .unwrap_or_else(|| Actor::named(""));
    let tasks = loaders::LoaderTasks::default();
    let large = request.query.len() > INLINE_PARSE_BYTES;
    let mut request = request.data(actor);
    if let Some(principal) = principal {
        request = request.data(principal);
    }
    if let Some(db) = schema.data::<DatabaseConnection>() {
        let shared = schema
            .data::<Arc<loaders::SharedCatalogs>>()
            .cloned()
            .unwrap_or_default();
        request = request
            .data(loaders::for_request(db.clone(), &tasks))
            .data(loaders::Catalogs::new(db.clone(), shared));
    }
    let gate = Arc::new(CommitGate::default());
    let execution = {
        let (schema, gate, limits) = (schema.clone(), gate.clone(), limits.clone());
        async move {
            let execution = crate::domain::COMMIT_GATE
                .scope(gate.clone(), tasks.drive(schema.execute(request)));
            let mut execution = std::pin::pin!(execution);
            match tokio::time::timeout_at(deadline, &mut execution).await {
                Ok(response) => response,
                // Dropping the execution drops its open transaction, which rolls back.
                Err(_) if gate.try_abandon() => refusal(timed_out(&limits)),
                // A commit has started: the write may be stored, so the request runs to its
                // end and its answer tells the truth.
                Err(_) => execution.await,
            }
        }
    };
    if !large {
        return execution.await;
    }
    // Validation runs synchronously inside `execute`: a large document is validated (and
    // run) on the blocking pool, so that however long that takes, no worker thread of the
    // runtime waits on it. The client hears back by the deadline; the execution itself stops
    // there too (before anything is written, unless its commit had begun).
    let runtime = tokio::runtime::Handle::current();
    let mut running = tokio::task::spawn_blocking(move || runtime.block_on(execution));
    match tokio::time::timeout_at(deadline, &mut running).await {
        Ok(Ok(response)) => response,
        Ok(Err(join)) => refusal(Error::internal(join)),
        Err(_) if gate.try_abandon() => refusal(timed_out(limits)),
        Err(_) => running
            .await
            .unwrap_or_else(|join| refusal(Error::internal(join))),
    }
}

fn timed_out(limits: &Limits) -> Error {
    Error::LimitExceeded(format!(
        "the request took longer than {} ms and was cancelled; nothing it was writing was kept \
         (limit `request_timeout`)",
        limits.request_timeout.as_millis()
    ))
}

/// The answer to a document that does not parse: where, and what was expected.
fn parse_refusal(failure: admission::ParseFailure) -> Response {
    let mut error = async_graphql::ServerError::new(
        failure.message,
        (failure.line > 0).then_some(async_graphql::Pos {
            line: failure.line,
            column: failure.column,
        }),
    );
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", PARSE_FAILED);
    Response::from_errors(vec![error])
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

/// Whether the caller may read at all: what a WebSocket connection needs before any
/// operation arrives (each operation is then checked like any other request).
pub fn may_read(principal: Option<&Principal>, allow_anonymous_read: bool) -> Result<(), Error> {
    access::check_read(principal, allow_anonymous_read)
}

/// A response refusing the whole request, with the error's code.
pub fn refusal(err: Error) -> Response {
    let error: async_graphql::Error = err.into();
    let mut error = error.into_server_error(async_graphql::Pos::default());
    // It is about the request as a whole: no place in the document.
    error.locations.clear();
    Response::from_errors(vec![error])
}
