//! Prints what happens to a service as it happens: every `serviceImpactChanged` event,
//! with the CI that changed, the path from it to the service and the service's state
//! before and after.
//!
//! ```text
//! cargo run --example watch_service -- http://127.0.0.1:8080 "$CMDB_TOKEN" webshop
//! ```
//!
//! The service is named by id or by name. When the connection drops, the example connects
//! again and resumes after the last event it printed, so it neither misses nor repeats one.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;

const SUBSCRIPTION: &str = "subscription($service: ID!, $after: ID) {
  serviceImpactChanged(serviceId: $service, after: $after) {
    eventId at actor cause action before after path
    changedCi { name ciClass { name } status }
    service { name }
  }
}";

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(token), Some(service)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: watch_service <server URL> <API token> <service id or name>");
        std::process::exit(2);
    };
    let service_id = resolve_service(&server, &token, &service).await?;
    let mut after: Option<String> = None;
    loop {
        match watch(&server, &token, &service_id, &mut after).await {
            Ok(()) => eprintln!("the server ended the subscription; subscribing again"),
            Err(err) => eprintln!("connection lost ({err}); connecting again"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The id of the service named `service` (an id is returned as it is).
async fn resolve_service(server: &str, token: &str, service: &str) -> Result<String, Failure> {
    if uuid::Uuid::parse_str(service).is_ok() {
        return Ok(service.to_owned());
    }
    let response: Value = cmdb::http_client()
        .post(format!("{server}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "query($name: String!) { services(filter: { name: { equals: $name } }, first: 1) { nodes { id } } }",
            "variables": { "name": service },
        }))
        .send()
        .await?
        .json()
        .await?;
    response["data"]["services"]["nodes"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no service named `{service}`: {response}").into())
}

/// Subscribes (after `after`, when set) and prints events until the connection ends.
async fn watch(
    server: &str,
    token: &str,
    service: &str,
    after: &mut Option<String>,
) -> Result<(), Failure> {
    let url = format!("{}/graphql/ws", server.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let send = |message: Value| Message::Text(message.to_string().into());
    socket
        .send(send(json!({
            "type": "connection_init",
            "payload": { "authorization": format!("Bearer {token}") },
        })))
        .await?;
    socket
        .send(send(json!({
            "id": "watch",
            "type": "subscribe",
            "payload": { "query": SUBSCRIPTION, "variables": { "service": service, "after": after } },
        })))
        .await?;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("connection_ack") => eprintln!("watching {service}"),
            Some("next") => {
                let payload = &message["payload"];
                if let Some(errors) = payload["errors"].as_array() {
                    eprintln!("the server says: {}", errors[0]["message"]);
                    continue;
                }
                let event = &payload["data"]["serviceImpactChanged"];
                print_event(event);
                *after = event["eventId"].as_str().map(str::to_owned);
            }
            Some("complete") => return Ok(()),
            _ => {}
        }
    }
    Err("the connection closed".into())
}

fn print_event(event: &Value) {
    let ci = &event["changedCi"];
    println!(
        "{at}  {service}: {before} -> {after}  ({cause} {action} of {ci} [{class}, {status}] by {actor}; path: {path} hops)",
        at = event["at"].as_str().unwrap_or_default(),
        service = event["service"]["name"].as_str().unwrap_or("?"),
        before = event["before"].as_str().unwrap_or("?"),
        after = event["after"].as_str().unwrap_or("?"),
        cause = event["cause"].as_str().unwrap_or("?"),
        action = event["action"].as_str().unwrap_or("?"),
        ci = ci["name"].as_str().unwrap_or("(deleted)"),
        class = ci["ciClass"]["name"].as_str().unwrap_or("?"),
        status = ci["status"].as_str().unwrap_or("?"),
        actor = event["actor"].as_str().unwrap_or("?"),
        path = event["path"]
            .as_array()
            .map_or(0, |p| p.len().saturating_sub(1)),
    );
}
