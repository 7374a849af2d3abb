//! Attempts to run what a role does not allow by hiding it in the document: root fields
//! wrapped in nested inline fragments or reached through chains of fragment spreads, at
//! every depth up to what the parser takes and beyond; and the bounds on how long a
//! revoked token keeps working elsewhere.

use std::time::Duration;

use cmdb::domain::auth::{Role, TOKEN_CACHE_TTL};
use cmdb::domain::clock::Clock;
use cmdb::http::HttpOptions;
use cmdb::settings::Settings;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const MINT: &str = "createApiToken(input: { name: \"NAME\", role: ADMIN }) { token }";

/// `inner` wrapped in `depth` inline fragments on `on`.
fn nested_inline(operation: &str, on: &str, depth: usize, inner: &str) -> String {
    format!(
        "{operation} {{ {}{inner}{} }}",
        format!("... on {on} {{ ").repeat(depth),
        " }".repeat(depth)
    )
}

/// `inner` reached through a chain of `length` fragment spreads.
fn spread_chain(operation: &str, on: &str, length: usize, inner: &str) -> String {
    let mut document = format!("{operation} {{ ...F0 }}\n");
    for i in 0..length {
        document.push_str(&format!("fragment F{i} on {on} {{ ...F{} }}\n", i + 1));
    }
    document.push_str(&format!("fragment F{length} on {on} {{ {inner} }}\n"));
    document
}

async fn token_exists(app: &TestApp, name: &str) -> bool {
    let listed = app.ok("{ apiTokens { name } }", json!({})).await;
    listed["apiTokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .any(|t| t["name"] == json!(name))
}

/// Sends `document` as `token` and checks that it was refused as a whole; returns the code.
async fn refused(app: &TestApp, token: Option<&str>, document: &str) -> String {
    let response = app.graphql_with(token, document, json!({})).await;
    let code = response.code();
    assert_eq!(
        response.0["data"],
        Value::Null,
        "nothing ran: {}",
        response.0
    );
    assert!(
        !response.0.to_string().contains("cmdb_"),
        "no token leaked: {}",
        response.0
    );
    code
}

#[tokio::test]
async fn a_viewer_cannot_mint_a_token_through_nested_inline_fragments_at_any_depth() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer", Role::Viewer).await;
    let mut deepest_forbidden = 0;
    for depth in [
        1, 16, 17, 32, 33, 50, 58, 59, 60, 61, 62, 63, 64, 100, 1_000,
    ] {
        let name = format!("evil-inline-{depth}");
        let document = nested_inline("mutation", "Mutation", depth, &MINT.replace("NAME", &name));
        let code = refused(&app, Some(&viewer), &document).await;
        assert!(
            ["FORBIDDEN", "LIMIT_EXCEEDED", "GRAPHQL_PARSE_FAILED"].contains(&code.as_str()),
            "depth {depth}: {code}"
        );
        if code == "FORBIDDEN" {
            deepest_forbidden = depth;
        }
        assert!(
            !token_exists(&app, &name).await,
            "depth {depth} minted a token"
        );
    }
    // Every depth the server was willing to parse was decided on, not skipped.
    assert!(
        deepest_forbidden >= 59,
        "deepest decided: {deepest_forbidden}"
    );
}

#[tokio::test]
async fn a_viewer_cannot_mint_a_token_through_a_chain_of_fragment_spreads() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer", Role::Viewer).await;
    for length in [1, 16, 17, 100, 1_000] {
        let name = format!("evil-spread-{length}");
        let document = spread_chain("mutation", "Mutation", length, &MINT.replace("NAME", &name));
        let code = refused(&app, Some(&viewer), &document).await;
        assert_eq!(code, "FORBIDDEN", "chain of {length}");
        assert!(
            !token_exists(&app, &name).await,
            "chain of {length} minted a token"
        );
    }
}

#[tokio::test]
async fn a_viewer_cannot_read_tokens_however_the_query_is_wrapped() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer", Role::Viewer).await;
    let mut deepest_forbidden = 0;
    for depth in [17, 40, 59, 60, 61, 62, 64, 100, 1_000] {
        let document = nested_inline("query", "Query", depth, "apiTokens { name }");
        let code = refused(&app, Some(&viewer), &document).await;
        assert!(
            ["FORBIDDEN", "LIMIT_EXCEEDED", "GRAPHQL_PARSE_FAILED"].contains(&code.as_str()),
            "depth {depth}: {code}"
        );
        if code == "FORBIDDEN" {
            deepest_forbidden = depth;
        }
        let document = spread_chain("query", "Query", depth, "apiTokens { name }");
        assert_eq!(
            refused(&app, Some(&viewer), &document).await,
            "FORBIDDEN",
            "chain of {depth}"
        );
    }
    // Every depth the server was willing to parse was decided on, not skipped.
    assert!(
        deepest_forbidden >= 59,
        "deepest decided: {deepest_forbidden}"
    );
    // Mixing an allowed field with a forbidden one refuses the whole document.
    let document = nested_inline(
        "query",
        "Query",
        20,
        "services { totalCount } apiTokens { name }",
    );
    assert_eq!(refused(&app, Some(&viewer), &document).await, "FORBIDDEN");
}

#[tokio::test]
async fn anonymous_readers_cannot_mint_tokens_through_fragments() {
    let app = TestApp::spawn_with_settings(
        Settings {
            allow_anonymous_read: true,
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    for depth in [17, 60] {
        let name = format!("anon-{depth}");
        let document = nested_inline("mutation", "Mutation", depth, &MINT.replace("NAME", &name));
        assert_eq!(refused(&app, None, &document).await, "UNAUTHENTICATED");
        let document = spread_chain("mutation", "Mutation", depth, &MINT.replace("NAME", &name));
        assert_eq!(refused(&app, None, &document).await, "UNAUTHENTICATED");
        assert!(!token_exists(&app, &name).await);
    }
}

#[tokio::test]
async fn a_revocation_reaches_another_instance_within_the_token_cache_lifetime() {
    let clock = Clock::manual();
    let app = TestApp::spawn_with_settings(
        Settings {
            clock: clock.clone(),
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    let other = app.another_instance().await;
    let token = app.token("soon-revoked", Role::Viewer).await;
    let read = "{ services { totalCount } }";
    assert!(
        other
            .graphql_with(Some(&token), read, json!({}))
            .await
            .errors()
            .is_empty()
    );
    app.ok(
        "mutation { revokeApiToken(name: \"soon-revoked\") { revokedAt } }",
        json!({}),
    )
    .await;
    // At once on the instance that revoked it.
    assert_eq!(
        app.graphql_with(Some(&token), read, json!({})).await.code(),
        "UNAUTHENTICATED"
    );
    // The other instance may trust its cached check a little longer (until it hears of
    // the revocation through the database, or its cache lifetime passes)...
    clock.advance(TOKEN_CACHE_TTL - Duration::from_millis(1));
    other.graphql_with(Some(&token), read, json!({})).await;
    // ...and not a moment longer.
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        other
            .graphql_with(Some(&token), read, json!({}))
            .await
            .code(),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn metrics_can_require_a_token_and_keep_client_names_bounded() {
    let app = TestApp::spawn_with_settings(
        Settings {
            metrics_require_token: true,
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    let url = format!("{}/metrics", app.address);
    let anonymous = app.client.get(&url).send().await.expect("an answer");
    assert_eq!(anonymous.status(), 401);
    // Names sent without a valid token never become labels.
    for i in 0..5 {
        app.graphql_with(
            None,
            &format!("query Junk{i} {{ services {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    }
    let viewer = app.token("scraper", Role::Viewer).await;
    app.graphql_with(
        Some(&viewer),
        "query Known { services { totalCount } }",
        json!({}),
    )
    .await;
    let text = app
        .client
        .get(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("text");
    // Labels say what ran, from the schema: never a name a client chose.
    assert!(text.contains("operation=\"query:services\""), "{text}");
    assert!(!text.contains("Junk"), "{text}");
    assert!(!text.contains("Known"), "{text}");
    for i in 0..50 {
        app.graphql_with(
            Some(&viewer),
            &format!("query Spam{i} {{ madeUp{i} {{ x }} }}"),
            json!({}),
        )
        .await;
    }
    let text = app
        .client
        .get(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("madeUp") && !text.contains("Spam"), "{text}");
    assert!(text.contains("operation=\"other\""), "{text}");
}

#[tokio::test]
async fn the_audit_trail_of_tokens_is_for_admins_only() {
    let app = TestApp::spawn().await;
    app.token("robot", Role::Discovery).await;
    let viewer = app.token("reader", Role::Viewer).await;
    let asked = app
        .graphql_with(
            Some(&viewer),
            "{ auditEvents(filter: { entityType: API_TOKEN }) { nodes { entityId } } }",
            json!({}),
        )
        .await;
    assert_eq!(asked.code(), "FORBIDDEN");
    let all = app
        .graphql_with(
            Some(&viewer),
            "{ auditEvents(first: 100) { totalCount nodes { entityType } } }",
            json!({}),
        )
        .await;
    let types: Vec<Value> = all.data()["auditEvents"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["entityType"].clone())
        .collect();
    assert!(!types.contains(&json!("API_TOKEN")), "{types:?}");
    let admin = app
        .ok(
            "{ auditEvents(filter: { entityType: API_TOKEN }) { totalCount } }",
            json!({}),
        )
        .await;
    assert!(
        admin["auditEvents"]["totalCount"]
            .as_u64()
            .unwrap_or_default()
            >= 2,
        "{admin}"
    );
}
