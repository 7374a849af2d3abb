//! Webhooks against a real HTTP endpoint run by the test: signed deliveries, in order,
//! retried after failures, given up on visibly, surviving the instance that committed the
//! events, and never pointed at internal addresses unless allowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use cmdb::domain::webhook::UrlPolicy;
use cmdb::domain::webhook::delivery::{DeliverySettings, signature};
use cmdb::http::HttpOptions;
use cmdb::settings::Settings;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::TestApp;
use crate::live::WAIT;

const SECRET: &str = "a-secret-of-enough-length";

/// One request the endpoint received.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: StatusCode,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An endpoint answering with `answer(body, how many it received before)`.
async fn endpoint(
    answer: impl Fn(&Value, usize) -> StatusCode + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(0usize));
    let answer = Arc::new(answer);
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let (sender, seen, answer) = (sender.clone(), seen.clone(), answer.clone());
        async move {
            let before = {
                let mut seen = seen.lock().expect("count");
                *seen += 1;
                *seen - 1
            };
            let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
            let answered = answer(&parsed, before);
            let _ = sender.send(Received {
                headers,
                body: body.to_vec(),
                answered,
            });
            answered
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}/hook"), receiver)
}

fn settings(max_attempts: u32, deliver: bool) -> Settings {
    Settings {
        webhooks: DeliverySettings {
            deliver,
            policy: UrlPolicy {
                allowed_hosts: vec!["127.0.0.1".into()],
            },
            max_attempts,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            poll: Duration::from_millis(100),
            ..DeliverySettings::default()
        },
        ..Settings::default()
    }
}

async fn create_webhook(app: &TestApp, url: &str, filter: Value) -> String {
    let data = app
        .ok(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id name url events enabled } }",
            json!({ "input": {
                "name": "chat", "url": url, "events": ["CONFIGURATION_ITEM_CHANGED"],
                "filter": filter, "secret": SECRET,
            } }),
        )
        .await;
    assert_eq!(
        data["createWebhook"]["events"],
        json!(["CONFIGURATION_ITEM_CHANGED"])
    );
    data["createWebhook"]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

async fn next(receiver: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, receiver.recv())
        .await
        .expect("a delivery before the wait ends")
        .expect("the endpoint runs")
}

/// The deliveries of a webhook, newest first, once those before the newest are settled: a
/// last event (`sentinel`) is sent only after every earlier delivery was recorded.
async fn settled_deliveries(
    app: &TestApp,
    webhook: &str,
    received: &mut mpsc::UnboundedReceiver<Received>,
) -> Vec<Value> {
    app.create_ci("server", "sentinel", json!({})).await;
    loop {
        let body = next(received).await.json();
        if body["after"]["name"] == json!("sentinel") {
            break;
        }
    }
    let mut listed = deliveries(app, webhook).await;
    listed.remove(0);
    listed
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let data = app
        .ok(
            "query($id: ID!) { webhookDeliveries(webhookId: $id, first: 50) { totalCount nodes { eventId status attempts responseStatus lastError } } }",
            json!({ "id": webhook }),
        )
        .await;
    data["webhookDeliveries"]["nodes"]
        .as_array()
        .expect("a list")
        .clone()
}

#[tokio::test]
async fn deliveries_are_signed_sent_in_order_and_retried_until_they_succeed() {
    let app = TestApp::spawn_with_settings(settings(5, true), HttpOptions::default()).await;
    // The endpoint fails its first two requests.
    let (url, mut received) = endpoint(|_, before| {
        if before < 2 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        }
    })
    .await;
    let webhook = create_webhook(&app, &url, json!({ "class": "server" })).await;
    for name in ["s1", "s2"] {
        app.create_ci("server", name, json!({})).await;
    }
    app.create_ci("application", "not-a-server", json!({}))
        .await;
    app.create_ci("server", "s3", json!({})).await;

    let mut delivered = Vec::new();
    let mut attempts = Vec::new();
    while delivered.len() < 3 {
        let request = next(&mut received).await;
        let body = request.json();
        let name = body["after"]["name"].as_str().expect("a name").to_owned();
        assert_eq!(
            request.headers["x-cmdb-signature"].to_str().expect("text"),
            signature(SECRET, &request.body),
            "the signature is the HMAC-SHA256 of the body"
        );
        assert_eq!(
            request.headers["x-cmdb-event-id"].to_str().expect("text"),
            body["eventId"].as_str().expect("an id")
        );
        assert_eq!(body["entityType"], json!("CONFIGURATION_ITEM"));
        assert_eq!(body["action"], json!("CREATE"));
        attempts.push(name.clone());
        if request.answered.is_success() {
            delivered.push(name);
        }
    }
    assert_eq!(
        delivered,
        ["s1", "s2", "s3"],
        "in commit order, the application left out"
    );
    assert_eq!(
        attempts,
        ["s1", "s1", "s1", "s2", "s3"],
        "later events wait behind a retry"
    );
    let listed = settled_deliveries(&app, &webhook, &mut received).await;
    let statuses: Vec<(Value, Value)> = listed
        .iter()
        .map(|d| (d["status"].clone(), d["attempts"].clone()))
        .collect();
    assert_eq!(
        statuses,
        [
            (json!("DELIVERED"), json!(1)),
            (json!("DELIVERED"), json!(1)),
            (json!("DELIVERED"), json!(3)),
        ],
        "newest first"
    );
    // The secret is never readable back.
    let response = app.graphql("{ webhooks { secret } }", json!({})).await;
    assert_eq!(response.code(), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_marked_failed_and_the_next_goes_on() {
    let app = TestApp::spawn_with_settings(settings(2, true), HttpOptions::default()).await;
    let (url, mut received) = endpoint(|body, _| {
        if body["after"]["name"] == json!("poison") {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::OK
        }
    })
    .await;
    let webhook = create_webhook(&app, &url, json!(null)).await;
    app.create_ci("server", "poison", json!({})).await;
    app.create_ci("server", "fine", json!({})).await;
    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("fine") {
        let body = next(&mut received).await.json();
        names.push(body["after"]["name"].as_str().expect("a name").to_owned());
    }
    assert_eq!(names, ["poison", "poison", "fine"]);
    let listed = settled_deliveries(&app, &webhook, &mut received).await;
    assert_eq!(listed[1]["status"], json!("FAILED"));
    assert_eq!(listed[1]["attempts"], json!(2));
    assert_eq!(listed[1]["responseStatus"], json!(502));
    assert!(
        listed[1]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("502"))
    );
    assert_eq!(listed[0]["status"], json!("DELIVERED"));
}

#[tokio::test]
async fn events_committed_while_no_instance_delivers_are_delivered_by_the_next_one() {
    // The first instance commits but does not deliver (as if it died right after commit).
    let first = TestApp::spawn_with_settings(settings(5, false), HttpOptions::default()).await;
    let (url, mut received) = endpoint(|_, _| StatusCode::OK).await;
    create_webhook(&first, &url, json!(null)).await;
    first
        .create_ci("server", "kept-in-the-outbox", json!({}))
        .await;
    // Another instance comes up on the same database and delivers it.
    let _second = first.another_instance_with(settings(5, true)).await;
    let body = next(&mut received).await.json();
    assert_eq!(body["after"]["name"], json!("kept-in-the-outbox"));
}

#[tokio::test]
async fn webhooks_are_for_admins_and_never_point_at_internal_addresses_unless_allowed() {
    let app = TestApp::spawn().await;
    let create = "mutation($url: String!) { createWebhook(input: { name: \"x\", url: $url, events: [INCIDENT_CHANGED], secret: \"0123456789abcdef\" }) { id } }";
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "file:///etc/passwd",
    ] {
        let response = app.graphql(create, json!({ "url": url })).await;
        assert_eq!(response.code(), "VALIDATION", "{url}");
    }
    let short = app
        .graphql(
            "mutation { createWebhook(input: { name: \"x\", url: \"http://10.0.0.1/\", events: [INCIDENT_CHANGED], secret: \"short\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(short.code(), "VALIDATION");
    let editor = app.token("editor", cmdb::domain::auth::Role::Editor).await;
    let response = app
        .graphql_with(Some(&editor), "{ webhooks { id } }", json!({}))
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
}
