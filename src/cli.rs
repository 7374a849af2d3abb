//! The `cmdb` command line: one binary that serves, migrates, loads the demo estate and
//! exports the schema. Every option can also be set through its environment variable.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::db::{self, DbConfig};
use crate::domain::auth::{self, Role};
use crate::domain::discovery::DiscoveryConfig;
use crate::domain::{audit::Actor, demo};
use crate::error::Error;
use crate::http::{self, AppState, HttpOptions};
use crate::import::ImportOptions;
use crate::limits::Limits;
use crate::settings::Settings;
use crate::telemetry::{self, LogFormat};
use std::io::IsTerminal;

/// cmdb: a configuration management database with a GraphQL API.
///
/// Start with `cmdb serve --demo` and open http://127.0.0.1:8080/graphql.
#[derive(Debug, Parser)]
#[command(name = "cmdb", version, about, long_about = None)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "CMDB_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// A TOML file of settings: the long options' names as keys (`listen = "0.0.0.0:8080"`).
    /// Flags and environment variables win over it.
    #[arg(long, env = "CMDB_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line of this process, with the configuration file's settings added.
    pub fn from_env_and_config() -> Self {
        use clap::Parser;
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        match config_file::with_config_file(args) {
            Ok(args) => Cli::parse_from(args),
            Err(err) => {
                eprintln!("error: {err:#}");
                std::process::exit(2);
            }
        }
    }
}

mod config_file;
mod live_args;

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GraphQL server (applies pending migrations first).
    Serve(ServeArgs),
    /// Run the server with the demo estate loaded (same as `serve --demo`).
    Demo(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(DatabaseArgs),
    /// Import discovered CIs and relationships from a JSON or NDJSON file, in batches,
    /// through the same upsert as the `upsertConfigurationItems` mutation.
    Import(ImportArgs),
    /// Create, list and revoke API tokens.
    Token(TokenArgs),
    /// Print the GraphQL schema (SDL) and exit.
    ExportSchema,
    /// Write a consistent copy of the embedded (SQLite) database while the server runs.
    /// For PostgreSQL, it prints the `pg_dump` command to use.
    Backup(BackupArgs),
    /// Replace the embedded (SQLite) database with a backup, after checking it. Stop the
    /// server first. For PostgreSQL, it prints the `pg_restore` command to use.
    Restore(RestoreArgs),
}

/// Where to write a backup.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The backup file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: std::path::PathBuf,
}

/// Which backup to restore.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The backup file to restore.
    #[arg(long, value_name = "FILE")]
    pub from: std::path::PathBuf,
    /// Replace the database when it exists (it is replaced whole, in one step).
    #[arg(long)]
    pub force: bool,
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded, the default) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
    #[arg(
        long,
        env = "CMDB_DATABASE_URL",
        default_value = "sqlite://cmdb.db?mode=rwc"
    )]
    pub database_url: String,

    /// Largest number of database connections.
    #[arg(long, env = "CMDB_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

/// How discovery reconciles sources.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// After how many hours without a report from the source that set a value, a
    /// lower-ranked source may take it over (when the class's rule sets no period).
    #[arg(long, env = "CMDB_HANDOVER_AFTER_HOURS", default_value_t = 168)]
    pub handover_after_hours: u32,
}

impl DiscoveryArgs {
    fn config(&self) -> DiscoveryConfig {
        DiscoveryConfig {
            handover_after: chrono::Duration::hours(i64::from(self.handover_after_hours)),
        }
    }
}

/// What to import.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,

    /// The discovery source's name, such as `vcenter` (also the actor in the audit trail).
    #[arg(long)]
    pub source: String,

    /// The file is everything the source has in `--scope`: what it reported there before
    /// and not now becomes stale once the whole file is in.
    #[arg(long, requires = "scope")]
    pub full_sync: bool,

    /// The part of the estate a full sync covers.
    #[arg(long, requires = "full_sync")]
    pub scope: Option<String>,

    /// Records per batch.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: usize,

    /// NDJSON (one record per line), a JSON array, or an object with `items` and
    /// `relationships` arrays. A record with `externalId` is an item; one with `source`,
    /// `target` and `type` is a relationship.
    pub file: std::path::PathBuf,
}

/// Token management.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// What to do with tokens.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown this once; only its hash is kept).
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Unique name, recorded as the actor of the token's writes.
        #[arg(long)]
        name: String,
        /// viewer, discovery, editor, change_manager or admin.
        #[arg(long)]
        role: String,
    },
    /// List the tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a token.
    Revoke {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The token's name.
        #[arg(long)]
        name: String,
    },
}

impl TokenCommand {
    fn database(&self) -> &DatabaseArgs {
        match self {
            TokenCommand::Create { database, .. }
            | TokenCommand::List { database }
            | TokenCommand::Revoke { database, .. } => database,
        }
    }
}

/// How to serve.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,

    /// Address and port to listen on.
    #[arg(long, env = "CMDB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Load the demo estate if the database holds no configuration item yet, and create
    /// an admin token if there is none. The token is shown once on the terminal (never in
    /// the log); without a terminal, it is written to `--demo-token-file`.
    #[arg(long, env = "CMDB_DEMO")]
    pub demo: bool,

    /// Where to write the demo's admin token (readable by its owner only) instead of the
    /// terminal: for scripts and containers, whose output is a log.
    #[arg(long, env = "CMDB_DEMO_TOKEN_FILE", value_name = "FILE")]
    pub demo_token_file: Option<std::path::PathBuf>,

    /// Let requests without a token read (never write). Off by default.
    #[arg(long, env = "CMDB_ALLOW_ANONYMOUS_READ")]
    pub allow_anonymous_read: bool,

    /// Longest a request may run, in milliseconds, before it is cancelled.
    #[arg(long, env = "CMDB_REQUEST_TIMEOUT_MS", default_value_t = Limits::default().request_timeout.as_millis() as u64)]
    pub request_timeout_ms: u64,

    /// Most aliased fields a GraphQL document may have.
    #[arg(long, env = "CMDB_MAX_QUERY_ALIASES", default_value_t = Limits::default().max_query_aliases)]
    pub max_query_aliases: usize,

    /// Origin allowed to call the API from a browser (repeatable, or comma-separated);
    /// `*` allows any origin. None by default.
    #[arg(long = "cors-origin", env = "CMDB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body in bytes.
    #[arg(long, env = "CMDB_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// Largest page a list returns (`first`/`last` above it is LIMIT_EXCEEDED).
    #[arg(long, env = "CMDB_MAX_PAGE_SIZE", default_value_t = Limits::default().max_page_size)]
    pub max_page_size: usize,

    /// Most items a bulk mutation takes in one call.
    #[arg(long, env = "CMDB_MAX_BATCH_SIZE", default_value_t = Limits::default().max_batch_size)]
    pub max_batch_size: usize,

    /// Deepest nesting a GraphQL query may have.
    #[arg(long, env = "CMDB_MAX_QUERY_DEPTH", default_value_t = Limits::default().max_query_depth)]
    pub max_query_depth: usize,

    /// Highest complexity score a GraphQL query may have.
    #[arg(long, env = "CMDB_MAX_QUERY_COMPLEXITY", default_value_t = Limits::default().max_query_complexity)]
    pub max_query_complexity: usize,

    /// Largest GraphQL document in bytes (variables are not counted): far below the body
    /// limit, since data belongs in variables.
    #[arg(long, env = "CMDB_MAX_DOCUMENT_BYTES", default_value_t = Limits::default().max_document_bytes)]
    pub max_document_bytes: usize,

    /// Most lexical tokens a GraphQL document may hold.
    #[arg(long, env = "CMDB_MAX_DOCUMENT_TOKENS", default_value_t = Limits::default().max_document_tokens)]
    pub max_document_tokens: usize,

    /// Serve `GET /metrics` only to callers with a valid API token (of any role).
    #[arg(long, env = "CMDB_METRICS_REQUIRE_TOKEN")]
    pub metrics_require_token: bool,

    #[command(flatten)]
    pub live: live_args::LiveArgs,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_page_size: self.max_page_size,
            max_batch_size: self.max_batch_size,
            max_query_depth: self.max_query_depth,
            max_query_complexity: self.max_query_complexity,
            max_body_bytes: self.max_body_bytes,
            max_query_aliases: self.max_query_aliases,
            max_document_bytes: self.max_document_bytes,
            max_document_tokens: self.max_document_tokens,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms.max(1)),
            ..Limits::default()
        }
    }
}

impl DatabaseArgs {
    fn config(&self) -> DbConfig {
        DbConfig {
            max_connections: self.db_max_connections,
            ..DbConfig::new(self.database_url.clone())
        }
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(mut args) => {
            args.demo = true;
            serve(args).await
        }
        Command::Migrate(args) => {
            let db = db::connect(&args.config())
                .await
                .map_err(Error::into_report)?;
            crate::domain::migrate(&db)
                .await
                .map_err(Error::into_report)?;
            tracing::info!(database = %db::redact_password(&args.database_url), "migrations applied");
            Ok(())
        }
        Command::Import(args) => import(args).await,
        Command::Token(args) => token(args).await,
        Command::Backup(args) => {
            let checked = crate::backup::backup(&args.database.database_url, &args.to)
                .await
                .map_err(Error::into_report)?;
            say(&format!(
                "backup written to {} ({} bytes, {} migrations), checked",
                args.to.display(),
                checked.bytes,
                checked.migrations
            ));
            Ok(())
        }
        Command::Restore(args) => {
            let checked =
                crate::backup::restore(&args.database.database_url, &args.from, args.force)
                    .await
                    .map_err(Error::into_report)?;
            say(&format!(
                "restored {} ({} bytes, {} migrations); the next start applies newer migrations",
                args.from.display(),
                checked.bytes,
                checked.migrations
            ));
            Ok(())
        }
        Command::ExportSchema => {
            use std::io::Write;
            // A reader that stops early (`| head`) is not an error: stop quietly.
            match std::io::stdout()
                .lock()
                .write_all(crate::graphql::sdl().as_bytes())
            {
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

/// Gives the demo's admin token to the person who started the server, never to the log:
/// logs are kept and shipped, and must hold no secret. Standard output is the log when it
/// is not a terminal, so the token then goes to the controlling terminal, or to the file
/// asked for; with neither, it is not shown and the log says how to make another.
fn hand_over_demo_token(token: &str, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    if let Some(path) = file {
        write_secret(path, &format!("{token}\n")).map_err(|e| {
            anyhow::anyhow!("cannot write the demo token to {}: {e}", path.display())
        })?;
        tracing::info!(file = %path.display(), "demo admin token `demo-admin` written to the token file");
        return Ok(());
    }
    let message =
        format!("\nAdmin token for this demo (shown once):\n\n    export TOKEN={token}\n\n");
    let shown = if std::io::stdout().is_terminal() {
        let mut out = std::io::stdout().lock();
        out.write_all(message.as_bytes())
            .and_then(|()| out.flush())
            .is_ok()
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/tty")
            .and_then(|mut tty| tty.write_all(message.as_bytes()))
            .is_ok()
    };
    if shown {
        tracing::info!("demo admin token `demo-admin` created and shown on the terminal");
    } else {
        tracing::warn!(
            "demo admin token `demo-admin` created but not shown: there is no terminal; pass \
             --demo-token-file, or create another with `cmdb token create --name admin --role admin`"
        );
    }
    Ok(())
}

/// Prints a line of a command's output. A reader that stopped early (`| head`) is not an
/// error: the command still finishes what it was doing.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Writes `text` to a new file only its owner can read.
fn write_secret(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let db = db::connect(&args.database.config())
        .await
        .map_err(Error::into_report)?;
    crate::domain::migrate(&db)
        .await
        .map_err(Error::into_report)?;
    tracing::info!(database = %db::redact_password(&args.database.database_url), "database ready");
    if args.demo {
        match demo::load(&db, &Actor::system())
            .await
            .map_err(Error::into_report)?
        {
            demo::DemoOutcome::Loaded {
                cis,
                relationships,
                services,
            } => tracing::info!(cis, relationships, services, "demo estate loaded"),
            demo::DemoOutcome::Skipped { existing_cis } => tracing::info!(
                existing_cis,
                "demo estate not loaded: the database already holds configuration items"
            ),
        }
    }
    if args.demo && !auth::any_active(&db).await.map_err(Error::into_report)? {
        let (token, _) = auth::create(&db, &Actor::system(), "demo-admin", Role::Admin)
            .await
            .map_err(Error::into_report)?;
        hand_over_demo_token(&token, args.demo_token_file.as_deref())?;
    } else if !auth::any_active(&db).await.map_err(Error::into_report)? {
        tracing::warn!(
            "no API token exists yet: create one with `cmdb token create --name admin --role admin`"
        );
    }
    let limits = args.limits();
    let options = HttpOptions {
        cors_origins: args.cors_origins.clone(),
        max_body_bytes: limits.max_body_bytes,
    };
    let settings = Settings {
        limits,
        discovery: args.discovery.config(),
        allow_anonymous_read: args.allow_anonymous_read,
        metrics_require_token: args.metrics_require_token,
        events: args.live.events(),
        webhooks: args.live.webhooks(),
        ..Settings::default()
    };
    let app = http::app(AppState::with_settings(db, settings), &options);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(
        "listening on http://{address}/ (the console; the API and GraphiQL at /graphql)"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(http::shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Exit status of an import in which some records were rejected.
pub const EXIT_REJECTED: i32 = 3;

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let db = db::connect(&args.database.config())
        .await
        .map_err(Error::into_report)?;
    crate::domain::migrate(&db)
        .await
        .map_err(Error::into_report)?;
    let options = ImportOptions {
        file: args.file.clone(),
        source: args.source.clone(),
        full_sync_scope: if args.full_sync {
            args.scope.clone()
        } else {
            None
        },
        batch_size: args.batch_size,
        progress: std::io::stderr().is_terminal(),
    };
    let started = std::time::Instant::now();
    let summary =
        crate::import::import(&db, &args.discovery.config(), &Limits::default(), &options)
            .await
            .map_err(|stopped| anyhow::anyhow!("{stopped}"))?;
    say(&format!(
        "{summary}\nin {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if summary.items.rejected + summary.relationships.rejected > 0 {
        std::process::exit(EXIT_REJECTED);
    }
    Ok(())
}

async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let db = db::connect(&args.command.database().config())
        .await
        .map_err(Error::into_report)?;
    crate::domain::migrate(&db)
        .await
        .map_err(Error::into_report)?;
    let actor = Actor::named("cli");
    match args.command {
        TokenCommand::Create { name, role, .. } => {
            let role = Role::parse(&role).map_err(Error::into_report)?;
            let (token, info) = auth::create(&db, &actor, &name, role)
                .await
                .map_err(Error::into_report)?;
            eprintln!(
                "token `{}` ({}) created; it is shown this once:",
                info.name, info.role
            );
            say(&token);
        }
        TokenCommand::List { .. } => {
            for info in auth::list(&db).await.map_err(Error::into_report)? {
                let state = match info.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                say(&format!(
                    "{}\t{}\t{}\t{state}",
                    info.name,
                    info.role,
                    info.created_at.to_rfc3339()
                ));
            }
        }
        TokenCommand::Revoke { name, .. } => {
            auth::revoke(&db, &actor, &name)
                .await
                .map_err(Error::into_report)?;
            say(&format!("token `{name}` revoked"));
        }
    }
    Ok(())
}
