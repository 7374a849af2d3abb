//! What a deletion must leave alone. Incidents, changes and customers' agreements are
//! records of what happened and what was promised; the CIs and services they name must stay
//! on record for them (ISO/IEC 20000 keeps change → CI traceability). A CI is retired
//! instead of deleted; a service is deleted only when nothing names it. Data that belongs
//! to the deleted thing alone goes with it, each piece with its own audit event.

use entity::{
    change_ci, change_request, change_service, customer, customer_service, incident, incident_ci,
    incident_service, service_level,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::audit::{Action, EntityType, Event};
use super::unit_of_work::UnitOfWork;
use super::{Error, Result};

/// How many referring records a refusal names; it says how many more there are.
const NAMED: usize = 5;

/// The `label` column (a number or a name) of the records of `R` that a link table `L`
/// ties to `target`: `L.owner` holds the record's `R.id`, `L.linked` the target's id.
async fn labels_linked<R, L>(
    db: &impl ConnectionTrait,
    (label, id): (R::Column, R::Column),
    (owner, linked): (L::Column, L::Column),
    target: Uuid,
) -> Result<Vec<String>>
where
    R: EntityTrait,
    L: EntityTrait,
{
    let owners = L::find()
        .select_only()
        .column(owner)
        .filter(linked.eq(target));
    Ok(R::find()
        .select_only()
        .column(label)
        .filter(id.in_subquery(QueryTrait::into_query(owners)))
        .order_by_asc(label)
        .into_tuple()
        .all(db)
        .await?)
}

/// The numbers of incidents and changes naming `ci` (as an affected CI).
async fn records_naming_ci(db: &impl ConnectionTrait, ci: Uuid) -> Result<Vec<String>> {
    let incidents = labels_linked::<incident::Entity, incident_ci::Entity>(
        db,
        (incident::Column::Number, incident::Column::Id),
        (incident_ci::Column::IncidentId, incident_ci::Column::CiId),
        ci,
    )
    .await?;
    let changes = labels_linked::<change_request::Entity, change_ci::Entity>(
        db,
        (change_request::Column::Number, change_request::Column::Id),
        (change_ci::Column::ChangeId, change_ci::Column::CiId),
        ci,
    )
    .await?;
    Ok(incidents.into_iter().chain(changes).collect())
}

/// The numbers of incidents and changes naming `service`, and the customers consuming it.
async fn records_naming_service(db: &impl ConnectionTrait, service: Uuid) -> Result<Vec<String>> {
    let incidents = labels_linked::<incident::Entity, incident_service::Entity>(
        db,
        (incident::Column::Number, incident::Column::Id),
        (
            incident_service::Column::IncidentId,
            incident_service::Column::ServiceId,
        ),
        service,
    )
    .await?;
    let changes = labels_linked::<change_request::Entity, change_service::Entity>(
        db,
        (change_request::Column::Number, change_request::Column::Id),
        (
            change_service::Column::ChangeId,
            change_service::Column::ServiceId,
        ),
        service,
    )
    .await?;
    let customers = labels_linked::<customer::Entity, customer_service::Entity>(
        db,
        (customer::Column::Name, customer::Column::Id),
        (
            customer_service::Column::CustomerId,
            customer_service::Column::ServiceId,
        ),
        service,
    )
    .await?;
    Ok(incidents
        .into_iter()
        .chain(changes)
        .chain(
            customers
                .into_iter()
                .map(|name| format!("customer `{name}`")),
        )
        .collect())
}

/// `items` for a message: the first few, then how many more.
fn named(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        text.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    text
}

/// `CONFLICT` when incidents or changes name the CI: their records must keep it.
pub async fn ensure_ci_deletable(db: &impl ConnectionTrait, ci: Uuid, name: &str) -> Result<()> {
    let records = records_naming_ci(db, ci).await?;
    if records.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "the configuration item `{name}` is named by {}: their records keep it, so it cannot be \
         deleted; retire it instead",
        named(&records)
    )))
}

/// `CONFLICT` when incidents, changes or customers' agreements name the service.
pub async fn ensure_service_deletable(
    db: &impl ConnectionTrait,
    service: Uuid,
    name: &str,
) -> Result<()> {
    let records = records_naming_service(db, service).await?;
    if records.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "the service `{name}` is named by {}: incidents and changes keep what they named, and a \
         customer's subscription must be ended first (removeCustomerService)",
        named(&records)
    )))
}

/// Deletes the service level of a service being deleted, recording the deletion.
pub async fn delete_service_level(uow: &UnitOfWork, service: Uuid) -> Result<()> {
    let txn = uow.txn();
    let Some(level) = service_level::Entity::find_by_id(service).one(txn).await? else {
        return Ok(());
    };
    service_level::Entity::delete_by_id(service)
        .exec(txn)
        .await?;
    uow.record(Event::new(
        EntityType::ServiceLevel,
        service,
        Action::Delete,
        Some(&level),
        None,
    )?);
    Ok(())
}
