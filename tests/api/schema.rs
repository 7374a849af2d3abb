//! The checked-in SDL matches the live schema, and the schema describes itself.

use serde_json::json;

use crate::helpers::TestApp;

#[test]
fn schema_graphql_matches_the_live_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let live = cmdb::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &live).expect("write schema.graphql");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == live,
        "schema.graphql is out of date with the code. Regenerate it with\n\n    \
         cargo run -- export-schema > schema.graphql\n\n(or UPDATE_SCHEMA=1 cargo test schema) and commit it."
    );
}

#[tokio::test]
async fn every_type_and_field_of_the_api_is_described() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            "{ __schema { types { name kind description fields { name description } inputFields { name description } enumValues { name description } } } }",
            json!({}),
        )
        .await;
    let builtin = ["String", "Int", "Float", "Boolean", "ID"];
    let mut missing = Vec::new();
    for t in data["__schema"]["types"].as_array().expect("types") {
        let name = t["name"].as_str().expect("a name");
        if name.starts_with("__") || builtin.contains(&name) {
            continue;
        }
        if t["description"].as_str().is_none_or(str::is_empty) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for member in t[list].as_array().into_iter().flatten() {
                if member["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{name}.{}", member["name"].as_str().unwrap_or("?")));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:?}");
}
