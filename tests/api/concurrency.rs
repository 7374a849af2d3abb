//! Writers racing on one record: without `expectedVersion` every write applies, on every
//! engine (none is lost, none fails for a version nobody sent); with it, exactly one of two
//! writers from the same version wins.

use serde_json::{Value, json};

use crate::helpers::{IncidentBuilder, TestApp};

const WRITERS: usize = 8;
const WRITES_EACH: usize = 10;

/// Runs `WRITERS` clients at once, each sending `WRITES_EACH` writes made by `write(writer,
/// n)`; every write must succeed.
async fn race<F>(app: &TestApp, write: F)
where
    F: Fn(usize, usize) -> (String, Value) + Sync,
{
    let write = &write;
    let writers = (0..WRITERS).map(|writer| async move {
        for n in 0..WRITES_EACH {
            let (query, variables) = write(writer, n);
            let response = app.graphql(&query, variables).await;
            assert!(
                response.errors().is_empty(),
                "writer {writer}, write {n}: {}",
                response.0
            );
        }
    });
    async_graphql::futures_util::future::join_all(writers).await;
}

#[tokio::test]
async fn concurrent_attribute_patches_of_one_ci_all_apply() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "contended", json!({})).await;
    race(&app, |writer, n| {
        (
            "mutation($id: ID!, $patch: JSON!) { updateConfigurationItem(id: $id, input: { attributePatch: $patch }) { version } }".into(),
            json!({ "id": ci, "patch": { format!("w{writer}_{n}"): n } }),
        )
    })
    .await;
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { version attributes } }",
            json!({ "id": ci }),
        )
        .await;
    let attributes = data["configurationItem"]["attributes"]
        .as_object()
        .expect("attributes")
        .len();
    assert_eq!(attributes, WRITERS * WRITES_EACH, "no write was lost");
    assert_eq!(
        data["configurationItem"]["version"],
        json!(1 + WRITERS * WRITES_EACH)
    );
}

#[tokio::test]
async fn concurrent_updates_of_services_incidents_changes_and_customers_all_apply() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("application", "for-records", json!({})).await;
    let service = app.create_service("contended-service", &[&ci]).await;
    let incident = IncidentBuilder::new("contended incident")
        .on(&[&ci])
        .create(&app)
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let change = app
        .ok(
            "mutation { createChange(input: { title: \"contended change\" }) { id } }",
            json!({}),
        )
        .await["createChange"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let customer = app
        .ok(
            "mutation { createCustomer(input: { name: \"contended customer\" }) { id } }",
            json!({}),
        )
        .await["createCustomer"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let records = [
        ("updateService", "service", service),
        ("updateIncident", "incident", incident),
        ("updateChange", "change", change),
        ("updateCustomer", "customer", customer),
    ];
    for (mutation, read, id) in &records {
        race(&app, |writer, n| {
            (
                format!(
                    "mutation($id: ID!, $text: String!) {{ {mutation}(id: $id, input: {{ description: $text }}) {{ version }} }}"
                ),
                json!({ "id": id, "text": format!("{writer}-{n}") }),
            )
        })
        .await;
        let data = app
            .ok(
                &format!("query($id: ID!) {{ {read}(id: $id) {{ version }} }}"),
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            data[read]["version"],
            json!(1 + WRITERS * WRITES_EACH),
            "{mutation}: every write applied once"
        );
    }
}

#[tokio::test]
async fn with_an_expected_version_only_one_of_two_racing_writers_wins() {
    let app = TestApp::spawn().await;
    let ci = app
        .create_ci("application", "compare-and-swap", json!({}))
        .await;
    let write = |owner: &'static str| {
        app.graphql(
            "mutation($id: ID!, $owner: String!) { updateConfigurationItem(id: $id, expectedVersion: 1, input: { owner: $owner }) { version } }",
            json!({ "id": ci, "owner": owner }),
        )
    };
    let (a, b) = tokio::join!(write("team-a"), write("team-b"));
    let codes: Vec<String> = [a, b]
        .iter()
        .map(|r| {
            if r.errors().is_empty() {
                "OK".to_owned()
            } else {
                r.code()
            }
        })
        .collect();
    assert!(
        codes.contains(&"OK".to_owned()) && codes.contains(&"VERSION_MISMATCH".to_owned()),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_write_that_fails_half_way_leaves_no_transaction_open() {
    let app = TestApp::spawn().await;
    let ci = app
        .create_ci("server", "half-way", json!({ "cpu_count": 4 }))
        .await;
    // The update locks the CI, then fails validating the attributes.
    let failed = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { attributePatch: { cpu_count: \"many\" } }) { version } }",
            json!({ "id": ci }),
        )
        .await;
    assert_eq!(failed.code(), "VALIDATION");
    if let Some(sessions) = app.sessions_idle_in_transaction().await {
        // The abandoned write is rolled back at once, not when its connection is next used
        // or when the server times it out: wait for the rollback, at most a few seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut open = sessions;
        while open > 0 && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
            open = app.sessions_idle_in_transaction().await.unwrap_or_default();
        }
        assert_eq!(open, 0, "a session stayed idle in a transaction");
    }
    // Nothing holds the CI: the next write goes through.
    let next = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { owner: \"ops\" }) { version } }",
            json!({ "id": ci }),
        )
        .await;
    assert_eq!(next.data()["updateConfigurationItem"]["version"], json!(2));
}

#[tokio::test]
async fn concurrent_membership_changes_and_service_levels_of_one_service_all_apply() {
    let app = TestApp::spawn().await;
    let mut cis = Vec::new();
    for i in 0..WRITERS * WRITES_EACH {
        cis.push(
            app.create_ci("server", &format!("member-{i:03}"), json!({}))
                .await,
        );
    }
    let service = app.create_service("contended-members", &[]).await;
    race(&app, |writer, n| {
        (
            "mutation($id: ID!, $ci: ID!) { addServiceMembers(serviceId: $id, ciIds: [$ci]) { version } }"
                .into(),
            json!({ "id": service, "ci": cis[writer * WRITES_EACH + n] }),
        )
    })
    .await;
    let data = app
        .ok(
            "query($id: ID!) { service(id: $id) { version members(first: 1000) { id } } }",
            json!({ "id": service }),
        )
        .await;
    assert_eq!(
        data["service"]["members"].as_array().map(Vec::len),
        Some(WRITERS * WRITES_EACH),
        "no member was lost"
    );
    assert_eq!(data["service"]["version"], json!(1 + WRITERS * WRITES_EACH));

    race(&app, |writer, n| {
        (
            "mutation($id: ID!, $target: Float) { setServiceLevel(serviceId: $id, input: { availabilityTarget: $target }) { availabilityTarget } }".into(),
            json!({ "id": service, "target": 90.0 + (writer * WRITES_EACH + n) as f64 / 100.0 }),
        )
    })
    .await;
    let trail = app
        .ok(
            "query($id: ID!) { auditEvents(filter: { entityId: $id }, first: 500) { nodes { entityType action } } }",
            json!({ "id": service }),
        )
        .await;
    let level_events = trail["auditEvents"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["entityType"] == json!("SERVICE_LEVEL"))
        .count();
    assert_eq!(
        level_events,
        WRITERS * WRITES_EACH,
        "every setting audited once"
    );
}
