//! Operations that arrive over a WebSocket: admitted exactly as over HTTP (the same
//! bounds, the same access decision in `access.rs`), then run. Subscriptions are counted
//! against the connection's and the token's limits, and end when their token is revoked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use sea_orm::DatabaseConnection;

use super::{CmdbSchema, Transport, admit, error, loaders, refusal};
use crate::domain::audit::Actor;
use crate::domain::auth::{Principal, TokenCache};
use crate::domain::changes::{ChangeWatch, Topic};
use crate::error::Error;
use crate::limits::Limits;
use crate::settings::EventSettings;

/// How many subscriptions each token holds, over all its connections to this server.
#[derive(Debug, Default)]
pub struct SubscriptionCounts(Mutex<HashMap<String, usize>>);

impl SubscriptionCounts {
    /// How many subscriptions (and operations in flight) are open on this instance.
    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Who is on a connection, once it said (in `connection_init` or the upgrade request).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the token stands for; `None` for an anonymous caller.
    pub principal: Option<Principal>,
    /// The bearer token, kept to notice its revocation.
    pub token: Option<String>,
}

/// One WebSocket connection's state.
pub struct LiveConnection {
    caller: OnceLock<Caller>,
    open: AtomicUsize,
    counts: Arc<SubscriptionCounts>,
    tokens: Arc<TokenCache>,
    watch: Arc<ChangeWatch>,
    settings: EventSettings,
}

impl LiveConnection {
    /// A connection whose caller is not known yet.
    pub fn new(
        counts: Arc<SubscriptionCounts>,
        tokens: Arc<TokenCache>,
        watch: Arc<ChangeWatch>,
        settings: EventSettings,
    ) -> Arc<Self> {
        Arc::new(LiveConnection {
            caller: OnceLock::new(),
            open: AtomicUsize::new(0),
            counts,
            tokens,
            watch,
            settings,
        })
    }

    /// Records who the caller is; the first answer holds.
    pub fn identify(&self, caller: Caller) {
        let _ = self.caller.set(caller);
    }

    /// The caller, if the connection already knows it (from the upgrade request).
    pub fn caller_known(&self) -> Option<Caller> {
        self.caller.get().cloned()
    }

    fn caller(&self) -> Caller {
        self.caller.get().cloned().unwrap_or(Caller {
            principal: None,
            token: None,
        })
    }

    /// Takes a slot for an operation of the caller (held by a subscription for its life, by
    /// a query or mutation while it runs), or says which limit is reached.
    fn take_slot(self: &Arc<Self>, caller: &Caller) -> Result<Slot, Error> {
        // Tokens by name; anonymous callers (when the server allows them) share one count.
        let key = caller
            .principal
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |p| format!("token:{}", p.name));
        let mut counts = self.counts.counts();
        let held = counts.get(&key).copied().unwrap_or(0);
        if self.open.load(Ordering::SeqCst) >= self.settings.subscriptions_per_connection {
            return Err(Error::LimitExceeded(format!(
                "this connection already runs {} operations (subscriptions and queries in \
                 flight; limit `subscriptions_per_connection`)",
                self.settings.subscriptions_per_connection
            )));
        }
        if held >= self.settings.subscriptions_per_token {
            return Err(Error::LimitExceeded(format!(
                "this token already holds {} subscriptions (limit `subscriptions_per_token`)",
                self.settings.subscriptions_per_token
            )));
        }
        counts.insert(key.clone(), held + 1);
        self.open.fetch_add(1, Ordering::SeqCst);
        Ok(Slot {
            connection: self.clone(),
            key,
        })
    }
}

/// A subscription's place in the counts, given back when the subscription ends.
struct Slot {
    connection: Arc<LiveConnection>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connection.open.fetch_sub(1, Ordering::SeqCst);
        let mut counts = self.connection.counts.counts();
        if let Some(held) = counts.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Runs a connection's operations.
#[derive(Clone)]
pub struct LiveExecutor {
    /// The schema operations run against.
    pub schema: CmdbSchema,
    /// The connection they arrive on.
    pub connection: Arc<LiveConnection>,
}

impl Executor for LiveExecutor {
    async fn execute(&self, request: Request) -> Response {
        let caller = self.connection.caller();
        super::execute(&self.schema, caller.principal, request, Transport::Socket)
            .await
            .0
    }

    fn execute_stream(
        &self,
        request: Request,
        _session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        // The slot is taken here, as the operations arrive, so that which one is refused
        // does not depend on which admission finishes first.
        let caller = self.connection.caller();
        let slot = match self.connection.take_slot(&caller) {
            Ok(slot) => slot,
            Err(err) => {
                let mut response = refusal(err);
                error::add_codes(&mut response);
                return stream::once(std::future::ready(response)).boxed();
            }
        };
        let executor = self.clone();
        stream::once(async move { executor.subscribe(request, caller, slot).await })
            .flatten()
            .boxed()
    }
}

impl LiveExecutor {
    async fn subscribe(
        self,
        request: Request,
        caller: Caller,
        slot: Slot,
    ) -> BoxStream<'static, Response> {
        let schema = &self.schema;
        let once = |mut response: Response| {
            error::add_codes(&mut response);
            stream::once(std::future::ready(response)).boxed()
        };
        // The token is checked again for every operation: one revoked since the connection
        // opened starts nothing more.
        let mut caller = caller;
        if let Some(token) = &caller.token {
            match self.connection.tokens.principal(token).await {
                Ok(Some(principal)) => caller.principal = Some(principal),
                Ok(None) => {
                    return once(refusal(Error::Unauthenticated(
                        "the token is unknown or revoked".into(),
                    )));
                }
                Err(err) => return once(refusal(err)),
            }
        }
        let limits = schema.data::<Limits>().cloned().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + limits.request_timeout;
        let admitted = match admit(
            schema,
            caller.principal.clone(),
            request,
            Transport::Socket,
            &limits,
            deadline,
        )
        .await
        {
            Ok(admitted) => admitted,
            Err(response) => return once(response),
        };
        let is_subscription = admitted
            .inspection
            .as_ref()
            .is_some_and(|i| i.operation == OperationType::Subscription);
        if !is_subscription {
            let response = super::run(schema, admitted, &limits, deadline).await;
            drop(slot);
            return once(response);
        }
        // Each root field of a subscription is a stream of its own: one slot, one stream.
        if admitted
            .inspection
            .as_ref()
            .is_some_and(|i| i.root_selections != 1)
        {
            return once(refusal(Error::Validation {
                message: "a subscription selects exactly one root field; open one \
                          subscription per field"
                    .into(),
                field: None,
            }));
        }
        let mut request = admitted.request.data(
            caller
                .principal
                .as_ref()
                .map(Principal::actor)
                .unwrap_or_else(|| Actor::named("")),
        );
        if let Some(principal) = caller.principal.clone() {
            request = request.data(principal);
        }
        if let Some(db) = schema.data::<DatabaseConnection>() {
            let shared = schema
                .data::<Arc<loaders::SharedCatalogs>>()
                .cloned()
                .unwrap_or_default();
            request = request
                .data(loaders::for_subscription(db.clone()))
                .data(loaders::Catalogs::new(db.clone(), shared));
        }
        let max_errors = limits.max_response_errors;
        let responses = schema.execute_stream(request).map(move |mut response| {
            error::add_codes(&mut response);
            error::bound_errors(&mut response, max_errors);
            response
        });
        let revoked: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match caller.token {
            Some(token) => Box::pin(revoked(
                self.connection.tokens.clone(),
                self.connection.watch.clone(),
                token,
            )),
            None => Box::pin(std::future::pending()),
        };
        stream::unfold(
            (responses.boxed(), revoked, Some(slot)),
            |(mut responses, mut revoked, slot)| async move {
                slot.as_ref()?;
                tokio::select! {
                    response = responses.next() => {
                        response.map(|response| (response, (responses, revoked, slot)))
                    }
                    () = &mut revoked => Some((
                        refusal(Error::Unauthenticated(
                            "the token was revoked: the subscription has ended".into(),
                        )),
                        (responses, revoked, None),
                    )),
                }
            },
        )
        .boxed()
    }
}

/// How often a subscription checks its token when no change notice arrives.
const TOKEN_RECHECK: Duration = Duration::from_secs(30);

/// Resolves when `token` no longer authenticates: checked whenever the tokens change, and
/// every [`TOKEN_RECHECK`] in case a notice was missed.
async fn revoked(tokens: Arc<TokenCache>, watch: Arc<ChangeWatch>, token: String) {
    let mut moved = watch.subscribe();
    let mut seen = watch.generation(Topic::Tokens);
    // Revoked between the operation's own check and this watch's start: seen here.
    if let Ok(None) = tokens.principal(&token).await {
        return;
    }
    loop {
        let ticked = tokio::select! {
            changed = moved.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
                false
            }
            _ = tokio::time::sleep(TOKEN_RECHECK) => true,
        };
        let generation = watch.generation(Topic::Tokens);
        if !ticked && generation == seen && watch.listening() {
            continue;
        }
        seen = generation;
        if let Ok(None) = tokens.principal(&token).await {
            return;
        }
    }
}
