//! GraphQL over HTTP as its specification says (media types, status codes, `GET`), automatic
//! persisted queries, and the embedded console's routes.

use cmdb::domain::auth::Role;
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn admin(app: &TestApp) -> String {
    app.token(ADMIN, Role::Admin).await
}

fn post(app: &TestApp, token: &str, accept: Option<&str>, body: Value) -> RequestBuilder {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request
}

/// `/graphql` with `params` as its query string.
fn with_params(app: &TestApp, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).expect("encodable");
    format!("{}/graphql?{query}", app.address)
}

async fn answer(request: RequestBuilder) -> (u16, String, Value) {
    let response: Response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.expect("a JSON body");
    (status, media, body)
}

#[tokio::test]
async fn the_response_type_and_status_follow_the_clients_accept() {
    let app = TestApp::spawn().await;
    let token = admin(&app).await;
    let ok = json!({ "query": "{ __typename }" });

    for accept in [None, Some("application/json"), Some("*/*")] {
        let (status, media, body) = answer(post(&app, &token, accept, ok.clone())).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(media.starts_with("application/json"), "{accept:?}: {media}");
        assert_eq!(body["data"]["__typename"], json!("Query"));
    }
    let (status, media, _) = answer(post(&app, &token, Some(GRAPHQL_RESPONSE), ok)).await;
    assert_eq!(status, 200);
    assert!(media.starts_with(GRAPHQL_RESPONSE), "{media}");

    // A document that did not parse, did not validate, or whose variables do not coerce did
    // not run: 4xx and no `data` with the GraphQL response type, 200 with plain JSON.
    let not_run = [
        json!({ "query": "{" }),
        json!({ "query": "{ noSuchField }" }),
        json!({
            "query": "query Q($id: ID!) { configurationItem(id: $id) { id } }",
            "variables": { "id": { "not": "an id" } }
        }),
    ];
    for body in not_run {
        let (status, _, answer_body) =
            answer(post(&app, &token, Some(GRAPHQL_RESPONSE), body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer_body}");
        assert!(answer_body.get("data").is_none(), "{answer_body}");
        assert!(answer_body["errors"][0]["extensions"]["code"].is_string());
        let (status, _, answer_body) =
            answer(post(&app, &token, Some("application/json"), body.clone())).await;
        assert_eq!(status, 200, "{body}: {answer_body}");
        assert!(answer_body.get("data").is_none(), "{answer_body}");
    }
}

#[tokio::test]
async fn requests_that_are_not_graphql_requests_get_4xx() {
    let app = TestApp::spawn().await;
    let token = admin(&app).await;
    let url = format!("{}/graphql", app.address);

    let no_type = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(no_type.status(), 415);

    for body in [
        json!({ "qeury": "{ __typename }" }),
        json!({ "query": { "obj": "ect" } }),
        json!({ "query": 0 }),
        json!({ "query": false }),
        json!({ "query": ["array"] }),
    ] {
        let (status, _, answer_body) = answer(post(&app, &token, None, body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            answer_body["errors"][0]["extensions"]["code"],
            json!("GRAPHQL_PARSE_FAILED")
        );
    }
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = TestApp::spawn().await;
    let token = admin(&app).await;

    let query = app
        .client
        .get(with_params(
            &app,
            &[
                (
                    "query",
                    "query Type($name: String!) { __type(name: $name) { name } }",
                ),
                ("variables", r#"{"name":"ConfigurationItem"}"#),
            ],
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(query.status(), 200);
    let body: Value = query.json().await.expect("JSON");
    assert_eq!(body["data"]["__type"]["name"], json!("ConfigurationItem"));

    let mutation = app
        .client
        .get(with_params(
            &app,
            &[(
                "query",
                r#"mutation { createApiToken(input: { name: "via-get", role: ADMIN }) { token } }"#,
            )],
        ))
        .bearer_auth(&token)
        .header("accept", GRAPHQL_RESPONSE)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("METHOD_NOT_ALLOWED")
    );
    let tokens = app
        .ok("{ apiTokens { name } }", json!({}))
        .await
        .to_string();
    assert!(!tokens.contains("via-get"), "{tokens}");

    // Without a token, a GET is refused before anything runs.
    let anonymous = app
        .client
        .get(with_params(&app, &[("query", "{ __typename }")]))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_persisted_query_is_sent_once_then_named_by_its_hash() {
    let app = TestApp::spawn().await;
    let token = admin(&app).await;
    let document = "query Classes { ciClasses { name } }";
    let hash = cmdb::graphql::sha256_hex(document);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (status, _, unknown) = answer(post(
        &app,
        &token,
        None,
        json!({ "extensions": extensions }),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        json!("PERSISTED_QUERY_NOT_FOUND")
    );
    assert_eq!(
        unknown["errors"][0]["message"],
        json!("PersistedQueryNotFound")
    );

    let (_, _, first) = answer(post(
        &app,
        &token,
        None,
        json!({ "query": document, "extensions": extensions }),
    ))
    .await;
    assert!(first["data"]["ciClasses"].is_array(), "{first}");

    let (_, _, by_hash) = answer(post(
        &app,
        &token,
        None,
        json!({ "extensions": extensions }),
    ))
    .await;
    assert_eq!(by_hash["data"], first["data"]);

    // Over GET too, as clients send persisted queries so that caches can keep them.
    let get = app
        .client
        .get(with_params(
            &app,
            &[("extensions", &extensions.to_string())],
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the server answers");
    let get: Value = get.json().await.expect("JSON");
    assert_eq!(get["data"], first["data"]);

    // A document sent under another document's hash is refused and not kept.
    let (_, _, lying) = answer(post(
        &app,
        &token,
        None,
        json!({ "query": "{ __typename }", "extensions": extensions }),
    ))
    .await;
    assert_eq!(
        lying["errors"][0]["extensions"]["code"],
        json!("VALIDATION")
    );
}

#[tokio::test]
async fn a_persisted_query_runs_under_the_callers_own_role() {
    let app = TestApp::spawn().await;
    let admin_token = admin(&app).await;
    let viewer = app.token("viewer", Role::Viewer).await;
    let document = "{ apiTokens { name } }";
    let extensions = json!({
        "persistedQuery": { "version": 1, "sha256Hash": cmdb::graphql::sha256_hex(document) }
    });
    let (_, _, stored) = answer(post(
        &app,
        &admin_token,
        None,
        json!({ "query": document, "extensions": extensions }),
    ))
    .await;
    assert!(stored["data"]["apiTokens"].is_array(), "{stored}");
    let (status, _, refused) = answer(post(
        &app,
        &viewer,
        None,
        json!({ "extensions": extensions }),
    ))
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN")
    );
}

#[tokio::test]
async fn introspection_lists_every_directive_the_schema_uses() {
    let app = TestApp::spawn().await;
    let data = app
        .ok("{ __schema { directives { name locations } } }", json!({}))
        .await;
    let names: Vec<&str> = data["__schema"]["directives"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    for needed in ["deprecated", "include", "skip", "specifiedBy", "oneOf"] {
        assert!(names.contains(&needed), "{needed} in {names:?}");
    }
    // The checked-in SDL declares exactly the directives the live schema lists.
    let sdl = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql"),
    )
    .expect("schema.graphql");
    let mut declared: Vec<&str> = sdl
        .lines()
        .filter_map(|line| line.strip_prefix("directive @"))
        .filter_map(|rest| rest.split(['(', ' ']).next())
        .collect();
    let mut live = names.clone();
    declared.sort_unstable();
    live.sort_unstable();
    assert_eq!(declared, live);
}

#[tokio::test]
async fn the_console_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("accept", "text/html")
            .send()
    };
    for page in ["/", "/ui", "/ui/ci/42"] {
        let response = get(page).await.expect("the server answers");
        assert_eq!(response.status(), 200, "{page}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(policy.contains("default-src 'self'"), "{page}: {policy}");
        assert!(
            response
                .text()
                .await
                .expect("a body")
                .contains("/ui/assets/app.js"),
            "{page}"
        );
    }
    let script = get("/ui/assets/pages/ci.js").await.expect("answers");
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let tag = script.headers()["etag"].clone();
    let again = app
        .client
        .get(format!("{}/ui/assets/pages/ci.js", app.address))
        .header("if-none-match", tag)
        .send()
        .await
        .expect("answers");
    assert_eq!(again.status(), 304);

    let graphiql = get("/graphql").await.expect("answers");
    assert_eq!(graphiql.status(), 200);
    let page = graphiql.text().await.expect("a body");
    assert!(
        page.contains("/ui/assets/vendor/graphiql/graphiql.min.js"),
        "{page}"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    for missing in ["/ui/assets/nope.js", "/ui/assets/%2e%2e%2fCargo.toml"] {
        let response = get(missing).await.expect("answers");
        assert_eq!(response.status(), 404, "{missing}");
    }
}
