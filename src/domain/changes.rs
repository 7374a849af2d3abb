//! Knowing that nothing changed without asking the database.
//!
//! Caches of derived data (the impact graph, the catalogues, verified tokens) keep a mark of
//! the generation of their [`Topic`] when they were filled; while the generation is the same
//! and the watch is listening, they are current and answer without a round trip.
//!
//! Generations move:
//! - at once, in this process, after a unit of work commits ([`committed`], through the task
//!   that made the write: see [`WATCH`]);
//! - on PostgreSQL, for writes by any instance: the unit of work notifies the `cmdb_changes`
//!   channel inside its transaction (delivered only if it commits), and [`listen`] hears it;
//! - on SQLite, for writes by another process (`cmdb import`, `cmdb token revoke`): a
//!   dedicated connection polls `PRAGMA data_version`, which moves whenever any other
//!   connection commits, every [`POLL_INTERVAL`].
//!
//! When the listener cannot listen (its connection lost), the watch says so and readers ask
//! the database as if there were no watch; once it listens again, every generation moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use super::Result;
use super::audit::{EntityType, Event};

/// The channel PostgreSQL notifications travel on, followed by `:` and the schema (so that
/// databases shared by several schemas, as the tests' are, keep their news apart).
pub const CHANNEL: &str = "cmdb_changes";

/// How often SQLite is asked whether another process wrote.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What a cache depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// CIs, relationships, relationship types and services: the impact graph.
    Graph,
    /// CI classes and relationship types.
    Catalog,
    /// API tokens.
    Tokens,
    /// Any committed event (the audit trail grew): live updates and webhooks.
    Events,
}

impl Topic {
    const ALL: [Topic; 4] = [Topic::Graph, Topic::Catalog, Topic::Tokens, Topic::Events];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Topic::Graph => "graph",
            Topic::Catalog => "catalog",
            Topic::Tokens => "tokens",
            Topic::Events => "events",
        }
    }

    fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The topics that committed events touch: every non-empty commit touches [`Topic::Events`].
pub fn topics_of(events: &[Event]) -> Vec<Topic> {
    let mut topics = Vec::new();
    if !events.is_empty() {
        topics.push(Topic::Events);
    }
    for event in events {
        let touched: &[Topic] = match event.entity_type {
            EntityType::ConfigurationItem | EntityType::Relationship | EntityType::Service => {
                &[Topic::Graph]
            }
            EntityType::RelationshipType => &[Topic::Graph, Topic::Catalog],
            EntityType::CiClass => &[Topic::Catalog],
            EntityType::ApiToken => &[Topic::Tokens],
            _ => &[],
        };
        for topic in touched {
            if !topics.contains(topic) {
                topics.push(*topic);
            }
        }
    }
    topics
}

/// The generations of the topics of one database, as this process knows them.
#[derive(Debug)]
pub struct ChangeWatch {
    generations: [AtomicU64; 4],
    listening: AtomicBool,
    /// Moves with every bump, for tasks that wait for news rather than check for it.
    moved: tokio::sync::watch::Sender<u64>,
}

/// A cache's mark: the generation of its topic when it was filled, if the watch was
/// listening then.
pub type Mark = Option<u64>;

impl ChangeWatch {
    /// A watch that does not listen yet (every reader asks the database).
    pub fn new() -> Arc<Self> {
        Arc::new(ChangeWatch {
            generations: Default::default(),
            listening: AtomicBool::new(false),
            moved: tokio::sync::watch::Sender::new(0),
        })
    }

    /// A receiver that is told whenever any topic moves (or the watch starts or stops
    /// listening): whoever waits on it then looks at what changed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.moved.subscribe()
    }

    /// The generation of `topic`, whether or not the watch listens.
    pub fn generation(&self, topic: Topic) -> u64 {
        self.generations[topic.index()].load(Ordering::SeqCst)
    }

    /// The mark to keep with data about to be read from the database: take it before
    /// reading, so that a change committed meanwhile moves the generation past it.
    pub fn mark(&self, topic: Topic) -> Mark {
        self.listening
            .load(Ordering::SeqCst)
            .then(|| self.generations[topic.index()].load(Ordering::SeqCst))
    }

    /// Whether data marked `mark` is still current: nothing of `topic` was committed since
    /// (and the watch was listening all along).
    pub fn unchanged_since(&self, topic: Topic, mark: Mark) -> bool {
        mark.is_some_and(|mark| {
            self.listening.load(Ordering::SeqCst)
                && self.generations[topic.index()].load(Ordering::SeqCst) == mark
        })
    }

    /// Records that `topics` changed.
    pub fn bump(&self, topics: &[Topic]) {
        for topic in topics {
            self.generations[topic.index()].fetch_add(1, Ordering::SeqCst);
        }
        if !topics.is_empty() {
            self.moved
                .send_modify(|moved| *moved = moved.wrapping_add(1));
        }
    }

    /// Records that anything may have changed.
    pub fn bump_all(&self) {
        self.bump(&Topic::ALL);
    }

    fn set_listening(&self, listening: bool) {
        // Whatever happened while not listening is unknown: every mark taken before is
        // made stale, in both directions.
        self.bump_all();
        self.listening.store(listening, Ordering::SeqCst);
        self.bump_all();
    }

    /// Whether the watch hears of every change (else readers must ask).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

tokio::task_local! {
    /// The watch of the database a task writes to, set around request handling, so that a
    /// write's own process sees it at once after commit.
    pub static WATCH: Arc<ChangeWatch>;
}

/// Tells other instances, inside the writing transaction, which topics it changes: on
/// PostgreSQL a notification delivered only if the transaction commits.
pub async fn announce(txn: &impl ConnectionTrait, topics: &[Topic]) -> Result<()> {
    if topics.is_empty() || txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let payload: Vec<&str> = topics.iter().map(|t| t.name()).collect();
    let statement = sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1 || ':' || current_schema(), $2)",
        [CHANNEL.into(), payload.join(",").into()],
    );
    txn.execute_raw(statement).await?;
    Ok(())
}

/// After a commit: this process's watch (if the task has one) moves at once.
pub fn committed(topics: &[Topic]) {
    if topics.is_empty() {
        return;
    }
    let _ = WATCH.try_with(|watch| watch.bump(topics));
}

/// Keeps `watch` told of changes made by other writers to `db`, until the returned guard
/// is dropped. On SQLite it looks every `poll_interval`.
pub fn listen(
    db: &DatabaseConnection,
    watch: &Arc<ChangeWatch>,
    poll_interval: Duration,
) -> Listener {
    let task = match db.get_database_backend() {
        DbBackend::Postgres => tokio::spawn(listen_postgres(db.clone(), Arc::downgrade(watch))),
        // (A private in-memory database looks unchanged to the poll's own connection:
        // right, since nobody else can write to it.)
        _ => {
            let options = db.get_sqlite_connection_pool().connect_options();
            tokio::spawn(poll_sqlite(
                (*options).clone(),
                Arc::downgrade(watch),
                poll_interval,
            ))
        }
    };
    Listener(task)
}

/// Stops listening when dropped.
#[derive(Debug)]
pub struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The channel of the schema `db` works in.
async fn channel(db: &DatabaseConnection) -> Result<String> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_schema() AS schema",
        ))
        .await?;
    let schema: String = match row {
        Some(row) => row.try_get("", "schema")?,
        None => "public".into(),
    };
    Ok(format!("{CHANNEL}:{schema}"))
}

async fn listen_postgres(db: DatabaseConnection, watch: std::sync::Weak<ChangeWatch>) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = db.get_postgres_connection_pool().clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let channel = match channel(&db).await {
            Ok(channel) => channel,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for changes; caches ask the database");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for changes; caches ask the database");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(err) = listener.listen(&channel).await {
            tracing::warn!(error = %err, "cannot listen for changes; caches ask the database");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        match watch.upgrade() {
            Some(watch) => watch.set_listening(true),
            None => return,
        }
        loop {
            let received = listener.try_recv().await;
            let Some(watch) = watch.upgrade() else {
                return;
            };
            match received {
                Ok(Some(notification)) => {
                    let topics: Vec<Topic> = notification
                        .payload()
                        .split(',')
                        .filter_map(Topic::parse)
                        .collect();
                    watch.bump(&topics);
                }
                // The connection was lost (notifications in between may be lost too): not
                // listening until it is back.
                Ok(None) | Err(_) => {
                    watch.set_listening(false);
                    tracing::warn!("change notifications interrupted; caches ask the database");
                    break;
                }
            }
        }
    }
}

async fn poll_sqlite(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
    watch: std::sync::Weak<ChangeWatch>,
    poll_interval: Duration,
) {
    use sea_orm::sqlx::{ConnectOptions, Connection, Row};
    let mut connection = None;
    let mut last: Option<i64> = None;
    loop {
        let Some(strong) = watch.upgrade() else {
            return;
        };
        if connection.is_none() {
            connection = options.connect().await.ok();
        }
        let version = match connection.as_mut() {
            Some(connection) => sea_orm::sqlx::query("PRAGMA data_version")
                .fetch_one(&mut *connection)
                .await
                .and_then(|row| row.try_get::<i64, _>(0))
                .ok(),
            None => None,
        };
        match version {
            Some(version) => {
                if last.is_some_and(|last| last != version) {
                    strong.bump_all();
                }
                if last.is_none() {
                    strong.set_listening(true);
                }
                last = Some(version);
            }
            None => {
                if let Some(connection) = connection.take() {
                    let _ = connection.close().await;
                }
                if last.take().is_some() {
                    strong.set_listening(false);
                }
            }
        }
        drop(strong);
        tokio::time::sleep(poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_hold_until_their_topic_moves_or_the_watch_stops_listening() {
        let watch = ChangeWatch::new();
        assert_eq!(watch.mark(Topic::Graph), None, "not listening: no mark");
        assert!(!watch.unchanged_since(Topic::Graph, None));
        watch.set_listening(true);
        let graph = watch.mark(Topic::Graph);
        let tokens = watch.mark(Topic::Tokens);
        assert!(watch.unchanged_since(Topic::Graph, graph));
        watch.bump(&[Topic::Tokens]);
        assert!(watch.unchanged_since(Topic::Graph, graph));
        assert!(!watch.unchanged_since(Topic::Tokens, tokens));
        watch.set_listening(false);
        assert!(!watch.unchanged_since(Topic::Graph, graph));
        watch.set_listening(true);
        assert!(
            !watch.unchanged_since(Topic::Graph, graph),
            "a mark from before an interruption stays stale"
        );
    }

    #[test]
    fn events_touch_the_topics_their_records_feed() {
        let event = |entity_type| Event {
            entity_type,
            entity_id: String::new(),
            action: super::super::audit::Action::Update,
            before: None,
            after: None,
        };
        assert_eq!(
            topics_of(&[event(EntityType::Relationship), event(EntityType::Service)]),
            [Topic::Events, Topic::Graph]
        );
        assert_eq!(
            topics_of(&[event(EntityType::RelationshipType)]),
            [Topic::Events, Topic::Graph, Topic::Catalog]
        );
        assert_eq!(
            topics_of(&[event(EntityType::ApiToken)]),
            [Topic::Events, Topic::Tokens]
        );
        assert_eq!(topics_of(&[event(EntityType::Incident)]), [Topic::Events]);
        assert!(topics_of(&[]).is_empty());
    }
}
