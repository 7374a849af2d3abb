//! The one write path. Every change to a record goes through a [`UnitOfWork`]: a write
//! transaction, the actor making the change, and the events it records. Committing writes
//! the events to the audit trail and the graph change log in the same transaction, then
//! commits, then hands the committed events to the event sink. So, by construction:
//!
//! - every write is audited, in the transaction of the write: a unit of work that recorded
//!   no event changed no record, and is rolled back rather than committed (unless it only
//!   kept bookkeeping and says so), so nothing is ever stored without its event;
//! - the graph change log notes every graph entity that changed, and the transaction takes
//!   the next graph version just before it commits (see [`super::graph_log`]);
//! - every CI, relationship, service and membership it changes gets a new version in the
//!   history (see [`super::history`]), closing the one it replaces, from the same events;
//! - whoever listens for changes hears of them after they are committed, never before:
//!   this process at once, other instances through the database (see [`super::changes`]);
//! - audit event ids grow in commit order (writers take turns from the audit write to the
//!   commit), so the trail doubles as the event log that live updates and webhooks read
//!   forward from an id without ever skipping an event committed later with a smaller id;
//! - a unit of work dropped without commit (an error, a cancelled request) is rolled back
//!   explicitly and at once, so no abandoned transaction keeps its locks.
//!
//! Domain functions that must compose take `&mut UnitOfWork` (`*_in` functions); the entry
//! points begin one on the connection pool, call them, and commit.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::audit::{self, Actor, Event};
use super::{Error, Result, changes, graph_log, history, now};
use crate::db::begin_write;

/// Hears of events once they are committed (live updates, webhooks).
pub trait EventSink: Send + Sync {
    /// Called after the commit of a unit of work, with its events in the order recorded.
    fn committed(&self, actor: &Actor, events: &[Event]);
}

/// A write in progress: a transaction, who makes it, and what it records.
pub struct UnitOfWork {
    txn: Option<DatabaseTransaction>,
    actor: Actor,
    at: DateTime<Utc>,
    /// Behind a lock so that events can be recorded while the transaction is borrowed.
    events: Mutex<Vec<Event>>,
    bookkeeping: Option<&'static str>,
    sink: Option<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("actor", &self.actor)
            .field(
                "events",
                &self.events.lock().map(|e| e.len()).unwrap_or_default(),
            )
            .finish()
    }
}

impl UnitOfWork {
    /// Begins a write on `db` for `actor` (on SQLite, taking the write lock at once).
    pub async fn begin(db: &DatabaseConnection, actor: &Actor) -> Result<UnitOfWork> {
        let txn = begin_write(db).await?;
        Ok(UnitOfWork {
            txn: Some(txn),
            actor: actor.clone(),
            at: now(),
            events: Mutex::new(Vec::new()),
            bookkeeping: None,
            sink: None,
        })
    }

    /// The same, with an event sink that hears of the events after commit.
    pub async fn begin_with_sink(
        db: &DatabaseConnection,
        actor: &Actor,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Result<UnitOfWork> {
        let mut uow = Self::begin(db, actor).await?;
        uow.sink = sink;
        Ok(uow)
    }

    /// The transaction, for the statements of the write.
    pub fn txn(&self) -> &DatabaseTransaction {
        // Present from `begin` until `commit` consumes the unit of work.
        self.txn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a unit of work keeps its transaction until commit"))
    }

    /// Who makes the change.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The instant of the write: the same for everything it changes.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Records an event of the write; written to the audit trail at commit.
    pub fn record(&self, event: Event) {
        self.events_mut().push(event);
    }

    /// Records several events.
    pub fn record_all(&self, events: impl IntoIterator<Item = Event>) {
        self.events_mut().extend(events);
    }

    /// How many events were recorded so far.
    pub fn event_count(&self) -> usize {
        self.events_mut().len()
    }

    fn events_mut(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        // The lock is never held across an await nor while panicking.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says that this write may commit without an event: it only keeps bookkeeping that is
    /// not a record (when a discovery source last saw something), with the reason.
    pub fn bookkeeping_only(&mut self, reason: &'static str) {
        self.bookkeeping = Some(reason);
    }

    /// Writes the events (audit trail, graph change log), commits, then tells the sink.
    /// A unit of work with no event (a change that changed nothing) is rolled back instead.
    pub async fn commit(mut self) -> Result<Vec<Event>> {
        let events = std::mem::take(&mut *self.events_mut());
        if events.is_empty() && self.bookkeeping.is_none() {
            self.rollback_now().await?;
            return Ok(Vec::new());
        }
        let txn = self
            .txn
            .take()
            .unwrap_or_else(|| unreachable!("a unit of work is committed once"));
        // From here the transaction runs to its end: sealing locks the graph version row,
        // which every writer needs, so it must not be abandoned half-way. A caller that has
        // already given up (its deadline passed) gets a refusal and nothing is written.
        // (Outside a watched task, such as the CLI, nothing gives up.)
        if let Ok(false) = super::COMMIT_GATE.try_with(|gate| gate.try_begin_commit()) {
            drop(txn);
            return Err(Error::LimitExceeded(
                "the request ran past its time limit before committing; nothing was written \
                 (limit `request_timeout`)"
                    .into(),
            ));
        }
        let topics = changes::topics_of(&events);
        let written = async {
            let started = std::time::Instant::now();
            if !events.is_empty() {
                audit::take_commit_turn(&txn).await?;
            }
            let stamp = now();
            let ids = audit::write(&txn, &self.actor, &events, stamp).await?;
            let stamped: Vec<history::record::Stamped> = ids
                .iter()
                .zip(&events)
                .map(|(audit_id, event)| history::record::Stamped {
                    audit_id: *audit_id,
                    at: stamp,
                    event,
                })
                .collect();
            history::record::record(&txn, &stamped).await?;
            let audited = started.elapsed();
            graph_log::note(&txn, &events).await?;
            graph_log::seal(&txn).await?;
            changes::announce(&txn, &topics).await?;
            let sealed = started.elapsed();
            txn.commit().await?;
            tracing::debug!(
                events = events.len(),
                audit_ms = audited.as_secs_f64() * 1000.0,
                graph_log_ms = (sealed - audited).as_secs_f64() * 1000.0,
                commit_ms = (started.elapsed() - sealed).as_secs_f64() * 1000.0,
                "unit of work committed"
            );
            Ok::<(), Error>(())
        }
        .await;
        written?;
        changes::committed(&topics);
        if let Some(sink) = &self.sink {
            sink.committed(&self.actor, &events);
        }
        Ok(events)
    }

    /// Abandons the write, rolling it back now.
    pub async fn rollback(mut self) -> Result<()> {
        self.rollback_now().await
    }

    async fn rollback_now(&mut self) -> Result<()> {
        if let Some(txn) = self.txn.take() {
            txn.rollback().await?;
        }
        Ok(())
    }
}

impl Drop for UnitOfWork {
    /// A unit of work dropped without commit is rolled back explicitly, at once, on a task
    /// of its own (a drop cannot wait), instead of when its connection is next used.
    fn drop(&mut self) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = txn.rollback().await {
                        tracing::warn!(error = %err, "rolling back an abandoned write failed");
                    }
                });
            }
            // No runtime: the driver rolls back when the connection is next used.
            Err(_) => drop(txn),
        }
    }
}
