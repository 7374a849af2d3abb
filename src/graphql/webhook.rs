//! Webhooks (admin): endpoints told of committed events, and their deliveries.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};

use super::context::{actor, db, parse_id, parse_ids, patch};
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::webhook::{
    self as webhooks, CiEventFilter, EventKind, NewWebhook, UrlPolicy, WebhookChanges,
};
use crate::error::Error;

/// A kind of event a webhook can be told of.
// The names are the subscriptions' names, so that a webhook and a subscriber speak alike.
#[allow(clippy::enum_variant_names)]
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "EventKind")]
pub enum WebhookEvent {
    /// A configuration item created, updated, retired or deleted.
    ConfigurationItemChanged,
    /// A relationship created or deleted.
    RelationshipChanged,
    /// A service created, changed or deleted, or its members changed.
    ServiceChanged,
    /// An incident created, changed or moved along its lifecycle.
    IncidentChanged,
    /// A change created, edited, assessed, decided or moved along its lifecycle.
    ChangeChanged,
}

/// What narrows a webhook's configuration item events; other kinds are not narrowed.
#[derive(InputObject, Default)]
pub struct WebhookFilterInput {
    /// A class name; its subclasses' CIs match too.
    pub class: Option<String>,
    /// Exact environment.
    pub environment: Option<String>,
    /// Only CIs that are members of this service.
    pub service_id: Option<ID>,
    /// Only these CIs.
    pub ci_ids: Option<Vec<ID>>,
}

impl WebhookFilterInput {
    fn into_domain(self) -> Result<CiEventFilter, Error> {
        Ok(CiEventFilter {
            class: self.class,
            environment: self.environment,
            service_id: self
                .service_id
                .map(|id| parse_id("filter.serviceId", &id))
                .transpose()?,
            ci_ids: self
                .ci_ids
                .map(|ids| parse_ids("filter.ciIds", &ids))
                .transpose()?,
        })
    }
}

/// A new webhook.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Unique name.
    pub name: String,
    /// Where deliveries are POSTed (`http` or `https`). Loopback, link-local and metadata
    /// addresses are refused unless the operator allows the host.
    pub url: String,
    /// The kinds of event to deliver.
    pub events: Vec<WebhookEvent>,
    /// Narrows the configuration item events.
    pub filter: Option<WebhookFilterInput>,
    /// Signs every delivery (16 to 256 characters); never readable back.
    pub secret: String,
}

/// Changes to a webhook; absent fields are kept.
#[derive(InputObject, Default)]
pub struct UpdateWebhookInput {
    /// A new unique name.
    pub name: Option<String>,
    /// A new endpoint, checked as at creation.
    pub url: Option<String>,
    /// The kinds of event to deliver from now on.
    pub events: Option<Vec<WebhookEvent>>,
    /// Null removes the filter.
    pub filter: MaybeUndefined<WebhookFilterInput>,
    /// A new secret, for deliveries from now on.
    pub secret: Option<String>,
    /// Whether deliveries are made; events committed while disabled are delivered once
    /// enabled again.
    pub enabled: Option<bool>,
}

/// An endpoint told of committed events. Its secret is never shown.
pub struct Webhook(pub webhook::Model);

/// An endpoint told of committed events.
#[Object]
impl Webhook {
    /// Its id (globally unique: `node(id)` fetches it again).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Its unique name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The kinds of event it is told of.
    async fn events(&self) -> Vec<WebhookEvent> {
        webhooks::events_of(&self.0)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// What narrows its configuration item events, as JSON (`class`, `environment`,
    /// `serviceId`, `ciIds`).
    async fn filter(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.filter.clone())
    }

    /// Whether deliveries are made.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// The id of the last event it has taken on (delivered or queued).
    async fn last_event_id(&self) -> ID {
        ID(self.0.cursor.to_string())
    }

    /// Bumped by every change.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// How a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or for a retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up on after the last attempt.
    Failed,
}

/// One event sent (or to be sent) to a webhook.
pub struct WebhookDelivery(webhook_delivery::Model);

/// One event sent (or to be sent) to a webhook, with its attempts.
#[Object]
impl WebhookDelivery {
    /// The event delivered (its `X-Cmdb-Event-Id`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }

    /// How it stands.
    async fn status(&self) -> DeliveryStatus {
        match self.0.status.as_str() {
            webhooks::delivery::DELIVERED => DeliveryStatus::Delivered,
            webhooks::delivery::FAILED => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// When the next attempt is due, while pending.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == webhooks::delivery::PENDING).then_some(self.0.next_attempt_at)
    }

    /// The HTTP status of the last answer, if there was one.
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }

    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When it was queued.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was delivered or given up on.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

impl super::lean::ReadyFields for WebhookDelivery {
    fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
        (name == "eventId").then(|| super::lean::scalar(ID(self.0.event_id.to_string())))
    }
}

connection_type!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "A page of webhook deliveries, newest first.",
    "A webhook delivery in a page, with its cursor."
);

/// Queries of webhooks (admin).
#[derive(Default)]
pub struct WebhookQuery;

/// Queries of webhooks (admin).
#[Object]
impl WebhookQuery {
    /// Every webhook, by name.
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        Ok(webhooks::list(db(ctx)?)
            .await?
            .into_iter()
            .map(Webhook)
            .collect())
    }

    /// A webhook's deliveries, newest first.
    #[graphql(complexity = "pagination::complexity(first, None, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookDeliveryConnection> {
        let id = parse_id("webhookId", &webhook_id)?;
        let window = pagination::window(ctx, first, after, None, None)?;
        let page = webhooks::deliveries(db(ctx)?, id, &window).await?;
        let total = TotalCount::new(move |db| {
            Box::pin(async move { webhooks::count_deliveries(&db, id).await })
        });
        Ok(connection(page, total, WebhookDelivery))
    }
}

/// Changes to webhooks (admin).
#[derive(Default)]
pub struct WebhookMutation;

/// Changes to webhooks (admin).
#[Object]
impl WebhookMutation {
    /// Records a webhook; it is told of events committed from now on.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<Webhook> {
        let new = NewWebhook {
            name: input.name,
            url: input.url,
            events: input.events.into_iter().map(Into::into).collect(),
            filter: input
                .filter
                .map(WebhookFilterInput::into_domain)
                .transpose()?
                .unwrap_or_default(),
            secret: input.secret,
        };
        let policy = ctx.data::<UrlPolicy>()?;
        Ok(Webhook(
            webhooks::create(db(ctx)?, &actor(ctx), policy, new).await?,
        ))
    }

    /// Changes a webhook.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> Result<Webhook> {
        let id = parse_id("id", &id)?;
        let filter = match input.filter {
            MaybeUndefined::Value(filter) => MaybeUndefined::Value(filter.into_domain()?),
            MaybeUndefined::Null => MaybeUndefined::Null,
            MaybeUndefined::Undefined => MaybeUndefined::Undefined,
        };
        let changes = WebhookChanges {
            name: input.name,
            url: input.url,
            events: input
                .events
                .map(|events| events.into_iter().map(Into::into).collect()),
            filter: patch(filter),
            secret: input.secret,
            enabled: input.enabled,
        };
        let policy = ctx.data::<UrlPolicy>()?;
        Ok(Webhook(
            webhooks::update(db(ctx)?, &actor(ctx), policy, id, changes).await?,
        ))
    }

    /// Deletes a webhook and its delivery history.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<Webhook> {
        let id = parse_id("id", &id)?;
        Ok(Webhook(webhooks::delete(db(ctx)?, &actor(ctx), id).await?))
    }
}
