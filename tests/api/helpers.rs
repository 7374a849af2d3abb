//! The test harness: [`TestApp`] boots a server on its own database; builders create test
//! data through the API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cmdb::db::{self, DbConfig};
use cmdb::domain::audit::Actor;
use cmdb::domain::auth::Role;
use cmdb::http::{AppState, HttpOptions, app};
use cmdb::limits::Limits;
use cmdb::settings::Settings;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

mod builders;
pub use builders::*;

/// The environment variable that selects PostgreSQL.
pub const DATABASE_ENV: &str = "CMDB_TEST_DATABASE_URL";

/// Keeps a test's database alive, and removes it when the test ends.
pub enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { url, schema } = self {
            let (url, schema) = (url.clone(), schema.clone());
            // The test's runtime is shutting down; drop the schema from a runtime of our own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        if let Ok(admin) = sea_orm::Database::connect(url.as_str()).await {
                            // A transaction the test abandoned (a cancelled request) would
                            // hold its locks until PostgreSQL times it out: end the test's
                            // sessions first.
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                     WHERE application_name = '{schema}'"
                                ))
                                .await;
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A new, empty database for one test (a temporary SQLite file, or a PostgreSQL schema of
/// its own when `CMDB_TEST_DATABASE_URL` names a server), not yet migrated; the guard
/// removes it when dropped.
pub async fn fresh_database() -> (DbConfig, DbGuard) {
    match std::env::var(DATABASE_ENV) {
        Ok(url) if url.starts_with("postgres") => {
            let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(url.as_str())
                .await
                .expect("PostgreSQL reachable at CMDB_TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
                .await
                .expect("create the test schema");
            admin.close().await.expect("close the admin connection");
            // Named after the schema, so that the guard can end this test's sessions.
            let separator = if url.contains('?') { '&' } else { '?' };
            let config = DbConfig {
                url: format!("{url}{separator}application_name={schema}"),
                max_connections: 5,
                schema: Some(schema.clone()),
            };
            (config, DbGuard::Postgres { url, schema })
        }
        _ => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}/cmdb.db?mode=rwc", dir.path().display());
            let config = DbConfig {
                max_connections: 5,
                ..DbConfig::new(url)
            };
            (config, DbGuard::Sqlite(dir))
        }
    }
}

/// A running server on a database of its own.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The server's connection pool, for tests that look under the API.
    pub db: DatabaseConnection,
    statements: Arc<AtomicUsize>,
    config: DbConfig,
    settings: Settings,
    /// API tokens by name; requests use `test-admin` unless told otherwise.
    tokens: Arc<Mutex<HashMap<String, String>>>,
    /// Moves whenever the server hears of a change to the database.
    changes: tokio::sync::watch::Receiver<u64>,
    _guard: Option<Arc<DbGuard>>,
}

/// The admin token every test request carries by default.
pub const ADMIN: &str = "test-admin";

/// The parsed body of a GraphQL response.
#[derive(Debug, Clone)]
pub struct GqlResponse(pub Value);

impl GqlResponse {
    /// The errors, each checked to carry a string `extensions.code`.
    pub fn errors(&self) -> Vec<Value> {
        let errors = self.0["errors"].as_array().cloned().unwrap_or_default();
        for error in &errors {
            assert!(
                error["extensions"]["code"].is_string(),
                "every error must carry extensions.code: {error}"
            );
        }
        errors
    }

    /// The data of a response that must have no error.
    pub fn data(&self) -> &Value {
        let errors = self.errors();
        assert!(errors.is_empty(), "unexpected errors: {}", self.0);
        &self.0["data"]
    }

    /// The code of the first error of a response that must have one.
    pub fn code(&self) -> String {
        let errors = self.errors();
        assert!(!errors.is_empty(), "expected an error, got {}", self.0);
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The message of the first error.
    pub fn message(&self) -> String {
        self.errors()[0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first error.
    pub fn error(&self) -> Value {
        self.errors()[0].clone()
    }
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        cmdb::telemetry::init(cmdb::telemetry::LogFormat::Text);
    }
}

impl TestApp {
    /// A server with the default limits.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Limits::default(), HttpOptions::default()).await
    }

    /// A server that counts statements exactly: it never looks for other processes' writes
    /// (on SQLite that look lands at any time and makes caches ask again).
    pub async fn spawn_counting() -> TestApp {
        Self::spawn_with_settings(
            Settings {
                change_poll_interval: Some(std::time::Duration::from_secs(24 * 3600)),
                ..Settings::default()
            },
            HttpOptions::default(),
        )
        .await
    }

    /// A server with the given limits and HTTP options.
    pub async fn spawn_with(limits: Limits, options: HttpOptions) -> TestApp {
        Self::spawn_with_settings(
            Settings {
                limits,
                ..Settings::default()
            },
            options,
        )
        .await
    }

    /// A server with the given settings and HTTP options.
    pub async fn spawn_with_settings(settings: Settings, options: HttpOptions) -> TestApp {
        init_logs();
        let (config, guard) = fresh_database().await;
        let guard = Some(Arc::new(guard));
        let app = Self::serve(config, settings, options, guard, Default::default()).await;
        app.token(ADMIN, Role::Admin).await;
        app
    }

    /// A second server instance on the same database, with its own caches (and the same
    /// settings and clock): what runs behind a load balancer.
    pub async fn another_instance(&self) -> TestApp {
        Self::serve(
            self.config.clone(),
            self.settings.clone(),
            HttpOptions {
                max_body_bytes: self.settings.limits.max_body_bytes,
                ..Default::default()
            },
            self._guard.clone(),
            self.tokens.clone(),
        )
        .await
    }

    /// Another instance on the same database with other settings.
    pub async fn another_instance_with(&self, settings: Settings) -> TestApp {
        Self::serve(
            self.config.clone(),
            settings,
            HttpOptions::default(),
            self._guard.clone(),
            self.tokens.clone(),
        )
        .await
    }

    /// The token named `name`, created with `role` the first time it is asked for.
    pub async fn token(&self, name: &str, role: Role) -> String {
        if let Some(token) = self.tokens.lock().expect("tokens").get(name) {
            return token.clone();
        }
        let (token, _) = cmdb::domain::auth::create(&self.db, &Actor::system(), name, role)
            .await
            .expect("a token");
        self.tokens
            .lock()
            .expect("tokens")
            .insert(name.to_owned(), token.clone());
        token
    }

    async fn serve(
        config: DbConfig,
        settings: Settings,
        mut options: HttpOptions,
        guard: Option<Arc<DbGuard>>,
        tokens: Arc<Mutex<HashMap<String, String>>>,
    ) -> TestApp {
        let limits = settings.limits.clone();
        let kept_settings = settings.clone();
        let mut db = db::connect(&config)
            .await
            .expect("connect to the test database");
        cmdb::domain::migrate(&db)
            .await
            .expect("migrate the test database");
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        let print_sql = std::env::var_os("TEST_SQL").is_some();
        db.set_metric_callback(move |info| {
            // Token checks are cached for a few seconds, so whether a request makes one
            // depends on the clock: they are not counted.
            if !info.statement.sql.contains("\"api_token\"") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            if print_sql {
                eprintln!("SQL {:?} {}", info.elapsed, info.statement.sql);
            }
        });
        if options.max_body_bytes == 0 {
            options.max_body_bytes = limits.max_body_bytes;
        }
        let state = AppState::with_settings(db.clone(), settings);
        let changes = state.changes();
        let router = app(state, &options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("server runs");
        });
        TestApp {
            address,
            client: cmdb::http_client(),
            db,
            statements,
            config,
            settings: kept_settings,
            tokens,
            changes,
            _guard: guard,
        }
    }

    /// Asks `check` until it gives an answer, waiting in between for the server to hear of
    /// a change to the database (never on a timer); fails after `limit`, naming `what`.
    pub async fn until<T, F, Fut>(&self, limit: std::time::Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        // Subscribed before the first check: a change between the check and the wait is
        // not missed.
        let mut changes = self.changes.clone();
        changes.mark_unchanged();
        loop {
            if let Some(found) = check().await {
                return found;
            }
            let moved = tokio::time::timeout_at(deadline, changes.changed()).await;
            assert!(matches!(moved, Ok(Ok(()))), "never seen: {what}");
        }
    }

    /// Loads the demo estate.
    pub async fn load_demo(&self) {
        cmdb::domain::demo::load(&self.db, &cmdb::domain::audit::Actor::system())
            .await
            .expect("the demo estate loads");
    }

    /// The id of the CI with this name.
    pub async fn id_of(&self, name: &str) -> String {
        let data = self
            .ok(
                "query($name: String!) { configurationItems(filter: { name: { equals: $name } }) { nodes { id } } }",
                json!({ "name": name }),
            )
            .await;
        data["configurationItems"]["nodes"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no CI named {name}"))
            .to_owned()
    }

    /// On PostgreSQL, how many of this test's database sessions are idle inside a
    /// transaction (a write abandoned without rollback would be); `None` on SQLite.
    pub async fn sessions_idle_in_transaction(&self) -> Option<u64> {
        let schema = self.config.schema.as_ref()?;
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT count(*) AS open FROM pg_stat_activity \
                     WHERE application_name = '{schema}' AND state LIKE 'idle in transaction%'"
                ),
            ))
            .await
            .expect("pg_stat_activity answers")?;
        row.try_get::<i64>("", "open").ok().map(|n| n as u64)
    }

    /// The URL of this test's database.
    pub fn database_url(&self) -> String {
        self.config.url.clone()
    }

    /// SQL statements the server has run so far, token checks left out.
    pub fn statement_count(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    /// SQL statements run so far, once the count has stopped moving: the driver logs (and
    /// so counts) a statement when it lets go of it, which can be just after the answer
    /// that needed it has been sent.
    pub async fn settled_statement_count(&self) -> usize {
        let mut count = self.statement_count();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = self.statement_count();
            if now == count {
                return count;
            }
            count = now;
        }
    }

    /// Sends a GraphQL operation with a token (none: anonymously).
    pub async fn graphql_with(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> GqlResponse {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        GqlResponse(response.json().await.expect("a JSON body"))
    }

    /// Sends a GraphQL operation as the admin token named `actor` (created if needed).
    pub async fn graphql_as(
        &self,
        actor: Option<&str>,
        query: &str,
        variables: Value,
    ) -> GqlResponse {
        let token = self.token(actor.unwrap_or(ADMIN), Role::Admin).await;
        self.graphql_with(Some(&token), query, variables).await
    }

    /// Sends a GraphQL operation as `test-admin`.
    pub async fn graphql(&self, query: &str, variables: Value) -> GqlResponse {
        self.graphql_as(None, query, variables).await
    }

    /// Sends an operation that must succeed; returns its data.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.graphql(query, variables).await.data().clone()
    }

    /// Creates a CI of `class` named `name` with `attributes`; returns its id.
    pub async fn create_ci(&self, class: &str, name: &str, attributes: Value) -> String {
        CiBuilder::new(class, name)
            .attributes(attributes)
            .create(self)
            .await
    }

    /// Creates relationships `(source id, type, target id)`; returns their ids.
    pub async fn relate(&self, links: &[(&str, &str, &str)]) -> Vec<String> {
        let input: Vec<Value> = links
            .iter()
            .map(|(s, t, d)| json!({ "sourceId": s, "type": t, "targetId": d }))
            .collect();
        let data = self
            .ok(
                "mutation($input: [CreateRelationshipInput!]!) { createRelationships(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createRelationships"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    /// The instant of the latest audit event: "now" as the history knows it (instants of
    /// commits, never the test's clock).
    pub async fn latest_instant(&self) -> String {
        let data = self
            .ok(
                "{ auditEvents(first: 1) { nodes { occurredAt } } }",
                json!({}),
            )
            .await;
        data["auditEvents"]["nodes"][0]["occurredAt"]
            .as_str()
            .expect("an instant")
            .to_owned()
    }

    /// Updates a CI with `input` (an `UpdateConfigurationItemInput`).
    pub async fn update_ci(&self, id: &str, input: Value) -> Value {
        self.ok(
            "mutation($id: ID!, $input: UpdateConfigurationItemInput!) { updateConfigurationItem(id: $id, input: $input) { version } }",
            json!({ "id": id, "input": input }),
        )
        .await
    }

    /// Creates a service with members; returns its id.
    pub async fn create_service(&self, name: &str, members: &[&str]) -> String {
        let data = self
            .ok(
                "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                json!({ "input": { "name": name, "kind": "BUSINESS", "criticality": "HIGH", "memberIds": members } }),
            )
            .await;
        data["createService"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// The number of CIs, through the API.
    pub async fn ci_count(&self) -> u64 {
        let data = self
            .ok("{ configurationItems(first: 0) { totalCount } }", json!({}))
            .await;
        data["configurationItems"]["totalCount"]
            .as_u64()
            .expect("a count")
    }

    /// The number of relationships, through the API.
    pub async fn relationship_count(&self) -> u64 {
        let data = self
            .ok("{ relationships(first: 0) { totalCount } }", json!({}))
            .await;
        data["relationships"]["totalCount"]
            .as_u64()
            .expect("a count")
    }
}

impl TestApp {
    /// Creates a service of `criticality` with members; returns its id.
    pub async fn create_service_with(
        &self,
        name: &str,
        criticality: &str,
        members: &[&str],
    ) -> String {
        let data = self
            .ok(
                "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                json!({ "input": { "name": name, "criticality": criticality, "memberIds": members } }),
            )
            .await;
        data["createService"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// Runs a change mutation taking the change's id (and optional extra arguments) and
    /// returns the change's fields, or the error response.
    pub async fn move_change(&self, mutation: &str, id: &str, extra: &str) -> GqlResponse {
        self.graphql(
            &format!("mutation($id: ID!) {{ {mutation}(id: $id{extra}) {{ {CHANGE_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await
    }

    /// Moves an incident to `to` (at `at`, when given); returns the response.
    pub async fn move_incident(
        &self,
        id: &str,
        to: &str,
        at: Option<&str>,
        notes: Option<&str>,
    ) -> GqlResponse {
        self.graphql(
            &format!(
                "mutation($id: ID!, $to: IncidentState!, $at: DateTime, $notes: String) {{
                    transitionIncident(id: $id, to: $to, at: $at, resolutionNotes: $notes) {{ {INCIDENT_FIELDS} }} }}"
            ),
            json!({ "id": id, "to": to, "at": at, "notes": notes }),
        )
        .await
    }
}
