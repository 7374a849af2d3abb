//! Planner statistics after bulk loads, on PostgreSQL.
//!
//! Discovery grows tables by thousands of rows a minute. PostgreSQL plans each statement
//! from its statistics; until they are refreshed, a table that grew from empty still looks
//! empty, and a lookup of a thousand external ids among a hundred thousand can be planned as
//! a scan costing seconds instead of an index lookup costing milliseconds. Autovacuum
//! refreshes them eventually (if it is on); this refreshes them as soon as discovery has
//! grown the tables by a fifth since the last refresh, so a large first load stays fast.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, DbBackend};

/// Rows discovery added since the statistics were last refreshed by this process.
static ADDED_SINCE_REFRESH: AtomicU64 = AtomicU64::new(0);
/// Rows discovery had added when the statistics were last refreshed by this process.
static ADDED_AT_REFRESH: AtomicU64 = AtomicU64::new(0);

/// The fewest added rows worth a refresh.
const MIN_GROWTH: u64 = 5_000;

/// The tables discovery grows.
const TABLES: &str =
    "configuration_item, ci_identifier, identity_key, relationship, relationship_sighting";

/// Whether `added` rows since a refresh at `base` call for another one: a fifth more, and
/// at least [`MIN_GROWTH`].
pub fn refresh_due(added: u64, base: u64) -> bool {
    added >= (base / 5).max(MIN_GROWTH)
}

/// Notes that a committed batch added `rows` rows, and refreshes the statistics of the
/// discovery tables when they have grown enough. Failures are logged, never returned: the
/// batch is already committed.
pub async fn note_growth(db: &impl ConnectionTrait, rows: u64) {
    if db.get_database_backend() != DbBackend::Postgres || rows == 0 {
        return;
    }
    let added = ADDED_SINCE_REFRESH.fetch_add(rows, Ordering::SeqCst) + rows;
    let base = ADDED_AT_REFRESH.load(Ordering::SeqCst);
    if !refresh_due(added, base) {
        return;
    }
    // One refresh at a time: whoever resets the counter does it.
    if ADDED_SINCE_REFRESH
        .compare_exchange(added, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return;
    }
    ADDED_AT_REFRESH.fetch_add(added, Ordering::SeqCst);
    let started = std::time::Instant::now();
    match db.execute_unprepared(&format!("ANALYZE {TABLES}")).await {
        Ok(_) => tracing::info!(
            added_rows = added,
            ms = started.elapsed().as_millis() as u64,
            "planner statistics refreshed after discovery growth"
        ),
        Err(err) => tracing::warn!(error = %err, "planner statistics not refreshed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_due_after_a_fifth_more_rows_and_never_for_a_few() {
        assert!(!refresh_due(4_999, 0));
        assert!(refresh_due(5_000, 0));
        assert!(!refresh_due(19_999, 100_000));
        assert!(refresh_due(20_000, 100_000));
    }
}
