//! `GET /graphql/ws`: GraphQL over WebSocket, in the `graphql-transport-ws` protocol and
//! the legacy `graphql-ws` one (chosen by `Sec-WebSocket-Protocol`).
//!
//! The caller is known from the upgrade request's `Authorization` header or from
//! `connection_init`'s payload (`{"authorization": "Bearer <token>"}`), checked by the same
//! token cache as HTTP requests; what it may run is decided by the GraphQL layer. The server
//! pings the client every `ping_interval` and closes a connection that stayed silent (no
//! message, no pong) for `idle_timeout`, with code 4408.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};

use super::{AppState, authenticate, refuse};
use crate::domain::auth::Principal;
use crate::error::{Error, codes};
use crate::graphql::live::{Caller, LiveConnection, LiveExecutor};

/// The close code of a connection closed for silence, or for not initialising in time.
const IDLE_CLOSE: u16 = 4408;
/// The close code of a connection whose caller was refused (`graphql-transport-ws`'s
/// "Forbidden").
const FORBIDDEN_CLOSE: u16 = 4403;
/// The close code of a connection whose client did not take its messages in time.
const SLOW_CLOSE: u16 = 4008;
/// The longest a connection may go without `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol spoken: the first of the server's (the order the upgrade's answer names
/// them in) that the client offered; `graphql-transport-ws` when it offered none.
fn protocol(headers: &HeaderMap) -> WebSocketProtocols {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    ALL_WEBSOCKET_PROTOCOLS
        .iter()
        .find(|name| offered.iter().any(|o| o == *name))
        .and_then(|name| name.parse().ok())
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
        .max_message_size(state.max_body_bytes)
        .max_frame_size(state.max_body_bytes)
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
    let opened = Instant::now();
    let init_timeout = INIT_TIMEOUT.min(settings.idle_timeout);
    loop {
        let outgoing = tokio::select! {
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => Message::Text(text.into()),
                Some(WsMessage::Close(code, reason)) => {
                    // A caller refused at `connection_init` is told so with the code the
                    // protocol has for it (async-graphql says 1002, a protocol error).
                    let refused = [codes::UNAUTHENTICATED, codes::FORBIDDEN]
                        .iter()
                        .any(|code| reason.starts_with(code));
                    let code = if code == 1002 && refused { FORBIDDEN_CLOSE } else { code };
                    close(&mut sink, code, reason, &settings).await;
                    break;
                }
                None => break,
            },
            _ = pings.tick() => {
                let silent = heard.lock().map(|heard| heard.elapsed()).unwrap_or_default();
                if silent >= settings.idle_timeout {
                    let reason = "the connection was idle too long (limit `idle_timeout`)";
                    close(&mut sink, IDLE_CLOSE, reason.into(), &settings).await;
                    break;
                }
                if connection.caller_known().is_none() && opened.elapsed() >= init_timeout {
                    let reason = "connection_init did not arrive in time";
                    close(&mut sink, IDLE_CLOSE, reason.into(), &settings).await;
                    break;
                }
                Message::Ping(Default::default())
            }
        };
        // A client that does not take what it is sent is not waited for forever: its
        // messages would pile up in the server (and its subscriptions hold their slots).
        match send_within(&mut sink, outgoing, settings.send_timeout).await {
            Sent::Taken => {}
            Sent::Gone => break,
            Sent::TooSlow => {
                tracing::info!("closing a WebSocket connection whose client takes no message");
                let reason = format!(
                    "{}: the client took no message for {} s; reconnect and resume with \
                     `after` (limit `send_timeout`)",
                    codes::SUBSCRIBER_TOO_SLOW,
                    settings.send_timeout.as_secs()
                );
                close(&mut sink, SLOW_CLOSE, reason, &settings).await;
                break;
            }
        }
    }
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// The client took it.
    Taken,
    /// The connection is gone.
    Gone,
    /// The client took nothing within the limit.
    TooSlow,
}

/// Sends `message`, giving up after `limit`.
async fn send_within<S: futures_util::Sink<Message> + Unpin>(
    sink: &mut S,
    message: Message,
    limit: Duration,
) -> Sent {
    match tokio::time::timeout(limit, sink.send(message)).await {
        Ok(Ok(())) => Sent::Taken,
        Ok(Err(_)) => Sent::Gone,
        Err(_) => Sent::TooSlow,
    }
}

/// Sends a close frame, waiting at most the send timeout (the client may not be reading).
async fn close<S: futures_util::Sink<Message> + Unpin>(
    sink: &mut S,
    code: u16,
    reason: String,
    settings: &crate::settings::EventSettings,
) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = send_within(sink, frame, settings.send_timeout).await;
}

fn to_graphql(err: Error) -> async_graphql::Error {
    async_graphql::Error::new(format!("{}: {err}", err.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that never takes anything.
    struct Stuck;

    impl futures_util::Sink<Message> for Stuck {
        type Error = ();
        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Pending
        }
        fn start_send(self: std::pin::Pin<&mut Self>, _: Message) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Pending
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_takes_nothing_is_given_up_on_after_the_limit() {
        let limit = Duration::from_secs(10);
        let started = tokio::time::Instant::now();
        let sent = send_within(&mut Stuck, Message::Text("x".into()), limit).await;
        assert_eq!(sent, Sent::TooSlow);
        assert_eq!(
            started.elapsed(),
            limit,
            "given up exactly at the limit (paused clock)"
        );
        let mut taking = futures_util::sink::drain().sink_map_err(|_| ());
        assert_eq!(
            send_within(&mut taking, Message::Text("x".into()), limit).await,
            Sent::Taken
        );
    }

    #[test]
    fn the_servers_preferred_protocol_is_spoken_whatever_the_clients_order() {
        let offering = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                value.parse().expect("a header"),
            );
            protocol(&headers)
        };
        assert_eq!(
            offering("graphql-ws, graphql-transport-ws"),
            WebSocketProtocols::GraphQLWS
        );
        assert_eq!(
            offering("graphql-ws"),
            WebSocketProtocols::SubscriptionsTransportWS
        );
    }
}
