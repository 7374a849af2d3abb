//! Opening the database and applying migrations, with the settings each engine needs.
//!
//! SQLite gets WAL (readers never wait for the writer), a busy timeout (a writer waits for
//! the lock instead of failing), foreign keys, and write transactions that take the write
//! lock up front (`BEGIN IMMEDIATE`), so two writers queue instead of deadlocking on a lock
//! upgrade. An in-memory SQLite database gets a single connection: with more, each
//! connection would see its own empty database.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionOptions,
    TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::error::{Error, Result};

/// How to reach the database and how many connections to keep.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://user@host/db`.
    pub url: String,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// PostgreSQL only: the schema to work in (tests give each test its own).
    pub schema: Option<String>,
}

impl DbConfig {
    /// A configuration for `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: url.into(),
            max_connections: 10,
            schema: None,
        }
    }
}

/// Opens a connection pool configured for the engine named by the URL.
pub async fn connect(config: &DbConfig) -> Result<DatabaseConnection> {
    let url = config.url.as_str();
    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        options.max_connections(if in_memory {
            1
        } else {
            config.max_connections.max(1)
        });
        options.map_sqlx_sqlite_opts(move |opts| {
            let opts = opts
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // 8 MiB of page cache per connection (the default is 2 MiB): bulk writes
                // touch many index pages. Every pooled connection has its own cache and
                // map, so both are kept small: at 16 MiB and 128 MiB a 100,000-CI load
                // peaked at 367 MB; at these sizes at 197 MB, as fast (`benches/ingest.rs`).
                .pragma("cache_size", "-8192")
                // Pages read through a memory map instead of one system call each.
                .pragma("mmap_size", "33554432")
                // Rows come from SQLite's own thread through a channel; a deep one lets a
                // statement hand over a whole nested page without waking the reader for
                // every few rows.
                .row_buffer_size(1024);
            if in_memory {
                opts
            } else {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            }
        });
    } else {
        options.max_connections(config.max_connections.max(1));
        // A transaction dropped on an error path is rolled back only when its connection is
        // next used; until then it would hold its locks. The server never waits on a client
        // inside a transaction, so one idle that long is abandoned: PostgreSQL ends it.
        options.map_sqlx_postgres_opts(|opts| {
            opts.options([("idle_in_transaction_session_timeout", "15s")])
        });
        if let Some(schema) = &config.schema {
            options.set_schema_search_path(schema.clone());
        }
    }
    Database::connect(options).await.map_err(|err| {
        Error::internal(anyhow::Error::new(err).context(format!(
            "cannot open the database at {}",
            redact_password(url)
        )))
    })
}

/// Brings the schema up to date. Safe to run on every start: applied migrations are skipped.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    Migrator::up(db, None)
        .await
        .map_err(|err| Error::internal(anyhow::Error::new(err).context("migration failed")))
}

/// Starts a transaction that will write. On SQLite it takes the write lock immediately
/// (waiting up to the busy timeout), which avoids the lock-upgrade deadlock of two deferred
/// transactions that both read and then write. Inside a transaction it opens a savepoint.
pub async fn begin_write<C>(db: &C) -> Result<C::Transaction>
where
    C: TransactionTrait + ConnectionTrait,
{
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(db.begin_with_options(options).await?)
}

/// The connection pool's size and idle connections, for the metrics.
pub fn pool_usage(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    }
}

/// Whether the database answers; used by the health endpoint.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// The engine behind a connection, for the few queries that differ between engines.
pub fn backend(db: &impl ConnectionTrait) -> DbBackend {
    db.get_database_backend()
}

/// The URL with any password replaced, fit for a log line.
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn a_password_in_the_url_is_hidden_from_logs() {
        assert_eq!(
            redact_password("postgres://app:secret@db:5432/cmdb"),
            "postgres://app:***@db:5432/cmdb"
        );
        assert_eq!(
            redact_password("postgres://app@db/cmdb"),
            "postgres://app@db/cmdb"
        );
        assert_eq!(
            redact_password("sqlite://cmdb.db?mode=rwc"),
            "sqlite://cmdb.db?mode=rwc"
        );
    }
}
