//! The HTTP surface: GraphQL over HTTP on `/graphql` (`POST`, and `GET` for queries),
//! GraphQL over WebSocket on `/graphql/ws` (subscriptions, see `socket.rs`), the
//! web console on `/` and `/ui/...`, GraphiQL for a browser's `GET /graphql`, `GET /healthz`,
//! `GET /metrics`, CORS, a body size limit, one log span per GraphQL operation, and
//! graceful shutdown.
//!
//! This layer knows nothing of SQL: it hands requests to the GraphQL layer and asks the
//! database layer only whether the database answers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::domain::auth::{Principal, TokenCache};
use crate::domain::changes::{self, ChangeWatch};
use crate::domain::events::{EventHub, HubReader};
use crate::domain::webhook::delivery;
use crate::error::Error;
use crate::graphql::live::SubscriptionCounts;
use crate::graphql::{self, CmdbSchema, Transport};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::settings::EventSettings;
use crate::settings::Settings;
use wire::Media;

mod socket;
mod wire;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: CmdbSchema,
    pub db: DatabaseConnection,
    pub metrics: Arc<Metrics>,
    tokens: Arc<TokenCache>,
    /// Tells the server's caches when the database changed; the listener keeping it told
    /// stops with the last clone of the state.
    watch: Arc<ChangeWatch>,
    _listener: Option<Arc<changes::Listener>>,
    /// Reads committed events for live updates; stops with the last clone of the state.
    _hub_reader: Option<Arc<HubReader>>,
    /// Delivers events to webhooks; stops with the last clone of the state.
    _webhook_worker: Option<Arc<delivery::Worker>>,
    subscription_counts: Arc<SubscriptionCounts>,
    events: EventSettings,
    allow_anonymous_read: bool,
    metrics_require_token: bool,
    max_body_bytes: usize,
}

impl AppState {
    /// The state of a server on `db` with `limits` and otherwise default settings.
    pub fn new(db: DatabaseConnection, limits: Limits) -> Self {
        Self::with_settings(
            db,
            Settings {
                limits,
                ..Settings::default()
            },
        )
    }

    /// The state of a server on `db` with `settings`. Within a Tokio runtime, it listens
    /// for changes other writers make to the database (outside one, caches ask).
    pub fn with_settings(db: DatabaseConnection, settings: Settings) -> Self {
        let metrics = Arc::new(Metrics::new());
        let watch = ChangeWatch::new();
        let poll_interval = settings
            .change_poll_interval
            .unwrap_or(changes::POLL_INTERVAL);
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let listener = in_runtime.then(|| Arc::new(changes::listen(&db, &watch, poll_interval)));
        let hub = EventHub::new(settings.events.subscriber_buffer);
        let hub_reader = in_runtime
            .then(|| Arc::new(hub.spawn_reader(db.clone(), &watch, settings.events.fallback_poll)));
        let webhook_worker = (in_runtime && settings.webhooks.deliver).then(|| {
            Arc::new(delivery::spawn(
                db.clone(),
                &watch,
                settings.webhooks.clone(),
            ))
        });
        let tokens = Arc::new(TokenCache::watched(
            db.clone(),
            settings.clock.clone(),
            watch.clone(),
        ));
        AppState {
            allow_anonymous_read: settings.allow_anonymous_read,
            metrics_require_token: settings.metrics_require_token,
            max_body_bytes: settings.limits.max_body_bytes,
            events: settings.events.clone(),
            schema: graphql::build_schema(
                db.clone(),
                settings,
                metrics.clone(),
                tokens.clone(),
                watch.clone(),
                hub,
            ),
            _hub_reader: hub_reader,
            _webhook_worker: webhook_worker,
            subscription_counts: Arc::default(),
            tokens,
            metrics,
            watch,
            _listener: listener,
            db,
        }
    }
}

impl AppState {
    /// Told whenever this server hears that the database changed (its own writes, other
    /// instances' and processes'): for whoever must wait until the server has noticed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.watch.subscribe()
    }
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call the API from a browser; `*` allows any. Empty: none.
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

/// The application: routes and middleware, the same in `main` and in tests.
pub fn app(state: AppState, options: &HttpOptions) -> Router {
    let mut router = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(socket::upgrade))
        .route("/", get(crate::console::page))
        .route("/ui", get(crate::console::page))
        .route("/ui/assets/{*path}", get(crate::console::file))
        .route("/ui/{*page}", get(crate::console::page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes.max(1024)))
        .layer(middleware::map_response(body_too_large_as_json));
    if let Some(cors) = cors_layer(&options.cors_origins) {
        router = router.layer(cors);
    }
    router.layer(TraceLayer::new_for_http())
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
    )
}

/// `{"status":"ok"}` while the database answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    if crate::db::ping(&state.db).await {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok", "version": env!("CARGO_PKG_VERSION") })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": "unreachable" })),
        )
            .into_response()
    }
}

/// Longest operation name written to the log: clients choose it.
const MAX_LOGGED_NAME: usize = 64;

/// The operation name a request gives, or the name of the operation in its document, for
/// the log (at most [`MAX_LOGGED_NAME`] characters, control characters dropped).
fn operation_name(request: &async_graphql::Request) -> String {
    if let Some(name) = &request.operation_name {
        return name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_LOGGED_NAME)
            .collect();
    }
    // Only the start of the document can name its operation; a hostile document must not
    // make this look at all of it.
    let mut end = request.query.len().min(512);
    while !request.query.is_char_boundary(end) {
        end -= 1;
    }
    let mut words = request.query[..end]
        .split(|c: char| c.is_whitespace() || matches!(c, '{' | '(' | '@'))
        .filter(|w| !w.is_empty());
    let is_name = |word: &str| {
        word.chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && word.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    };
    match (words.next(), words.next()) {
        (Some("query" | "mutation" | "subscription"), Some(name)) if is_name(name) => {
            name.to_owned()
        }
        _ => "anonymous".to_owned(),
    }
}

/// The body limit layer answers a bare 413; clients get the same JSON error shape as for
/// every other error.
async fn body_too_large_as_json(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return body_too_large();
    }
    response
}

fn body_too_large() -> Response {
    wire::with_status(
        refuse(Error::LimitExceeded(
            "the request body is too large (limit `max_body_bytes`)".into(),
        )),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

/// The metrics in the Prometheus text format; with `--metrics-require-token`, only for
/// callers with a valid token (of any role).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.metrics_require_token {
        match authenticate(&state, &headers).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return refuse(Error::Unauthenticated(
                    "the metrics need an API token: send `Authorization: Bearer <token>`".into(),
                ));
            }
            Err(err) => return refuse(err),
        }
    }
    let (size, idle) = crate::db::pool_usage(&state.db);
    let deliveries = crate::domain::webhook::delivery_counts(&state.db)
        .await
        .unwrap_or_default();
    state
        .metrics
        .live(state.subscription_counts.total(), &deliveries);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(size, idle),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer` header; `Err` for a malformed header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(())?
        .trim();
    if token.is_empty() {
        Err(())
    } else {
        Ok(Some(token))
    }
}

/// Who the request's token stands for; `None` without a token. A malformed header or an
/// unknown token is refused here, before the body is read.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, Error> {
    let token = bearer(headers).map_err(|()| {
        Error::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
    })?;
    let Some(token) = token else {
        return Ok(None);
    };
    match state.tokens.principal(token).await {
        Ok(Some(principal)) => Ok(Some(principal)),
        Ok(None) => Err(Error::Unauthenticated(
            "the token is unknown or revoked".into(),
        )),
        Err(err) => {
            tracing::error!(error = %err, "token check failed");
            Err(err)
        }
    }
}

/// The GraphQL request in a `POST` body: JSON with `query`, and optionally `operationName`,
/// `variables` and `extensions`. The body is read whole (within the body limit) and
/// decoded in one pass.
async fn read_request(
    request: axum::extract::Request,
    max_body_bytes: usize,
    media: Media,
) -> Result<async_graphql::Request, Response> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let refused = wire::refusal(
            Error::ParseFailed(
                "a GraphQL request is a POST with `content-type: application/json`".into(),
            ),
            media,
        );
        return Err(wire::with_status(
            refused,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), max_body_bytes)
        .await
        .map_err(|_| body_too_large())?;
    wire::from_body(&bytes).map_err(|err| wire::malformed(err, media))
}

/// A request refused before it reached GraphQL, in the shape of every other GraphQL error.
fn refuse(err: Error) -> Response {
    wire::refusal(err, Media::Json)
}

/// `POST /graphql`: any operation.
async fn graphql_post(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let media = Media::negotiate(request.headers());
    // Authentication first: a request that will be refused costs no body read and no parse.
    let principal = match admit_caller(&state, request.headers()).await {
        Ok(principal) => principal,
        Err(err) => return wire::refusal(err, media),
    };
    let graphql_request = match read_request(request, state.max_body_bytes, media).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    run(&state, principal, graphql_request, Transport::Post, media).await
}

/// `GET /graphql`: with a query string, a GraphQL query (never a mutation); without one,
/// GraphiQL for a browser.
async fn graphql_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return crate::console::graphiql(&headers);
    };
    let media = Media::negotiate(&headers);
    let principal = match admit_caller(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return wire::refusal(err, media),
    };
    if query.len() > state.max_body_bytes {
        return body_too_large();
    }
    match wire::from_query_string(&query) {
        Ok(request) => run(&state, principal, request, Transport::Get, media).await,
        Err(err) => wire::malformed(err, media),
    }
}

/// Who the request's token stands for, refusing anonymous requests unless the server
/// allows anonymous reads.
async fn admit_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, Error> {
    let principal = authenticate(state, headers).await?;
    if principal.is_none() && !state.allow_anonymous_read {
        return Err(Error::Unauthenticated(
            "this server needs an API token: send `Authorization: Bearer <token>`".into(),
        ));
    }
    Ok(principal)
}

/// Runs a GraphQL request and answers it: one log span, metrics, and the status and media
/// type GraphQL over HTTP asks for.
async fn run(
    state: &AppState,
    principal: Option<Principal>,
    request: async_graphql::Request,
    transport: Transport,
    media: Media,
) -> Response {
    let operation = operation_name(&request);
    let caller = principal
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "anonymous".into());
    let span = tracing::info_span!("graphql", operation = %operation, actor = %caller);
    let started = Instant::now();
    let (response, label) = changes::WATCH
        .scope(
            state.watch.clone(),
            graphql::execute(&state.schema, principal, request, transport),
        )
        .instrument(span.clone())
        .await;
    let codes: Vec<String> = response
        .errors
        .iter()
        .filter_map(|e| match e.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| {
        tracing::info!(
            duration_ms = elapsed * 1000.0,
            errors = ?codes,
            "graphql operation"
        )
    });
    state.metrics.operation(&label, elapsed, &codes);
    wire::encode(response, media)
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM. The server then stops accepting connections and
/// lets in-flight requests finish.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::operation_name;

    #[test]
    fn the_operation_name_comes_from_the_request_or_the_document() {
        let named = async_graphql::Request::new("{ a }").operation_name("Given");
        assert_eq!(operation_name(&named), "Given");
        let from_document = async_graphql::Request::new("query ListServers($n: Int) { a }");
        assert_eq!(operation_name(&from_document), "ListServers");
        assert_eq!(
            operation_name(&async_graphql::Request::new("{ a }")),
            "anonymous"
        );
    }
}
