//! Incidents: numbering, priority matrix, derived services, customers and the lifecycle.

use serde_json::{Value, json};

use crate::helpers::{IncidentBuilder, TestApp};

/// A small estate: `web` depends on `app`, which depends on `db`. Payroll (critical) is
/// made of `app`, Intranet (low) of `web`. Finance consumes Payroll under `Gold`, whose
/// P2 targets are 30 minutes to respond and 8 hours to resolve.
pub struct Estate {
    pub db: String,
    pub app: String,
    pub web: String,
    pub payroll: String,
    pub intranet: String,
    pub finance: String,
}

impl Estate {
    pub async fn build(app: &TestApp) -> Estate {
        let db = app.create_ci("database", "db-1", json!({})).await;
        let app_ci = app.create_ci("application", "app-1", json!({})).await;
        let web = app.create_ci("application", "web-1", json!({})).await;
        app.relate(&[(&app_ci, "depends_on", &db), (&web, "depends_on", &app_ci)])
            .await;
        let payroll = app
            .create_service_with("Payroll", "CRITICAL", &[&app_ci])
            .await;
        let intranet = app.create_service_with("Intranet", "LOW", &[&web]).await;
        let finance = app
            .ok(
                "mutation { createCustomer(input: { name: \"Finance\", contactName: \"Ada\", contactEmail: \"ada@example.com\" }) { id } }",
                json!({}),
            )
            .await["createCustomer"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        app.ok(
            "mutation($c: ID!, $s: ID!) { addCustomerService(customerId: $c, serviceId: $s, agreement: \"Gold\") { version } }",
            json!({ "c": finance, "s": payroll }),
        )
        .await;
        app.ok(
            "mutation($s: ID!) { setServiceLevel(serviceId: $s, input: { availabilityTarget: 99.0, targets: [
                { priority: 1, responseMinutes: 15, resolutionMinutes: 240 },
                { priority: 2, responseMinutes: 30, resolutionMinutes: 480 } ] }) { version } }",
            json!({ "s": payroll }),
        )
        .await;
        Estate {
            db,
            app: app_ci,
            web,
            payroll,
            intranet,
            finance,
        }
    }
}

const DETAILS: &str = "query($id: ID!) { incident(id: $id) {
    number priority impact suggestedImpact
    affectedCis { name }
    affectedServices { service { name } origin state }
    affectedCustomers { customer { name contactEmail } service { name } agreement
        responseTargetMinutes resolutionTargetMinutes }
} }";

/// The affected services of an incident, by name.
fn sorted_services(incident: &Value) -> Vec<Value> {
    let mut services = incident["affectedServices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    services.sort_by_key(|s| s["service"]["name"].to_string());
    services
}

async fn details(app: &TestApp, id: &Value) -> Value {
    app.ok(DETAILS, json!({ "id": id })).await["incident"].clone()
}

#[tokio::test]
async fn an_incident_on_a_database_derives_its_services_impact_priority_and_customers() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let incident = IncidentBuilder::new("db-1 refuses connections")
        .on(&[&estate.db])
        .create(&app)
        .await;
    assert_eq!(incident["number"], json!("INC-000001"));
    assert_eq!(incident["state"], json!("NEW"));
    // Payroll is critical and down: the suggested impact is high, and with no impact given
    // it is the impact; high x medium (the default urgency) is P2.
    assert_eq!(incident["suggestedImpact"], json!("HIGH"));
    assert_eq!(incident["impact"], json!("HIGH"));
    assert_eq!(
        (
            incident["priority"].clone(),
            incident["priorityLabel"].clone()
        ),
        (json!(2), json!("P2"))
    );

    let read = details(&app, &incident["id"]).await;
    assert_eq!(read["affectedCis"], json!([{ "name": "db-1" }]));
    assert_eq!(
        sorted_services(&read),
        vec![
            json!({ "service": { "name": "Intranet" }, "origin": "ANALYSIS", "state": "DOWN" }),
            json!({ "service": { "name": "Payroll" }, "origin": "ANALYSIS", "state": "DOWN" }),
        ]
    );
    assert_eq!(
        read["affectedCustomers"],
        json!([{ "customer": { "name": "Finance", "contactEmail": "ada@example.com" },
                 "service": { "name": "Payroll" }, "agreement": "Gold",
                 "responseTargetMinutes": 30, "resolutionTargetMinutes": 480 }]),
        "the change manager sees Finance's P2 resolution target without a second query"
    );

    let second = IncidentBuilder::new("web-1 slow")
        .on(&[&estate.web])
        .with("impact", json!("LOW"))
        .with("urgency", json!("LOW"))
        .create(&app)
        .await;
    assert_eq!(
        second["number"],
        json!("INC-000002"),
        "numbers are sequential"
    );
    assert_eq!(
        second["suggestedImpact"],
        json!("LOW"),
        "Intranet is a low service"
    );
    assert_eq!(second["priority"], json!(5));

    let by_number = app
        .ok(
            "{ incidentByNumber(number: \"INC-000002\") { title } }",
            json!({}),
        )
        .await;
    assert_eq!(by_number["incidentByNumber"]["title"], json!("web-1 slow"));
}

#[tokio::test]
async fn the_priority_matrix_is_data() {
    let app = TestApp::spawn().await;
    let matrix = app
        .ok("{ priorityMatrix { impact urgency priority } }", json!({}))
        .await["priorityMatrix"]
        .clone();
    let cells = matrix.as_array().expect("a list");
    assert_eq!(cells.len(), 9);
    let cell = |impact: &str, urgency: &str| {
        cells
            .iter()
            .find(|c| c["impact"] == json!(impact) && c["urgency"] == json!(urgency))
            .map(|c| c["priority"].clone())
    };
    assert_eq!(cell("HIGH", "HIGH"), Some(json!(1)));
    assert_eq!(cell("HIGH", "MEDIUM"), Some(json!(2)));
    assert_eq!(cell("MEDIUM", "MEDIUM"), Some(json!(3)));
    assert_eq!(cell("LOW", "MEDIUM"), Some(json!(4)));
    assert_eq!(cell("LOW", "LOW"), Some(json!(5)));

    let low = |title: &str| {
        IncidentBuilder::new(title)
            .with("impact", json!("LOW"))
            .with("urgency", json!("LOW"))
    };
    let before = low("printer jam").create(&app).await;
    assert_eq!(before["priority"], json!(5));
    let set = app
        .ok(
            "mutation { setPriorityRule(impact: LOW, urgency: LOW, priority: 4) { priority } }",
            json!({}),
        )
        .await;
    assert_eq!(set["setPriorityRule"]["priority"], json!(4));
    assert_eq!(low("toner low").create(&app).await["priority"], json!(4));

    let response = app
        .graphql(
            "mutation { setPriorityRule(impact: LOW, urgency: LOW, priority: 9) { priority } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");

    // Raising the urgency reprioritises by the matrix.
    let raised = app
        .ok(
            "mutation($id: ID!) { updateIncident(id: $id, input: { urgency: HIGH }) { priority version } }",
            json!({ "id": before["id"] }),
        )
        .await;
    assert_eq!(
        raised["updateIncident"],
        json!({ "priority": 3, "version": 2 })
    );
}

#[tokio::test]
async fn services_named_by_hand_stay_when_the_cis_change() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let incident = IncidentBuilder::new("payroll batch late")
        .on(&[&estate.app])
        .with(
            "services",
            json!([{ "serviceId": estate.intranet, "state": "DEGRADED" }]),
        )
        .create(&app)
        .await;
    let read = details(&app, &incident["id"]).await;
    assert_eq!(
        sorted_services(&read),
        vec![
            json!({ "service": { "name": "Intranet" }, "origin": "MANUAL", "state": "DOWN" }),
            json!({ "service": { "name": "Payroll" }, "origin": "ANALYSIS", "state": "DOWN" }),
        ],
        "Intranet is named by hand, and analysis finds it down too: the worse state wins"
    );

    let updated = app
        .ok(
            "mutation($id: ID!) { updateIncident(id: $id, input: { ciIds: [] }) { version affectedServices { service { name } origin state } } }",
            json!({ "id": incident["id"] }),
        )
        .await;
    assert_eq!(
        updated["updateIncident"]["affectedServices"],
        json!([{ "service": { "name": "Intranet" }, "origin": "MANUAL", "state": "DOWN" }]),
        "derived services go with their CIs; hand-named ones stay"
    );

    let missing = uuid::Uuid::now_v7().to_string();
    let response = IncidentBuilder::new("ghost")
        .on(&[&missing])
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    let count = app.ok("{ incidents { totalCount } }", json!({})).await;
    assert_eq!(
        count["incidents"]["totalCount"],
        json!(1),
        "a refused incident leaves nothing"
    );
}

#[tokio::test]
async fn the_lifecycle_allows_its_transitions_and_refuses_the_others() {
    let app = TestApp::spawn().await;
    let incident = IncidentBuilder::new("mail queue stuck")
        .with("openedAt", json!("2026-01-10T08:00:00Z"))
        .create(&app)
        .await;
    let id = incident["id"].as_str().expect("an id").to_owned();

    for (to, refused) in [("RESOLVED", "NEW"), ("CLOSED", "NEW"), ("ON_HOLD", "NEW")] {
        let response = app.move_incident(&id, to, None, Some("notes")).await;
        assert_eq!(response.code(), "INVALID_TRANSITION", "{refused} -> {to}");
    }

    let started = app
        .move_incident(&id, "IN_PROGRESS", Some("2026-01-10T08:05:00Z"), None)
        .await;
    let started = &started.data()["transitionIncident"];
    assert_eq!(started["state"], json!("IN_PROGRESS"));
    assert_eq!(
        started["acknowledgedAt"],
        json!("2026-01-10T08:05:00+00:00")
    );
    assert_eq!(
        started["version"],
        json!(2),
        "the refused moves changed nothing"
    );

    let hold = app.move_incident(&id, "ON_HOLD", None, None).await;
    assert_eq!(hold.data()["transitionIncident"]["state"], json!("ON_HOLD"));
    let back = app.move_incident(&id, "IN_PROGRESS", None, None).await;
    assert_eq!(
        back.data()["transitionIncident"]["acknowledgedAt"],
        json!("2026-01-10T08:05:00+00:00"),
        "the response time is the first start of work"
    );

    let without_notes = app.move_incident(&id, "RESOLVED", None, None).await;
    assert_eq!(without_notes.code(), "VALIDATION");
    let early = app
        .move_incident(
            &id,
            "RESOLVED",
            Some("2026-01-10T07:00:00Z"),
            Some("restarted"),
        )
        .await;
    assert_eq!(early.code(), "VALIDATION", "no moment before the last one");

    let resolved = app
        .move_incident(&id, "RESOLVED", None, Some("restarted the queue"))
        .await;
    let resolved = &resolved.data()["transitionIncident"];
    assert_eq!(resolved["state"], json!("RESOLVED"));
    assert!(resolved["resolvedAt"].is_string());

    let reopened = app.move_incident(&id, "IN_PROGRESS", None, None).await;
    let reopened = &reopened.data()["transitionIncident"];
    assert_eq!(reopened["state"], json!("IN_PROGRESS"));
    assert_eq!(
        reopened["resolvedAt"],
        Value::Null,
        "reopening clears the resolution"
    );

    app.move_incident(&id, "RESOLVED", None, None).await.data();
    let closed = app.move_incident(&id, "CLOSED", None, None).await;
    let closed = &closed.data()["transitionIncident"];
    assert_eq!(closed["state"], json!("CLOSED"));
    assert_eq!(closed["resolutionNotes"], json!("restarted the queue"));

    for to in ["IN_PROGRESS", "RESOLVED", "NEW"] {
        let response = app.move_incident(&id, to, None, Some("again")).await;
        assert_eq!(response.code(), "INVALID_TRANSITION", "CLOSED -> {to}");
    }
    let history = app
        .ok(
            "query($id: ID!) { incident(id: $id) { version history { totalCount nodes { action } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(history["incident"]["version"], json!(8));
    assert_eq!(
        history["incident"]["history"]["totalCount"],
        json!(8),
        "every write is in the audit trail"
    );
    assert_eq!(
        history["incident"]["history"]["nodes"][0]["action"],
        json!("TRANSITION")
    );
}

#[tokio::test]
async fn incidents_are_filtered_and_linked_from_cis_and_services() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let first = IncidentBuilder::new("db down")
        .on(&[&estate.db])
        .with("openedAt", json!("2026-02-01T10:00:00Z"))
        .create(&app)
        .await;
    IncidentBuilder::new("web slow")
        .on(&[&estate.web])
        .with("major", json!(true))
        .create(&app)
        .await;
    app.move_incident(
        first["id"].as_str().unwrap_or_default(),
        "IN_PROGRESS",
        None,
        None,
    )
    .await
    .data();

    let data = app
        .ok(
            "query($ci: ID!, $s: ID!) {
                onDb: incidents(filter: { ciId: $ci }) { totalCount nodes { title } }
                onPayroll: incidents(filter: { serviceId: $s }) { totalCount }
                major: incidents(filter: { major: true }) { nodes { title } }
                working: incidents(filter: { states: [IN_PROGRESS] }) { nodes { title } }
                all: incidents { nodes { title } }
                configurationItem(id: $ci) { incidents { title } }
                service(id: $s) { incidents(open: true) { title } }
            }",
            json!({ "ci": estate.db, "s": estate.payroll }),
        )
        .await;
    assert_eq!(
        data["onDb"],
        json!({ "totalCount": 1, "nodes": [{ "title": "db down" }] })
    );
    assert_eq!(data["onPayroll"]["totalCount"], json!(1));
    assert_eq!(data["major"]["nodes"], json!([{ "title": "web slow" }]));
    assert_eq!(data["working"]["nodes"], json!([{ "title": "db down" }]));
    assert_eq!(
        data["all"]["nodes"],
        json!([{ "title": "web slow" }, { "title": "db down" }]),
        "newest first"
    );
    assert_eq!(
        data["configurationItem"]["incidents"],
        json!([{ "title": "db down" }])
    );
    assert_eq!(
        data["service"]["incidents"],
        json!([{ "title": "db down" }])
    );
}
