//! Keyset pagination: forward and backward, stable cursors, limits.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $order: ConfigurationItemOrder) {
    configurationItems(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
        totalCount
        edges { cursor node { name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } }";

fn names(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("a name").to_owned())
        .collect()
}

async fn page(app: &TestApp, variables: Value) -> Value {
    app.ok(PAGE, variables).await["configurationItems"].clone()
}

async fn seed(app: &TestApp, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("ci-{i:02}");
        app.create_ci("application", &name, json!({})).await;
        names.push(name);
    }
    names
}

#[tokio::test]
async fn pages_walk_forward_then_backward_over_the_same_items() {
    let app = TestApp::spawn().await;
    let all = seed(&app, 25).await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = page(&app, json!({ "first": 10, "after": after })).await;
        assert_eq!(page["totalCount"], json!(25));
        seen.extend(names(&page));
        assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(after.is_some()));
        let more = page["pageInfo"]["hasNextPage"].as_bool().expect("a flag");
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        pages.push(page);
        if !more {
            break;
        }
    }
    assert_eq!(seen, all);
    assert_eq!(
        pages.iter().map(|p| names(p).len()).collect::<Vec<_>>(),
        [10, 10, 5]
    );

    let mut back = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = page(&app, json!({ "last": 10, "before": before })).await;
        let mut chunk = names(&page);
        chunk.extend(back);
        back = chunk;
        assert_eq!(page["pageInfo"]["hasNextPage"], json!(before.is_some()));
        if !page["pageInfo"]["hasPreviousPage"]
            .as_bool()
            .expect("a flag")
        {
            break;
        }
        before = page["pageInfo"]["startCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(back, all);

    // A cursor taken from the middle picks up where it was, from both sides.
    let middle = pages[1]["edges"][4]["cursor"].clone();
    assert_eq!(
        names(&page(&app, json!({ "first": 3, "after": middle })).await),
        ["ci-15", "ci-16", "ci-17"]
    );
    assert_eq!(
        names(&page(&app, json!({ "last": 3, "before": middle })).await),
        ["ci-11", "ci-12", "ci-13"]
    );
}

#[tokio::test]
async fn cursors_stay_valid_when_items_are_added_or_removed_before_them() {
    let app = TestApp::spawn().await;
    seed(&app, 6).await;
    let first = page(&app, json!({ "first": 3 })).await;
    let cursor = first["pageInfo"]["endCursor"].clone();
    app.create_ci("application", "ci-00a", json!({})).await;
    let ids = app
        .ok(
            "{ configurationItems(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await["configurationItems"]["nodes"][0]["id"]
        .clone();
    app.ok(
        "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
        json!({ "id": ids }),
    )
    .await;
    let next = page(&app, json!({ "first": 3, "after": cursor })).await;
    assert_eq!(names(&next), ["ci-03", "ci-04", "ci-05"]);
}

#[tokio::test]
async fn other_orders_paginate_and_reject_cursors_of_another_order() {
    let app = TestApp::spawn().await;
    let all = seed(&app, 7).await;
    let order = json!({ "field": "CREATED_AT", "direction": "DESC" });
    let first = page(&app, json!({ "first": 4, "order": order })).await;
    let second = page(
        &app,
        json!({ "first": 4, "order": order, "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    let mut seen = names(&first);
    seen.extend(names(&second));
    let mut expected = all.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let response = app
        .graphql(
            PAGE,
            json!({ "first": 4, "after": first["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app
        .graphql(PAGE, json!({ "first": 4, "after": "garbage" }))
        .await;
    assert_eq!(response.code(), "VALIDATION");
}

#[tokio::test]
async fn page_size_limits_are_enforced() {
    let app = TestApp::spawn_with(
        cmdb::limits::Limits {
            max_page_size: 20,
            default_page_size: 5,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    seed(&app, 7).await;
    let response = app.graphql(PAGE, json!({ "first": 21 })).await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    assert!(response.message().contains("max_page_size"));
    let response = app.graphql(PAGE, json!({ "last": 21 })).await;
    assert_eq!(response.code(), "LIMIT_EXCEEDED");
    let response = app.graphql(PAGE, json!({ "first": 2, "last": 2 })).await;
    assert_eq!(response.code(), "VALIDATION");
    let response = app.graphql(PAGE, json!({ "first": -1 })).await;
    assert_eq!(response.code(), "VALIDATION");
    let default_page = page(&app, json!({})).await;
    assert_eq!(
        names(&default_page).len(),
        5,
        "the default page size applies"
    );
    assert_eq!(default_page["pageInfo"]["hasNextPage"], json!(true));
}

/// A cursor a client made up: any ordering tag, any types, any values.
fn forged_cursor() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let tag = prop_oneof![
        Just("ci:name:asc".to_owned()),
        Just("ci:created:desc".to_owned()),
        Just("audit:desc".to_owned()),
        Just("relationship:created:asc".to_owned()),
        Just("incident:opened:desc".to_owned()),
        Just("change:created:desc".to_owned()),
        Just("service:name:asc".to_owned()),
        Just("customer:name:asc".to_owned()),
        ".{0,12}",
    ];
    let value = prop_oneof![
        any::<String>().prop_map(Value::from),
        "[a-z\u{0}]{0,700}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        (-300_000i32..300_000, 1u32..13)
            .prop_map(|(y, m)| json!(format!("{y:+}-{m:02}-01T00:00:00Z"))),
        Just(json!("2026-01-01T00:00:00Z")),
        Just(json!("00000000-0000-0000-0000-000000000000")),
        Just(json!({ "nested": [1, 2] })),
    ];
    let kind = prop_oneof![
        Just("Text"),
        Just("Time"),
        Just("Int"),
        Just("Uuid"),
        Just("Other")
    ];
    let well_typed = prop_oneof![
        any::<i64>().prop_map(|v| json!({ "t": "Int", "v": v })),
        "[a-z\u{0}]{0,600}".prop_map(|v| json!({ "t": "Text", "v": v })),
        (-300_000i32..300_000)
            .prop_map(|y| json!({ "t": "Time", "v": format!("{y:+}-01-01T00:00:00Z") })),
        Just(json!({ "t": "Time", "v": "2026-01-01T00:00:00Z" })),
        Just(json!({ "t": "Uuid", "v": "00000000-0000-0000-0000-000000000000" })),
    ];
    let key = prop_oneof![
        well_typed,
        (kind.clone(), value.clone()).prop_map(|(t, v)| json!({ "t": t, "v": v })),
    ];
    (tag, proptest::option::of(key.clone()), key).prop_map(|(o, k, i)| match k {
        Some(k) => json!({ "o": o, "k": k, "i": i }),
        None => json!({ "o": o, "i": i }),
    })
}

#[tokio::test]
async fn forged_cursors_are_refused_as_validation_errors_on_every_list() {
    use base64::Engine;
    use proptest::strategy::{Strategy, ValueTree};
    let app = TestApp::spawn().await;
    seed(&app, 3).await;
    // Each list with the ordering tag of its default order.
    let lists = [
        ("configurationItems", "ci:name:asc"),
        ("auditEvents", "audit:desc"),
        ("relationships", "relationship:created:asc"),
        ("incidents", "incident:opened:desc"),
        ("changes", "change:created:desc"),
        ("services", "service:name:asc"),
        ("customers", "customer:name:asc"),
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = forged_cursor();
    for case in 0..150 {
        let forged = strategy.new_tree(&mut runner).expect("a cursor").current();
        for (n, (list, tag)) in lists.iter().enumerate() {
            // Every list for the first cases, then one list per case.
            if case >= 10 && case % lists.len() != n {
                continue;
            }
            // As forged, and with the list's own ordering so that the values are what is
            // tested.
            let mut own = forged.clone();
            own["o"] = json!(tag);
            for (cursor, direction) in [(&forged, "after"), (&own, "after"), (&own, "before")] {
                let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(cursor).expect("JSON"));
                let response = app
                    .graphql(
                        &format!("query($c: String) {{ {list}(first: 2, {direction}: $c) {{ totalCount }} }}"),
                        json!({ "c": text }),
                    )
                    .await;
                let errors = response.errors();
                if let Some(error) = errors.first() {
                    assert_eq!(
                        error["extensions"]["code"],
                        json!("VALIDATION"),
                        "{list} {direction} {cursor}: {}",
                        response.0
                    );
                }
            }
        }
    }
}
