//! Deleting a CI, which reaches across records: its relationships and service memberships
//! go with it, each with its own audit event, and a CI that incidents or changes name is
//! refused (retire it instead). Kept apart from `ci` so that `ci` stays below
//! `relationship` and `service`, which build on it.

use entity::configuration_item::{self, Entity};
use sea_orm::{DatabaseConnection, EntityTrait};
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::ci::get_for_update;
use super::unit_of_work::UnitOfWork;
use super::{Result, check_version};

/// Deletes a CI together with its relationships and service memberships, recording an
/// event for each. Meant for mistakes: a CI that an incident or a change names is refused
/// (`CONFLICT`), and is retired instead.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<configuration_item::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let ci = get_for_update(txn, id).await?;
    check_version(expected_version, ci.version)?;
    super::references::ensure_ci_deletable(txn, id, &ci.name).await?;
    super::relationship::delete_touching(&uow, id).await?;
    super::service::remove_from_all_services(&uow, id).await?;
    Entity::delete_by_id(id).exec(txn).await?;
    uow.record(Event::new(
        EntityType::ConfigurationItem,
        id,
        Action::Delete,
        Some(&ci),
        None,
    )?);
    uow.commit().await?;
    Ok(ci)
}
