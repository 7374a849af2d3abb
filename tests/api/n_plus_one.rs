//! Nested reads cost the same number of SQL statements whatever the page size.

use serde_json::json;

use crate::helpers::TestApp;

const NESTED: &str = "query($first: Int) { configurationItems(first: $first) { nodes {
    name ciClass { name }
    outgoing { type { name } target { name ciClass { name } services { name } } }
    incoming { source { name } }
    services { name members { name } }
} } }";

async fn statements_for_page(app: &TestApp, first: usize) -> usize {
    let before = app.settled_statement_count().await;
    let data = app.ok(NESTED, json!({ "first": first })).await;
    let nodes = data["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
        .len();
    assert_eq!(nodes, first);
    app.settled_statement_count().await - before
}

#[tokio::test]
async fn a_nested_page_costs_the_same_statements_for_10_or_200_items() {
    let app = TestApp::spawn_counting().await;
    let hub = app.create_ci("database", "hub-db", json!({})).await;
    let storage = app.create_ci("storage", "hub-san", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(
            app.create_ci("application", &format!("app-{i:03}"), json!({}))
                .await,
        );
    }
    let mut links = Vec::new();
    for id in &ids {
        links.push((id.as_str(), "depends_on", hub.as_str()));
        links.push((id.as_str(), "uses", storage.as_str()));
    }
    app.relate(&links).await;
    let members: Vec<&str> = ids.iter().step_by(2).map(String::as_str).collect();
    app.create_service("Apps", &members).await;
    app.create_service("Hub", &[&hub, &storage]).await;

    // The first request fills the server's caches (catalogues, impact graph).
    statements_for_page(&app, 10).await;
    let small = statements_for_page(&app, 10).await;
    let large = statements_for_page(&app, 200).await;
    assert_eq!(
        small, large,
        "statements for 10 items: {small}, for 200: {large}"
    );
    assert!(
        small <= 15,
        "a nested page takes a handful of statements, not {small}"
    );
}

/// Each measured operation has one root list: two lists side by side are fetched
/// concurrently, and how their nested loads share batches would depend on which list
/// arrives first.
const INCIDENTS: &str = "query($first: Int) {
    incidents(first: $first) { nodes {
        number affectedCis { name incidents { number } changes { number } }
        affectedServices { service { name serviceLevel { availabilityTarget } incidents { number } changes { number } } }
        affectedCustomers { customer { name } service { name } resolutionTargetMinutes }
    } }
}";

const CHANGES: &str = "query($first: Int) {
    changes(first: $first) { nodes {
        number approvals { approver } affectedCis { name services { name } }
        assessment { affectedServices { service { name customers { customer { name } } } } openIncidents { number } }
    } }
}";

async fn statements_for_records(app: &TestApp, query: &str, list: &str, first: usize) -> usize {
    let before = app.settled_statement_count().await;
    let data = app.ok(query, json!({ "first": first })).await;
    assert_eq!(
        data[list]["nodes"].as_array().map(Vec::len),
        Some(first),
        "{list}"
    );
    app.settled_statement_count().await - before
}

#[tokio::test]
async fn incidents_and_changes_with_their_links_cost_the_same_statements_for_5_or_40() {
    let app = TestApp::spawn_counting().await;
    let db = app.create_ci("database", "shared-db", json!({})).await;
    let customer = app
        .ok(
            "mutation { createCustomer(input: { name: \"Sales\" }) { id } }",
            json!({}),
        )
        .await["createCustomer"]["id"]
        .clone();
    for i in 0..40 {
        let ci = app
            .create_ci("application", &format!("svc-app-{i:02}"), json!({}))
            .await;
        app.relate(&[(ci.as_str(), "depends_on", db.as_str())])
            .await;
        let service = app.create_service(&format!("Service {i:02}"), &[&ci]).await;
        app.ok(
            "mutation($c: ID!, $s: ID!) { addCustomerService(customerId: $c, serviceId: $s) { id } }",
            json!({ "c": customer, "s": service }),
        )
        .await;
        app.ok(
            "mutation($s: ID!) { setServiceLevel(serviceId: $s, input: { targets: [{ priority: 3, resolutionMinutes: 600 }] }) { version } }",
            json!({ "s": service }),
        )
        .await;
        crate::helpers::IncidentBuilder::new(&format!("incident {i}"))
            .on(&[&ci])
            .create(&app)
            .await;
        let change = crate::helpers::ChangeBuilder::new(&format!("change {i}"))
            .with("type", json!("STANDARD"))
            .on(&[&ci])
            .create(&app)
            .await;
        app.move_change(
            "submitChange",
            change["id"].as_str().unwrap_or_default(),
            "",
        )
        .await
        .data();
    }
    for (query, list) in [(INCIDENTS, "incidents"), (CHANGES, "changes")] {
        let small = statements_for_records(&app, query, list, 5).await;
        let large = statements_for_records(&app, query, list, 40).await;
        assert_eq!(
            small, large,
            "statements for 5 {list}: {small}, for 40: {large}"
        );
    }
}
