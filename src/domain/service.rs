//! Services: the business and technical services the organisation offers, and the CIs that
//! make them up.
//!
//! Invariants: names are unique; a membership change bumps the service's version and is
//! audited with the full member list before and after.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::service::{self, Column, Entity};
use entity::service_member;
use entity::values::{Criticality, ServiceKind};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, sea_query::Condition,
};
use serde::Serialize;
use uuid::Uuid;

use super::as_of;
use super::audit::{Action, Actor, EntityType, Event};
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{
    Error, Patch, Result, TextMatch, check_version, now, optional_trimmed, patch_trimmed,
    required_text, text_limits,
};
use crate::limits::Limits;

/// A service to create, optionally with its first members.
#[derive(Debug, Clone)]
pub struct NewService {
    pub name: String,
    pub kind: ServiceKind,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub criticality: Option<Criticality>,
    pub member_ids: Vec<Uuid>,
}

/// Changes to a service's own fields (members change through their own calls).
#[derive(Debug, Clone, Default)]
pub struct ServiceChanges {
    pub name: Option<String>,
    pub kind: Option<ServiceKind>,
    pub description: Patch<String>,
    pub owner: Patch<String>,
    pub criticality: Patch<Criticality>,
}

mod members;
pub use members::{MemberListing, members_of, services_of, services_of_at};

/// Which services to list.
#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    pub kind: Option<ServiceKind>,
    pub criticality: Option<Criticality>,
    pub name: Option<TextMatch>,
    /// The services as they were at this instant, rather than as they are.
    pub as_of: Option<DateTime<Utc>>,
}

/// The full state of a service as the audit trail keeps it.
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(flatten)]
    service: &'a service::Model,
    member_ids: Vec<Uuid>,
}

/// The service with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<service::Model> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("service", id))
}

/// The service with that id, locked until the write transaction `txn` ends (see
/// [`super::lock_row`]), or `NOT_FOUND`. Every read-modify-write starts here.
pub async fn get_for_update(txn: &impl ConnectionTrait, id: Uuid) -> Result<service::Model> {
    super::lock_row(txn, Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("service", id))
}

/// The service with that id as it was at `at`, if it existed then.
pub async fn get_at(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<service::Model>> {
    let select = Entity::find().filter(Column::Id.eq(id));
    Ok(as_of::as_of(select, as_of::Table::Service, Some(at))
        .one(db)
        .await?)
}

/// The services among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, service::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        for row in Entity::find()
            .filter(Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(row.id, row);
        }
    }
    Ok(found)
}

impl ServiceFilter {
    fn condition(&self) -> Condition {
        let mut condition = Condition::all();
        if let Some(kind) = self.kind {
            condition = condition.add(Column::Kind.eq(kind));
        }
        if let Some(criticality) = self.criticality {
            condition = condition.add(Column::Criticality.eq(criticality));
        }
        if let Some(name) = &self.name {
            condition = condition.add(name.condition(Column::Name));
        }
        condition
    }
}

/// One page of services, by name.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ServiceFilter,
    window: &PageWindow,
) -> Result<Page<service::Model>> {
    let select = Entity::find().filter(filter.condition());
    let select = as_of::as_of(select, as_of::Table::Service, filter.as_of);
    let key = SortKey::by(
        Column::Name,
        KeyKind::Text,
        Column::Id,
        false,
        "service:name:asc",
    );
    fetch_page(db, select, &key, window, |s| {
        (Some(KeyValue::Text(s.name.clone())), KeyValue::Uuid(s.id))
    })
    .await
}

/// How many services match `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &ServiceFilter) -> Result<u64> {
    let select = Entity::find().filter(filter.condition());
    Ok(as_of::as_of(select, as_of::Table::Service, filter.as_of)
        .count(db)
        .await?)
}

async fn member_rows(
    db: &impl ConnectionTrait,
    column: service_member::Column,
    ids: &[Uuid],
) -> Result<Vec<service_member::Model>> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(500) {
        rows.extend(
            service_member::Entity::find()
                .filter(column.is_in(chunk.iter().copied()))
                .order_by_asc(service_member::Column::AddedAt)
                .order_by_asc(service_member::Column::CiId)
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

async fn member_ids(db: &impl ConnectionTrait, service_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(
        member_rows(db, service_member::Column::ServiceId, &[service_id])
            .await?
            .into_iter()
            .map(|m| m.ci_id)
            .collect(),
    )
}

async fn ensure_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<Uuid>,
) -> Result<()> {
    let mut query = Entity::find().filter(Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(Error::Conflict(format!(
            "a service named `{name}` already exists"
        )));
    }
    Ok(())
}

async fn insert_members(
    db: &impl ConnectionTrait,
    service_id: Uuid,
    ci_ids: &[Uuid],
) -> Result<()> {
    let at = now();
    for chunk in ci_ids.chunks(500) {
        let rows = chunk.iter().map(|ci| service_member::ActiveModel {
            service_id: Set(service_id),
            ci_id: Set(*ci),
            added_at: Set(at),
        });
        service_member::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Creates a service, with its first members if given.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewService,
    limits: &Limits,
) -> Result<service::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = create_in(&uow, input, limits).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn create_in(
    uow: &UnitOfWork,
    input: NewService,
    limits: &Limits,
) -> Result<service::Model> {
    let name = required_text("name", &input.name, text_limits::NAME)?;
    let description = optional_trimmed("description", input.description, text_limits::DESCRIPTION)?;
    let owner = optional_trimmed("owner", input.owner, text_limits::SHORT)?;
    let members = super::dedup(input.member_ids);
    super::check_batch_size(limits, members.len(), "members")?;

    let txn = uow.txn();
    ensure_name_free(txn, &name, None).await?;
    super::ci::ensure_exist(txn, "memberIds", &members).await?;
    let at = now();
    let model = service::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        kind: Set(input.kind),
        description: Set(description),
        owner: Set(owner),
        criticality: Set(input.criticality),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(txn)
    .await?;
    insert_members(txn, model.id, &members).await?;
    let after = Snapshot {
        service: &model,
        member_ids: members,
    };
    uow.record(Event::new(
        EntityType::Service,
        model.id,
        Action::Create,
        None,
        Some(&after),
    )?);
    Ok(model)
}

/// Writes the new state of a service over the old one if nobody changed it in between.
async fn write_change(
    txn: &impl ConnectionTrait,
    before: &service::Model,
    after: &mut service::Model,
) -> Result<()> {
    after.version = before.version + 1;
    after.updated_at = now();
    let mut active: service::ActiveModel = before.clone().into();
    active.name = Set(after.name.clone());
    active.kind = Set(after.kind);
    active.description = Set(after.description.clone());
    active.owner = Set(after.owner.clone());
    active.criticality = Set(after.criticality);
    active.version = Set(after.version);
    active.updated_at = Set(after.updated_at);
    let result = Entity::update_many()
        .set(active)
        .filter(Column::Id.eq(before.id))
        .filter(Column::Version.eq(before.version))
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        let current = get(txn, before.id).await?;
        return Err(Error::VersionMismatch {
            expected: before.version,
            actual: current.version,
        });
    }
    Ok(())
}

/// Changes a service's fields; with `expected_version`, only if it is still at that version.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: ServiceChanges,
) -> Result<service::Model> {
    let name = changes
        .name
        .map(|n| required_text("name", &n, text_limits::NAME))
        .transpose()?;
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
    if let Some(kind) = changes.kind {
        after.kind = kind;
    }
    let description = patch_trimmed("description", changes.description, text_limits::DESCRIPTION)?;
    let owner = patch_trimmed("owner", changes.owner, text_limits::SHORT)?;
    after.description = description.apply(after.description);
    after.owner = owner.apply(after.owner);
    after.criticality = changes.criticality.apply(after.criticality);
    if after == before {
        return Ok(before);
    }
    write_change(txn, &before, &mut after).await?;
    let members = member_ids(txn, id).await?;
    let before_snapshot = Snapshot {
        service: &before,
        member_ids: members.clone(),
    };
    let after_snapshot = Snapshot {
        service: &after,
        member_ids: members,
    };
    uow.record(Event::new(
        EntityType::Service,
        id,
        Action::Update,
        Some(&before_snapshot),
        Some(&after_snapshot),
    )?);
    uow.commit().await?;
    Ok(after)
}

/// Adds CIs to a service. CIs already members are left as they are; an unknown CI fails
/// the whole call.
pub async fn add_members(
    db: &DatabaseConnection,
    actor: &Actor,
    service_id: Uuid,
    ci_ids: Vec<Uuid>,
    limits: &Limits,
) -> Result<service::Model> {
    let ci_ids = super::dedup(ci_ids);
    super::check_batch_size(limits, ci_ids.len(), "members")?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, service_id).await?;
    super::ci::ensure_exist(txn, "ciIds", &ci_ids).await?;
    let current = member_ids(txn, service_id).await?;
    let existing: HashSet<Uuid> = current.iter().copied().collect();
    let new: Vec<Uuid> = ci_ids
        .into_iter()
        .filter(|id| !existing.contains(id))
        .collect();
    if new.is_empty() {
        return Ok(before);
    }
    insert_members(txn, service_id, &new).await?;
    let mut after = before.clone();
    write_change(txn, &before, &mut after).await?;
    let mut after_members = current.clone();
    after_members.extend(new);
    record_membership(
        &uow,
        Action::AddMembers,
        &before,
        current,
        &after,
        after_members,
    )
    .await?;
    uow.commit().await?;
    Ok(after)
}

/// Removes CIs from a service; CIs that are not members are ignored.
pub async fn remove_members(
    db: &DatabaseConnection,
    actor: &Actor,
    service_id: Uuid,
    ci_ids: Vec<Uuid>,
    limits: &Limits,
) -> Result<service::Model> {
    let ci_ids = super::dedup(ci_ids);
    super::check_batch_size(limits, ci_ids.len(), "members")?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, service_id).await?;
    let after = remove_members_in(&uow, &before, &ci_ids).await?;
    uow.commit().await?;
    Ok(after)
}

async fn remove_members_in(
    uow: &UnitOfWork,
    before: &service::Model,
    ci_ids: &[Uuid],
) -> Result<service::Model> {
    let txn = uow.txn();
    let current = member_ids(txn, before.id).await?;
    let removing: HashSet<Uuid> = ci_ids.iter().copied().collect();
    let remaining: Vec<Uuid> = current
        .iter()
        .copied()
        .filter(|id| !removing.contains(id))
        .collect();
    if remaining.len() == current.len() {
        return Ok(before.clone());
    }
    for chunk in ci_ids.chunks(500) {
        service_member::Entity::delete_many()
            .filter(service_member::Column::ServiceId.eq(before.id))
            .filter(service_member::Column::CiId.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    let mut after = before.clone();
    write_change(txn, before, &mut after).await?;
    record_membership(
        uow,
        Action::RemoveMembers,
        before,
        current,
        &after,
        remaining,
    )
    .await?;
    Ok(after)
}

async fn record_membership(
    uow: &UnitOfWork,
    action: Action,
    before: &service::Model,
    before_members: Vec<Uuid>,
    after: &service::Model,
    after_members: Vec<Uuid>,
) -> Result<()> {
    let _txn = uow.txn();
    let before = Snapshot {
        service: before,
        member_ids: before_members,
    };
    let after = Snapshot {
        service: after,
        member_ids: after_members,
    };
    uow.record(Event::new(
        EntityType::Service,
        after.service.id,
        action,
        Some(&before),
        Some(&after),
    )?);
    Ok(())
}

/// Removes a CI from every service it belongs to (part of deleting the CI).
pub async fn remove_from_all_services(uow: &UnitOfWork, ci_id: Uuid) -> Result<()> {
    let txn = uow.txn();
    let services = services_of(txn, &[ci_id])
        .await?
        .remove(&ci_id)
        .unwrap_or_default();
    for service in services {
        remove_members_in(uow, &service, &[ci_id]).await?;
    }
    Ok(())
}

/// Deletes a service; its member CIs stay, its service level goes with it (recorded). A
/// service that incidents, changes or customers name is refused (`CONFLICT`).
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<service::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let service = get_for_update(txn, id).await?;
    check_version(expected_version, service.version)?;
    super::references::ensure_service_deletable(txn, id, &service.name).await?;
    super::references::delete_service_level(&uow, id).await?;
    let members = member_ids(txn, id).await?;
    service_member::Entity::delete_many()
        .filter(service_member::Column::ServiceId.eq(id))
        .exec(txn)
        .await?;
    Entity::delete_by_id(id).exec(txn).await?;
    let before = Snapshot {
        service: &service,
        member_ids: members,
    };
    uow.record(Event::new(
        EntityType::Service,
        id,
        Action::Delete,
        Some(&before),
        None,
    )?);
    uow.commit().await?;
    Ok(service)
}
