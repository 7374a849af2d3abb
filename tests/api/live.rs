//! A GraphQL-over-WebSocket client for the tests: a real WebSocket connection to the real
//! server, speaking `graphql-transport-ws` (or the legacy `graphql-ws`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::TestApp;

/// How long a test waits for a message before it fails (a bound, not a sleep).
pub const WAIT: Duration = Duration::from_secs(15);

/// An open connection.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    legacy: bool,
}

/// What the server said about one subscription.
#[derive(Debug)]
pub enum Said {
    /// An event (or a response with errors).
    Next(Value),
    /// The subscription ended.
    Complete,
}

impl Socket {
    /// Opens a connection, offering `protocol`, with `header_token` in the upgrade request.
    pub async fn open(app: &TestApp, protocol: &str, header_token: Option<&str>) -> Socket {
        Socket::open_with(app, protocol, header_token, None).await
    }

    /// The same, with the client's receive buffer fixed at `receive_buffer` bytes (the
    /// kernel otherwise grows it to megabytes).
    pub async fn open_with(
        app: &TestApp,
        protocol: &str,
        header_token: Option<&str>,
        receive_buffer: Option<u32>,
    ) -> Socket {
        let url = format!("{}/graphql/ws", app.address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("a request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).expect("a header"),
        );
        if let Some(token) = header_token {
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a header"),
            );
        }
        let (ws, response) = match receive_buffer {
            None => connect_async(request).await.expect("the upgrade succeeds"),
            Some(size) => {
                let address: std::net::SocketAddr = app
                    .address
                    .trim_start_matches("http://")
                    .parse()
                    .expect("an address");
                let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
                socket.set_recv_buffer_size(size).expect("a buffer size");
                let stream = socket.connect(address).await.expect("connect");
                tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
                    .await
                    .expect("the upgrade succeeds")
            }
        };
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        Socket {
            ws,
            legacy: protocol == "graphql-ws",
        }
    }

    /// Opens a `graphql-transport-ws` connection and initialises it with `token`.
    pub async fn connect(app: &TestApp, token: &str) -> Socket {
        let mut socket = Socket::open(app, "graphql-transport-ws", None).await;
        socket
            .init(json!({ "authorization": format!("Bearer {token}") }))
            .await;
        let ack = socket
            .receive()
            .await
            .expect("an answer to connection_init");
        assert_eq!(ack["type"], json!("connection_ack"), "{ack}");
        socket
    }

    /// Sends `connection_init` with `payload`.
    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
    }

    /// Starts a subscription.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({
            "id": id,
            "type": kind,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// Sends a message.
    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("the message is sent");
    }

    /// The next JSON message (pings are answered and skipped); `None` once closed.
    pub async fn receive(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message before the wait ends")?;
            match message.ok()? {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The close frame's code, reading (and dropping) messages until the connection closes.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the connection closes before the wait ends");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    /// What the server said next about subscription `id`.
    pub async fn said(&mut self, id: &str) -> Said {
        loop {
            let message = self.receive().await.expect("the connection stays open");
            if std::env::var_os("TEST_WS").is_some() {
                eprintln!("ws: {message}");
            }
            if message["id"] != json!(id) {
                continue;
            }
            match message["type"].as_str() {
                Some("next" | "data") => return Said::Next(message["payload"].clone()),
                Some("error") => return Said::Next(json!({ "errors": message["payload"] })),
                Some("complete") => return Said::Complete,
                _ => continue,
            }
        }
    }

    /// The data of the next event of subscription `id`, which must have no error.
    pub async fn next_data(&mut self, id: &str) -> Value {
        match self.said(id).await {
            Said::Next(payload) => {
                assert!(payload["errors"].is_null(), "unexpected errors: {payload}");
                payload["data"].clone()
            }
            Said::Complete => panic!("subscription {id} ended"),
        }
    }

    /// The code of the next error of subscription `id`.
    pub async fn next_error_code(&mut self, id: &str) -> String {
        match self.said(id).await {
            Said::Next(payload) => payload["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("expected an error, got {payload}"))
                .to_owned(),
            Said::Complete => panic!("subscription {id} ended without an error"),
        }
    }
}

/// The id of the newest event, to subscribe `after` it: a subscription that starts there
/// gets every later event, however long the server takes to set it up.
pub async fn newest_event(app: &TestApp) -> String {
    let data = app
        .ok("{ auditEvents(first: 1) { nodes { id } } }", json!({}))
        .await;
    data["auditEvents"]["nodes"][0]["id"]
        .as_str()
        .and_then(|id| id.strip_prefix("AuditEvent:"))
        .unwrap_or("0")
        .to_owned()
}
