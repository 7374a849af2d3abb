//! Nested lists: their arguments reach the database (cut, filtered, ordered there), the
//! CIs read beside a list show the same values as the CI read alone, and records read as
//! JSON documents decode as the driver decodes them.

use cmdb::domain::json_rows;
use entity::{change_request, configuration_item, incident, relationship, service};
use sea_orm::{EntityTrait, QueryTrait};
use serde_json::{Value, json};

use crate::helpers::{IncidentBuilder, TestApp};

/// Every record of `E`, read by the driver and as one JSON document, sorted alike.
async fn both_ways<E>(app: &TestApp) -> (Vec<E::Model>, Vec<E::Model>)
where
    E: EntityTrait,
    E::Model: serde::de::DeserializeOwned + std::fmt::Debug,
{
    let driver = E::find().all(&app.db).await.expect("read by the driver");
    let json = json_rows::models::<E>(&app.db, &E::find().into_query())
        .await
        .expect("read as JSON");
    (driver, json)
}

fn sorted<T: std::fmt::Debug>(mut rows: Vec<T>) -> Vec<String> {
    let mut text: Vec<String> = rows.drain(..).map(|r| format!("{r:?}")).collect();
    text.sort();
    text
}

#[tokio::test]
async fn json_rows_decode_as_the_driver_does() {
    let app = TestApp::spawn().await;
    app.load_demo().await;
    let (driver, json) = both_ways::<configuration_item::Entity>(&app).await;
    assert!(!driver.is_empty());
    assert_eq!(sorted(driver), sorted(json));
    let (driver, json) = both_ways::<relationship::Entity>(&app).await;
    assert!(!driver.is_empty());
    assert_eq!(sorted(driver), sorted(json));
    let (driver, json) = both_ways::<service::Entity>(&app).await;
    assert!(!driver.is_empty());
    assert_eq!(sorted(driver), sorted(json));
    let (driver, json) = both_ways::<incident::Entity>(&app).await;
    assert!(!driver.is_empty());
    assert_eq!(sorted(driver), sorted(json));
    let (driver, json) = both_ways::<change_request::Entity>(&app).await;
    assert!(!driver.is_empty());
    assert_eq!(sorted(driver), sorted(json));
}

#[tokio::test]
async fn a_cis_incidents_are_cut_and_filtered_as_each_field_asks() {
    let app = TestApp::spawn().await;
    let ci = app.create_ci("server", "srv-1", json!({})).await;
    let other = app.create_ci("server", "srv-2", json!({})).await;
    let mut numbers = Vec::new();
    let mut ids = Vec::new();
    for day in 1..=5 {
        let incident = IncidentBuilder::new(&format!("outage {day}"))
            .on(&[&ci, &other])
            .with("openedAt", json!(format!("2026-03-0{day}T08:00:00Z")))
            .create(&app)
            .await;
        numbers.push(incident["number"].as_str().expect("a number").to_owned());
        ids.push(incident["id"].as_str().expect("an id").to_owned());
    }
    // The two oldest are resolved.
    for id in &ids[..2] {
        app.move_incident(id, "IN_PROGRESS", None, None).await;
        app.move_incident(id, "RESOLVED", None, Some("fixed")).await;
    }
    let data = app
        .ok(
            "query($ids: [ID!]) { configurationItems(filter: { ids: $ids }) { nodes {
                name
                latest: incidents(first: 2) { number }
                open: incidents(open: true) { number }
                closed: incidents(open: false, first: 1) { number }
                none: incidents(first: 0) { number }
            } } }",
            json!({ "ids": [ci, other] }),
        )
        .await;
    let newest_first: Vec<&str> = numbers.iter().rev().map(String::as_str).collect();
    for node in data["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        let list = |field: &str| -> Vec<String> {
            node[field]
                .as_array()
                .expect("a list")
                .iter()
                .map(|i| i["number"].as_str().expect("a number").to_owned())
                .collect()
        };
        assert_eq!(list("latest"), newest_first[..2], "{node}");
        assert_eq!(list("open"), newest_first[..3], "{node}");
        assert_eq!(list("closed"), newest_first[3..4], "{node}");
        assert!(list("none").is_empty(), "{node}");
    }
}

#[tokio::test]
async fn relationship_lists_are_cut_and_filtered_and_their_cis_read_whole_when_shown() {
    let app = TestApp::spawn().await;
    let hub = app.create_ci("database", "hub-db", json!({})).await;
    let mut apps = Vec::new();
    for i in 0..4 {
        let id = app
            .create_ci(
                "application",
                &format!("app-{i}"),
                json!({ "version": format!("1.{i}") }),
            )
            .await;
        apps.push(id);
    }
    let mut links: Vec<(&str, &str, &str)> = apps
        .iter()
        .map(|a| (a.as_str(), "depends_on", hub.as_str()))
        .collect();
    links.push((apps[0].as_str(), "uses", hub.as_str()));
    app.relate(&links).await;

    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) {
                all: incoming { source { name } }
                two: incoming(first: 2) { source { name } }
                uses: incoming(types: [\"uses\"]) { type { name } source { name } }
                whole: incoming(first: 1) { source { name description attributes createdAt status } }
            } }",
            json!({ "id": hub }),
        )
        .await;
    let ci = &data["configurationItem"];
    let names = |field: &str| -> Vec<Value> {
        ci[field]
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["source"]["name"].clone())
            .collect()
    };
    assert_eq!(
        names("all"),
        vec![
            json!("app-0"),
            json!("app-1"),
            json!("app-2"),
            json!("app-3"),
            json!("app-0")
        ],
        "oldest first"
    );
    assert_eq!(names("two"), vec![json!("app-0"), json!("app-1")]);
    assert_eq!(
        ci["uses"],
        json!([{ "type": { "name": "uses" }, "source": { "name": "app-0" } }])
    );
    let alone = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { name description attributes createdAt status } }",
            json!({ "id": apps[0] }),
        )
        .await;
    assert_eq!(ci["whole"][0]["source"], alone["configurationItem"]);

    // A summary read beside a list shows the rest once asked, through a fragment too.
    let data = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) {
                incoming(first: 1) { source { name ...More } }
            } }
            fragment More on ConfigurationItem { attributes updatedAt }",
            json!({ "id": hub }),
        )
        .await;
    let source = &data["configurationItem"]["incoming"][0]["source"];
    assert_eq!(source["attributes"], json!({ "version": "1.0" }));
    assert!(source["updatedAt"].is_string());
}
