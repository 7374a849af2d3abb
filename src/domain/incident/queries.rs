//! Reading incidents: pages, counts, their links, and the lists nested under CIs and
//! services (cut per owner in the database).

use super::*;

/// One page of incidents, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &IncidentFilter,
    window: &PageWindow,
) -> Result<Page<incident::Model>> {
    let select = incident::Entity::find().filter(filter.condition());
    let key = SortKey::by(
        incident::Column::OpenedAt,
        KeyKind::Time,
        incident::Column::Id,
        true,
        "incident:opened:desc",
    );
    fetch_page(db, select, &key, window, |i| {
        (Some(KeyValue::Time(i.opened_at)), KeyValue::Uuid(i.id))
    })
    .await
}

/// How many incidents match `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &IncidentFilter) -> Result<u64> {
    Ok(incident::Entity::find()
        .filter(filter.condition())
        .count(db)
        .await?)
}

/// The affected CI ids of each incident.
pub async fn ci_ids_of(
    db: &impl ConnectionTrait,
    incident_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    use incident_ci::Column;
    let rows = crate::domain::rows_in::<incident_ci::Entity>(
        db,
        Column::IncidentId,
        incident_ids,
        &[Column::CiId],
    )
    .await?;
    Ok(crate::domain::group_by(rows, |row| row.incident_id)
        .into_iter()
        .map(|(id, rows)| (id, rows.into_iter().map(|row| row.ci_id).collect()))
        .collect())
}

/// The affected services of each incident, with how they came to be listed.
pub async fn services_of(
    db: &impl ConnectionTrait,
    incident_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<incident_service::Model>>> {
    let column = incident_service::Column::IncidentId;
    let rows =
        crate::domain::rows_in::<incident_service::Entity>(db, column, incident_ids, &[]).await?;
    Ok(crate::domain::group_by(rows, |row| row.incident_id))
}

/// How a nested field lists incidents: only open ones (or only the others), and at most
/// how many per owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    pub open: Option<bool>,
    pub first: u64,
}

/// The incidents linked to each owner through `L`, newest first, as `listing` says.
pub(super) async fn incidents_by_link<L: sea_orm::EntityTrait>(
    db: &impl ConnectionTrait,
    owners: &[Uuid],
    owner: L::Column,
    record: L::Column,
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    use sea_orm::sea_query::{Expr, Order};
    let closed = [IncidentState::Resolved, IncidentState::Closed];
    let condition = match listing.open {
        None => sea_orm::Condition::all(),
        Some(true) => sea_orm::Condition::all().add(incident::Column::State.is_not_in(closed)),
        Some(false) => sea_orm::Condition::all().add(incident::Column::State.is_in(closed)),
    };
    crate::domain::nested::linked::<incident::Entity, L>(
        db,
        owners,
        owner,
        record,
        incident::Column::Id,
        condition,
        vec![
            (
                Expr::col((incident::Entity, incident::Column::OpenedAt)),
                Order::Desc,
            ),
            (
                Expr::col((incident::Entity, incident::Column::Id)),
                Order::Desc,
            ),
        ],
        Some(listing.first),
        None,
    )
    .await
}

/// The incidents that affect each CI, newest first, as `listing` says.
pub async fn incidents_of_cis(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    incidents_by_link::<incident_ci::Entity>(
        db,
        ci_ids,
        incident_ci::Column::CiId,
        incident_ci::Column::IncidentId,
        listing,
    )
    .await
}

/// The incidents that affect each service, newest first, as `listing` says.
pub async fn incidents_of_services(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<incident::Model>>> {
    incidents_by_link::<incident_service::Entity>(
        db,
        service_ids,
        incident_service::Column::ServiceId,
        incident_service::Column::IncidentId,
        listing,
    )
    .await
}

/// The open incidents on any of `ci_ids`, newest first.
pub async fn open_on_cis(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
) -> Result<Vec<incident::Model>> {
    let links =
        crate::domain::rows_in::<incident_ci::Entity>(db, incident_ci::Column::CiId, ci_ids, &[])
            .await?;
    let ids = crate::domain::dedup(links.into_iter().map(|l| l.incident_id).collect());
    let mut open: Vec<incident::Model> = get_many(db, &ids)
        .await?
        .into_values()
        .filter(|i| is_open(i.state))
        .collect();
    open.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(b.id.cmp(&a.id)));
    Ok(open)
}
