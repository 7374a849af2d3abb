//! Committed events, read forward: what live updates (subscriptions) and webhooks send.
//!
//! The audit trail is the event log. Every unit of work writes its events to it in the
//! transaction of the change (an outbox: an event exists exactly when its change does), and
//! audit ids grow in commit order (see [`super::audit::take_commit_turn`]). So an event's id
//! is its `eventId`, and "everything after event 41" is one indexed range read that can
//! never skip an event committed later with a smaller id.
//!
//! Each server runs one [`EventHub`]: a reader woken by the change watch (at once after a
//! commit in this process; through `LISTEN/NOTIFY` for other instances on PostgreSQL; by the
//! `data_version` poll for other processes on SQLite; and, whatever happens, every
//! `fallback` interval) reads the new events once and broadcasts them to every follower.
//! A follower ([`EventHub::follow`]) that resumes after an id first replays the log from the
//! database, page by page as it is consumed, then goes live, with no gap and no duplicate
//! at the seam. A follower that falls behind the broadcast buffer (a burst, or a slow
//! consumer) goes back to reading the log from its last event, so the buffer bounds memory
//! without ever losing an event; a consumer that stops reading altogether is the socket's
//! to close (see `http/socket.rs`).

pub mod matching;
pub mod service_health;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use entity::{audit_event, configuration_item};
use futures_util::stream::{self, BoxStream, StreamExt};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::audit::EntityType;
use super::changes::ChangeWatch;
use super::{Error, Result};

/// One committed event, shared by every follower that receives it.
pub type StoredEvent = Arc<Committed>;

/// A committed event as read from the trail, with what followers derive from it decoded
/// once for all of them (a thousand subscribers must not each decode every event).
#[derive(Debug)]
pub struct Committed {
    row: audit_event::Model,
    ci_states: OnceLock<[Option<configuration_item::Model>; 2]>,
}

impl Committed {
    /// The event of an audit row.
    pub fn new(row: audit_event::Model) -> Self {
        Committed {
            row,
            ci_states: OnceLock::new(),
        }
    }

    /// For a configuration item's event, the CI before and after the write (`None` for a
    /// side that does not exist); both `None` for other events.
    pub fn ci_states(&self) -> &[Option<configuration_item::Model>; 2] {
        self.ci_states.get_or_init(|| {
            if self.row.entity_type != EntityType::ConfigurationItem.as_str() {
                return [None, None];
            }
            let decode = |state: &Option<sea_orm::prelude::Json>| {
                state
                    .as_ref()
                    .and_then(|state| configuration_item::Model::deserialize(state).ok())
            };
            [decode(&self.row.before), decode(&self.row.after)]
        })
    }
}

impl std::ops::Deref for Committed {
    type Target = audit_event::Model;

    fn deref(&self) -> &audit_event::Model {
        &self.row
    }
}

/// How many events one read of the log takes (the hub's reads, which everyone shares).
const PAGE: u64 = 500;
/// How many events a follower reading the log on its own takes at a time: small, since a
/// thousand followers catching up at once each hold a page.
const FOLLOWER_PAGE: u64 = 64;

/// The events committed to one database, as this server hears of them.
#[derive(Debug)]
pub struct EventHub {
    sender: broadcast::Sender<StoredEvent>,
    /// The id of the newest event broadcast (or known at start); -1 until the reader ran.
    published: AtomicI64,
    /// The latest events, for followers that fell behind the broadcast (and resumes from a
    /// recent id): catching up from memory costs no database round trip, so a thousand
    /// followers behind at once do not all read the log.
    recent: std::sync::RwLock<Recent>,
}

/// The latest events, and from which id on they are complete.
#[derive(Debug)]
struct Recent {
    events: VecDeque<StoredEvent>,
    /// Every event with an id above this is in `events` (`i64::MAX` until the reader knows
    /// where the log stood when it started).
    complete_after: i64,
    capacity: usize,
}

/// Stops the hub's reader when dropped.
#[derive(Debug)]
pub struct HubReader(tokio::task::JoinHandle<()>);

impl Drop for HubReader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EventHub {
    /// A hub whose followers may fall at most `buffer` events behind.
    pub fn new(buffer: usize) -> Arc<Self> {
        let (sender, _) = broadcast::channel(buffer.max(16));
        Arc::new(EventHub {
            sender,
            published: AtomicI64::new(-1),
            recent: std::sync::RwLock::new(Recent {
                events: VecDeque::new(),
                complete_after: i64::MAX,
                capacity: buffer.max(16),
            }),
        })
    }

    fn recent_mut(&self) -> std::sync::RwLockWriteGuard<'_, Recent> {
        self.recent
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The events about `kinds` after `after`, from memory, if memory holds all of them.
    fn recent_after(&self, after: i64, kinds: &[EntityType]) -> Option<Vec<StoredEvent>> {
        let recent = self
            .recent
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if after < recent.complete_after {
            return None;
        }
        Some(
            recent
                .events
                .iter()
                .filter(|event| event.id > after && wanted(kinds, event))
                .cloned()
                .collect(),
        )
    }

    /// Starts reading the log of `db` forward from its newest event: whenever `watch`
    /// moves, and at least every `fallback`.
    pub fn spawn_reader(
        self: &Arc<Self>,
        db: DatabaseConnection,
        watch: &Arc<ChangeWatch>,
        fallback: Duration,
    ) -> HubReader {
        let hub = Arc::downgrade(self);
        let mut moved = watch.subscribe();
        HubReader(tokio::spawn(async move {
            let mut last = loop {
                match newest_id(&db).await {
                    Ok(id) => {
                        if let Some(hub) = hub.upgrade() {
                            hub.recent_mut().complete_after = id;
                        }
                        break id;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read the event log; trying again");
                        tokio::time::sleep(fallback).await;
                    }
                }
            };
            loop {
                let Some(strong) = hub.upgrade() else {
                    return;
                };
                match strong.publish_after(&db, last).await {
                    Ok(newest) => last = newest,
                    Err(err) => tracing::warn!(error = %err, "reading new events failed"),
                }
                drop(strong);
                tokio::select! {
                    changed = moved.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(fallback) => {}
                }
            }
        }))
    }

    /// Broadcasts every event after `last`, oldest first; the id of the newest.
    async fn publish_after(&self, db: &DatabaseConnection, mut last: i64) -> Result<i64> {
        loop {
            let rows = read_after(db, last, &[], PAGE).await?;
            let full = rows.len() as u64 == PAGE;
            for row in rows {
                last = row.id;
                let event = Arc::new(Committed::new(row));
                {
                    let mut recent = self.recent_mut();
                    recent.events.push_back(event.clone());
                    while recent.events.len() > recent.capacity {
                        if let Some(evicted) = recent.events.pop_front() {
                            recent.complete_after = evicted.id;
                        }
                    }
                }
                // No follower listening is fine: nobody is waiting for it.
                let _ = self.sender.send(event);
            }
            self.published.store(last, Ordering::SeqCst);
            if !full {
                return Ok(last);
            }
        }
    }

    /// The id of the newest event this server has broadcast (-1 before its first read).
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::SeqCst)
    }

    /// The events about `kinds` (all kinds when empty), in commit order: from the log after
    /// `after` if given, then live (from the log again whenever it falls behind the buffer).
    pub async fn follow(
        self: &Arc<Self>,
        db: DatabaseConnection,
        after: Option<i64>,
        kinds: Vec<EntityType>,
    ) -> Result<BoxStream<'static, Result<StoredEvent>>> {
        // Listen first, then read the log: whatever is committed meanwhile arrives on both
        // and is let through once.
        let live = self.sender.subscribe();
        let mut pending = VecDeque::new();
        let (replaying, emitted) = match after {
            Some(after) => {
                if after < 0 {
                    return Err(Error::invalid(
                        "after",
                        "`after` must be an event id (>= 0)",
                    ));
                }
                let newest = newest_id(&db).await?;
                if after > newest {
                    return Err(Error::invalid(
                        "after",
                        format!("`after`: no event {after} yet (the newest is {newest})"),
                    ));
                }
                match self.recent_after(after, &kinds) {
                    // Recent enough to resume from memory.
                    Some(events) => {
                        pending.extend(events);
                        (false, after)
                    }
                    None => (true, after),
                }
            }
            // Only what is broadcast from now on arrives: all of it is new.
            None => (false, 0),
        };
        let follower = Follower {
            hub: self.clone(),
            db,
            kinds,
            live,
            replaying,
            emitted,
            pending,
            ended: false,
        };
        Ok(stream::unfold(follower, |mut f| async move {
            let next = f.next().await?;
            Some((next, f))
        })
        .boxed())
    }
}

struct Follower {
    hub: Arc<EventHub>,
    db: DatabaseConnection,
    kinds: Vec<EntityType>,
    live: broadcast::Receiver<StoredEvent>,
    replaying: bool,
    /// The id of the last event let through (or skipped by the replay's read): nothing at or
    /// below it is let through again.
    emitted: i64,
    pending: VecDeque<StoredEvent>,
    ended: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<Result<StoredEvent>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.emitted = event.id;
                return Some(Ok(event));
            }
            if self.replaying {
                match read_after(&self.db, self.emitted, &self.kinds, FOLLOWER_PAGE).await {
                    Ok(rows) => {
                        self.replaying = rows.len() as u64 == FOLLOWER_PAGE;
                        self.pending
                            .extend(rows.into_iter().map(|row| Arc::new(Committed::new(row))));
                        continue;
                    }
                    Err(err) => {
                        self.ended = true;
                        return Some(Err(err));
                    }
                }
            }
            match self.live.recv().await {
                Ok(event) => {
                    if event.id <= self.emitted || !self.wants(&event) {
                        continue;
                    }
                    self.emitted = event.id;
                    return Some(Ok(event));
                }
                // A burst larger than the buffer (one commit of a large discovery batch):
                // what was missed comes from memory if it is still there, else from the
                // log, after the last event let through.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    match self.hub.recent_after(self.emitted, &self.kinds) {
                        Some(events) => self.pending.extend(events),
                        None => self.replaying = true,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    fn wants(&self, event: &audit_event::Model) -> bool {
        wanted(&self.kinds, event)
    }
}

/// Whether an event is about one of `kinds` (all, when empty).
fn wanted(kinds: &[EntityType], event: &audit_event::Model) -> bool {
    kinds.is_empty() || kinds.iter().any(|kind| kind.as_str() == event.entity_type)
}

/// The id of the newest event (0 when there is none).
pub(crate) async fn newest_id(db: &impl ConnectionTrait) -> Result<i64> {
    let newest: Option<Option<i64>> = audit_event::Entity::find()
        .select_only()
        .column_as(audit_event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}

/// Up to `limit` events after `after` about `kinds` (all when empty), oldest first.
pub async fn read_after(
    db: &impl ConnectionTrait,
    after: i64,
    kinds: &[EntityType],
    limit: u64,
) -> Result<Vec<audit_event::Model>> {
    let mut select = audit_event::Entity::find().filter(audit_event::Column::Id.gt(after));
    if !kinds.is_empty() {
        select =
            select.filter(audit_event::Column::EntityType.is_in(kinds.iter().map(|k| k.as_str())));
    }
    Ok(select
        .order_by_asc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
