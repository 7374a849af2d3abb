//! Live updates over a real WebSocket: each subscription kind and its filter, resuming
//! with `after`, the closure of a watched service, limits, authentication and revocation,
//! the legacy protocol, and two server instances on one database.
//!
//! "Nothing was sent" is shown by a marker: a later write that must be sent, and is the
//! next thing the subscriber receives.

use cmdb::domain::auth::Role;
use cmdb::http::HttpOptions;
use cmdb::settings::{EventSettings, Settings};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, IncidentBuilder, TestApp};
use crate::live::{Socket, newest_event};

const CI_CHANGED: &str = "subscription($filter: ConfigurationItemFilter, $after: ID) {
    configurationItemChanged(filter: $filter, after: $after) {
        eventId action entityType actor changedFields ciId ci { name status version } before after } }";

async fn set_status(app: &TestApp, id: &str, status: &str) {
    app.ok(
        "mutation($id: ID!, $status: LifecycleStatus!) { updateConfigurationItem(id: $id, input: { status: $status }) { version } }",
        json!({ "id": id, "status": status }),
    )
    .await;
}

fn event_id(data: &Value, field: &str) -> i64 {
    data[field]["eventId"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an eventId")
}

#[tokio::test]
async fn configuration_item_changed_sends_every_committed_write_of_matching_cis_in_order() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "servers",
            CI_CHANGED,
            json!({ "filter": { "class": "server" }, "after": newest_event(&app).await }),
        )
        .await;

    let server = app.create_ci("server", "db-host-1", json!({})).await;
    let created = socket.next_data("servers").await;
    let created = &created["configurationItemChanged"];
    assert_eq!(created["action"], json!("CREATE"));
    assert_eq!(created["entityType"], json!("CONFIGURATION_ITEM"));
    assert_eq!(created["ciId"], json!(server));
    assert_eq!(created["ci"]["name"], json!("db-host-1"));
    assert_eq!(created["actor"], json!(ADMIN));
    assert!(created["before"].is_null());

    // An application is not a server: nothing is sent for it.
    app.create_ci("application", "not-a-server", json!({}))
        .await;
    set_status(&app, &server, "UNDER_MAINTENANCE").await;
    let updated = socket.next_data("servers").await;
    let updated = &updated["configurationItemChanged"];
    assert_eq!(updated["action"], json!("UPDATE"), "{updated}");
    assert_eq!(updated["changedFields"], json!(["status"]));
    assert_eq!(updated["ci"]["status"], json!("UNDER_MAINTENANCE"));
    assert_eq!(updated["before"]["status"], json!("IN_SERVICE"));
    assert!(
        updated["eventId"]
            .as_str()
            .and_then(|id| id.parse::<i64>().ok())
            > created["eventId"]
                .as_str()
                .and_then(|id| id.parse::<i64>().ok()),
        "event ids grow"
    );

    app.ok(
        "mutation($id: ID!) { retireConfigurationItem(id: $id) { status } }",
        json!({ "id": server }),
    )
    .await;
    let retired = socket.next_data("servers").await;
    assert_eq!(
        retired["configurationItemChanged"]["action"],
        json!("RETIRE")
    );
    app.ok(
        "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
        json!({ "id": server }),
    )
    .await;
    let deleted = socket.next_data("servers").await;
    let deleted = &deleted["configurationItemChanged"];
    assert_eq!(deleted["action"], json!("DELETE"));
    assert!(deleted["ci"].is_null(), "a deleted CI is null: {deleted}");
    assert_eq!(deleted["before"]["name"], json!("db-host-1"));
}

#[tokio::test]
async fn a_subscriber_resumes_after_its_last_event_with_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "all",
            CI_CHANGED,
            json!({ "after": newest_event(&app).await }),
        )
        .await;
    app.create_ci("server", "first", json!({})).await;
    let first = socket.next_data("all").await;
    let last_seen = event_id(&first, "configurationItemChanged");
    drop(socket);

    // While the subscriber is away: three writes.
    for name in ["second", "third", "fourth"] {
        app.create_ci("server", name, json!({})).await;
    }
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe("all", CI_CHANGED, json!({ "after": last_seen.to_string() }))
        .await;
    let mut names = Vec::new();
    let mut ids = vec![last_seen];
    for _ in 0..3 {
        let data = socket.next_data("all").await;
        names.push(data["configurationItemChanged"]["ci"]["name"].clone());
        ids.push(event_id(&data, "configurationItemChanged"));
    }
    assert_eq!(names, [json!("second"), json!("third"), json!("fourth")]);
    // Then live, with nothing repeated at the seam.
    app.create_ci("server", "fifth", json!({})).await;
    let live = socket.next_data("all").await;
    assert_eq!(
        live["configurationItemChanged"]["ci"]["name"],
        json!("fifth")
    );
    ids.push(event_id(&live, "configurationItemChanged"));
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    // A resume point that does not exist yet is refused.
    socket
        .subscribe("future", CI_CHANGED, json!({ "after": "999999999" }))
        .await;
    assert_eq!(socket.next_error_code("future").await, "VALIDATION");
}

#[tokio::test]
async fn relationship_changed_is_narrowed_to_a_ci() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let app_ci = app.create_ci("application", "shop", json!({})).await;
    let db = app.create_ci("database", "shop-db", json!({})).await;
    let other = app.create_ci("application", "other", json!({})).await;
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "rel",
            "subscription($ci: ID, $after: ID) { relationshipChanged(ciId: $ci, after: $after) { eventId action relationshipId relationship { source { name } target { name } type { name } } } }",
            json!({ "ci": db, "after": newest_event(&app).await }),
        )
        .await;
    app.relate(&[(&other, "depends_on", &app_ci)]).await;
    let ids = app.relate(&[(&app_ci, "depends_on", &db)]).await;
    let created = socket.next_data("rel").await;
    let created = &created["relationshipChanged"];
    assert_eq!(
        created["action"],
        json!("CREATE"),
        "the unrelated one is not sent"
    );
    assert_eq!(created["relationship"]["source"]["name"], json!("shop"));
    assert_eq!(created["relationship"]["target"]["name"], json!("shop-db"));
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": ids }),
    )
    .await;
    let deleted = socket.next_data("rel").await;
    assert_eq!(deleted["relationshipChanged"]["action"], json!("DELETE"));
    assert_eq!(
        deleted["relationshipChanged"]["relationshipId"],
        json!(ids[0])
    );
}

#[tokio::test]
async fn incident_and_change_subscriptions_follow_their_filters() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let ci = app.create_ci("server", "web-1", json!({})).await;
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "major",
            "subscription($after: ID) { incidentChanged(filter: { major: true }, after: $after) { eventId action incident { title state } } }",
            json!({ "after": newest_event(&app).await }),
        )
        .await;
    socket
        .subscribe(
            "changes",
            "subscription($after: ID) { changeChanged(after: $after) { eventId action change { title state } } }",
            json!({ "after": newest_event(&app).await }),
        )
        .await;
    IncidentBuilder::new("minor one")
        .on(&[&ci])
        .create(&app)
        .await;
    let major = IncidentBuilder::new("major one")
        .on(&[&ci])
        .with("major", json!(true))
        .create(&app)
        .await;
    let opened = socket.next_data("major").await;
    assert_eq!(
        opened["incidentChanged"]["incident"]["title"],
        json!("major one")
    );
    assert_eq!(opened["incidentChanged"]["action"], json!("CREATE"));
    let id = major["id"].as_str().expect("an id");
    app.move_incident(id, "IN_PROGRESS", None, None)
        .await
        .data();
    let moved = socket.next_data("major").await;
    assert_eq!(moved["incidentChanged"]["action"], json!("TRANSITION"));
    assert_eq!(
        moved["incidentChanged"]["incident"]["state"],
        json!("IN_PROGRESS")
    );

    crate::helpers::ChangeBuilder::new("patch web-1")
        .on(&[&ci])
        .create(&app)
        .await;
    let change = socket.next_data("changes").await;
    assert_eq!(
        change["changeChanged"]["change"]["title"],
        json!("patch web-1")
    );
}

const IMPACT: &str = "subscription($service: ID!, $after: ID) { serviceImpactChanged(serviceId: $service, after: $after) {
    eventId cause action changedCiId changedCi { name } path before after service { name } } }";

#[tokio::test]
async fn service_impact_changed_follows_the_dependency_closure_as_it_widens_and_narrows() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let shop = app.create_ci("application", "shop", json!({})).await;
    let db = app.create_ci("database", "shop-db", json!({})).await;
    let host = app.create_ci("server", "db-host", json!({})).await;
    let stranger = app.create_ci("server", "stranger", json!({})).await;
    app.relate(&[(&shop, "depends_on", &db)]).await;
    let service = app.create_service("webshop", &[&shop]).await;
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "impact",
            IMPACT,
            json!({ "service": service, "after": newest_event(&app).await }),
        )
        .await;

    // Outside the closure: nothing. Inside: the path to the service and the state change.
    set_status(&app, &stranger, "UNDER_MAINTENANCE").await;
    set_status(&app, &db, "UNDER_MAINTENANCE").await;
    let down = socket.next_data("impact").await;
    let down = &down["serviceImpactChanged"];
    assert_eq!(down["changedCi"]["name"], json!("shop-db"), "{down}");
    assert_eq!(down["path"], json!([db, shop]));
    assert_eq!(
        (down["before"].clone(), down["after"].clone()),
        (json!("UP"), json!("DOWN"))
    );
    assert_eq!(down["service"]["name"], json!("webshop"));
    assert_eq!(down["cause"], json!("CONFIGURATION_ITEM"));
    set_status(&app, &db, "IN_SERVICE").await;
    let up = socket.next_data("impact").await;
    assert_eq!(up["serviceImpactChanged"]["after"], json!("UP"));

    // A relationship into the closure widens it: the host is now needed.
    let link = app.relate(&[(&db, "runs_on", &host)]).await;
    let widened = socket.next_data("impact").await;
    assert_eq!(
        widened["serviceImpactChanged"]["cause"],
        json!("RELATIONSHIP")
    );
    set_status(&app, &host, "UNDER_MAINTENANCE").await;
    let host_down = socket.next_data("impact").await;
    let host_down = &host_down["serviceImpactChanged"];
    assert_eq!(host_down["changedCi"]["name"], json!("db-host"));
    assert_eq!(host_down["path"], json!([host, db, shop]));
    assert_eq!(host_down["after"], json!("DOWN"));

    // Removing it narrows the closure again: the host no longer matters.
    app.ok(
        "mutation($ids: [ID!]!) { deleteRelationships(ids: $ids) }",
        json!({ "ids": link }),
    )
    .await;
    let narrowed = socket.next_data("impact").await;
    assert_eq!(narrowed["serviceImpactChanged"]["after"], json!("UP"));
    set_status(&app, &host, "IN_SERVICE").await;
    // An incident opened on a CI of the closure is a failure there.
    IncidentBuilder::new("db slow")
        .on(&[&db])
        .create(&app)
        .await;
    let incident = socket.next_data("impact").await;
    let incident = &incident["serviceImpactChanged"];
    assert_eq!(
        incident["cause"],
        json!("INCIDENT"),
        "the host's change was not sent: {incident}"
    );
    assert_eq!(incident["after"], json!("DOWN"));
}

#[tokio::test]
async fn an_unchanged_discovery_reload_sends_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let batch = json!({ "input": { "source": "scanner", "items": [
        { "class": "server", "name": "scanned-1", "externalId": "s-1" },
        { "class": "server", "name": "scanned-2", "externalId": "s-2" },
    ] } });
    let upsert = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { created unchanged } }";
    let mut socket = Socket::connect(&app, &token).await;
    socket
        .subscribe(
            "d",
            CI_CHANGED,
            json!({ "after": newest_event(&app).await }),
        )
        .await;
    let first = app.ok(upsert, batch.clone()).await;
    assert_eq!(first["upsertConfigurationItems"]["created"], json!(2));
    for _ in 0..2 {
        let data = socket.next_data("d").await;
        assert_eq!(data["configurationItemChanged"]["action"], json!("CREATE"));
    }
    let again = app.ok(upsert, batch).await;
    assert_eq!(again["upsertConfigurationItems"]["unchanged"], json!(2));
    app.create_ci("server", "marker", json!({})).await;
    let next = socket.next_data("d").await;
    assert_eq!(
        next["configurationItemChanged"]["ci"]["name"],
        json!("marker"),
        "the reload sent nothing"
    );
}

#[tokio::test]
async fn subscriptions_are_limited_and_a_burst_larger_than_the_buffer_loses_nothing() {
    let app = TestApp::spawn_with_settings(
        Settings {
            events: EventSettings {
                subscriptions_per_connection: 2,
                subscriber_buffer: 16,
                ..EventSettings::default()
            },
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    let token = app.token(ADMIN, Role::Admin).await;
    let mut socket = Socket::connect(&app, &token).await;
    // One stream per subscription: two root fields are refused, whatever their aliases.
    socket
        .subscribe(
            "two",
            "subscription { a: configurationItemChanged { eventId } b: configurationItemChanged { eventId } }",
            json!({}),
        )
        .await;
    assert_eq!(socket.next_error_code("two").await, "VALIDATION");
    socket.subscribe("a", CI_CHANGED, json!({})).await;
    socket.subscribe("b", CI_CHANGED, json!({})).await;
    socket.subscribe("c", CI_CHANGED, json!({})).await;
    assert_eq!(socket.next_error_code("c").await, "LIMIT_EXCEEDED");
    // Once a write made now reaches it, the subscription is live.
    app.create_ci("server", "marker", json!({})).await;
    let marker = socket.next_data("a").await;
    assert_eq!(
        marker["configurationItemChanged"]["ci"]["name"],
        json!("marker")
    );

    // One commit of 40 events is broadcast at once, more than the buffer of 16: the
    // subscriber reads what it missed from the log, and gets all of it, in order.
    let items: Vec<Value> = (0..40)
        .map(|i| json!({ "class": "server", "name": format!("bulk-{i:02}"), "externalId": format!("b{i}") }))
        .collect();
    app.ok(
        "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { created } }",
        json!({ "input": { "source": "bulk-loader", "items": items } }),
    )
    .await;
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..40 {
        let data = socket.next_data("a").await;
        names.push(
            data["configurationItemChanged"]["ci"]["name"]
                .as_str()
                .expect("a name")
                .to_owned(),
        );
        ids.push(event_id(&data, "configurationItemChanged"));
    }
    names.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("bulk-{i:02}")).collect();
    assert_eq!(names, expected);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in commit order: {ids:?}"
    );
}

#[tokio::test]
async fn subscribing_needs_a_token_and_a_revoked_tokens_subscriptions_end() {
    let app = TestApp::spawn().await;
    // No token: the connection is refused at connection_init.
    let mut anonymous = Socket::open(&app, "graphql-transport-ws", None).await;
    anonymous.init(json!({})).await;
    assert_eq!(anonymous.close_code().await, Some(4403));
    // An unknown token too.
    let mut unknown = Socket::open(&app, "graphql-transport-ws", None).await;
    unknown
        .init(json!({ "authorization": "Bearer not-a-token" }))
        .await;
    assert_eq!(unknown.close_code().await, Some(4403));

    // A viewer may subscribe (through the upgrade request's header this time).
    let viewer = app.token("watcher", Role::Viewer).await;
    let mut socket = Socket::open(&app, "graphql-transport-ws", Some(&viewer)).await;
    socket.init(json!({})).await;
    assert_eq!(
        socket.receive().await.expect("an ack")["type"],
        json!("connection_ack")
    );
    socket.subscribe("s", CI_CHANGED, json!({})).await;
    // ...but a mutation over the same connection is decided as over HTTP.
    socket
        .subscribe(
            "m",
            "mutation { createApiToken(input: { name: \"x\", role: ADMIN }) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(socket.next_error_code("m").await, "FORBIDDEN");
    app.ok(
        "mutation { revokeApiToken(name: \"watcher\") { revokedAt } }",
        json!({}),
    )
    .await;
    assert_eq!(socket.next_error_code("s").await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_is_spoken_too() {
    let app = TestApp::spawn().await;
    let token = app.token(ADMIN, Role::Admin).await;
    let mut socket = Socket::open(&app, "graphql-ws", None).await;
    socket
        .init(json!({ "authorization": format!("Bearer {token}") }))
        .await;
    assert_eq!(
        socket.receive().await.expect("an ack")["type"],
        json!("connection_ack")
    );
    socket
        .subscribe(
            "1",
            CI_CHANGED,
            json!({ "after": newest_event(&app).await }),
        )
        .await;
    app.create_ci("server", "legacy", json!({})).await;
    let data = socket.next_data("1").await;
    assert_eq!(
        data["configurationItemChanged"]["ci"]["name"],
        json!("legacy")
    );
}

#[tokio::test]
async fn a_write_through_one_instance_reaches_a_subscriber_of_another() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let token = a.token(ADMIN, Role::Admin).await;
    let mut socket = Socket::connect(&b, &token).await;
    socket
        .subscribe("x", CI_CHANGED, json!({ "after": newest_event(&a).await }))
        .await;
    let id = a.create_ci("server", "written-on-a", json!({})).await;
    let data = socket.next_data("x").await;
    assert_eq!(data["configurationItemChanged"]["ciId"], json!(id));
}

#[tokio::test]
async fn a_silent_connection_is_closed_with_4408() {
    let app = TestApp::spawn_with_settings(
        Settings {
            events: EventSettings {
                ping_interval: std::time::Duration::from_millis(50),
                idle_timeout: std::time::Duration::from_millis(200),
                ..EventSettings::default()
            },
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    // A raw client that never reads, so never answers a ping.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let request = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\nAuthorization: Bearer {}\r\n\r\n",
        app.token(ADMIN, Role::Admin).await
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the upgrade");
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(crate::live::WAIT, stream.read(&mut buffer))
            .await
            .expect("the server closes before the wait ends")
            .expect("read");
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    // A close frame (0x88) carrying 4408 (0x11 0x38).
    let close = received
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2] == 0x11 && w[3] == 0x38);
    assert!(close, "a close frame with 4408 arrived: {received:02x?}");
}
