//! Every nested lookup of the schema goes through these loaders, so a page of N items costs
//! a fixed number of queries, not N. One loader set is built per request: nothing is cached
//! across requests (or users), and within a request loads are batched but not cached, so a
//! field read after a mutation sees the mutation's result.
//!
//! Each key type is one kind of lookup and calls exactly one domain function.
//!
//! Batching does not depend on timing. The loader tasks of a request run on the request's
//! own task ([`LoaderTasks::drive`]), polled only when query execution can make no more
//! progress: by then every resolver of the current level has registered its key, so one
//! level of a query costs one statement per kind of lookup, whatever the page size and
//! however loaded the machine.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::future::BoxFuture;
use async_graphql::futures_util::stream::FuturesUnordered;
use entity::{
    change_approval, change_request, configuration_item, customer, customer_service, incident,
    incident_service, relationship, service, service_level,
};
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::domain::as_of;
use crate::domain::changes::{ChangeWatch, Mark, Topic};
use crate::domain::ci_class::ClassCatalog;
use crate::domain::relationship_type::TypeCatalog;
use crate::domain::{
    change as changes, ci, customer as customers, discovery, incident as incidents,
    relationship as relationships, service as services, service_level as service_levels,
};
use crate::error::Error;

/// The loaders of one request.
pub type Loaders = DataLoader<CmdbLoader>;

/// The batch loads spawned by a request's loaders, waiting to run on the request's task.
#[derive(Clone, Default)]
pub struct LoaderTasks {
    spawned: Arc<Mutex<Vec<BoxFuture<'static, ()>>>>,
}

impl LoaderTasks {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        if let Ok(mut spawned) = self.spawned.lock() {
            spawned.push(task);
        }
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        self.spawned
            .lock()
            .map(|mut spawned| std::mem::take(&mut *spawned))
            .unwrap_or_default()
    }

    /// Runs `execution` to completion, running the loads it spawns whenever it waits.
    ///
    /// Execution that yields while it still has work (async-graphql resolves long lists
    /// in slices and yields between them) is polled again before any load starts, so
    /// the keys of a whole list go into one batch. Loads run in waves: loads asked for
    /// while a wave runs wait for it to end, so that the resolvers woken by any of its
    /// results add their keys to the next batch, whichever result came first. Execution
    /// itself keeps running during a wave (its own statements must progress).
    pub async fn drive<F: Future>(&self, execution: F) -> F::Output {
        let mut execution = pin!(execution);
        let mut running = FuturesUnordered::new();
        std::future::poll_fn(|cx| {
            // Execution that wakes itself, and waves that end, are polled again here rather
            // than through the runtime: each trip through the scheduler costs a wake-up of
            // the runtime's driver. Bounded, so that one request cannot hold a worker thread.
            for _ in 0..INLINE_POLLS {
                let signal = Arc::new(WakeSignal {
                    woken: AtomicBool::new(false),
                    waker: cx.waker().clone(),
                });
                let waker = Waker::from(signal.clone());
                if let Poll::Ready(output) =
                    execution.as_mut().poll(&mut Context::from_waker(&waker))
                {
                    return Poll::Ready(output);
                }
                if signal.woken.swap(false, Ordering::SeqCst) {
                    // More resolvers are ready to run: poll again before any load starts.
                    continue;
                }
                if running.is_empty() {
                    let wave = self.take();
                    if wave.is_empty() {
                        return Poll::Pending;
                    }
                    running.extend(wave);
                }
                loop {
                    match running.poll_next_unpin(cx) {
                        // The wave is over. Its results woke their resolvers; let them all
                        // run and ask for what they need next before another wave starts.
                        Poll::Ready(Some(())) if running.is_empty() => break,
                        Poll::Ready(Some(())) => continue,
                        Poll::Ready(None) | Poll::Pending => return Poll::Pending,
                    }
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }
}

/// How many times [`LoaderTasks::drive`] polls a request again by itself before it lets the
/// runtime run other tasks.
const INLINE_POLLS: usize = 64;

/// Remembers that execution asked to be polled again, and passes the wake-up on.
struct WakeSignal {
    woken: AtomicBool,
    waker: Waker,
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.waker.wake_by_ref();
    }
}

/// Builds the loaders for one request; their loads run in `tasks`.
pub fn for_request(db: DatabaseConnection, tasks: &LoaderTasks) -> Loaders {
    let tasks = tasks.clone();
    DataLoader::new(CmdbLoader { db }, move |task| tasks.spawn(task)).delay(Duration::ZERO)
}

/// Loaders for a subscription: its events are resolved one at a time, long after the
/// subscription started, so batch loads run as tasks of their own (and nothing is cached
/// between events).
pub fn for_subscription(db: DatabaseConnection) -> Loaders {
    DataLoader::new(CmdbLoader { db }, tokio::spawn).delay(Duration::ZERO)
}

/// The catalogues as the server last read them, kept while the change watch says no
/// class or relationship type changed since (see `domain::changes`).
#[derive(Default)]
pub struct SharedCatalogs {
    watch: Option<Arc<ChangeWatch>>,
    classes: RwLock<Option<(Arc<ClassCatalog>, Mark)>>,
    types: RwLock<Option<(Arc<TypeCatalog>, Mark)>>,
}

impl SharedCatalogs {
    /// Catalogues kept while `watch` says they hold.
    pub fn watched(watch: Arc<ChangeWatch>) -> Self {
        SharedCatalogs {
            watch: Some(watch),
            ..Self::default()
        }
    }

    /// What `slot` keeps, if it still holds; else reads it with `load` and keeps it.
    async fn get<T, F, Fut>(
        &self,
        slot: &RwLock<Option<(Arc<T>, Mark)>>,
        load: F,
    ) -> Result<Arc<T>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        if let Some(watch) = &self.watch
            && let Ok(kept) = slot.read()
            && let Some((value, mark)) = kept.as_ref()
            && watch.unchanged_since(Topic::Catalog, *mark)
        {
            return Ok(value.clone());
        }
        let mark = self.watch.as_ref().and_then(|w| w.mark(Topic::Catalog));
        let value = Arc::new(load().await?);
        if let Ok(mut kept) = slot.write() {
            *kept = Some((value.clone(), mark));
        }
        Ok(value)
    }
}

/// The catalogues of one request: classes and relationship types are few and read whole,
/// once per request at most (and not at all while the server's copy holds), by whichever
/// resolver asks first (the others wait for it).
pub struct Catalogs {
    db: DatabaseConnection,
    shared: Arc<SharedCatalogs>,
    classes: OnceCell<Arc<ClassCatalog>>,
    types: OnceCell<Arc<TypeCatalog>>,
}

impl Catalogs {
    /// Catalogues of `db`, read when first asked for (or taken from `shared`).
    pub fn new(db: DatabaseConnection, shared: Arc<SharedCatalogs>) -> Self {
        Catalogs {
            db,
            shared,
            classes: OnceCell::new(),
            types: OnceCell::new(),
        }
    }

    /// The class catalogue.
    pub async fn classes(&self) -> Result<Arc<ClassCatalog>, Error> {
        self.classes
            .get_or_try_init(|| {
                self.shared
                    .get(&self.shared.classes, || ClassCatalog::load(&self.db))
            })
            .await
            .cloned()
    }

    /// The relationship type catalogue.
    pub async fn types(&self) -> Result<Arc<TypeCatalog>, Error> {
        self.types
            .get_or_try_init(|| {
                self.shared
                    .get(&self.shared.types, || TypeCatalog::load(&self.db))
            })
            .await
            .cloned()
    }
}

/// Batches lookups of every kind against one database.
pub struct CmdbLoader {
    db: DatabaseConnection,
}

/// Defines a loader key and its loader, all in one shape: a key is an owner's id, and for
/// nested lists also the field's arguments (so that the list is cut in the database);
/// its values come from one domain function returning a map by id. Keys with arguments
/// cost one call per distinct arguments in a batch (usually one).
macro_rules! loader {
    ($(#[$doc:meta])* $key:ident => $value:ty, $fetch:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for CmdbLoader {
            type Value = $value;
            type Error = Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Error> {
                let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                let mut found = $fetch(&self.db, &ids).await?;
                Ok(keys
                    .iter()
                    .filter_map(|key| found.remove(&key.0).map(|value| (*key, value)))
                    .collect())
            }
        }
    };
    ($(#[$doc:meta])* $key:ident($args:ty) => $value:ty, $fetch:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $key {
            /// The owner of the list.
            pub id: Uuid,
            /// The field's arguments.
            pub args: $args,
        }

        impl Loader<$key> for CmdbLoader {
            type Value = $value;
            type Error = Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Error> {
                let mut by_args: HashMap<&$args, Vec<Uuid>> = HashMap::new();
                for key in keys {
                    by_args.entry(&key.args).or_default().push(key.id);
                }
                let mut result = HashMap::with_capacity(keys.len());
                for (args, ids) in by_args {
                    let mut found = $fetch(&self.db, &ids, args).await?;
                    for id in ids {
                        if let Some(value) = found.remove(&id) {
                            result.insert($key { id, args: args.clone() }, value);
                        }
                    }
                }
                Ok(result)
            }
        }
    };
}

loader!(
    /// A configuration item by id.
    CiById => Arc<configuration_item::Model>, cis_by_id
);
loader!(
    /// A relationship by id.
    RelationshipById => relationship::Model, relationships::get_many
);
loader!(
    /// How discovery sources know a CI.
    IdentifiersOf => Vec<entity::ci_identifier::Model>, discovery::identifiers_of
);
loader!(
    /// The relationships at one end of a CI, as the field lists them.
    RelationshipsOf(relationships::Listing) => Arc<[SharedListed]>, listed
);
loader!(
    /// The services a CI belongs to (as of an instant, when given).
    ServicesOf(Option<DateTime<Utc>>) => Vec<service::Model>, services::services_of_at
);
loader!(
    /// The member CIs of a service, at most that many (as of an instant, when given).
    MembersOf(services::MemberListing) => Vec<configuration_item::Model>, services::members_of
);
loader!(
    /// Who asserts a relationship: the person who declared it, the sources that observed it.
    AssertionsOf => Vec<relationships::assertions::Assertion>, relationships::assertions::assertions_of
);
loader!(
    /// A configuration item by id as it was at an instant.
    CiAt(DateTime<Utc>) => configuration_item::Model, as_of::cis_at
);
loader!(
    /// A service by id.
    ServiceById => service::Model, services::get_many
);
loader!(
    /// An incident by id.
    IncidentById => incident::Model, incidents::get_many
);
loader!(
    /// A change by id.
    ChangeById => change_request::Model, changes::get_many
);
loader!(
    /// A customer by id.
    CustomerById => customer::Model, customers::get_many
);
loader!(
    /// The CIs an incident affects (their ids).
    IncidentCis => Vec<Uuid>, incidents::ci_ids_of
);
loader!(
    /// The services an incident affects, with how each came to be listed.
    IncidentServices => Vec<incident_service::Model>, incidents::services_of
);
loader!(
    /// The incidents affecting a CI, newest first, as the field lists them.
    IncidentsOfCi(incidents::Listing) => Vec<incident::Model>, incidents::incidents_of_cis
);
loader!(
    /// The incidents affecting a service, newest first, as the field lists them.
    IncidentsOfService(incidents::Listing) => Vec<incident::Model>,
    incidents::incidents_of_services
);
loader!(
    /// The CIs a change touches (their ids).
    ChangeCis => Vec<Uuid>, changes::ci_ids_of
);
loader!(
    /// The approvals and rejections of a change, oldest first.
    ChangeApprovals => Vec<change_approval::Model>, changes::approvals_of
);
loader!(
    /// The changes touching a CI, newest first, at most that many.
    ChangesOfCi(u64) => Vec<change_request::Model>, changes::changes_of_cis
);
loader!(
    /// The changes whose blast radius hits a service, newest first, at most that many.
    ChangesOfService(u64) => Vec<change_request::Model>, changes::changes_of_services
);
loader!(
    /// The services a customer consumes.
    ServicesOfCustomer => Vec<customer_service::Model>, customers::services_of
);
loader!(
    /// The customers consuming a service.
    CustomersOfService => Vec<customer_service::Model>, customers_by_service
);
loader!(
    /// The targets of a service.
    ServiceLevelOf => service_level::Model, service_levels::levels_of
);

/// A listed relationship with the CI at its other end, shared by the resolvers.
pub type SharedListed = (
    Arc<relationship::Model>,
    Option<Arc<configuration_item::Model>>,
);

async fn cis_by_id(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Arc<configuration_item::Model>>, Error> {
    Ok(ci::get_many(db, ids)
        .await?
        .into_iter()
        .map(|(id, model)| (id, Arc::new(model)))
        .collect())
}

async fn listed(
    db: &DatabaseConnection,
    ci_ids: &[Uuid],
    listing: &relationships::Listing,
) -> Result<HashMap<Uuid, Arc<[SharedListed]>>, Error> {
    Ok(relationships::listed(db, ci_ids, listing)
        .await?
        .into_iter()
        .map(|(id, list)| {
            let list: Arc<[SharedListed]> = list
                .into_iter()
                .map(|(relationship, other)| (Arc::new(relationship), other.map(Arc::new)))
                .collect();
            (id, list)
        })
        .collect())
}

async fn customers_by_service(
    db: &DatabaseConnection,
    service_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<customer_service::Model>>, Error> {
    let mut grouped: HashMap<Uuid, Vec<customer_service::Model>> = HashMap::new();
    for link in customers::customers_of_services(db, service_ids).await? {
        grouped.entry(link.service_id).or_default().push(link);
    }
    Ok(grouped)
}
