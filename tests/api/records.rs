//! Records that must not change without a trace: what incidents and changes name stays on
//! record, removed data is audited, redundancy counts members only, a reopened incident's
//! resolved time is no outage, and discovery writes name both the token and the source.

use cmdb::domain::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{ChangeBuilder, IncidentBuilder, TestApp};

async fn affected_ci_names(app: &TestApp, query: &str, id: &str) -> Vec<String> {
    let data = app.ok(query, json!({ "id": id })).await;
    let record = data.as_object().and_then(|o| o.values().next()).cloned();
    record.expect("the record")["affectedCis"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|ci| ci["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[tokio::test]
async fn the_database_itself_keeps_the_cis_and_services_records_name() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "ledger", json!({})).await;
    let service = app.create_service("Ledger", &[&ci]).await;
    IncidentBuilder::new("ledger slow")
        .on(&[&ci])
        .with(
            "services",
            json!([{ "serviceId": service, "state": "DEGRADED" }]),
        )
        .create(&app)
        .await;
    // Past the application's own refusal: the database refuses too, and keeps the links.
    let backend = app.db.get_database_backend();
    for (table, id) in [("configuration_item", &ci), ("service", &service)] {
        let parameter = match backend {
            sea_orm::DbBackend::Postgres => "$1",
            _ => "?",
        };
        let delete = sea_orm::Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM {table} WHERE id = {parameter}"),
            [uuid::Uuid::parse_str(id).expect("a uuid").into()],
        );
        assert!(
            app.db.execute_raw(delete).await.is_err(),
            "deleting the {table} an incident names must fail"
        );
    }
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { incidents { affectedCis { name } affectedServices { service { name } } } } }",
            json!({ "id": ci }),
        )
        .await;
    let incident = &data["configurationItem"]["incidents"][0];
    assert_eq!(incident["affectedCis"], json!([{ "name": "ledger" }]));
    assert!(
        incident["affectedServices"]
            .as_array()
            .expect("services")
            .iter()
            .any(|s| s["service"]["name"] == json!("Ledger")),
        "{incident}"
    );
}

#[tokio::test]
async fn a_ci_named_by_incidents_and_changes_cannot_be_deleted_but_can_be_retired() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "billing", json!({})).await;
    let incident = IncidentBuilder::new("billing down")
        .on(&[&ci])
        .create(&app)
        .await;
    let incident = incident["id"].as_str().expect("an id").to_owned();
    for (to, at) in [("IN_PROGRESS", None), ("RESOLVED", None), ("CLOSED", None)] {
        app.move_incident(&incident, to, at, Some("fixed"))
            .await
            .data();
    }
    let change = ChangeBuilder::new("patch billing")
        .with("type", json!("STANDARD"))
        .on(&[&ci])
        .create(&app)
        .await;
    let change = change["id"].as_str().expect("an id").to_owned();

    let refused = app
        .graphql(
            "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
            json!({ "id": ci }),
        )
        .await;
    assert_eq!(refused.code(), "CONFLICT");
    let message = refused.message();
    assert!(
        message.contains("INC-") && message.contains("CHG-"),
        "{message}"
    );
    assert!(message.contains("retire"), "{message}");
    assert_eq!(
        affected_ci_names(
            &app,
            "query($id: ID!) { incident(id: $id) { affectedCis { name } } }",
            &incident
        )
        .await,
        ["billing"]
    );
    assert_eq!(
        affected_ci_names(
            &app,
            "query($id: ID!) { change(id: $id) { affectedCis { name } } }",
            &change
        )
        .await,
        ["billing"]
    );
    let retired = app
        .ok(
            "mutation($id: ID!) { retireConfigurationItem(id: $id) { status } }",
            json!({ "id": ci }),
        )
        .await;
    assert_eq!(
        retired["retireConfigurationItem"]["status"],
        json!("RETIRED")
    );

    // A CI nothing names is deleted as before.
    let mistake = app.create_ci("application", "typo", json!({})).await;
    app.ok(
        "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
        json!({ "id": mistake }),
    )
    .await;
}

#[tokio::test]
async fn a_service_named_by_records_is_kept_and_a_deleted_ones_service_level_is_audited() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "hr-app", json!({})).await;
    let named = app.create_service("HR", &[&ci]).await;
    IncidentBuilder::new("HR portal slow")
        .with(
            "services",
            json!([{ "serviceId": named, "state": "DEGRADED" }]),
        )
        .create(&app)
        .await;
    let refused = app
        .graphql(
            "mutation($id: ID!) { deleteService(id: $id) }",
            json!({ "id": named }),
        )
        .await;
    assert_eq!(refused.code(), "CONFLICT");
    assert!(refused.message().contains("INC-"), "{}", refused.message());

    let plain = app.create_service("Scratch", &[&ci]).await;
    app.ok(
        "mutation($id: ID!) { setServiceLevel(serviceId: $id, input: { availabilityTarget: 99.5, targets: [] }) { version } }",
        json!({ "id": plain }),
    )
    .await;
    app.ok(
        "mutation($id: ID!) { deleteService(id: $id) }",
        json!({ "id": plain }),
    )
    .await;
    let events = app
        .ok(
            "query($id: ID!) { auditEvents(filter: { entityId: $id }) { nodes { entityType action before } } }",
            json!({ "id": plain }),
        )
        .await;
    let nodes = events["auditEvents"]["nodes"]
        .as_array()
        .expect("events")
        .clone();
    let deleted_level = nodes
        .iter()
        .find(|e| e["entityType"] == json!("SERVICE_LEVEL") && e["action"] == json!("DELETE"))
        .expect("the service level's deletion is audited");
    assert_eq!(deleted_level["before"]["availability_target"], json!(99.5));
    assert!(
        nodes
            .iter()
            .any(|e| e["entityType"] == json!("SERVICE") && e["action"] == json!("DELETE"))
    );
}

async fn state_of(report: &Value, name: &str) -> String {
    report["affectedCis"]
        .as_array()
        .expect("affected CIs")
        .iter()
        .find(|e| e["ci"]["name"] == json!(name))
        .map(|e| e["state"].as_str().expect("a state").to_owned())
        .unwrap_or_else(|| panic!("{name} not affected: {report}"))
}

#[tokio::test]
async fn only_members_count_toward_a_clusters_redundancy() {
    let app = TestApp::spawn().await;
    let cluster = app
        .create_ci("application", "cl", json!({ "min_healthy_members": 1 }))
        .await;
    let m1 = app.create_ci("application", "m1", json!({})).await;
    let m2 = app.create_ci("application", "m2", json!({})).await;
    let lb = app.create_ci("application", "lb", json!({})).await;
    app.relate(&[
        (&m1, "member_of", &cluster),
        (&m2, "member_of", &cluster),
        (&cluster, "depends_on", &lb),
    ])
    .await;
    let analyse = |ids: Vec<&str>| {
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        let app = &app;
        async move {
            app.ok(
                "query($ids: [ID!]!) { impactAnalysis(input: { ciIds: $ids }) { affectedCis { ci { name } state path { source { name } target { name } } } } }",
                json!({ "ids": ids }),
            )
            .await["impactAnalysis"]
                .clone()
        }
    };
    assert_eq!(state_of(&analyse(vec![&m1]).await, "cl").await, "DEGRADED");
    let both = analyse(vec![&m1, &m2]).await;
    assert_eq!(state_of(&both, "cl").await, "DOWN", "no member is up");
    let lb_down = analyse(vec![&lb]).await;
    assert_eq!(
        state_of(&lb_down, "cl").await,
        "DOWN",
        "a single point of failure"
    );
    let path = lb_down["affectedCis"]
        .as_array()
        .expect("CIs")
        .iter()
        .find(|e| e["ci"]["name"] == json!("cl"))
        .expect("cl")["path"]
        .clone();
    assert_eq!(
        path,
        json!([{ "source": { "name": "cl" }, "target": { "name": "lb" } }]),
        "the path says why it is down"
    );
    let types = app
        .ok("{ relationshipTypes { name membership } }", json!({}))
        .await;
    let member_of = types["relationshipTypes"]
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["name"] == json!("member_of"))
        .expect("member_of")
        .clone();
    assert_eq!(member_of["membership"], json!(true));
}

#[tokio::test]
async fn the_time_a_reopened_incident_spent_resolved_is_not_downtime() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "payroll-app", json!({})).await;
    let service = app.create_service("Payroll", &[&ci]).await;
    let incident = IncidentBuilder::new("payroll down")
        .on(&[&ci])
        .with("openedAt", json!("2026-03-01T08:00:00Z"))
        .create(&app)
        .await;
    let id = incident["id"].as_str().expect("an id").to_owned();
    for (to, at) in [
        ("IN_PROGRESS", "2026-03-01T08:10:00Z"),
        ("RESOLVED", "2026-03-01T09:00:00Z"),
        ("IN_PROGRESS", "2026-03-01T10:00:00Z"),
        ("RESOLVED", "2026-03-01T11:00:00Z"),
    ] {
        app.move_incident(&id, to, Some(at), Some("done"))
            .await
            .data();
    }
    let report = app
        .ok(
            "query($s: ID!) { serviceReport(serviceId: $s, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\") {
                downtimeMinutes outages { start end } } }",
            json!({ "s": service }),
        )
        .await;
    // 08:00-09:00 and 10:00-11:00; the hour between, resolved, is no outage.
    assert_eq!(report["serviceReport"]["downtimeMinutes"], json!(120.0));
    assert_eq!(
        report["serviceReport"]["outages"],
        json!([
            { "start": "2026-03-01T08:00:00+00:00", "end": "2026-03-01T09:00:00+00:00" },
            { "start": "2026-03-01T10:00:00+00:00", "end": "2026-03-01T11:00:00+00:00" }
        ])
    );
}

#[tokio::test]
async fn discovery_writes_record_the_token_as_actor_and_the_source_beside_it() {
    let app = TestApp::spawn().await;
    let token = app.token("vcenter-sync", Role::Discovery).await;
    let response = app
        .graphql_with(
            Some(&token),
            "mutation { upsertConfigurationItems(input: { source: \"vcenter\", items: [{ class: \"server\", name: \"esx-9\", externalId: \"h-9\" }] }) { created } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response.data()["upsertConfigurationItems"]["created"],
        json!(1)
    );
    let events = app
        .ok(
            "{ auditEvents(filter: { source: \"vcenter\" }) { nodes { actor source entityType action } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        events["auditEvents"]["nodes"][0],
        json!({ "actor": "vcenter-sync", "source": "vcenter", "entityType": "CONFIGURATION_ITEM", "action": "CREATE" })
    );
}

#[tokio::test]
async fn resolved_periods_recorded_before_they_were_kept_are_rebuilt_from_the_audit_trail() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::sea_query::{Alias, Query};
    use sea_orm::{ConnectionTrait, EntityTrait};

    let (config, _guard) = crate::helpers::fresh_database().await;
    let db = cmdb::db::connect(&config).await.expect("connect");
    // The schema as it was before resolved periods were kept.
    Migrator::up(&db, Some(6))
        .await
        .expect("the older migrations");
    let incident = uuid::Uuid::now_v7();
    let time = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&chrono::Utc)
    };
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("incident"))
        .columns(
            [
                "id",
                "number",
                "title",
                "impact",
                "urgency",
                "priority",
                "major",
                "state",
                "opened_at",
                "resolved_at",
                "version",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            incident.into(),
            "INC-000001".into(),
            "reopened once".into(),
            "HIGH".into(),
            "HIGH".into(),
            1.into(),
            false.into(),
            "RESOLVED".into(),
            time("2026-03-01T08:00:00Z").into(),
            time("2026-03-01T11:00:00Z").into(),
            5.into(),
            time("2026-03-01T08:00:00Z").into(),
            time("2026-03-01T11:00:00Z").into(),
        ]);
    db.execute(&insert).await.expect("the incident");
    // Its transitions as the trail recorded them.
    let moves = [
        ("NEW", "IN_PROGRESS", None, "2026-03-01T08:10:00Z"),
        (
            "IN_PROGRESS",
            "RESOLVED",
            Some("2026-03-01T09:00:00Z"),
            "2026-03-01T09:00:01Z",
        ),
        ("RESOLVED", "IN_PROGRESS", None, "2026-03-01T10:00:00Z"),
        (
            "IN_PROGRESS",
            "RESOLVED",
            Some("2026-03-01T11:00:00Z"),
            "2026-03-01T11:00:01Z",
        ),
    ];
    for (from, to, resolved_at, occurred_at) in moves {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("audit_event"))
            .columns(
                [
                    "occurred_at",
                    "actor",
                    "entity_type",
                    "entity_id",
                    "action",
                    "before",
                    "after",
                ]
                .map(Alias::new),
            )
            .values_panic([
                time(occurred_at).into(),
                "someone".into(),
                "INCIDENT".into(),
                incident.to_string().into(),
                "TRANSITION".into(),
                json!({ "state": from }).into(),
                json!({ "state": to, "resolved_at": resolved_at }).into(),
            ]);
        db.execute(&insert).await.expect("an audit event");
    }
    Migrator::up(&db, None).await.expect("the new migrations");
    let mut periods = entity::incident_resolution::Entity::find()
        .all(&db)
        .await
        .expect("periods");
    periods.sort_by_key(|p| p.resolved_at);
    let spans: Vec<_> = periods
        .iter()
        .map(|p| (p.resolved_at, p.reopened_at))
        .collect();
    assert_eq!(
        spans,
        vec![
            (
                time("2026-03-01T09:00:00Z"),
                Some(time("2026-03-01T10:00:00Z"))
            ),
            (time("2026-03-01T11:00:00Z"), None),
        ]
    );
}
