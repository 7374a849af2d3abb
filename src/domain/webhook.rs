//! Webhooks: HTTP endpoints told of committed events, at least once and in order.
//!
//! A webhook names the kinds of event it wants, optionally narrows the configuration item
//! events with a filter, and holds a secret that signs every delivery (HMAC-SHA256 of the
//! body) and is never readable back. Its deliveries are made by [`delivery`]; here are the
//! records and the rule that keeps a webhook from being pointed at the server's own
//! neighbourhood (loopback, link-local, cloud metadata) unless the operator allows it.

pub mod delivery;

use std::net::IpAddr;

use entity::{webhook, webhook_delivery};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, prelude::Json,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::ci::CiFilter;
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{Error, Patch, Result, lock_row, now, required_text};

/// The kinds of event a webhook can ask for.
// The names are the subscriptions' names, so that a webhook and a subscriber speak alike.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    ConfigurationItemChanged,
    RelationshipChanged,
    ServiceChanged,
    IncidentChanged,
    ChangeChanged,
}

impl EventKind {
    /// The kind of record whose events this kind carries.
    pub fn entity_type(self) -> EntityType {
        match self {
            EventKind::ConfigurationItemChanged => EntityType::ConfigurationItem,
            EventKind::RelationshipChanged => EntityType::Relationship,
            EventKind::ServiceChanged => EntityType::Service,
            EventKind::IncidentChanged => EntityType::Incident,
            EventKind::ChangeChanged => EntityType::Change,
        }
    }
}

/// What narrows a webhook's configuration item events (kept with the webhook).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiEventFilter {
    /// A class name; its subclasses' CIs match too.
    pub class: Option<String>,
    /// Exact environment.
    pub environment: Option<String>,
    /// Only CIs that are members of this service.
    pub service_id: Option<Uuid>,
    /// Only these CIs.
    pub ci_ids: Option<Vec<Uuid>>,
}

impl CiEventFilter {
    /// The same filter as the CI list knows it.
    pub fn as_ci_filter(&self) -> CiFilter {
        CiFilter {
            ids: self.ci_ids.clone(),
            class: self.class.clone(),
            environment: self.environment.clone(),
            service_id: self.service_id,
            ..CiFilter::default()
        }
    }
}

/// A new webhook.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Unique among webhooks.
    pub name: String,
    /// Where deliveries go (checked by [`check_url`]).
    pub url: String,
    /// The kinds of event it wants.
    pub events: Vec<EventKind>,
    /// What narrows its configuration item events.
    pub filter: CiEventFilter,
    /// Signs deliveries; never shown again.
    pub secret: String,
}

/// Changes to a webhook; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new URL (checked again).
    pub url: Option<String>,
    /// The kinds of event it wants from now on.
    pub events: Option<Vec<EventKind>>,
    /// A new filter, or none.
    pub filter: Patch<CiEventFilter>,
    /// A new secret, for deliveries from now on.
    pub secret: Option<String>,
    /// Whether deliveries are made.
    pub enabled: Option<bool>,
}

/// Where webhooks may point: hosts (names or addresses) allowed even though they are
/// loopback or link-local, as an operator's allow-list says.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Hosts allowed although internal, compared without regard to case.
    pub allowed_hosts: Vec<String>,
}

/// The state the audit trail keeps: everything but the secret.
#[derive(Serialize)]
struct Snapshot<'a> {
    id: Uuid,
    name: &'a str,
    url: &'a str,
    events: &'a Json,
    filter: &'a Json,
    enabled: bool,
    version: i32,
}

fn snapshot(model: &webhook::Model) -> Snapshot<'_> {
    Snapshot {
        id: model.id,
        name: &model.name,
        url: &model.url,
        events: &model.events,
        filter: &model.filter,
        enabled: model.enabled,
        version: model.version,
    }
}

/// The kinds a webhook asked for.
pub fn events_of(model: &webhook::Model) -> Vec<EventKind> {
    serde_json::from_value(model.events.clone()).unwrap_or_default()
}

/// The filter a webhook keeps.
pub fn filter_of(model: &webhook::Model) -> CiEventFilter {
    serde_json::from_value(model.filter.clone()).unwrap_or_default()
}

fn check_secret(secret: &str) -> Result<String> {
    let secret = secret.trim();
    if secret.chars().count() < 16 || secret.len() > 256 {
        return Err(Error::invalid(
            "secret",
            "`secret` must be 16 to 256 characters: it signs every delivery",
        ));
    }
    Ok(secret.to_owned())
}

fn check_events(events: Vec<EventKind>) -> Result<Json> {
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "`events` must name at least one kind",
        ));
    }
    let mut events = events;
    events.dedup();
    Ok(serde_json::to_value(events)?)
}

/// Checks that `url` is an `http(s)` URL whose host is not loopback, link-local, a cloud
/// metadata address or unspecified, unless `policy` allows the host. Names are resolved,
/// and every address they resolve to must pass; the addresses are returned so that the
/// delivery connects to exactly what was checked.
pub async fn check_url(url: &str, policy: &UrlPolicy) -> Result<(reqwest::Url, Vec<IpAddr>)> {
    let invalid = |message: String| Error::invalid("url", message);
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|err| invalid(format!("`url` is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("`url` must be an http or https URL".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "`url` must not carry credentials: the secret signs deliveries".into(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("`url` has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        // A resolver that does not answer must not hold up whoever asked.
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| invalid(format!("`url`: resolving `{host}` took too long")))?
        .map_err(|_| invalid(format!("`url`: the host `{host}` does not resolve")))?
        .map(|socket| socket.ip())
        .collect(),
    };
    if addresses.is_empty() {
        return Err(invalid(format!(
            "`url`: the host `{host}` does not resolve"
        )));
    }
    let allowed = policy
        .allowed_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(&host));
    if !allowed && let Some(address) = addresses.iter().find(|a| is_internal(**a)) {
        return Err(Error::invalid(
            "url",
            format!(
                "`url` points at {address}, a loopback, link-local or metadata address; an \
                 operator can allow the host with `webhook_allowed_hosts`"
            ),
        ));
    }
    Ok((parsed, addresses))
}

/// Addresses a webhook must not reach unless allowed: the server itself, its link, and the
/// cloud metadata services.
fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                // "This network" (0.0.0.0/8): reaches the host itself on Linux.
                || a == 0
                // Alibaba Cloud's metadata service.
                || [a, b, c, d] == [100, 100, 100, 200]
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded_v4 = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                is_internal(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xffc0) == 0xfe80
                // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses.
                || (segments[..5] == [0; 5] && matches!(segments[5], 0 | 0xffff)
                    && embedded_v4(segments[6], segments[7]))
                // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
                || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && embedded_v4(segments[6], segments[7]))
                // 6to4 (2002::/16) carries one in bits 16 to 48.
                || (segments[0] == 0x2002 && embedded_v4(segments[1], segments[2]))
                // AWS's and Google Cloud's IPv6 metadata services.
                || segments[..4] == [0xfd00, 0x0ec2, 0, 0]
                || segments[..2] == [0xfd20, 0x00ce]
        }
    }
}

async fn ensure_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<Uuid>,
) -> Result<()> {
    let mut select = webhook::Entity::find().filter(webhook::Column::Name.eq(name));
    if let Some(id) = except {
        select = select.filter(webhook::Column::Id.ne(id));
    }
    if select.one(db).await?.is_some() {
        return Err(Error::Conflict(format!("a webhook named `{name}` exists")));
    }
    Ok(())
}

/// Records a webhook. It is told of events committed from now on.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    policy: &UrlPolicy,
    new: NewWebhook,
) -> Result<webhook::Model> {
    let name = required_text("name", &new.name, 100)?;
    let (url, _) = check_url(&new.url, policy).await?;
    let events = check_events(new.events)?;
    let secret = check_secret(&new.secret)?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    ensure_name_free(txn, &name, None).await?;
    let cursor = super::events::newest_id(txn).await?;
    let at = now();
    let model = webhook::Model {
        id: Uuid::now_v7(),
        name,
        url: url.to_string(),
        events,
        filter: serde_json::to_value(new.filter)?,
        secret,
        enabled: true,
        cursor,
        lease_owner: None,
        lease_until: None,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    model.clone().into_active_model().insert(txn).await?;
    uow.record(Event::new(
        EntityType::Webhook,
        model.id,
        Action::Create,
        None,
        Some(&snapshot(&model)),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// Changes a webhook. A new secret signs the deliveries made from then on.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    policy: &UrlPolicy,
    id: Uuid,
    changes: WebhookChanges,
) -> Result<webhook::Model> {
    let url = match &changes.url {
        Some(url) => Some(check_url(url, policy).await?.0.to_string()),
        None => None,
    };
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = lock_row(txn, webhook::Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))?;
    let mut after = before.clone();
    if let Some(name) = &changes.name {
        after.name = required_text("name", name, 100)?;
        ensure_name_free(txn, &after.name, Some(id)).await?;
    }
    if let Some(url) = url {
        after.url = url;
    }
    if let Some(events) = changes.events {
        after.events = check_events(events)?;
    }
    match changes.filter {
        Patch::Keep => {}
        Patch::Clear => after.filter = serde_json::to_value(CiEventFilter::default())?,
        Patch::Set(filter) => after.filter = serde_json::to_value(filter)?,
    }
    if let Some(secret) = &changes.secret {
        after.secret = check_secret(secret)?;
    }
    if let Some(enabled) = changes.enabled {
        after.enabled = enabled;
    }
    if after == before {
        uow.rollback().await?;
        return Ok(before);
    }
    after.version = before.version + 1;
    after.updated_at = now();
    let mut active = after.clone().into_active_model().reset_all();
    // Delivery bookkeeping is the worker's: an edit never moves it.
    active.cursor = sea_orm::ActiveValue::NotSet;
    active.lease_owner = sea_orm::ActiveValue::NotSet;
    active.lease_until = sea_orm::ActiveValue::NotSet;
    active.update(txn).await?;
    uow.record(Event::new(
        EntityType::Webhook,
        id,
        Action::Update,
        Some(&snapshot(&before)),
        Some(&snapshot(&after)),
    )?);
    uow.commit().await?;
    Ok(after)
}

/// Deletes a webhook and its delivery history.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<webhook::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = lock_row(txn, webhook::Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(id))
        .exec(txn)
        .await?;
    webhook::Entity::delete_by_id(id).exec(txn).await?;
    uow.record(Event::new(
        EntityType::Webhook,
        id,
        Action::Delete,
        Some(&snapshot(&before)),
        None,
    )?);
    uow.commit().await?;
    Ok(before)
}

/// Every webhook, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<webhook::Model>> {
    Ok(webhook::Entity::find()
        .order_by_asc(webhook::Column::Name)
        .all(db)
        .await?)
}

/// The webhook with this id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<webhook::Model> {
    webhook::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("webhook", id))
}

/// A page of a webhook's deliveries, newest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    webhook_id: Uuid,
    window: &PageWindow,
) -> Result<Page<webhook_delivery::Model>> {
    get(db, webhook_id).await?;
    let select =
        webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    let key = SortKey::by_id(
        webhook_delivery::Column::Id,
        KeyKind::Int,
        true,
        "webhook-delivery:desc",
    );
    fetch_page(db, select, &key, window, |delivery| {
        (None, KeyValue::Int(delivery.id))
    })
    .await
}

/// How many deliveries are kept, by status (for the metrics).
pub async fn delivery_counts(db: &impl ConnectionTrait) -> Result<Vec<(String, u64)>> {
    use sea_orm::QuerySelect;
    let rows: Vec<(String, i64)> = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Status)
        .column_as(webhook_delivery::Column::Id.count(), "count")
        .group_by(webhook_delivery::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts: Vec<(String, u64)> = [delivery::PENDING, delivery::DELIVERED, delivery::FAILED]
        .iter()
        .map(|status| (status.to_string(), 0))
        .collect();
    for (status, count) in rows {
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = count.max(0) as u64;
        }
    }
    Ok(counts)
}

/// How many deliveries a webhook has had, for `totalCount`.
pub async fn count_deliveries(db: &impl ConnectionTrait, webhook_id: Uuid) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
        .count(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhooks_may_not_point_at_the_servers_neighbourhood_unless_allowed() {
        let none = UrlPolicy::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fe80::1]/hook",
            "http://0.0.0.0/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::127.0.0.1]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://[fd20:ce::254]/hook",
            "http://0.1.2.3/hook",
            "http://localhost/hook",
        ] {
            let refused = check_url(url, &none).await;
            assert!(
                matches!(refused, Err(Error::Validation { .. })),
                "{url} must be refused"
            );
        }
        for url in [
            "ftp://example.com/x",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(check_url(url, &none).await.is_err(), "{url}");
        }
        let allowed = UrlPolicy {
            allowed_hosts: vec!["127.0.0.1".into()],
        };
        assert!(check_url("http://127.0.0.1:9/hook", &allowed).await.is_ok());
        assert!(check_url("http://10.1.2.3/hook", &none).await.is_ok());
    }
}
