//! Access control: each role against each kind of operation, anonymous access, token
//! management, and the token command.

use cmdb::domain::auth::Role;
use cmdb::http::HttpOptions;
use cmdb::settings::Settings;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A kind of operation, the query that does it, and the role that first may.
struct Operation {
    name: &'static str,
    query: String,
    allowed: &'static [Role],
}

async fn operations(app: &TestApp) -> Vec<Operation> {
    use Role::*;
    let ci = app.create_ci("application", "target", json!({})).await;
    let everyone = &[Viewer, Discovery, Editor, ChangeManager, Admin];
    vec![
        Operation {
            name: "read",
            query: "{ configurationItems { totalCount } }".into(),
            allowed: everyone,
        },
        Operation {
            name: "nested read",
            query: "{ configurationItems { nodes { ciClass { name } outgoing { target { name } } services { name } } } }".into(),
            allowed: everyone,
        },
        Operation {
            name: "impact analysis",
            query: format!("{{ impactAnalysis(input: {{ ciIds: [\"{ci}\"] }}) {{ totalAffectedCis }} }}"),
            allowed: everyone,
        },
        Operation {
            name: "discovery upsert",
            query: "mutation { upsertConfigurationItems(input: { source: \"probe\", items: [] }) { created } }".into(),
            allowed: &[Discovery, Admin],
        },
        Operation {
            name: "edit a CI",
            query: format!("mutation {{ updateConfigurationItem(id: \"{ci}\", input: {{ owner: \"x\" }}) {{ version }} }}"),
            allowed: &[Editor, ChangeManager, Admin],
        },
        Operation {
            name: "edit a service",
            query: "mutation { createService(input: { name: \"S-ROLE\" }) { id } }".into(),
            allowed: &[Editor, ChangeManager, Admin],
        },
        Operation {
            name: "manage classes",
            query: "mutation { updateCiClass(name: \"container\", input: { label: \"Containers\" }) { name } }".into(),
            allowed: &[Admin],
        },
        Operation {
            name: "manage reconciliation rules",
            query: "mutation { setReconciliationRule(input: { class: \"server\", attribute: \"os\", sources: [\"a\"] }) { attribute } }".into(),
            allowed: &[Admin],
        },
        Operation {
            name: "list tokens",
            query: "{ apiTokens { name } }".into(),
            allowed: &[Admin],
        },
    ]
}

#[tokio::test]
async fn each_role_may_do_exactly_what_it_grants() {
    let app = TestApp::spawn().await;
    let operations = operations(&app).await;
    for role in Role::ALL {
        let token = app.token(&format!("as-{}", role.as_str()), role).await;
        for operation in &operations {
            let query = operation.query.replace("ROLE", role.as_str());
            let response = app.graphql_with(Some(&token), &query, json!({})).await;
            let errors = response.errors();
            if operation.allowed.contains(&role) {
                assert!(
                    errors.is_empty(),
                    "{} should be allowed for {}: {}",
                    operation.name,
                    role.as_str(),
                    response.0
                );
            } else {
                assert_eq!(
                    response.code(),
                    "FORBIDDEN",
                    "{} should be refused to {}",
                    operation.name,
                    role.as_str()
                );
                assert_eq!(response.0["data"], Value::Null, "nothing ran");
            }
        }
    }
}

#[tokio::test]
async fn without_a_valid_token_nothing_is_answered() {
    let app = TestApp::spawn().await;
    let response = app
        .graphql_with(None, "{ configurationItems { totalCount } }", json!({}))
        .await;
    assert_eq!(response.code(), "UNAUTHENTICATED");
    let response = app
        .graphql_with(
            Some("cmdb_not-a-real-token"),
            "{ configurationItems { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "UNAUTHENTICATED");
    let raw = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", "Basic abc")
        .json(&json!({ "query": "{ services { totalCount } }" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(raw.status(), 401);
}

#[tokio::test]
async fn anonymous_reading_can_be_allowed_but_never_writing() {
    let app = TestApp::spawn_with_settings(
        Settings {
            allow_anonymous_read: true,
            ..Settings::default()
        },
        HttpOptions::default(),
    )
    .await;
    let response = app
        .graphql_with(None, "{ configurationItems { totalCount } }", json!({}))
        .await;
    assert!(response.errors().is_empty(), "{}", response.0);
    let response = app
        .graphql_with(
            None,
            "mutation { createService(input: { name: \"S\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(response.code(), "UNAUTHENTICATED");
    let response = app
        .graphql_with(None, "{ apiTokens { name } }", json!({}))
        .await;
    assert_eq!(response.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn admins_manage_tokens_and_a_revoked_token_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let created = app
        .ok(
            "mutation { createApiToken(input: { name: \"reporting\", role: VIEWER }) { token apiToken { name role revokedAt } } }",
            json!({}),
        )
        .await;
    let token = created["createApiToken"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(token.starts_with("cmdb_"));
    assert_eq!(
        created["createApiToken"]["apiToken"],
        json!({ "name": "reporting", "role": "VIEWER", "revokedAt": null })
    );
    let listed = app.ok("{ apiTokens { name role } }", json!({})).await;
    assert!(
        listed["apiTokens"]
            .as_array()
            .expect("tokens")
            .contains(&json!({ "name": "reporting", "role": "VIEWER" }))
    );
    assert!(
        !listed.to_string().contains(&token),
        "a token is never shown again"
    );
    let works = app
        .graphql_with(Some(&token), "{ services { totalCount } }", json!({}))
        .await;
    assert!(works.errors().is_empty());
    let duplicate = app
        .graphql(
            "mutation { createApiToken(input: { name: \"reporting\", role: ADMIN }) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(duplicate.code(), "CONFLICT");

    app.ok(
        "mutation { revokeApiToken(name: \"reporting\") { revokedAt } }",
        json!({}),
    )
    .await;
    let refused = app
        .graphql_with(Some(&token), "{ services { totalCount } }", json!({}))
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    let events = app
        .ok(
            "{ auditEvents(filter: { entityType: API_TOKEN }) { nodes { action actor after } } }",
            json!({}),
        )
        .await;
    let text = events.to_string();
    assert!(
        text.contains("reporting") && !text.contains(&token),
        "audited without the token"
    );
}

#[tokio::test]
async fn the_token_command_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = format!("sqlite://{}/tokens.db?mode=rwc", dir.path().display());
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cmdb"))
            .arg("token")
            .args(args)
            .args(["--database-url", &database])
            .output()
            .expect("the command runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, printed) = run(&["create", "--name", "vcenter-sync", "--role", "discovery"]);
    assert!(ok, "{printed}");
    let token = printed.trim().to_owned();
    assert!(token.starts_with("cmdb_") && token.len() == 69, "{token}");
    let (ok, listed) = run(&["list"]);
    assert!(
        ok && listed.contains("vcenter-sync\tdiscovery") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&token));
    let (ok, _) = run(&["create", "--name", "x", "--role", "root"]);
    assert!(!ok, "an unknown role is refused");
    let (ok, _) = run(&["revoke", "--name", "vcenter-sync"]);
    assert!(ok);
    let (_, listed) = run(&["list"]);
    assert!(listed.contains("revoked"), "{listed}");
}
