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
    let before = app.statement_count();
    let data = app.ok(NESTED, json!({ "first": first })).await;
    let nodes = data["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
        .len();
    assert_eq!(nodes, first);
    app.statement_count() - before
}

#[tokio::test]
async fn a_nested_page_costs_the_same_statements_for_10_or_200_items() {
    let app = TestApp::spawn().await;
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
