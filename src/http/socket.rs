//! `GET /graphql/ws`: GraphQL over WebSocket, in the `graphql-transport-ws` protocol and
//! the legacy `graphql-ws` one (chosen by `Sec-WebSocket-Protocol`).
//!
//! The caller is known from the upgrade request's `Authorization` header or from
//! `connection_init`'s payload (`{"authorization": "Bearer <token>"}`), checked by the same
//! token cache as HTTP requests; what it may run is decided by the GraphQL layer. The server
//! pings the client every `ping_interval` and closes a connection that stayed silent (no
//! message, no pong) for `idle_timeout`, with code 4408.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};

use super::{AppState, authenticate, refuse};
use crate::domain::auth::Principal;
use crate::error::Error;
use crate::graphql::live::{Caller, LiveConnection, LiveExecutor};

/// The close code of a connection closed for silence.
const IDLE_CLOSE: u16 = 4408;

/// The protocol the client asked for; `graphql-transport-ws` when it named none.
fn protocol(headers: &HeaderMap) -> WebSocketProtocols {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .split(',')
                .find_map(|name| name.trim().parse::<WebSocketProtocols>().ok())
        })
        .unwrap_or(WebSocketProtocols::GraphQLWS)
}

/// Upgrades the request to a GraphQL WebSocket connection.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = match authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return refuse(err),
    };
    let token = super::bearer(&headers).ok().flatten().map(str::to_owned);
    let connection = LiveConnection::new(
        state.subscription_counts.clone(),
        state.tokens.clone(),
        state.watch.clone(),
        state.events.clone(),
    );
    if from_header.is_some() {
        connection.identify(Caller {
            principal: from_header,
            token,
        });
    }
    let protocol = protocol(&headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(socket, state, connection, protocol))
}

/// The caller named by `connection_init`'s payload, if it names one.
async fn caller_of(state: &AppState, payload: &serde_json::Value) -> Result<Caller, Error> {
    let value = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(|v| v.as_str());
    let Some(value) = value else {
        return Ok(Caller {
            principal: None,
            token: None,
        });
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthenticated("`authorization` must be `Bearer <token>`".into()))?;
    match state.tokens.principal(token).await? {
        Some(principal) => Ok(Caller {
            principal: Some(principal),
            token: Some(token.to_owned()),
        }),
        None => Err(Error::Unauthenticated(
            "the token is unknown or revoked".into(),
        )),
    }
}

/// Whether the caller may hold a connection at all (reading is the least it must be
/// allowed); what each operation needs is decided when it arrives.
fn may_connect(state: &AppState, principal: Option<&Principal>) -> Result<(), Error> {
    crate::graphql::may_read(principal, state.allow_anonymous_read)
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    connection: Arc<LiveConnection>,
    protocol: WebSocketProtocols,
) {
    let (mut sink, stream) = socket.split();
    let heard = Arc::new(Mutex::new(Instant::now()));
    let heard_in = heard.clone();
    let input = stream
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(move |message| {
            if let Ok(mut heard) = heard_in.lock() {
                *heard = Instant::now();
            }
            std::future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let executor = LiveExecutor {
        schema: state.schema.clone(),
        connection: connection.clone(),
    };
    let init_state = state.clone();
    let init_connection = connection.clone();
    let messages = async_graphql::http::WebSocket::new(executor, input, protocol)
        .on_connection_init(move |payload| async move {
            let caller = match init_connection.caller_known() {
                Some(caller) => caller,
                None => caller_of(&init_state, &payload).await.map_err(to_graphql)?,
            };
            may_connect(&init_state, caller.principal.as_ref()).map_err(to_graphql)?;
            init_connection.identify(caller);
            Ok(async_graphql::Data::default())
        });
    let mut messages = std::pin::pin!(messages);
    let settings = state.events.clone();
    let mut pings = tokio::time::interval(settings.ping_interval);
    pings.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => {
                let outgoing = match message {
                    Some(WsMessage::Text(text)) => Message::Text(text.into()),
                    Some(WsMessage::Close(code, reason)) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                            .await;
                        break;
                    }
                    None => break,
                };
                if sink.send(outgoing).await.is_err() {
                    break;
                }
            }
            _ = pings.tick() => {
                let silent = heard.lock().map(|heard| heard.elapsed()).unwrap_or_default();
                if silent >= settings.idle_timeout {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: IDLE_CLOSE,
                            reason: "the connection was idle too long (limit `idle_timeout`)".into(),
                        })))
                        .await;
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

fn to_graphql(err: Error) -> async_graphql::Error {
    async_graphql::Error::new(format!("{}: {err}", err.code()))
}
