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
use std::sync::{Arc, Mutex};
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
use uuid::Uuid;

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
            let signal = Arc::new(WakeSignal {
                woken: AtomicBool::new(false),
                waker: cx.waker().clone(),
            });
            let waker = Waker::from(signal.clone());
            if let Poll::Ready(output) = execution.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(output);
            }
            if signal.woken.load(Ordering::SeqCst) {
                // More resolvers are ready to run; the runtime polls us again right away.
                return Poll::Pending;
            }
            loop {
                if running.is_empty() {
                    let wave = self.take();
                    if wave.is_empty() {
                        return Poll::Pending;
                    }
                    running.extend(wave);
                }
                match running.poll_next_unpin(cx) {
                    Poll::Ready(Some(())) if running.is_empty() => {
                        // The wave is over. Its results woke their resolvers; let them all
                        // run and ask for what they need next before another wave starts.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(())) => continue,
                    Poll::Ready(None) | Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

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

/// Batches lookups of every kind against one database.
pub struct CmdbLoader {
    db: DatabaseConnection,
}

/// A configuration item by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CiById(pub Uuid);

/// A relationship by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelationshipById(pub Uuid);

/// How discovery sources know a CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentifiersOf(pub Uuid);

/// The relationships leaving a CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutgoingOf(pub Uuid);

/// The relationships arriving at a CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IncomingOf(pub Uuid);

/// The services a CI belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServicesOf(pub Uuid);

/// The member CIs of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembersOf(pub Uuid);

/// The whole class catalogue (loaded once per request however many CIs ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classes;

/// The whole relationship type catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelationshipTypes;

fn regroup<K, V>(keys: &[K], mut found: HashMap<Uuid, V>, id: impl Fn(&K) -> Uuid) -> HashMap<K, V>
where
    K: Copy + Eq + std::hash::Hash,
{
    keys.iter()
        .filter_map(|key| found.remove(&id(key)).map(|value| (*key, value)))
        .collect()
}

impl Loader<CiById> for CmdbLoader {
    type Value = Arc<configuration_item::Model>;
    type Error = Error;

    async fn load(&self, keys: &[CiById]) -> Result<HashMap<CiById, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let found = ci::get_many(&self.db, &ids)
            .await?
            .into_iter()
            .map(|(id, model)| (id, Arc::new(model)))
            .collect();
        Ok(regroup(keys, found, |k| k.0))
    }
}

impl Loader<RelationshipById> for CmdbLoader {
    type Value = relationship::Model;
    type Error = Error;

    async fn load(
        &self,
        keys: &[RelationshipById],
    ) -> Result<HashMap<RelationshipById, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            relationships::get_many(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<IdentifiersOf> for CmdbLoader {
    type Value = Vec<entity::ci_identifier::Model>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[IdentifiersOf],
    ) -> Result<HashMap<IdentifiersOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            discovery::identifiers_of(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<OutgoingOf> for CmdbLoader {
    type Value = Vec<relationship::Model>;
    type Error = Error;

    async fn load(&self, keys: &[OutgoingOf]) -> Result<HashMap<OutgoingOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            relationships::outgoing(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<IncomingOf> for CmdbLoader {
    type Value = Vec<relationship::Model>;
    type Error = Error;

    async fn load(&self, keys: &[IncomingOf]) -> Result<HashMap<IncomingOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            relationships::incoming(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<ServicesOf> for CmdbLoader {
    type Value = Vec<service::Model>;
    type Error = Error;

    async fn load(&self, keys: &[ServicesOf]) -> Result<HashMap<ServicesOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            services::services_of(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<MembersOf> for CmdbLoader {
    type Value = Vec<configuration_item::Model>;
    type Error = Error;

    async fn load(&self, keys: &[MembersOf]) -> Result<HashMap<MembersOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(regroup(
            keys,
            services::members_of(&self.db, &ids).await?,
            |k| k.0,
        ))
    }
}

impl Loader<Classes> for CmdbLoader {
    type Value = Arc<ClassCatalog>;
    type Error = Error;

    async fn load(&self, _: &[Classes]) -> Result<HashMap<Classes, Self::Value>, Error> {
        Ok(HashMap::from([(
            Classes,
            Arc::new(ClassCatalog::load(&self.db).await?),
        )]))
    }
}

impl Loader<RelationshipTypes> for CmdbLoader {
    type Value = Arc<TypeCatalog>;
    type Error = Error;

    async fn load(
        &self,
        _: &[RelationshipTypes],
    ) -> Result<HashMap<RelationshipTypes, Self::Value>, Error> {
        Ok(HashMap::from([(
            RelationshipTypes,
            Arc::new(TypeCatalog::load(&self.db).await?),
        )]))
    }
}

/// Defines a loader key of one id whose values come from one domain function returning a
/// map by that id.
macro_rules! keyed_loader {
    ($(#[$doc:meta])* $key:ident => $value:ty, $fetch:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for CmdbLoader {
            type Value = $value;
            type Error = Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Error> {
                let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                Ok(regroup(keys, $fetch(&self.db, &ids).await?, |k| k.0))
            }
        }
    };
}

keyed_loader!(
    /// A service by id.
    ServiceById => service::Model, services::get_many
);
keyed_loader!(
    /// An incident by id.
    IncidentById => incident::Model, incidents::get_many
);
keyed_loader!(
    /// A change by id.
    ChangeById => change_request::Model, changes::get_many
);
keyed_loader!(
    /// A customer by id.
    CustomerById => customer::Model, customers::get_many
);
keyed_loader!(
    /// The CIs an incident affects (their ids).
    IncidentCis => Vec<Uuid>, incidents::ci_ids_of
);
keyed_loader!(
    /// The services an incident affects, with how each came to be listed.
    IncidentServices => Vec<incident_service::Model>, incidents::services_of
);
keyed_loader!(
    /// The incidents affecting a CI, newest first.
    IncidentsOfCi => Vec<incident::Model>, incidents::incidents_of_cis
);
keyed_loader!(
    /// The incidents affecting a service, newest first.
    IncidentsOfService => Vec<incident::Model>, incidents::incidents_of_services
);
keyed_loader!(
    /// The CIs a change touches (their ids).
    ChangeCis => Vec<Uuid>, changes::ci_ids_of
);
keyed_loader!(
    /// The approvals and rejections of a change, oldest first.
    ChangeApprovals => Vec<change_approval::Model>, changes::approvals_of
);
keyed_loader!(
    /// The changes touching a CI, newest first.
    ChangesOfCi => Vec<change_request::Model>, changes::changes_of_cis
);
keyed_loader!(
    /// The changes whose blast radius hits a service, newest first.
    ChangesOfService => Vec<change_request::Model>, changes::changes_of_services
);
keyed_loader!(
    /// The services a customer consumes.
    ServicesOfCustomer => Vec<customer_service::Model>, customers::services_of
);
keyed_loader!(
    /// The customers consuming a service.
    CustomersOfService => Vec<customer_service::Model>, customers_by_service
);
keyed_loader!(
    /// The targets of a service.
    ServiceLevelOf => service_level::Model, service_levels::levels_of
);

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
