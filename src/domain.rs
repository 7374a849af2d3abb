//! The domain layer: every rule of the CMDB and every SQL statement live here.
//!
//! Functions are free functions taking the connection first. Reads take
//! `&impl ConnectionTrait`; writes go through the one write path, a
//! [`unit_of_work::UnitOfWork`]: an entry point takes the connection pool, begins one, and
//! commits it; the `*_in` form of a write takes the unit of work, so that several writes
//! compose into one. Nothing here knows about HTTP or GraphQL.
//!
//! Invariants kept by every write:
//! - it records an audit event with the full state before and after, in the same
//!   transaction (the unit of work writes the events at commit, and commits nothing
//!   without one);
//! - it bumps `version` and `updated_at` of what it changed, and only when something changed;
//! - it either applies completely or not at all.

pub mod as_of;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod change;
pub mod changes;
pub mod ci;
pub mod ci_class;
pub mod ci_deletion;
pub mod class_catalog;
pub mod clock;
pub mod customer;
pub mod demo;
pub mod discovery;
pub mod events;
pub mod graph_log;
pub mod health;
pub mod history;
pub mod identity;
pub mod impact;
pub mod incident;
pub mod json_rows;
pub mod nested;
pub mod node;
pub mod numbering;
pub mod pagination;
pub mod references;
pub mod relationship;
pub mod relationship_type;
pub mod service;
pub mod service_level;
pub mod unit_of_work;
pub mod webhook;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait,
    prelude::Expr,
    sea_query::{Condition, ExprTrait, Func, LikeExpr},
};

pub use crate::error::{Error, Result};

tokio::task_local! {
    /// Set by whoever runs domain calls under a deadline (the GraphQL layer), so that the
    /// caller never gives up on work that may already be stored and then reports it as not
    /// done (see [`CommitGate`]).
    pub static COMMIT_GATE: std::sync::Arc<CommitGate>;
}

/// Who wins between a write that is about to commit and a caller whose deadline passed:
/// exactly one of them, decided once. A commit that starts is seen through; a caller that
/// gives up first makes every later commit refuse.
#[derive(Debug, Default)]
pub struct CommitGate(std::sync::atomic::AtomicU8);

const RUNNING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

impl CommitGate {
    /// Called by a write before it commits: false when the caller has given up.
    pub fn try_begin_commit(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        matches!(
            self.0.compare_exchange(RUNNING, COMMITTING, SeqCst, SeqCst),
            Ok(_) | Err(COMMITTING)
        )
    }

    /// Called by a caller whose deadline passed: false when a commit has begun (it must
    /// then wait for the write to end and report it).
    pub fn try_abandon(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        matches!(
            self.0.compare_exchange(RUNNING, ABANDONED, SeqCst, SeqCst),
            Ok(_) | Err(ABANDONED)
        )
    }
}

/// The current time, truncated to microseconds: PostgreSQL keeps microseconds and SQLite
/// would keep nanoseconds, and both engines must return the same timestamps.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Brings the database up to date: the schema's migrations, then the one-off replays of
/// data they ask for (the history of records written before versions were kept). Every
/// command that opens a database calls this first.
pub async fn migrate(db: &sea_orm::DatabaseConnection) -> Result<()> {
    crate::db::migrate(db).await?;
    history::backfill(db).await
}

/// A change to an optional field: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// The new value of a field that currently holds `current`.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(value) => Some(value),
        }
    }

    /// Maps the value being set, keeping `Keep` and `Clear` as they are.
    pub fn try_map<U>(self, f: impl FnOnce(T) -> Result<U>) -> Result<Patch<U>> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(value) => Patch::Set(f(value)?),
        })
    }
}

/// How to match a name. Names match ignoring case, as people write host and service names
/// (`ESX-03` is `esx-03`).
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// Exactly this text, ignoring case.
    Equals(String),
    /// Texts starting with this, ignoring case.
    StartsWith(String),
    /// Texts containing this, ignoring case.
    Contains(String),
}

impl TextMatch {
    /// The condition on `column`. Case is ignored the same way on every engine: both sides
    /// are lower-cased, and the wildcards `%` and `_` in the text match only themselves.
    pub fn condition<C: ColumnTrait>(&self, column: C) -> Condition {
        let like = |pattern: String| {
            Condition::all().add(
                Expr::expr(Func::lower(column.into_expr()))
                    .like(LikeExpr::new(pattern).escape('\\')),
            )
        };
        match self {
            TextMatch::Equals(text) => Condition::all()
                .add(Expr::expr(Func::lower(column.into_expr())).eq(text.to_lowercase())),
            TextMatch::StartsWith(prefix) => like(format!("{}%", escape_like(prefix))),
            TextMatch::Contains(part) => like(format!("%{}%", escape_like(part))),
        }
    }
}

/// Lower-cases `text` and escapes the LIKE wildcards in it.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Trims `value` and checks it is non-empty and at most `max` characters long.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    optional_text(field, trimmed, max)
}

/// Refuses text holding the NUL character, which databases cannot store in text.
pub fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(
            field,
            format!("`{field}` must not contain the NUL character"),
        ));
    }
    Ok(())
}

/// Refuses a JSON document holding the NUL character in any key or string.
pub fn json_without_nul(field: &str, value: &serde_json::Value) -> Result<()> {
    match value {
        serde_json::Value::String(text) => no_nul(field, text),
        serde_json::Value::Array(items) => {
            items.iter().try_for_each(|v| json_without_nul(field, v))
        }
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            no_nul(field, k)?;
            json_without_nul(field, v)
        }),
        _ => Ok(()),
    }
}

/// Checks an optional free text is at most `max` characters long; empty text means none.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String> {
    no_nul(field, value)?;
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("`{field}` is longer than {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A free text that may be absent: blank means absent, the rest is trimmed and checked
/// to be at most `max` characters.
pub fn optional_trimmed(field: &str, value: Option<String>, max: usize) -> Result<Option<String>> {
    value
        .filter(|text| !text.trim().is_empty())
        .map(|text| optional_text(field, text.trim(), max))
        .transpose()
}

/// A change to a free text: setting blank text clears it, the rest is trimmed and checked.
pub fn patch_trimmed(field: &str, patch: Patch<String>, max: usize) -> Result<Patch<String>> {
    Ok(match patch {
        Patch::Set(text) if text.trim().is_empty() => Patch::Clear,
        Patch::Set(text) => Patch::Set(optional_text(field, text.trim(), max)?),
        other => other,
    })
}

/// Reads the row `select` finds inside a write transaction and locks it until the
/// transaction ends, so that two read-modify-writes of one record cannot interleave on
/// PostgreSQL (`SELECT ... FOR UPDATE`): the second waits for the first and then reads
/// what it wrote, instead of writing over it or failing. SQLite needs no row lock: a write
/// transaction holds the database's write lock from its first statement.
pub async fn lock_row<E: sea_orm::EntityTrait>(
    txn: &impl ConnectionTrait,
    select: sea_orm::Select<E>,
) -> Result<Option<E::Model>> {
    use sea_orm::QuerySelect;
    Ok(select.lock_exclusive().one(txn).await?)
}

/// Optimistic concurrency: `VERSION_MISMATCH` when the client expected another version.
pub fn check_version(expected: Option<i32>, actual: i32) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::VersionMismatch { expected, actual }),
        _ => Ok(()),
    }
}

/// Names of classes and relationship types: lower-case letters, digits and underscores,
/// starting with a letter, so they read the same in URLs, JSON and SQL.
pub fn identifier(field: &str, value: &str) -> Result<String> {
    let valid = value.len() <= 100
        && value.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "`{value}` is not a valid name: use lower-case letters, digits and underscores, \
                 starting with a letter, at most 100 characters"
            ),
        ))
    }
}

/// The rows of `E` whose `column` is one of `ids`, in `order`: one statement per 500 ids,
/// so that a lookup for a whole page stays within every engine's parameter limit.
pub async fn rows_in<E>(
    db: &impl ConnectionTrait,
    column: E::Column,
    ids: &[uuid::Uuid],
    order: &[E::Column],
) -> Result<Vec<E::Model>>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::{QueryFilter, QueryOrder};
    let mut rows = Vec::new();
    for chunk in ids.chunks(500) {
        let mut query = E::find().filter(column.is_in(chunk.iter().copied()));
        for column in order {
            query = query.order_by_asc(*column);
        }
        rows.extend(query.all(db).await?);
    }
    Ok(rows)
}

/// Groups rows by a key, keeping their order within each group.
pub fn group_by<T>(
    rows: Vec<T>,
    key: impl Fn(&T) -> uuid::Uuid,
) -> std::collections::HashMap<uuid::Uuid, Vec<T>> {
    let mut grouped: std::collections::HashMap<uuid::Uuid, Vec<T>> = Default::default();
    for row in rows {
        grouped.entry(key(&row)).or_default().push(row);
    }
    grouped
}

/// The items in their first order, each once.
pub fn dedup<T: Eq + std::hash::Hash + Copy>(items: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(*item))
        .collect()
}

/// `LIMIT_EXCEEDED` when one call names more `what` than `max_batch_size` allows.
pub fn check_batch_size(limits: &crate::limits::Limits, size: usize, what: &str) -> Result<()> {
    if size > limits.max_batch_size {
        return Err(Error::LimitExceeded(format!(
            "{size} {what} in one call, over the limit of {} (limit `max_batch_size`)",
            limits.max_batch_size
        )));
    }
    Ok(())
}

/// Limits of free texts, in characters.
pub mod text_limits {
    /// Names of CIs and services.
    pub const NAME: usize = 255;
    /// Descriptions.
    pub const DESCRIPTION: usize = 10_000;
    /// Owners, environments, labels.
    pub const SHORT: usize = 255;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards_and_ignore_case() {
        assert_eq!(escape_like("Web_01%"), "web\\_01\\%");
    }

    #[test]
    fn a_patch_keeps_clears_or_sets() {
        assert_eq!(Patch::Keep.apply(Some(1)), Some(1));
        assert_eq!(Patch::<i32>::Clear.apply(Some(1)), None);
        assert_eq!(Patch::Set(2).apply(Some(1)), Some(2));
    }

    #[test]
    fn names_of_catalog_entries_are_snake_case() {
        assert!(identifier("name", "virtual_machine").is_ok());
        assert!(identifier("name", "db2").is_ok());
        for bad in ["", "Server", "2fast", "has space", "dash-ed"] {
            assert!(identifier("name", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn blank_required_text_is_refused_and_text_is_trimmed() {
        assert!(required_text("name", "   ", 10).is_err());
        assert_eq!(
            required_text("name", " web-01 ", 10).ok().as_deref(),
            Some("web-01")
        );
        assert!(required_text("name", "abcdefghijk", 10).is_err());
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
