//! Service levels and the service report, on a history whose figures are worked out by hand.

use serde_json::{Value, json};

use crate::helpers::{ChangeBuilder, IncidentBuilder, TestApp};
use crate::incidents::Estate;

/// Opens an incident at `opened` and moves it through `moves` (state, moment).
async fn history(app: &TestApp, builder: IncidentBuilder, opened: &str, moves: &[(&str, &str)]) {
    let incident = builder.with("openedAt", json!(opened)).create(app).await;
    let id = incident["id"].as_str().expect("an id").to_owned();
    for (to, at) in moves {
        app.move_incident(&id, to, Some(at), Some("done"))
            .await
            .data();
    }
}

async fn finished_change(app: &TestApp, ci: &str, start: &str, end: &str, outcome: &str) {
    let change = ChangeBuilder::new("routine")
        .with("type", json!("STANDARD"))
        .on(&[ci])
        .window(start, end)
        .create(app)
        .await;
    let id = change["id"].as_str().expect("an id").to_owned();
    for (mutation, extra) in [
        ("submitChange", String::new()),
        ("scheduleChange", String::new()),
        ("startChange", String::new()),
        ("completeChange", format!(", outcome: {outcome}")),
    ] {
        app.move_change(mutation, &id, &extra).await.data();
    }
}

#[tokio::test]
async fn the_service_report_measures_a_day_against_the_targets() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    // Payroll: 99% availability; P1 15 min / 4 h; P2 30 min / 8 h.
    let p1 = |title: &str| {
        IncidentBuilder::new(title)
            .on(&[&estate.app])
            .with("impact", json!("HIGH"))
            .with("urgency", json!("HIGH"))
    };
    let p2 = |title: &str| {
        IncidentBuilder::new(title)
            .on(&[&estate.app])
            .with("impact", json!("HIGH"))
            .with("urgency", json!("MEDIUM"))
    };
    // Down from 23:00 the day before to 00:30: 30 minutes of the day, not one of its
    // incidents.
    history(
        &app,
        p1("overnight batch"),
        "2026-02-28T23:00:00Z",
        &[
            ("IN_PROGRESS", "2026-02-28T23:05:00Z"),
            ("RESOLVED", "2026-03-01T00:30:00Z"),
        ],
    )
    .await;
    // P1, down 02:00-04:00: answered in 10 minutes, resolved in 2 hours.
    history(
        &app,
        p1("app-1 crash"),
        "2026-03-01T02:00:00Z",
        &[
            ("IN_PROGRESS", "2026-03-01T02:10:00Z"),
            ("RESOLVED", "2026-03-01T04:00:00Z"),
        ],
    )
    .await;
    // P2, down 03:00-05:00 (overlapping the P1): answered in 60 minutes (late), resolved
    // in 2 hours.
    history(
        &app,
        p2("app-1 slow logins"),
        "2026-03-01T03:00:00Z",
        &[
            ("IN_PROGRESS", "2026-03-01T04:00:00Z"),
            ("RESOLVED", "2026-03-01T05:00:00Z"),
        ],
    )
    .await;
    // P2 on Payroll only degraded (named by hand): no downtime; answered in 20 minutes,
    // resolved in 10 hours (late).
    history(
        &app,
        IncidentBuilder::new("payslip layout")
            .with("impact", json!("HIGH"))
            .with("urgency", json!("MEDIUM"))
            .with(
                "services",
                json!([{ "serviceId": estate.payroll, "state": "DEGRADED" }]),
            ),
        "2026-03-01T10:00:00Z",
        &[
            ("IN_PROGRESS", "2026-03-01T10:20:00Z"),
            ("RESOLVED", "2026-03-01T20:00:00Z"),
        ],
    )
    .await;
    // Changes on Payroll's CIs in the day: two completed, one failed; one the day after.
    finished_change(
        &app,
        &estate.app,
        "2026-03-01T06:00:00Z",
        "2026-03-01T07:00:00Z",
        "COMPLETED",
    )
    .await;
    finished_change(
        &app,
        &estate.db,
        "2026-03-01T08:00:00Z",
        "2026-03-01T09:00:00Z",
        "FAILED",
    )
    .await;
    finished_change(
        &app,
        &estate.app,
        "2026-03-01T11:00:00Z",
        "2026-03-01T12:00:00Z",
        "COMPLETED",
    )
    .await;
    finished_change(
        &app,
        &estate.app,
        "2026-03-02T11:00:00Z",
        "2026-03-02T12:00:00Z",
        "ROLLED_BACK",
    )
    .await;

    let data = app
        .ok(
            "query($s: ID!) { serviceReport(serviceId: $s, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\") {
                service { name } serviceLevel { availabilityTarget }
                incidentCount incidents { title }
                incidentsByPriority { priority count }
                meanTimeToResolveMinutes
                response { met missed pending withoutTarget share }
                resolution { met missed pending withoutTarget share }
                downtimeMinutes availabilityPercent availabilityMet
                outages { start end minutes incidents { title } }
                changesByOutcome { outcome count } changeSuccessRate
            } }",
            json!({ "s": estate.payroll }),
        )
        .await;
    let report = &data["serviceReport"];
    assert_eq!(report["service"]["name"], json!("Payroll"));
    assert_eq!(report["incidentCount"], json!(3));
    assert_eq!(
        report["incidents"],
        json!([{ "title": "payslip layout" }, { "title": "app-1 slow logins" }, { "title": "app-1 crash" }])
    );
    assert_eq!(
        report["incidentsByPriority"],
        json!([{ "priority": 1, "count": 1 }, { "priority": 2, "count": 2 }])
    );
    // (120 + 120 + 600) / 3 minutes.
    assert_eq!(report["meanTimeToResolveMinutes"], json!(280.0));
    assert_eq!(
        report["response"],
        json!({ "met": 2, "missed": 1, "pending": 0, "withoutTarget": 0, "share": 2.0 / 3.0 })
    );
    assert_eq!(
        report["resolution"],
        json!({ "met": 2, "missed": 1, "pending": 0, "withoutTarget": 0, "share": 2.0 / 3.0 })
    );
    // 00:00-00:30 and 02:00-05:00 (the overlap counted once): 210 of 1440 minutes.
    assert_eq!(report["downtimeMinutes"], json!(210.0));
    let availability = report["availabilityPercent"].as_f64().unwrap_or_default();
    assert!(
        (availability - 100.0 * (1.0 - 210.0 / 1440.0)).abs() < 1e-9,
        "{availability}"
    );
    assert_eq!(report["availabilityMet"], json!(false));
    assert_eq!(
        report["outages"],
        json!([
            { "start": "2026-03-01T00:00:00+00:00", "end": "2026-03-01T00:30:00+00:00", "minutes": 30.0,
              "incidents": [{ "title": "overnight batch" }] },
            { "start": "2026-03-01T02:00:00+00:00", "end": "2026-03-01T05:00:00+00:00", "minutes": 180.0,
              "incidents": [{ "title": "app-1 crash" }, { "title": "app-1 slow logins" }] }
        ])
    );
    assert_eq!(
        report["changesByOutcome"],
        json!([{ "outcome": "COMPLETED", "count": 2 }, { "outcome": "FAILED", "count": 1 }])
    );
    assert_eq!(report["changeSuccessRate"], json!(2.0 / 3.0));
}

#[tokio::test]
async fn service_levels_and_customers_are_validated_and_audited() {
    let app = TestApp::spawn().await;
    let estate = Estate::build(&app).await;
    let set = "mutation($s: ID!, $input: ServiceLevelInput!) { setServiceLevel(serviceId: $s, input: $input) { availabilityTarget targets { priority responseMinutes resolutionMinutes } version } }";
    for (input, field) in [
        (json!({ "availabilityTarget": 101.0 }), "availabilityTarget"),
        (
            json!({ "targets": [{ "priority": 0 }] }),
            "targets[0].priority",
        ),
        (
            json!({ "targets": [{ "priority": 1, "responseMinutes": 90, "resolutionMinutes": 60 }] }),
            "targets[0].responseMinutes",
        ),
    ] {
        let response = app
            .graphql(set, json!({ "s": estate.payroll, "input": input }))
            .await;
        assert_eq!(response.code(), "VALIDATION", "{input}");
        assert_eq!(response.error()["extensions"]["field"], json!(field));
    }
    let data = app
        .ok(set, json!({ "s": estate.intranet, "input": { "availabilityTarget": 99.5,
            "targets": [{ "priority": 3, "responseMinutes": 60 }, { "priority": 1, "responseMinutes": 10 }] } }))
        .await;
    assert_eq!(
        data["setServiceLevel"],
        json!({ "availabilityTarget": 99.5, "version": 1, "targets": [
            { "priority": 1, "responseMinutes": 10, "resolutionMinutes": null },
            { "priority": 3, "responseMinutes": 60, "resolutionMinutes": null }] })
    );

    let response = app
        .graphql(
            "mutation { createCustomer(input: { name: \"Finance\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "CONFLICT");
    let response = app
        .graphql(
            "mutation { createCustomer(input: { name: \"HR\", contactEmail: \"not an address\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");

    let data = app
        .ok(
            "mutation($c: ID!, $s: ID!) { removeCustomerService(customerId: $c, serviceId: $s) { version services { service { name } } } }",
            json!({ "c": estate.finance, "s": estate.payroll }),
        )
        .await;
    assert_eq!(
        data["removeCustomerService"],
        json!({ "version": 3, "services": [] })
    );
    let data = app
        .ok(
            "query($c: ID!) { customer(id: $c) { history { nodes { action } } } customers { totalCount } }",
            json!({ "c": estate.finance }),
        )
        .await;
    let actions: Vec<Value> = data["customer"]["history"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        actions,
        vec![
            json!({ "action": "REMOVE_MEMBERS" }),
            json!({ "action": "ADD_MEMBERS" }),
            json!({ "action": "CREATE" })
        ]
    );
    assert_eq!(data["customers"]["totalCount"], json!(1));
}
