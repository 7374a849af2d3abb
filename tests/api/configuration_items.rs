//! Creating, reading, filtering, updating, retiring and deleting configuration items.

use serde_json::json;

use crate::helpers::{CiBuilder, TestApp};

const CI_FIELDS: &str = "id name description status environment criticality owner attributes version createdAt updatedAt ciClass { name }";

async fn read_ci(app: &TestApp, id: &str) -> serde_json::Value {
    let data = app
        .ok(
            &format!("query($id: ID!) {{ configurationItem(id: $id) {{ {CI_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    data["configurationItem"].clone()
}

async fn create_required_class(app: &TestApp) {
    app.ok(
        r#"mutation { createCiClass(input: {
            name: "appliance", parent: "server",
            attributes: [
                { name: "rack_units", type: INTEGER, required: true },
                { name: "warranty_until", type: DATETIME }
            ]
        }) { name } }"#,
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn a_created_ci_reads_back_with_all_its_fields() {
    let app = TestApp::spawn().await;
    let id = CiBuilder::new("server", " esx-42 ")
        .with("description", json!("Hypervisor in rack 4"))
        .with("environment", json!("production"))
        .with("criticality", json!("HIGH"))
        .with("owner", json!("platform-team"))
        .attributes(json!({ "serial_number": "SN-42", "cpu_count": 32, "memory_gb": 256.5 }))
        .create(&app)
        .await;

    let ci = read_ci(&app, &id).await;
    assert_eq!(ci["id"], json!(id));
    assert_eq!(ci["name"], json!("esx-42"), "names are trimmed");
    assert_eq!(ci["ciClass"]["name"], json!("server"));
    assert_eq!(ci["status"], json!("IN_SERVICE"), "the default status");
    assert_eq!(ci["environment"], json!("production"));
    assert_eq!(ci["criticality"], json!("HIGH"));
    assert_eq!(ci["owner"], json!("platform-team"));
    assert_eq!(ci["version"], json!(1));
    assert_eq!(
        ci["attributes"],
        json!({ "serial_number": "SN-42", "cpu_count": 32, "memory_gb": 256.5 })
    );
    assert_eq!(ci["createdAt"], ci["updatedAt"]);
}

#[tokio::test]
async fn an_update_with_the_current_version_applies_and_bumps_the_version() {
    let app = TestApp::spawn().await;
    let id = app
        .create_ci("application", "billing", json!({ "version": "1.0" }))
        .await;
    let before = read_ci(&app, &id).await;

    let data = app
        .ok(
            &format!(
                "mutation($id: ID!) {{ updateConfigurationItem(id: $id, expectedVersion: 1, input: {{
                    name: \"billing-api\", status: UNDER_MAINTENANCE, owner: \"billing-team\",
                    attributes: {{ version: \"1.1\" }} }}) {{ {CI_FIELDS} }} }}"
            ),
            json!({ "id": id }),
        )
        .await;
    let after = &data["updateConfigurationItem"];
    assert_eq!(after["version"], json!(2));
    assert_eq!(after["name"], json!("billing-api"));
    assert_eq!(after["status"], json!("UNDER_MAINTENANCE"));
    assert_eq!(after["owner"], json!("billing-team"));
    assert_eq!(after["attributes"], json!({ "version": "1.1" }));
    assert_eq!(after["createdAt"], before["createdAt"]);
    assert_ne!(after["updatedAt"], before["updatedAt"]);
    assert_eq!(&read_ci(&app, &id).await, after);
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_ci("application", "billing", json!({})).await;
    app.ok(
        "mutation($id: ID!) { updateConfigurationItem(id: $id, expectedVersion: 1, input: { owner: \"a\" }) { version } }",
        json!({ "id": id }),
    )
    .await;
    let before = read_ci(&app, &id).await;

    let response = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, expectedVersion: 1, input: { owner: \"b\" }) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(response.code(), "VERSION_MISMATCH");
    assert_eq!(response.error()["extensions"]["expectedVersion"], json!(1));
    assert_eq!(response.error()["extensions"]["actualVersion"], json!(2));
    assert_eq!(read_ci(&app, &id).await, before);
}

#[tokio::test]
async fn an_update_that_changes_nothing_writes_nothing() {
    let app = TestApp::spawn().await;
    let id = app
        .create_ci("application", "billing", json!({ "version": "1.0" }))
        .await;
    let before = read_ci(&app, &id).await;
    let data = app
        .ok(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { name: \"billing\", attributes: { version: \"1.0\" } }) { version updatedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["updateConfigurationItem"]["version"], json!(1));
    assert_eq!(
        data["updateConfigurationItem"]["updatedAt"],
        before["updatedAt"]
    );
    let history = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { history { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        history["configurationItem"]["history"]["totalCount"],
        json!(1)
    );
}

#[tokio::test]
async fn null_clears_an_optional_field_and_an_absent_field_stays() {
    let app = TestApp::spawn().await;
    let id = CiBuilder::new("database", "orders-db")
        .with("owner", json!("dba"))
        .with("environment", json!("staging"))
        .create(&app)
        .await;
    let data = app
        .ok(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { owner: null }) { owner environment } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["updateConfigurationItem"],
        json!({ "owner": null, "environment": "staging" })
    );
}

#[tokio::test]
async fn an_attribute_patch_sets_and_removes_single_attributes() {
    let app = TestApp::spawn().await;
    let id = app
        .create_ci(
            "database",
            "orders-db",
            json!({ "engine": "postgresql", "port": 5432 }),
        )
        .await;
    let data = app
        .ok(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { attributePatch: { port: null, engine_version: \"16\" } }) { attributes } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["updateConfigurationItem"]["attributes"],
        json!({ "engine": "postgresql", "engine_version": "16" })
    );
}

#[tokio::test]
async fn a_missing_required_attribute_is_refused_naming_the_attribute() {
    let app = TestApp::spawn().await;
    create_required_class(&app).await;
    let response = CiBuilder::new("appliance", "fw-01")
        .attributes(json!({ "serial_number": "X" }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(
        response.message().contains("rack_units"),
        "{}",
        response.message()
    );
    assert_eq!(
        response.error()["extensions"]["field"],
        json!("attributes.rack_units")
    );
    assert_eq!(app.ci_count().await, 0, "nothing was stored");
}

#[tokio::test]
async fn an_attribute_of_the_wrong_type_is_refused_naming_the_attribute() {
    let app = TestApp::spawn().await;
    create_required_class(&app).await;
    let response = CiBuilder::new("appliance", "fw-01")
        .attributes(json!({ "rack_units": "two" }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(response.message().contains("rack_units"));
    assert!(response.message().contains("integer"));

    // Inherited from `computer` through `server`: cpu_count must be an integer too.
    let response = CiBuilder::new("appliance", "fw-01")
        .attributes(json!({ "rack_units": 2, "cpu_count": "many" }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(response.message().contains("cpu_count"));

    let response = CiBuilder::new("appliance", "fw-01")
        .attributes(json!({ "rack_units": 2, "warranty_until": "next year" }))
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert!(response.message().contains("warranty_until"));

    let id = CiBuilder::new("appliance", "fw-01")
        .attributes(json!({ "rack_units": 2, "warranty_until": "2028-06-30T00:00:00Z" }))
        .create(&app)
        .await;
    let response = app
        .graphql(
            "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { attributePatch: { rack_units: 1.5 } }) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION", "updates are validated too");
}

#[tokio::test]
async fn an_unknown_class_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let response = CiBuilder::new("spaceship", "enterprise")
        .try_create(&app)
        .await;
    assert_eq!(response.code(), "VALIDATION");
    assert_eq!(response.error()["extensions"]["field"], json!("class"));
}

#[tokio::test]
async fn retiring_marks_the_ci_retired_once() {
    let app = TestApp::spawn().await;
    let id = app.create_ci("virtual_machine", "old-vm", json!({})).await;
    let retire = "mutation($id: ID!) { retireConfigurationItem(id: $id) { status version } }";
    let first = app.ok(retire, json!({ "id": id })).await;
    assert_eq!(
        first["retireConfigurationItem"],
        json!({ "status": "RETIRED", "version": 2 })
    );
    let again = app.ok(retire, json!({ "id": id })).await;
    assert_eq!(
        again["retireConfigurationItem"],
        json!({ "status": "RETIRED", "version": 2 })
    );
}

#[tokio::test]
async fn deleting_a_ci_removes_its_relationships_and_memberships() {
    let app = TestApp::spawn().await;
    let app_ci = app.create_ci("application", "shop", json!({})).await;
    let db = app.create_ci("database", "shop-db", json!({})).await;
    let vm = app.create_ci("virtual_machine", "vm-1", json!({})).await;
    app.relate(&[(&app_ci, "depends_on", &db), (&db, "runs_on", &vm)])
        .await;
    let service = app.create_service("Shop", &[&app_ci, &db]).await;

    let data = app
        .ok(
            "mutation($id: ID!) { deleteConfigurationItem(id: $id) }",
            json!({ "id": db }),
        )
        .await;
    assert_eq!(data["deleteConfigurationItem"], json!(db));
    assert_eq!(app.relationship_count().await, 0);
    let data = app
        .ok(
            "query($id: ID!) { service(id: $id) { version members { name } } }",
            json!({ "id": service }),
        )
        .await;
    assert_eq!(data["service"]["members"], json!([{ "name": "shop" }]));
    assert_eq!(data["service"]["version"], json!(2));
    let response = app
        .graphql(
            "query($id: ID!) { configurationItem(id: $id) { id } }",
            json!({ "id": db }),
        )
        .await;
    assert_eq!(response.code(), "NOT_FOUND");
    assert_eq!(response.0["data"]["configurationItem"], json!(null));
}

async fn names(app: &TestApp, filter: serde_json::Value) -> Vec<String> {
    let data = app
        .ok(
            "query($filter: ConfigurationItemFilter) { configurationItems(filter: $filter, first: 100) { nodes { name } } }",
            json!({ "filter": filter }),
        )
        .await;
    data["configurationItems"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[tokio::test]
async fn filters_select_by_class_with_subclasses_and_combine() {
    let app = TestApp::spawn().await;
    CiBuilder::new("server", "esx-01")
        .with("environment", json!("production"))
        .with("owner", json!("platform"))
        .create(&app)
        .await;
    CiBuilder::new("virtual_machine", "web-01")
        .with("environment", json!("production"))
        .with("owner", json!("web"))
        .create(&app)
        .await;
    CiBuilder::new("virtual_machine", "web-02")
        .with("environment", json!("staging"))
        .with("owner", json!("web"))
        .with("status", json!("PLANNED"))
        .create(&app)
        .await;
    CiBuilder::new("database", "db-01")
        .with("environment", json!("production"))
        .with("criticality", json!("CRITICAL"))
        .create(&app)
        .await;

    assert_eq!(
        names(&app, json!({ "class": "computer" })).await,
        ["esx-01", "web-01", "web-02"]
    );
    assert_eq!(
        names(&app, json!({ "class": "virtual_machine" })).await,
        ["web-01", "web-02"]
    );
    assert_eq!(
        names(&app, json!({ "environment": "production" })).await,
        ["db-01", "esx-01", "web-01"]
    );
    assert_eq!(
        names(
            &app,
            json!({ "class": "computer", "environment": "production", "owner": "web" })
        )
        .await,
        ["web-01"]
    );
    assert_eq!(
        names(&app, json!({ "status": ["PLANNED"] })).await,
        ["web-02"]
    );
    assert_eq!(
        names(
            &app,
            json!({ "status": ["IN_SERVICE", "PLANNED"], "owner": "web" })
        )
        .await,
        ["web-01", "web-02"]
    );
    assert_eq!(
        names(&app, json!({ "criticality": "CRITICAL" })).await,
        ["db-01"]
    );
    let response = app
        .graphql(
            "{ configurationItems(filter: { class: \"nope\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "VALIDATION");
}

#[tokio::test]
async fn name_filters_match_exactly_by_prefix_or_by_part_ignoring_case() {
    let app = TestApp::spawn().await;
    for name in ["Web-01", "web-02", "app-web", "db_1", "db%2"] {
        app.create_ci("application", name, json!({})).await;
    }
    assert_eq!(
        names(&app, json!({ "name": { "equals": "web-02" } })).await,
        ["web-02"]
    );
    assert_eq!(
        names(&app, json!({ "name": { "equals": "WEB-02" } })).await,
        ["web-02"],
        "equals ignores case too, as the README says"
    );
    assert_eq!(
        names(&app, json!({ "name": { "equals": "web" } })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, json!({ "name": { "startsWith": "WEB" } })).await,
        ["Web-01", "web-02"]
    );
    assert_eq!(
        names(&app, json!({ "name": { "contains": "web" } })).await,
        ["Web-01", "app-web", "web-02"]
    );
    assert_eq!(
        names(&app, json!({ "name": { "contains": "_" } })).await,
        ["db_1"],
        "wildcards are literal"
    );
    assert_eq!(
        names(&app, json!({ "name": { "contains": "%" } })).await,
        ["db%2"]
    );
}

#[tokio::test]
async fn attribute_filters_match_strings_numbers_and_booleans() {
    let app = TestApp::spawn().await;
    app.create_ci(
        "server",
        "a",
        json!({ "os": "linux", "cpu_count": 8, "virtualised": true }),
    )
    .await;
    app.create_ci("server", "b", json!({ "os": "linux", "cpu_count": 16 }))
        .await;
    app.create_ci("server", "c", json!({ "os": "windows", "cpu_count": 8 }))
        .await;
    let by = |name: &str, value: serde_json::Value| json!({ "attributes": [{ "name": name, "equals": value }] });
    assert_eq!(names(&app, by("os", json!("linux"))).await, ["a", "b"]);
    assert_eq!(names(&app, by("cpu_count", json!(8))).await, ["a", "c"]);
    assert_eq!(names(&app, by("virtualised", json!(true))).await, ["a"]);
    assert_eq!(
        names(&app, by("os", json!("8"))).await,
        Vec::<String>::new(),
        "types must match"
    );
    assert_eq!(
        names(
            &app,
            json!({ "attributes": [{ "name": "os", "equals": "linux" }, { "name": "cpu_count", "equals": 16 }] })
        )
        .await,
        ["b"]
    );
}

#[tokio::test]
async fn updated_since_and_service_filters_select_recent_changes_and_members() {
    let app = TestApp::spawn().await;
    let old = app.create_ci("application", "old", json!({})).await;
    let member = app.create_ci("application", "member", json!({})).await;
    app.create_service("Shop", &[&member]).await;
    // "Since" is the server's own time of the first later change: no waiting on the clock.
    let new = app.create_ci("application", "new", json!({})).await;
    let since = app
        .ok(
            "query($id: ID!) { configurationItem(id: $id) { updatedAt } }",
            json!({ "id": new }),
        )
        .await["configurationItem"]["updatedAt"]
        .as_str()
        .expect("a time")
        .to_owned();
    app.ok(
        "mutation($id: ID!) { updateConfigurationItem(id: $id, input: { owner: \"x\" }) { id } }",
        json!({ "id": old }),
    )
    .await;
    assert_eq!(
        names(&app, json!({ "updatedSince": since })).await,
        ["new", "old"]
    );
    let service_id = app.ok("{ services { nodes { id } } }", json!({})).await["services"]["nodes"]
        [0]["id"]
        .clone();
    assert_eq!(
        names(&app, json!({ "serviceId": service_id })).await,
        ["member"]
    );
}
