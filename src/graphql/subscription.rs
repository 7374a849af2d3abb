//! Live updates: the subscription root. Every field follows the event log from `after` (or
//! from now), in commit order, narrowed to what the subscriber asked for. Event ids grow in
//! commit order: a client that reconnects passes the last `eventId` it received as `after`
//! and gets every event since, once.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, MergedObject, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;
use uuid::Uuid;

use super::audit::{AuditAction, AuditEntityType};
use super::change::{Change, ChangeFilter};
use super::ci::{ConfigurationItem, ConfigurationItemFilter};
use super::context::{db, graph_cache, limits, parse_id};
use super::incident::{Incident, IncidentFilter};
use super::loaders::{Catalogs, SharedCatalogs};
use super::relationship::Relationship;
use super::service::Service;
use crate::domain::audit::{Action, EntityType};
use crate::domain::events::service_health::{self, Closure, Health};
use crate::domain::events::{EventHub, StoredEvent, matching};
use crate::domain::{change as changes, incident as incidents, service as services};
use crate::error::Error;

/// What every event says: which, when, who, what changed.
pub struct EventFacts(StoredEvent);

/// When and by whom a change was committed, and what it changed.
#[Object]
impl EventFacts {
    /// The event's id. Ids grow in commit order; pass the last one received as `after` to
    /// resume a subscription without losing or repeating an event.
    async fn event_id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What the write did.
    async fn action(&self) -> Result<AuditAction> {
        Action::parse(&self.0.action)
            .map(Into::into)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown action")).into())
    }

    /// The kind of record the event is about.
    async fn entity_type(&self) -> Result<AuditEntityType> {
        EntityType::parse(&self.0.entity_type)
            .map(Into::into)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown entity type")).into())
    }

    /// When the write committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// Who made it: the API token's name (`system` for the server's own writes).
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// For discovery writes, the source the data came from.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }

    /// The fields that changed (attributes one by one, as `attributes.<name>`).
    async fn changed_fields(&self) -> Vec<String> {
        matching::changed_fields(self.0.before.as_ref(), self.0.after.as_ref())
    }

    /// The record's full state before the write; null for a creation.
    async fn before(&self) -> Option<async_graphql::Json<Value>> {
        self.0.before.clone().map(async_graphql::Json)
    }

    /// The record's full state after the write; null for a deletion.
    async fn after(&self) -> Option<async_graphql::Json<Value>> {
        self.0.after.clone().map(async_graphql::Json)
    }
}

/// The CI of a configuration item event.
pub struct CiPart(StoredEvent);

/// The CI an event is about.
#[Object]
impl CiPart {
    /// The CI's id.
    async fn ci_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }

    /// The CI as the write left it; null when it was deleted.
    async fn ci(&self) -> Option<ConfigurationItem> {
        self.0.ci_states()[1].clone().map(ConfigurationItem::new)
    }
}

/// A committed create, update, retire or delete of a configuration item.
#[derive(MergedObject)]
pub struct ConfigurationItemEvent(EventFacts, CiPart);

/// The relationship of a relationship event.
pub struct RelationshipPart(StoredEvent);

/// The relationship an event is about.
#[Object]
impl RelationshipPart {
    /// The relationship's id.
    async fn relationship_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }

    /// The relationship as the write left it, or as it was when the write deleted it.
    async fn relationship(&self) -> Option<Relationship> {
        self.0
            .after
            .as_ref()
            .or(self.0.before.as_ref())
            .and_then(|state| serde_json::from_value(state.clone()).ok())
            .map(Relationship::new)
    }
}

/// A relationship created or deleted.
#[derive(MergedObject)]
pub struct RelationshipEvent(EventFacts, RelationshipPart);

/// The incident of an incident event.
pub struct IncidentPart(StoredEvent);

/// The incident an event is about.
#[Object]
impl IncidentPart {
    /// The incident as it is now.
    async fn incident(&self, ctx: &Context<'_>) -> Result<Option<Incident>> {
        let id = parse_id("incident", &ID(self.0.entity_id.clone()))?;
        Ok(Some(Incident(incidents::get(db(ctx)?, id).await?)))
    }
}

/// An incident created, changed or moved along its lifecycle.
#[derive(MergedObject)]
pub struct IncidentEvent(EventFacts, IncidentPart);

/// The change of a change event.
pub struct ChangePart(StoredEvent);

/// The change an event is about.
#[Object]
impl ChangePart {
    /// The change as it is now.
    async fn change(&self, ctx: &Context<'_>) -> Result<Option<Change>> {
        let id = parse_id("change", &ID(self.0.entity_id.clone()))?;
        Ok(Some(Change(changes::get(db(ctx)?, id).await?)))
    }
}

/// A change created, edited, assessed, decided or moved along its lifecycle.
#[derive(MergedObject)]
pub struct ChangeEvent(EventFacts, ChangePart);

/// A service's operational state, as impact analysis decides it from the failures in its
/// dependency closure (CIs under maintenance, retired while needed, or named by an open
/// incident).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "Health")]
pub enum ServiceHealth {
    /// No failure reaches a member.
    Up,
    /// Failures reach members without taking one down (redundancy holds).
    Degraded,
    /// A member is down.
    Down,
}

/// Something in a service's dependency closure changed in a way its impact depends on.
pub struct ServiceImpactEvent {
    event: StoredEvent,
    service_id: Uuid,
    changed_ci: Uuid,
    path: Vec<Uuid>,
    before: Health,
    after: Health,
}

/// Why a watched service may be hit, and how its state moved.
#[Object]
impl ServiceImpactEvent {
    /// The event that made the change (pass it as `after` to resume).
    async fn event_id(&self) -> ID {
        ID(self.event.id.to_string())
    }

    /// The kind of record the event changed.
    async fn cause(&self) -> Result<AuditEntityType> {
        EntityType::parse(&self.event.entity_type)
            .map(Into::into)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown entity type")).into())
    }

    /// What the write did.
    async fn action(&self) -> Result<AuditAction> {
        Action::parse(&self.event.action)
            .map(Into::into)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown action")).into())
    }

    /// When the write committed.
    async fn at(&self) -> DateTime<Utc> {
        self.event.occurred_at
    }

    /// Who made it.
    async fn actor(&self) -> &str {
        &self.event.actor
    }

    /// The watched service.
    async fn service(&self, ctx: &Context<'_>) -> Result<Option<Service>> {
        Ok(services::get_many(db(ctx)?, &[self.service_id])
            .await?
            .remove(&self.service_id)
            .map(|s| Service(s, None)))
    }

    /// The CI of the closure the event touched.
    async fn changed_ci_id(&self) -> ID {
        ID(self.changed_ci.to_string())
    }

    /// The CI of the closure the event touched, as it is now (null once deleted).
    async fn changed_ci(&self, ctx: &Context<'_>) -> Result<Option<ConfigurationItem>> {
        Ok(super::incident::cis_by_ids(ctx, &[self.changed_ci])
            .await?
            .into_iter()
            .next())
    }

    /// The ids of the CIs from the changed CI to the member of the service it feeds (the
    /// changed CI first); one id when the changed CI is itself a member.
    async fn path(&self) -> Vec<ID> {
        self.path.iter().map(|id| ID(id.to_string())).collect()
    }

    /// The service's state before the event, as this subscription last reported it (or
    /// found it when it started).
    async fn before(&self) -> ServiceHealth {
        self.before.into()
    }

    /// The service's state after the event, decided when the event reached this
    /// subscription, on the graph and the incidents as they were then (for a replayed
    /// event, as they are now).
    async fn after(&self) -> ServiceHealth {
        self.after.into()
    }
}

/// Live updates. Each subscription may start `after` an event id to replay what it missed.
#[derive(Default)]
pub struct Subscription;

fn after_id(after: Option<ID>) -> Result<Option<i64>, Error> {
    after
        .map(|id| {
            id.parse::<i64>()
                .map_err(|_| Error::invalid("after", "`after` must be an eventId"))
        })
        .transpose()
}

async fn follow(
    ctx: &Context<'_>,
    after: Option<ID>,
    kinds: Vec<EntityType>,
) -> Result<BoxStream<'static, crate::error::Result<StoredEvent>>> {
    let hub = ctx.data::<Arc<EventHub>>()?;
    Ok(hub
        .follow(db(ctx)?.clone(), after_id(after)?, kinds)
        .await?)
}

/// Ends a stream at its first error, after passing the error on.
fn until_error<T: Send + 'static>(
    stream: impl Stream<Item = Result<T>> + Send + 'static,
) -> impl Stream<Item = Result<T>> + Send + 'static {
    stream.scan(false, |failed, item| {
        let next = (!*failed).then(|| {
            *failed = item.is_err();
            item
        });
        std::future::ready(next)
    })
}

/// Live updates over WebSocket (`/graphql/ws`). Each subscription may start `after` an
/// eventId to replay what it missed, then continues live.
#[Subscription]
impl Subscription {
    /// Every committed create, update, retire and delete of a CI that matches `filter`
    /// before or after the write.
    async fn configuration_item_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConfigurationItemFilter>,
        #[graphql(desc = "Replay the events after this eventId first.")] after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<ConfigurationItemEvent>> + use<>> {
        let filter = filter
            .map(|f| f.into_domain())
            .transpose()?
            .unwrap_or_default();
        let db = db(ctx)?.clone();
        let graph = graph_cache(ctx)?.clone();
        let shared = ctx.data::<Arc<SharedCatalogs>>()?.clone();
        let events = follow(ctx, after, vec![EntityType::ConfigurationItem]).await?;
        let stream = events.filter_map(move |event| {
            let (db, graph, shared, filter) =
                (db.clone(), graph.clone(), shared.clone(), filter.clone());
            async move {
                let event = match event {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                // Either side of the write may match: a subscriber to servers in service
                // hears of the one that goes into maintenance, and of the one that comes back.
                let wanted = async {
                    let classes = match filter.class {
                        Some(_) => Some(Catalogs::new(db.clone(), shared).classes().await?),
                        None => None,
                    };
                    let graph = match filter.service_id {
                        Some(_) => Some(graph.current(&db).await?),
                        None => None,
                    };
                    Ok::<bool, Error>(event.ci_states().iter().flatten().any(|ci| {
                        matching::ci_matches(&filter, ci, classes.as_deref(), |ci, service| {
                            graph
                                .as_ref()
                                .and_then(|g| g.node(&ci))
                                .is_some_and(|node| node.services.contains(&service))
                        })
                    }))
                };
                match wanted.await {
                    Ok(true) => Some(Ok(ConfigurationItemEvent(
                        EventFacts(event.clone()),
                        CiPart(event),
                    ))),
                    Ok(false) => None,
                    Err(err) => Some(Err(err.into())),
                }
            }
        });
        Ok(until_error(stream))
    }

    /// Every relationship created or deleted; with `ciId`, only those from or to that CI.
    async fn relationship_changed(
        &self,
        ctx: &Context<'_>,
        ci_id: Option<ID>,
        #[graphql(desc = "Replay the events after this eventId first.")] after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<RelationshipEvent>> + use<>> {
        let ci = ci_id.map(|id| parse_id("ciId", &id)).transpose()?;
        let events = follow(ctx, after, vec![EntityType::Relationship]).await?;
        let stream = events.filter_map(move |event| {
            let found = match event {
                Err(err) => Some(Err(err.into())),
                Ok(event) => {
                    let ends = service_health::touched_cis(
                        &event.entity_type,
                        &event.entity_id,
                        event.before.as_ref(),
                        event.after.as_ref(),
                        Uuid::nil(),
                    );
                    ci.is_none_or(|ci| ends.contains(&ci)).then(|| {
                        Ok(RelationshipEvent(
                            EventFacts(event.clone()),
                            RelationshipPart(event),
                        ))
                    })
                }
            };
            std::future::ready(found)
        });
        Ok(until_error(stream))
    }

    /// Every incident created, changed or moved along its lifecycle that matches `filter`
    /// as the event left it (so a subscriber to open incidents hears of the one resolved).
    async fn incident_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<IncidentFilter>,
        #[graphql(desc = "Replay the events after this eventId first.")] after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<IncidentEvent>> + use<>> {
        let filter = filter
            .map(|f| f.into_domain())
            .transpose()?
            .unwrap_or_default();
        let events = follow(ctx, after, vec![EntityType::Incident]).await?;
        let stream = events.filter_map(move |event| {
            let found = match event {
                Err(err) => Some(Err(err.into())),
                Ok(event) => {
                    let before = matching::incident_matches(&filter, event.before.as_ref(), None);
                    let after = matching::incident_matches(&filter, None, event.after.as_ref());
                    (before || after).then(|| {
                        Ok(IncidentEvent(
                            EventFacts(event.clone()),
                            IncidentPart(event),
                        ))
                    })
                }
            };
            std::future::ready(found)
        });
        Ok(until_error(stream))
    }

    /// Every change created, edited, assessed, decided or moved along its lifecycle that
    /// matches `filter` as the event left it (or as it was before).
    async fn change_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<ChangeFilter>,
        #[graphql(desc = "Replay the events after this eventId first.")] after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<ChangeEvent>> + use<>> {
        let filter = filter
            .map(|f| f.into_domain())
            .transpose()?
            .unwrap_or_default();
        let db = db(ctx)?.clone();
        let events = follow(ctx, after, vec![EntityType::Change]).await?;
        let stream = events.filter_map(move |event| {
            let (db, filter) = (db.clone(), filter.clone());
            async move {
                let event = match event {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                let id = event.entity_id.parse::<Uuid>().ok()?;
                let hits = match filter.service_id {
                    Some(service) => match matching::change_hits_service(&db, id, service).await {
                        Ok(hits) => hits,
                        Err(err) => return Some(Err(err.into())),
                    },
                    None => true,
                };
                let wanted =
                    matching::change_matches(&filter, event.before.as_ref(), None, |_| hits)
                        || matching::change_matches(&filter, None, event.after.as_ref(), |_| hits);
                wanted.then(|| Ok(ChangeEvent(EventFacts(event.clone()), ChangePart(event))))
            }
        });
        Ok(until_error(stream))
    }

    /// Fires when anything in the service's dependency closure changes in a way its impact
    /// depends on: a CI's status, a relationship added or removed, a member added or
    /// removed, an incident opened or resolved on a CI of the closure. The closure follows
    /// the graph as it changes.
    async fn service_impact_changed(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        #[graphql(desc = "Replay the events after this eventId first.")] after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<ServiceImpactEvent>> + use<>> {
        let service = parse_id("serviceId", &service_id)?;
        let db = db(ctx)?.clone();
        services::get(&db, service).await?;
        let cache = graph_cache(ctx)?.clone();
        let limits = limits(ctx)?.clone();
        let watcher = ServiceWatcher::start(&db, &cache, service, &limits).await?;
        let kinds = vec![
            EntityType::ConfigurationItem,
            EntityType::Relationship,
            EntityType::Service,
            EntityType::Incident,
        ];
        let events = follow(ctx, after, kinds).await?;
        let stream =
            futures_util::stream::unfold((events, watcher), move |(mut events, mut watcher)| {
                let (db, cache, limits) = (db.clone(), cache.clone(), limits.clone());
                async move {
                    loop {
                        let event = match events.next().await? {
                            Ok(event) => event,
                            Err(err) => return Some((Err(err.into()), (events, watcher))),
                        };
                        match watcher.see(&db, &cache, &limits, event).await {
                            Ok(Some(found)) => return Some((Ok(found), (events, watcher))),
                            Ok(None) => continue,
                            Err(err) => return Some((Err(err.into()), (events, watcher))),
                        }
                    }
                }
            });
        Ok(until_error(stream))
    }
}

/// What a `serviceImpactChanged` subscriber knows of its service between events.
struct ServiceWatcher {
    service: Uuid,
    closure: Closure,
    health: Health,
}

impl ServiceWatcher {
    async fn start(
        db: &sea_orm::DatabaseConnection,
        cache: &crate::domain::impact::GraphCache,
        service: Uuid,
        limits: &crate::limits::Limits,
    ) -> crate::error::Result<Self> {
        let graph = cache.current(db).await?;
        let closure = service_health::closure(&graph, service, limits);
        let open = service_health::with_open_incidents(db, &closure).await?;
        let health = service_health::health(&graph, service, &closure, &open, limits);
        Ok(ServiceWatcher {
            service,
            closure,
            health,
        })
    }

    /// The event as the watcher reports it, if it touched the closure (before or after).
    async fn see(
        &mut self,
        db: &sea_orm::DatabaseConnection,
        cache: &crate::domain::impact::GraphCache,
        limits: &crate::limits::Limits,
        event: StoredEvent,
    ) -> crate::error::Result<Option<ServiceImpactEvent>> {
        let touched = service_health::touched_cis(
            &event.entity_type,
            &event.entity_id,
            event.before.as_ref(),
            event.after.as_ref(),
            self.service,
        );
        // Only what touches the closure as it was can change it or the service's state: a
        // relationship that widens it has one end inside already; a new member is named by
        // the service's own event.
        let membership = event.entity_id == self.service.to_string();
        if touched.is_empty() || !(membership || touched.iter().any(|ci| self.closure.contains(ci)))
        {
            return Ok(None);
        }
        let graph = cache.current(db).await?;
        let closure = service_health::closure(&graph, self.service, limits);
        let Some(changed) = touched
            .iter()
            .find(|ci| closure.contains(ci) || self.closure.contains(ci))
            .copied()
        else {
            return Ok(None);
        };
        let path = closure
            .path(changed)
            .or_else(|| self.closure.path(changed))
            .unwrap_or_else(|| vec![changed]);
        let open = service_health::with_open_incidents(db, &closure).await?;
        let health = service_health::health(&graph, self.service, &closure, &open, limits);
        let found = ServiceImpactEvent {
            event,
            service_id: self.service,
            changed_ci: changed,
            path,
            before: self.health,
            after: health,
        };
        self.closure = closure;
        self.health = health;
        Ok(Some(found))
    }
}
