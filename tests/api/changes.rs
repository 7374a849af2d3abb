//! Requests for change: the lifecycle of each type, approvals, the assessment and the
//! change schedule's collisions.

use serde_json::{Value, json};

use cmdb::domain::auth::Role;

use crate::helpers::{CHANGE_FIELDS, ChangeBuilder, IncidentBuilder, TestApp};
use crate::incidents::Estate;

fn id(change: &Value) -> String {
    change["id"].as_str().expect("an id").to_owned()
}

async fn moved(app: &TestApp, mutation: &str, change: &str, extra: &str) -> Value {
    app.move_change(mutation, change, extra).await.data()[mutation].clone()
}

#[tokio::test]
async fn a_normal_change_goes_through_assessment_approval_and_review() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let change = ChangeBuilder::new("Patch db-1")
        .on(&[&estate.db])
        .window("2026-12-01T22:00:00Z", "2026-12-01T23:00:00Z")
        .with("backoutPlan", json!("restore the snapshot"))
        .create(&app)
        .await;
    assert_eq!(
        (
            change["number"].clone(),
            change["state"].clone(),
            change["type"].clone()
        ),
        (json!("CHG-000001"), json!("DRAFT"), json!("NORMAL"))
    );
    let chg = id(&change);

    for mutation in [
        "approveChange",
        "scheduleChange",
        "startChange",
        "assessChange",
    ] {
        let response = app.move_change(mutation, &chg, "").await;
        assert_eq!(
            response.code(),
            "INVALID_TRANSITION",
            "{mutation} on a draft"
        );
    }
    let submitted = moved(&app, "submitChange", &chg, "").await;
    assert_eq!(submitted["state"], json!("SUBMITTED"));
    assert_eq!(submitted["risk"], json!("HIGH"), "assessed on submission");
    let response = app.move_change("approveChange", &chg, "").await;
    assert_eq!(
        response.code(),
        "INVALID_TRANSITION",
        "a normal change is approved only once assessed"
    );

    let assessed = moved(&app, "assessChange", &chg, "").await;
    assert_eq!(assessed["state"], json!("ASSESSED"));

    // Deciding is for change managers.
    let editor = app.token("editor", Role::Editor).await;
    let response = app
        .graphql_with(
            Some(&editor),
            "mutation($id: ID!) { approveChange(id: $id) { state } }",
            json!({ "id": chg }),
        )
        .await;
    assert_eq!(response.code(), "FORBIDDEN");
    let manager = app.token("cab", Role::ChangeManager).await;
    let approved = app
        .graphql_with(
            Some(&manager),
            &format!(
                "mutation($id: ID!) {{ approveChange(id: $id, comment: \"backout tested\") {{ {CHANGE_FIELDS} }} }}"
            ),
            json!({ "id": chg }),
        )
        .await;
    let approved = &approved.data()["approveChange"];
    assert_eq!(approved["state"], json!("APPROVED"));
    assert_eq!(
        approved["approvals"],
        json!([{ "decision": "APPROVED", "approver": "cab", "comment": "backout tested" }])
    );
    // The decision is in the audit trail with the change it moved: who, when and why.
    let trail = app
        .ok(
            "query($id: ID!) { auditEvents(filter: { entityType: CHANGE, entityId: $id },
               first: 1) { nodes { action actor after } } }",
            json!({ "id": chg }),
        )
        .await;
    let event = &trail["auditEvents"]["nodes"][0];
    assert_eq!(event["action"], json!("APPROVE"), "{event}");
    assert_eq!(event["actor"], json!("cab"));
    assert_eq!(
        event["after"]["decision"]["approver"],
        json!("cab"),
        "{event}"
    );
    assert_eq!(
        event["after"]["decision"]["comment"],
        json!("backout tested")
    );

    let response = app
        .graphql(
            "mutation($id: ID!) { updateChange(id: $id, input: { title: \"late edit\" }) { title } }",
            json!({ "id": chg }),
        )
        .await;
    assert_eq!(
        response.code(),
        "INVALID_TRANSITION",
        "an approved change is frozen"
    );

    assert_eq!(
        moved(&app, "scheduleChange", &chg, "").await["state"],
        json!("SCHEDULED")
    );
    assert_eq!(
        moved(&app, "startChange", &chg, "").await["state"],
        json!("IN_PROGRESS")
    );
    let done = moved(&app, "completeChange", &chg, ", outcome: COMPLETED").await;
    assert_eq!(
        (done["state"].clone(), done["outcome"].clone()),
        (json!("COMPLETED"), json!("COMPLETED"))
    );
    let response = app.move_change("closeChange", &chg, "").await;
    assert_eq!(response.code(), "VALIDATION", "closing needs a review");
    let closed = moved(&app, "closeChange", &chg, ", reviewNotes: \"went to plan\"").await;
    assert_eq!(
        (
            closed["state"].clone(),
            closed["outcome"].clone(),
            closed["reviewNotes"].clone()
        ),
        (json!("CLOSED"), json!("COMPLETED"), json!("went to plan"))
    );
    for mutation in ["startChange", "submitChange", "rejectChange"] {
        let response = app.move_change(mutation, &chg, "").await;
        assert_eq!(
            response.code(),
            "INVALID_TRANSITION",
            "{mutation} on a closed change"
        );
    }
}

#[tokio::test]
async fn standard_changes_are_pre_approved_and_emergencies_decided_before_assessment() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let standard = ChangeBuilder::new("Rotate web-1 logs")
        .with("type", json!("STANDARD"))
        .on(&[&estate.web])
        .create(&app)
        .await;
    let submitted = moved(&app, "submitChange", &id(&standard), "").await;
    assert_eq!(submitted["state"], json!("APPROVED"));
    assert_eq!(
        submitted["approvals"][0]["approver"],
        json!("standard change model"),
        "the pre-approval is on record, given by the standard change model"
    );
    assert_eq!(submitted["approvals"][0]["decision"], json!("APPROVED"));
    assert!(
        submitted["approvals"][0]["comment"]
            .as_str()
            .expect("a reason")
            .contains("pre-approved")
    );

    let emergency = ChangeBuilder::new("Hotfix app-1")
        .with("type", json!("EMERGENCY"))
        .on(&[&estate.app])
        .create(&app)
        .await;
    let emergency = id(&emergency);
    moved(&app, "submitChange", &emergency, "").await;
    let approved = moved(
        &app,
        "approveChange",
        &emergency,
        ", comment: \"ECAB by phone\"",
    )
    .await;
    assert_eq!(approved["state"], json!("APPROVED"));

    let normal = ChangeBuilder::new("Resize db-1")
        .on(&[&estate.db])
        .create(&app)
        .await;
    let normal = id(&normal);
    moved(&app, "submitChange", &normal, "").await;
    moved(&app, "assessChange", &normal, "").await;
    let rejected = moved(
        &app,
        "rejectChange",
        &normal,
        ", comment: \"no backout plan\"",
    )
    .await;
    assert_eq!(rejected["state"], json!("REJECTED"));
    assert_eq!(rejected["approvals"][0]["decision"], json!("REJECTED"));
    let response = app.move_change("scheduleChange", &normal, "").await;
    assert_eq!(
        response.code(),
        "INVALID_TRANSITION",
        "a rejected change is final"
    );

    let empty = ChangeBuilder::new("Nothing in particular")
        .create(&app)
        .await;
    let response = app.move_change("submitChange", &id(&empty), "").await;
    assert_eq!(
        response.code(),
        "VALIDATION",
        "a change must say what it touches"
    );
}

const ASSESSMENT: &str = "query($id: ID!) { change(id: $id) { risk assessment {
    risk blastRadius blastRadiusCis { name }
    reasons { rule level message }
    affectedServices { service { name } state criticality }
    affectedCustomers { customer { id name } service { name } agreement }
    openIncidents { number }
    collisions { change { number } overlapStart overlapEnd sharedCiCount sharedCis { name } }
} } }";

fn rules(assessment: &Value) -> Vec<String> {
    assessment["reasons"]
        .as_array()
        .map(|reasons| {
            reasons
                .iter()
                .map(|r| r["rule"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_assessment_finds_the_blast_radius_incidents_collisions_and_the_risk() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    // Already approved: a change on app-1 from 21:00 to 23:00.
    let other = ChangeBuilder::new("Upgrade app-1")
        .on(&[&estate.app])
        .window("2026-12-01T21:00:00Z", "2026-12-01T23:00:00Z")
        .create(&app)
        .await;
    let other = id(&other);
    moved(&app, "submitChange", &other, "").await;
    moved(&app, "assessChange", &other, "").await;
    moved(&app, "approveChange", &other, "").await;
    // Somewhere else, at the same time: no shared CI.
    let elsewhere = app.create_ci("network_switch", "sw-9", json!({})).await;
    let unrelated = ChangeBuilder::new("Replace sw-9")
        .on(&[&elsewhere])
        .window("2026-12-01T21:00:00Z", "2026-12-01T23:00:00Z")
        .create(&app)
        .await;
    moved(&app, "submitChange", &id(&unrelated), "").await;
    moved(&app, "assessChange", &id(&unrelated), "").await;
    moved(&app, "approveChange", &id(&unrelated), "").await;
    let incident = IncidentBuilder::new("app-1 errors")
        .on(&[&estate.app])
        .create(&app)
        .await;

    let change = ChangeBuilder::new("Patch db-1")
        .on(&[&estate.db])
        .window("2026-12-01T22:00:00Z", "2026-12-02T01:00:00Z")
        .create(&app)
        .await;
    let chg = id(&change);
    moved(&app, "submitChange", &chg, "").await;
    let read = app.ok(ASSESSMENT, json!({ "id": chg })).await;
    let assessment = &read["change"]["assessment"];
    assert_eq!(assessment["blastRadius"], json!(3));
    assert_eq!(
        assessment["blastRadiusCis"],
        json!([{ "name": "db-1" }, { "name": "app-1" }, { "name": "web-1" }])
    );
    assert_eq!(
        assessment["affectedServices"][0],
        json!({ "service": { "name": "Payroll" }, "state": "DOWN", "criticality": "CRITICAL" })
    );
    assert_eq!(
        assessment["affectedCustomers"],
        json!([{ "customer": { "id": estate.finance, "name": "Finance" },
                 "service": { "name": "Payroll" }, "agreement": "Gold" }])
    );
    assert_eq!(
        assessment["openIncidents"],
        json!([{ "number": incident["number"] }])
    );
    assert_eq!(
        assessment["collisions"],
        json!([{ "change": { "number": "CHG-000001" },
                 "overlapStart": "2026-12-01T22:00:00+00:00", "overlapEnd": "2026-12-01T23:00:00+00:00",
                 "sharedCiCount": 2, "sharedCis": [{ "name": "app-1" }, { "name": "web-1" }] }]),
        "the approved change on app-1 overlaps in time and blast radius; the switch change only in time"
    );
    assert_eq!(
        rules(assessment),
        vec![
            "BLAST_RADIUS",
            "CRITICAL_SERVICE_DOWN",
            "OPEN_INCIDENT",
            "COLLISION",
            "COMBINED_HIGH_RISKS"
        ]
    );
    assert_eq!(assessment["risk"], json!("CRITICAL"));
    assert_eq!(read["change"]["risk"], json!("CRITICAL"));

    // Once the incident is resolved and the other change moves out of the way, a
    // reassessment says so.
    let incident_id = incident["id"].as_str().unwrap_or_default();
    app.move_incident(incident_id, "IN_PROGRESS", None, None)
        .await
        .data();
    app.move_incident(incident_id, "RESOLVED", None, Some("fixed"))
        .await
        .data();
    let data = app
        .ok(
            "mutation($id: ID!) { assessChange(id: $id) { state assessment { risk reasons { rule } openIncidents { number } } } }",
            json!({ "id": chg }),
        )
        .await;
    let reassessed = &data["assessChange"];
    assert_eq!(reassessed["state"], json!("ASSESSED"));
    assert_eq!(reassessed["assessment"]["openIncidents"], json!([]));
    assert_eq!(
        rules(&reassessed["assessment"]),
        vec![
            "BLAST_RADIUS",
            "CRITICAL_SERVICE_DOWN",
            "COLLISION",
            "COMBINED_HIGH_RISKS"
        ]
    );

    let moved_out = app
        .ok(
            "mutation($id: ID!) { updateChange(id: $id, input: { plannedStart: \"2026-12-02T02:00:00Z\", plannedEnd: \"2026-12-02T03:00:00Z\" }) { risk assessment { reasons { rule } collisions { sharedCiCount } } } }",
            json!({ "id": chg }),
        )
        .await;
    assert_eq!(
        moved_out["updateChange"]["assessment"]["collisions"],
        json!([]),
        "a new window is reassessed at once"
    );
    assert_eq!(moved_out["updateChange"]["risk"], json!("HIGH"));

    let linked = app
        .ok(
            "query($ci: ID!, $s: ID!) {
                configurationItem(id: $ci) { changes { number } }
                service(id: $s) { changes { number } customers { customer { name } agreement } }
                changes(filter: { serviceId: $s, states: [APPROVED] }) { totalCount }
            }",
            json!({ "ci": estate.db, "s": estate.payroll }),
        )
        .await;
    assert_eq!(
        linked["configurationItem"]["changes"],
        json!([{ "number": "CHG-000003" }])
    );
    assert_eq!(
        linked["service"]["changes"],
        json!([{ "number": "CHG-000003" }, { "number": "CHG-000001" }])
    );
    assert_eq!(
        linked["service"]["customers"],
        json!([{ "customer": { "name": "Finance" }, "agreement": "Gold" }])
    );
    assert_eq!(linked["changes"]["totalCount"], json!(1));
}

#[tokio::test]
async fn the_change_schedule_lists_collisions_in_a_period() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let submit = |title: &'static str, ci: String, start: &'static str, end: &'static str| {
        let app = &app;
        async move {
            let change = ChangeBuilder::new(title)
                .on(&[&ci])
                .window(start, end)
                .create(app)
                .await;
            moved(app, "submitChange", &id(&change), "").await;
        }
    };
    submit(
        "Patch db-1",
        estate.db.clone(),
        "2026-12-05T20:00:00Z",
        "2026-12-05T22:00:00Z",
    )
    .await;
    submit(
        "Deploy web-1",
        estate.web.clone(),
        "2026-12-05T21:00:00Z",
        "2026-12-05T23:00:00Z",
    )
    .await;
    submit(
        "Deploy app-1",
        estate.app.clone(),
        "2026-12-06T20:00:00Z",
        "2026-12-06T21:00:00Z",
    )
    .await;
    // A draft is not on the schedule.
    ChangeBuilder::new("Idea")
        .on(&[&estate.web])
        .window("2026-12-05T20:00:00Z", "2026-12-05T21:00:00Z")
        .create(&app)
        .await;

    let data = app
        .ok(
            "{ changeCollisions(from: \"2026-12-05T00:00:00Z\", to: \"2026-12-07T00:00:00Z\") {
                first { number } second { number } overlapStart overlapEnd sharedCiCount sharedCis { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["changeCollisions"],
        json!([{ "first": { "number": "CHG-000001" }, "second": { "number": "CHG-000002" },
                 "overlapStart": "2026-12-05T21:00:00+00:00", "overlapEnd": "2026-12-05T22:00:00+00:00",
                 "sharedCiCount": 1, "sharedCis": [{ "name": "web-1" }] }]),
        "db-1's blast radius holds web-1; app-1's change is on another day"
    );
    let response = app
        .graphql(
            "{ changeCollisions(from: \"2026-12-07T00:00:00Z\", to: \"2026-12-05T00:00:00Z\") { sharedCiCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app
        .graphql(
            "mutation { createChange(input: { title: \"x\", plannedStart: \"2026-12-05T02:00:00Z\", plannedEnd: \"2026-12-05T01:00:00Z\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response.code(),
        "VALIDATION",
        "a window ends after it starts"
    );
}
