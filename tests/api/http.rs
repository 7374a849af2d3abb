//! The HTTP surface: health, GraphiQL, CORS, body limit, and the binary's start and
//! graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cmdb::http::HttpOptions;
use cmdb::limits::Limits;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_is_ok_while_the_database_answers_and_503_after() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], json!("ok"));

    app.db.clone().close().await.expect("close the pool");
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], json!("unavailable"));
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("a body").contains("graphiql"));
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let app = TestApp::spawn_with(
        Limits::default(),
        HttpOptions {
            cors_origins: vec!["https://cmdb-ui.example.com".into()],
            ..Default::default()
        },
    )
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://cmdb-ui.example.com")
        .await
        .expect("an answer");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://cmdb-ui.example.com"[..])
    );
    let refused = preflight("https://evil.example.com")
        .await
        .expect("an answer");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_limit_exceeded() {
    let app = TestApp::spawn_with(
        Limits::default(),
        HttpOptions {
            max_body_bytes: 4 * 1024,
            ..Default::default()
        },
    )
    .await;
    let query = format!(
        "{{ configurationItems(filter: {{ owner: \"{}\" }}) {{ totalCount }} }}",
        "x".repeat(8 * 1024)
    );
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("LIMIT_EXCEEDED")
    );
}

#[tokio::test]
async fn the_binary_migrates_serves_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token_file = dir.path().join("demo.token");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--demo-token-file",
        ])
        .arg(&token_file)
        .env(
            "CMDB_DATABASE_URL",
            format!("sqlite://{}/cmdb.db?mode=rwc", dir.path().display()),
        )
        .env("CMDB_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut address = None;
    let mut log = Vec::new();
    while address.is_none() {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(message) = entry["message"].as_str()
            && let Some(rest) = message.strip_prefix("listening on http://")
        {
            address = rest.split('/').next().map(str::to_owned);
        }
        log.push(entry);
    }
    assert!(
        log.iter()
            .any(|e| e["message"] == json!("demo estate loaded"))
    );
    let base = format!("http://{}", address.expect("an address"));
    let client = cmdb::http_client();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let token = std::fs::read_to_string(&token_file).expect("the demo writes its admin token");
    let token = token.trim();
    assert!(
        log.iter().all(|e| !e.to_string().contains(token)),
        "the token is never in the log"
    );
    let anonymous = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ services { totalCount } }" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        anonymous.status(),
        401,
        "anonymous access is off by default"
    );
    let data: serde_json::Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "query Count { services { totalCount } }" }))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(data["data"]["services"]["totalCount"], json!(4));
    let operation_logged = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the operation is logged");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == json!("graphql operation") && entry.to_string().contains("Count") {
            break entry;
        }
    };
    assert!(
        operation_logged["duration_ms"].is_number(),
        "{operation_logged}"
    );
    assert!(
        operation_logged.to_string().contains("Count"),
        "{operation_logged}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("the server exits");
    assert!(exit.success(), "a clean exit after SIGTERM: {exit}");
}

#[test]
fn export_schema_stops_quietly_when_its_reader_does() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmdb"))
        .arg("export-schema")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Read a little, then hang up, as `cmdb export-schema | head` does.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut start = [0u8; 64];
    stdout.read_exact(&mut start).expect("the schema starts");
    drop(stdout);
    let output = child.wait_with_output().expect("the binary exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_config_file_sets_what_flags_and_the_environment_leave_unset() {
    let dir = tempfile::tempdir().expect("a directory");
    let config = dir.path().join("cmdb.toml");
    let database = format!("sqlite://{}/from-config.db?mode=rwc", dir.path().display());
    std::fs::write(&config, format!("database-url = \"{database}\"\n")).expect("written");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cmdb"))
            .args(args)
            .env_remove("CMDB_DATABASE_URL")
            .env("CMDB_CONFIG", &config)
            // Were the file ignored, the default database would land here, not in the repo.
            .current_dir(dir.path())
            .output()
            .expect("the binary runs")
    };
    let created = run(&[
        "token",
        "create",
        "--name",
        "from-config",
        "--role",
        "viewer",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        dir.path().join("from-config.db").exists(),
        "the file's database was used"
    );
    let listed = run(&["token", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("from-config"));

    std::fs::write(&config, "databse-url = \"x\"\n").expect("written");
    let typo = run(&["token", "list"]);
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("unknown setting `databse-url`"));
}
