//! `cmdb backup` and `cmdb restore`: a consistent copy of an embedded (SQLite) database
//! taken while the server runs, and that copy put back.
//!
//! The backup is SQLite's `VACUUM INTO`: one read transaction, so the copy is the database
//! as of one instant, whatever the server writes meanwhile; compacted, and checked before
//! the command says it is done. A restore checks the copy the same way, then replaces the
//! database file in one rename, so a failed restore leaves the database as it was. On
//! PostgreSQL both commands say which `pg_dump`/`pg_restore` command to run instead: the
//! server's own tools do it better than a copy of them would.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::db::{self, DbConfig};
use crate::error::{Error, Result};

/// What a backup or restore found in a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub bytes: u64,
    /// How many migrations the file's schema has had.
    pub migrations: i64,
}

/// Where an embedded database lives, or why the URL names none (PostgreSQL, in memory).
pub fn sqlite_file(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            Error::invalid(
                "database-url",
                format!(
                    "backup and restore copy embedded (SQLite) databases; for PostgreSQL use its \
                     own tools:\n  pg_dump --format=custom --file cmdb.dump '{url}'\n  \
                     pg_restore --clean --if-exists --dbname '{url}' cmdb.dump",
                    url = db::redact_password(url)
                ),
            )
        })?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return Err(Error::invalid(
            "database-url",
            "an in-memory database has no file to back up",
        ));
    }
    Ok(PathBuf::from(path))
}

/// Writes a consistent copy of the database at `url` to `to`, a file that must not exist.
pub async fn backup(url: &str, to: &Path) -> Result<Checked> {
    sqlite_file(url)?;
    if to.exists() {
        return Err(Error::invalid(
            "to",
            format!("{} exists already: a backup never overwrites", to.display()),
        ));
    }
    let target = to
        .to_str()
        .ok_or_else(|| Error::invalid("to", "the backup's path must be valid UTF-8 for SQLite"))?;
    let db = db::connect(&DbConfig::new(url)).await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "VACUUM INTO ?",
        [target.into()],
    ))
    .await?;
    db.close().await?;
    check(to).await
}

/// Replaces the database at `url` with the backup `from`, after checking it. The server
/// must be stopped: its caches would not know the database changed under them.
pub async fn restore(url: &str, from: &Path, replace_existing: bool) -> Result<Checked> {
    let target = sqlite_file(url)?;
    let checked = check(from).await?;
    if target.exists() && !replace_existing {
        return Err(Error::invalid(
            "force",
            format!(
                "{} exists: pass --force to replace it with the backup",
                target.display()
            ),
        ));
    }
    // Copy beside the target, then rename over it: the database is either the old one or
    // the restored one, never half of each.
    let staging = target.with_extension("restoring");
    std::fs::copy(from, &staging).map_err(|e| {
        Error::invalid(
            "database-url",
            format!("cannot write {}: {e}", staging.display()),
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut side = target.clone().into_os_string();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&staging, &target).map_err(|e| {
        Error::invalid(
            "database-url",
            format!("cannot replace {}: {e}", target.display()),
        )
    })?;
    Ok(checked)
}

/// Opens `file` read-only and checks it is a whole cmdb database.
async fn check(file: &Path) -> Result<Checked> {
    let bytes = std::fs::metadata(file)
        .map_err(|e| Error::invalid("file", format!("cannot read {}: {e}", file.display())))?
        .len();
    let url = format!("sqlite://{}?mode=ro", file.display());
    let db: DatabaseConnection = sea_orm::Database::connect(url.as_str())
        .await
        .map_err(|e| {
            Error::invalid("file", format!("{} is not a database: {e}", file.display()))
        })?;
    let not_cmdb = |detail: String| {
        Error::invalid(
            "file",
            format!("{} is not a whole cmdb database: {detail}", file.display()),
        )
    };
    let integrity = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await
        .map_err(|e| not_cmdb(e.to_string()))?
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .unwrap_or_default();
    if integrity != "ok" {
        return Err(not_cmdb(format!("integrity check: {integrity}")));
    }
    let migrations = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT count(*) FROM seaql_migrations",
        ))
        .await
        .map_err(|e| not_cmdb(e.to_string()))?
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or_default();
    db.close().await?;
    Ok(Checked { bytes, migrations })
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn only_embedded_database_files_are_copied() {
        assert_eq!(
            sqlite_file("sqlite://data/cmdb.db?mode=rwc").expect("a file"),
            std::path::PathBuf::from("data/cmdb.db")
        );
        assert!(sqlite_file("sqlite::memory:").is_err());
        let postgres = sqlite_file("postgres://cmdb:secret@db/cmdb").expect_err("not a file");
        assert!(postgres.to_string().contains("pg_dump"));
        assert!(!postgres.to_string().contains("secret"));
    }
}
