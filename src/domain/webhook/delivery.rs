//! Delivering events to webhooks: at least once, in order per endpoint, surviving restarts.
//!
//! Each webhook keeps a cursor into the event log (the audit trail). A round, for each
//! enabled webhook whose lease this instance holds (one instance at a time per webhook, so
//! its deliveries stay in order whichever instances run):
//! 1. turns the events after the cursor that the webhook wants into `PENDING` delivery rows
//!    and moves the cursor past what it read, in one transaction (the outbox: an event the
//!    server committed is either after the cursor or in a row, so a crash loses nothing);
//! 2. sends the oldest pending delivery: a `POST` of the event as JSON, signed
//!    (`X-Cmdb-Signature: sha256=<HMAC-SHA256 of the body under the secret>`) and named
//!    (`X-Cmdb-Event-Id`, for the receiver to drop duplicates), within a timeout;
//! 3. a 2xx marks it `DELIVERED`; anything else retries it after an exponential backoff with
//!    jitter, and after the last attempt marks it `FAILED` (visible in `webhookDeliveries`)
//!    and moves on. Later events wait behind the oldest: a receiver sees them in order.
//!
//! Rounds run whenever an event is committed (the change watch moves) and at least every
//! `poll` interval, so retries and other instances' events are never left waiting long.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use entity::{audit_event, webhook, webhook_delivery};
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    prelude::Expr,
    sea_query::Condition,
};
use serde_json::json;
use sha2::Sha256;

use super::{EventKind, UrlPolicy, check_url, events_of, filter_of};
use crate::domain::audit::{Actor, EntityType};
use crate::domain::changes::ChangeWatch;
use crate::domain::class_catalog::ClassCatalog;
use crate::domain::events::matching::{changed_fields, ci_matches};
use crate::domain::events::{Committed, read_after};
use crate::domain::unit_of_work::UnitOfWork;
use crate::domain::{Result, now};

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Whether this instance delivers (an operator may leave it to some instances; what
    /// is not delivered waits in the database for the next instance that does).
    pub deliver: bool,
    /// Where webhooks may point.
    pub policy: UrlPolicy,
    /// Longest one delivery may take, connection included.
    pub timeout: Duration,
    /// Attempts before a delivery is marked `FAILED`.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles with each further one (with jitter).
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// How long an instance holds a webhook once it took it.
    pub lease: Duration,
    /// The longest a round waits when nothing wakes it.
    pub poll: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            deliver: true,
            policy: UrlPolicy::default(),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        }
    }
}

/// The status of a delivery.
pub const PENDING: &str = "PENDING";
/// Received with a 2xx.
pub const DELIVERED: &str = "DELIVERED";
/// Given up on after the last attempt.
pub const FAILED: &str = "FAILED";

/// How many events one round turns into deliveries per webhook.
const ENQUEUE_PAGE: u64 = 200;
/// How many deliveries one round sends per webhook before others get their turn.
const SENDS_PER_ROUND: usize = 50;
/// How many webhooks one round serves at once (each holds a database connection at times,
/// and a slow endpoint must not hold up every other).
const CONCURRENT_WEBHOOKS: usize = 4;
/// How long finished deliveries are listed before they are pruned.
const KEEP_FINISHED: chrono::Duration = chrono::Duration::days(7);

/// Stops the delivery worker when dropped.
#[derive(Debug)]
pub struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts delivering to the webhooks of `db`.
pub fn spawn(
    db: DatabaseConnection,
    watch: &Arc<ChangeWatch>,
    settings: DeliverySettings,
) -> Worker {
    let mut moved = watch.subscribe();
    let instance = uuid::Uuid::now_v7().to_string();
    Worker(tokio::spawn(async move {
        for rounds in 0u64.. {
            // Finished deliveries are pruned now and then, not on every commit's round.
            let prune_now = rounds % 500 == 0;
            let wait = match round(&db, &settings, &instance, prune_now).await {
                Ok(wait) => wait.unwrap_or(settings.poll).min(settings.poll),
                Err(err) => {
                    tracing::warn!(error = %err, "a webhook delivery round failed");
                    settings.poll
                }
            };
            tokio::select! {
                changed = moved.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }))
}

/// One round over every enabled webhook; how soon the next is due, if sooner than a poll.
async fn round(
    db: &DatabaseConnection,
    settings: &DeliverySettings,
    instance: &str,
    prune_now: bool,
) -> Result<Option<Duration>> {
    let webhooks = webhook::Entity::find()
        .filter(webhook::Column::Enabled.eq(true))
        .all(db)
        .await?;
    if webhooks.is_empty() {
        return Ok(None);
    }
    if prune_now {
        prune(db).await?;
    }
    // The class catalogue only when some webhook filters on a class: rounds run on commits.
    let classes = match webhooks.iter().any(|hook| filter_of(hook).class.is_some()) {
        true => Some(Arc::new(ClassCatalog::load(db).await?)),
        false => None,
    };
    let rounds = webhooks.into_iter().map(|hook| {
        let classes = classes.clone();
        async move {
            if !take_lease(db, &hook, instance, settings.lease).await? {
                return Ok(None);
            }
            enqueue(db, &hook, classes.as_deref()).await?;
            send_due(db, &hook, settings, instance).await
        }
    });
    let mut soonest: Option<Duration> = None;
    let results: Vec<Result<Option<Duration>>> = futures_util::stream::iter(rounds)
        .buffer_unordered(CONCURRENT_WEBHOOKS)
        .collect()
        .await;
    for result in results {
        match result {
            Ok(Some(wait)) => soonest = Some(soonest.map_or(wait, |s| s.min(wait))),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "delivering to a webhook failed"),
        }
    }
    Ok(soonest)
}

/// Forgets deliveries finished more than [`KEEP_FINISHED`] ago.
async fn prune(db: &DatabaseConnection) -> Result<()> {
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::Status.ne(PENDING))
        .filter(webhook_delivery::Column::FinishedAt.lt(now() - KEEP_FINISHED))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes (or renews) this instance's lease on the webhook; false when another holds it.
async fn take_lease(
    db: &DatabaseConnection,
    hook: &webhook::Model,
    instance: &str,
    lease: Duration,
) -> Result<bool> {
    let at = now();
    let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let taken = webhook::Entity::update_many()
        .col_expr(webhook::Column::LeaseOwner, Expr::value(instance))
        .col_expr(webhook::Column::LeaseUntil, Expr::value(until))
        .filter(webhook::Column::Id.eq(hook.id))
        .filter(
            Condition::any()
                .add(webhook::Column::LeaseOwner.is_null())
                .add(webhook::Column::LeaseOwner.eq(instance))
                .add(webhook::Column::LeaseUntil.lt(at)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Renews this instance's lease on the webhook for a send; false when it no longer holds
/// it (it expired and another instance took it).
async fn hold_lease(
    db: &DatabaseConnection,
    hook: &webhook::Model,
    instance: &str,
    settings: &DeliverySettings,
) -> Result<bool> {
    let at = now();
    let lease = settings.lease.max(settings.timeout * 3);
    let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let held = webhook::Entity::update_many()
        .col_expr(webhook::Column::LeaseUntil, Expr::value(until))
        .filter(webhook::Column::Id.eq(hook.id))
        .filter(webhook::Column::LeaseOwner.eq(instance))
        .filter(webhook::Column::LeaseUntil.gt(at))
        .exec(db)
        .await?;
    Ok(held.rows_affected == 1)
}

/// Whether the webhook wants the event.
fn wants(
    hook: &webhook::Model,
    kinds: &[EventKind],
    classes: Option<&ClassCatalog>,
    members: &[(uuid::Uuid, uuid::Uuid)],
    event: &audit_event::Model,
) -> bool {
    let Some(kind) = kinds
        .iter()
        .find(|kind| kind.entity_type().as_str() == event.entity_type)
    else {
        return false;
    };
    if *kind != EventKind::ConfigurationItemChanged {
        return true;
    }
    // As for subscribers: a CI matching the filter before or after the write.
    let filter = filter_of(hook).as_ci_filter();
    Committed::new(event.clone())
        .ci_states()
        .iter()
        .flatten()
        .any(|ci| {
            ci_matches(&filter, ci, classes, |ci, service| {
                members.contains(&(ci, service))
            })
        })
}

/// Turns the events after the webhook's cursor into pending deliveries and moves the cursor
/// past them, in one transaction.
async fn enqueue(
    db: &DatabaseConnection,
    hook: &webhook::Model,
    classes: Option<&ClassCatalog>,
) -> Result<()> {
    let kinds = events_of(hook);
    let types: Vec<EntityType> = kinds.iter().map(|k| k.entity_type()).collect();
    // Most rounds find nothing new: that is learnt without a write transaction (on SQLite
    // one would wait for, and hold up, every writer).
    if read_after(db, hook.cursor, &types, 1).await?.is_empty() {
        return Ok(());
    }
    let uow = UnitOfWork::begin(db, &Actor::system()).await?;
    let txn = uow.txn();
    let Some(current) = webhook::Entity::find_by_id(hook.id).one(txn).await? else {
        return Ok(());
    };
    let events = read_after(txn, current.cursor, &types, ENQUEUE_PAGE).await?;
    let Some(last) = events.last().map(|event| event.id) else {
        return Ok(());
    };
    let members: Vec<(uuid::Uuid, uuid::Uuid)> = match filter_of(hook).service_id {
        Some(service) => entity::service_member::Entity::find()
            .filter(entity::service_member::Column::ServiceId.eq(service))
            .all(txn)
            .await?
            .into_iter()
            .map(|member| (member.ci_id, service))
            .collect(),
        None => Vec::new(),
    };
    let at = now();
    let rows: Vec<webhook_delivery::ActiveModel> = events
        .iter()
        .filter(|event| wants(hook, &kinds, classes, &members, event))
        .map(|event| webhook_delivery::ActiveModel {
            id: NotSet,
            webhook_id: Set(hook.id),
            event_id: Set(event.id),
            status: Set(PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(at),
            last_error: Set(None),
            response_status: Set(None),
            created_at: Set(at),
            finished_at: Set(None),
        })
        .collect();
    if !rows.is_empty() {
        webhook_delivery::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Cursor, Expr::value(last))
        .filter(webhook::Column::Id.eq(hook.id))
        .filter(webhook::Column::Cursor.eq(current.cursor))
        .exec(txn)
        .await?;
    let mut uow = uow;
    uow.bookkeeping_only("webhook delivery queue");
    uow.commit().await?;
    Ok(())
}

/// Sends the webhook's pending deliveries, oldest first, while they are due; how long until
/// the oldest is due again, when it waits for a retry.
async fn send_due(
    db: &DatabaseConnection,
    hook: &webhook::Model,
    settings: &DeliverySettings,
    instance: &str,
) -> Result<Option<Duration>> {
    for _ in 0..SENDS_PER_ROUND {
        // Each send starts with the lease renewed for longer than a send may take, so no
        // other instance can take the webhook over while one is in flight.
        if !hold_lease(db, hook, instance, settings).await? {
            return Ok(None);
        }
        let Some(delivery) = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(hook.id))
            .filter(webhook_delivery::Column::Status.eq(PENDING))
            .order_by_asc(webhook_delivery::Column::EventId)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let at = now();
        if delivery.next_attempt_at > at {
            return Ok((delivery.next_attempt_at - at).to_std().ok());
        }
        let event = audit_event::Entity::find_by_id(delivery.event_id)
            .one(db)
            .await?;
        let outcome = match event {
            Some(event) => send(hook, &event, settings).await,
            None => Err((None, "the event is no longer in the log".to_owned())),
        };
        let attempts = delivery.attempts + 1;
        let mut update = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Attempts, Expr::value(attempts))
            .filter(webhook_delivery::Column::Id.eq(delivery.id));
        match outcome {
            Ok(status) => {
                update = update
                    .col_expr(webhook_delivery::Column::Status, Expr::value(DELIVERED))
                    .col_expr(
                        webhook_delivery::Column::ResponseStatus,
                        Expr::value(status),
                    )
                    .col_expr(
                        webhook_delivery::Column::LastError,
                        Expr::value(None::<String>),
                    )
                    .col_expr(webhook_delivery::Column::FinishedAt, Expr::value(now()));
                update.exec(db).await?;
            }
            Err((status, error)) => {
                let error: String = error.chars().take(500).collect();
                tracing::info!(webhook = %hook.name, event = delivery.event_id, attempts, %error, "a webhook delivery failed");
                update = update
                    .col_expr(
                        webhook_delivery::Column::ResponseStatus,
                        Expr::value(status),
                    )
                    .col_expr(webhook_delivery::Column::LastError, Expr::value(error));
                if attempts as u32 >= settings.max_attempts {
                    update
                        .col_expr(webhook_delivery::Column::Status, Expr::value(FAILED))
                        .col_expr(webhook_delivery::Column::FinishedAt, Expr::value(now()))
                        .exec(db)
                        .await?;
                } else {
                    let wait = backoff(settings, attempts as u32, jitter());
                    let next = now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
                    update
                        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next))
                        .exec(db)
                        .await?;
                    return Ok(Some(wait));
                }
            }
        }
    }
    Ok(Some(Duration::ZERO))
}

/// The wait after `attempts` failed attempts: the base doubled for each attempt after the
/// first, capped, then spread by `jitter` (0 to 1) over its upper half, so that endpoints
/// coming back are not hit by every retry at once.
pub fn backoff(settings: &DeliverySettings, attempts: u32, jitter: f64) -> Duration {
    let doubled = settings
        .backoff_base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = doubled.min(settings.backoff_max);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX)
}

/// The body of a delivery: the event as subscribers see it.
pub fn body(event: &audit_event::Model) -> serde_json::Value {
    json!({
        "eventId": event.id.to_string(),
        "entityType": event.entity_type,
        "entityId": event.entity_id,
        "action": event.action,
        "at": event.occurred_at,
        "actor": event.actor,
        "source": event.source,
        "changedFields": changed_fields(event.before.as_ref(), event.after.as_ref()),
        "before": event.before,
        "after": event.after,
    })
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as `X-Cmdb-Signature` carries it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// One attempt; the status of a 2xx, or the status (if any) and why it failed.
async fn send(
    hook: &webhook::Model,
    event: &audit_event::Model,
    settings: &DeliverySettings,
) -> std::result::Result<i32, (Option<i32>, String)> {
    let (url, addresses) = check_url(&hook.url, &settings.policy)
        .await
        .map_err(|err| (None, err.to_string()))?;
    let body = serde_json::to_vec(&body(event)).map_err(|err| (None, err.to_string()))?;
    let client = client_for(&url, &addresses, settings.timeout).map_err(|err| (None, err))?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Cmdb-Event-Id", event.id.to_string())
        .header("X-Cmdb-Signature", signature(&hook.secret, &body))
        .header(
            reqwest::header::USER_AGENT,
            concat!("cmdb/", env!("CARGO_PKG_VERSION")),
        )
        .body(body)
        .send()
        .await
        // Without the URL: webhook URLs often carry a credential of their own.
        .map_err(|err| (None, format!("the request failed: {}", err.without_url())))?;
    let status = i32::from(response.status().as_u16());
    if response.status().is_success() {
        Ok(status)
    } else {
        Err((Some(status), format!("the endpoint answered {status}")))
    }
}

/// A client that connects to exactly the addresses that were checked (a name resolved
/// again at connect time could point elsewhere by then) and follows no redirect.
fn client_for(
    url: &reqwest::Url,
    addresses: &[IpAddr],
    timeout: Duration,
) -> std::result::Result<reqwest::Client, String> {
    let mut builder = crate::http_client_builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(host) = url.host_str()
        && host.parse::<IpAddr>().is_err()
    {
        let port = url.port_or_known_default().unwrap_or(80);
        let sockets: Vec<SocketAddr> = addresses
            .iter()
            .map(|a| SocketAddr::new(*a, port))
            .collect();
        builder = builder.resolve_to_addrs(host, &sockets);
    }
    builder
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_spreads_over_the_upper_half() {
        let settings = DeliverySettings {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            ..DeliverySettings::default()
        };
        assert_eq!(backoff(&settings, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&settings, 3, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(&settings, 9, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&settings, 3, 0.0), Duration::from_secs(2));
    }

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
