//! Customers (ISO/IEC 20000 relationship management): the organisations or departments that
//! consume services, their contact, and the agreement under which each consumes a service.
//!
//! Invariants: names are unique; a change to a customer's services bumps its version and is
//! audited with the full list before and after.

use std::collections::HashMap;

use entity::{customer, customer_service};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, sea_query::Condition,
};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{
    Error, Patch, Result, TextMatch, check_version, now, optional_trimmed, patch_trimmed,
    required_text, text_limits,
};

/// A customer to record.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    pub name: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub description: Option<String>,
}

/// Changes to a customer's own fields.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    pub name: Option<String>,
    pub contact_name: Patch<String>,
    pub contact_email: Patch<String>,
    pub description: Patch<String>,
}

/// The full state of a customer as the audit trail keeps it.
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(flatten)]
    customer: &'a customer::Model,
    services: &'a [customer_service::Model],
}

/// The customer with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<customer::Model> {
    customer::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("customer", id))
}

/// The customer with that id, locked until the write transaction `txn` ends (see
/// [`super::lock_row`]), or `NOT_FOUND`. Every read-modify-write starts here.
pub async fn get_for_update(txn: &impl ConnectionTrait, id: Uuid) -> Result<customer::Model> {
    super::lock_row(txn, customer::Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("customer", id))
}

/// The customers among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, customer::Model>> {
    let rows = super::rows_in::<customer::Entity>(db, customer::Column::Id, ids, &[]).await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

fn condition(name: Option<&TextMatch>) -> Condition {
    match name {
        Some(name) => name.condition(customer::Column::Name),
        None => Condition::all(),
    }
}

/// One page of customers, by name.
pub async fn list(
    db: &impl ConnectionTrait,
    name: Option<&TextMatch>,
    window: &PageWindow,
) -> Result<Page<customer::Model>> {
    let select = customer::Entity::find().filter(condition(name));
    let key = SortKey::by(
        customer::Column::Name,
        KeyKind::Text,
        customer::Column::Id,
        false,
        "customer:name:asc",
    );
    fetch_page(db, select, &key, window, |c| {
        (Some(KeyValue::Text(c.name.clone())), KeyValue::Uuid(c.id))
    })
    .await
}

/// How many customers match.
pub async fn count(db: &impl ConnectionTrait, name: Option<&TextMatch>) -> Result<u64> {
    Ok(customer::Entity::find()
        .filter(condition(name))
        .count(db)
        .await?)
}

/// The services each customer consumes (links, oldest first).
pub async fn services_of(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<customer_service::Model>>> {
    use customer_service::Column;
    let order = [Column::AddedAt, Column::ServiceId];
    let rows =
        super::rows_in::<customer_service::Entity>(db, Column::CustomerId, customer_ids, &order)
            .await?;
    Ok(super::group_by(rows, |row| row.customer_id))
}

/// The customers consuming any of the services (links, by service then customer).
pub async fn customers_of_services(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
) -> Result<Vec<customer_service::Model>> {
    use customer_service::Column;
    let order = [Column::ServiceId, Column::CustomerId];
    super::rows_in::<customer_service::Entity>(db, Column::ServiceId, service_ids, &order).await
}

async fn ensure_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<Uuid>,
) -> Result<()> {
    let mut query = customer::Entity::find().filter(customer::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(customer::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(Error::Conflict(format!(
            "a customer named `{name}` already exists"
        )));
    }
    Ok(())
}

fn email(field: &str, value: Option<String>) -> Result<Option<String>> {
    let value = optional_trimmed(field, value, text_limits::SHORT)?;
    if let Some(address) = &value {
        let valid = address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid {
            return Err(Error::invalid(
                field,
                format!("`{address}` is not an email address"),
            ));
        }
    }
    Ok(value)
}

/// Records a customer.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewCustomer,
) -> Result<customer::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = create_in(&uow, new).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn create_in(uow: &UnitOfWork, new: NewCustomer) -> Result<customer::Model> {
    let name = required_text("name", &new.name, text_limits::NAME)?;
    let contact_name = optional_trimmed("contactName", new.contact_name, text_limits::SHORT)?;
    let contact_email = email("contactEmail", new.contact_email)?;
    let description = optional_trimmed("description", new.description, text_limits::DESCRIPTION)?;
    let txn = uow.txn();
    ensure_name_free(txn, &name, None).await?;
    let at = now();
    let model = customer::Model {
        id: Uuid::now_v7(),
        name,
        contact_name,
        contact_email,
        description,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    model.clone().into_active_model().insert(txn).await?;
    uow.record(Event::new(
        EntityType::Customer,
        model.id,
        Action::Create,
        None,
        Some(&Snapshot {
            customer: &model,
            services: &[],
        }),
    )?);
    Ok(model)
}

async fn links(db: &impl ConnectionTrait, id: Uuid) -> Result<Vec<customer_service::Model>> {
    Ok(services_of(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default())
}

async fn save_and_audit(
    uow: &UnitOfWork,
    action: Action,
    before: (&customer::Model, &[customer_service::Model]),
    after: (&mut customer::Model, &[customer_service::Model]),
) -> Result<()> {
    let txn = uow.txn();
    after.0.version = before.0.version + 1;
    after.0.updated_at = now();
    let result = customer::Entity::update_many()
        .set(after.0.clone().into_active_model().reset_all())
        .filter(customer::Column::Id.eq(before.0.id))
        .filter(customer::Column::Version.eq(before.0.version))
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        let current = get(txn, before.0.id).await?;
        return Err(Error::VersionMismatch {
            expected: before.0.version,
            actual: current.version,
        });
    }
    uow.record(Event::new(
        EntityType::Customer,
        before.0.id,
        action,
        Some(&Snapshot {
            customer: before.0,
            services: before.1,
        }),
        Some(&Snapshot {
            customer: after.0,
            services: after.1,
        }),
    )?);
    Ok(())
}

/// Changes a customer's own fields.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: CustomerChanges,
) -> Result<customer::Model> {
    let name = changes
        .name
        .map(|n| required_text("name", &n, text_limits::NAME))
        .transpose()?;
    let contact_name = patch_trimmed("contactName", changes.contact_name, text_limits::SHORT)?;
    let contact_email = match changes.contact_email {
        Patch::Set(address) => match email("contactEmail", Some(address))? {
            Some(address) => Patch::Set(address),
            None => Patch::Clear,
        },
        other => other,
    };
    let description = patch_trimmed("description", changes.description, text_limits::DESCRIPTION)?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    let mut after = before.clone();
    if let Some(name) = name {
        if name != before.name {
            ensure_name_free(txn, &name, Some(id)).await?;
        }
        after.name = name;
    }
    after.contact_name = contact_name.apply(after.contact_name);
    after.contact_email = contact_email.apply(after.contact_email);
    after.description = description.apply(after.description);
    if after == before {
        return Ok(before);
    }
    let services = links(txn, id).await?;
    save_and_audit(
        &uow,
        Action::Update,
        (&before, &services),
        (&mut after, &services),
    )
    .await?;
    uow.commit().await?;
    Ok(after)
}

/// Records that a customer consumes a service under `agreement` (replacing the agreement
/// when it already does).
pub async fn subscribe(
    db: &DatabaseConnection,
    actor: &Actor,
    customer_id: Uuid,
    service_id: Uuid,
    agreement: Option<String>,
) -> Result<customer::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = subscribe_in(&uow, customer_id, service_id, agreement).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn subscribe_in(
    uow: &UnitOfWork,
    customer_id: Uuid,
    service_id: Uuid,
    agreement: Option<String>,
) -> Result<customer::Model> {
    let agreement = optional_trimmed("agreement", agreement, text_limits::SHORT)?;
    let txn = uow.txn();
    let before = get_for_update(txn, customer_id).await?;
    super::service::get(txn, service_id)
        .await
        .map_err(|err| err.within("serviceId"))?;
    let before_links = links(txn, customer_id).await?;
    let mut after_links = before_links.clone();
    match after_links.iter_mut().find(|l| l.service_id == service_id) {
        Some(link) if link.agreement == agreement => return Ok(before),
        Some(link) => link.agreement = agreement.clone(),
        None => after_links.push(customer_service::Model {
            customer_id,
            service_id,
            agreement: agreement.clone(),
            added_at: now(),
        }),
    }
    customer_service::Entity::delete_many()
        .filter(customer_service::Column::CustomerId.eq(customer_id))
        .filter(customer_service::Column::ServiceId.eq(service_id))
        .exec(txn)
        .await?;
    if let Some(link) = after_links.iter().find(|l| l.service_id == service_id) {
        link.clone().into_active_model().insert(txn).await?;
    }
    let mut after = before.clone();
    save_and_audit(
        uow,
        Action::AddMembers,
        (&before, &before_links),
        (&mut after, &after_links),
    )
    .await?;
    Ok(after)
}

/// Records that a customer no longer consumes a service; nothing happens when it did not.
pub async fn unsubscribe(
    db: &DatabaseConnection,
    actor: &Actor,
    customer_id: Uuid,
    service_id: Uuid,
) -> Result<customer::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, customer_id).await?;
    let before_links = links(txn, customer_id).await?;
    if !before_links.iter().any(|l| l.service_id == service_id) {
        return Ok(before);
    }
    let after_links: Vec<customer_service::Model> = before_links
        .iter()
        .filter(|l| l.service_id != service_id)
        .cloned()
        .collect();
    customer_service::Entity::delete_many()
        .filter(customer_service::Column::CustomerId.eq(customer_id))
        .filter(customer_service::Column::ServiceId.eq(service_id))
        .exec(txn)
        .await?;
    let mut after = before.clone();
    save_and_audit(
        &uow,
        Action::RemoveMembers,
        (&before, &before_links),
        (&mut after, &after_links),
    )
    .await?;
    uow.commit().await?;
    Ok(after)
}

/// Deletes a customer and its links to services; returns what was deleted.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<customer::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    let services = links(txn, id).await?;
    customer::Entity::delete_by_id(id).exec(txn).await?;
    uow.record(Event::new(
        EntityType::Customer,
        id,
        Action::Delete,
        Some(&Snapshot {
            customer: &before,
            services: &services,
        }),
        None,
    )?);
    uow.commit().await?;
    Ok(before)
}
