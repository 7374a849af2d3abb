//! What an incident affects: its CIs, the services derived from them through the impact
//! graph, and the services named by hand, stored as links kept apart by origin.

use super::*;

pub(super) async fn ensure_services_exist(
    db: &impl ConnectionTrait,
    field: &str,
    services: &[ManualService],
) -> Result<()> {
    let ids: Vec<Uuid> = services.iter().map(|s| s.service_id).collect();
    let found = crate::domain::service::get_many(db, &ids).await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.contains_key(id) {
            return Err(Error::not_found("service", id).within(&format!("{field}[{i}]")));
        }
    }
    Ok(())
}

pub(super) fn dedup_services(services: Vec<ManualService>) -> Vec<ManualService> {
    let mut seen = HashSet::new();
    services
        .into_iter()
        .filter(|s| seen.insert(s.service_id))
        .collect()
}

/// A moment given by a client: not in the future (a minute of clock skew allowed).
pub(super) fn past_moment(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if at > now() + TimeDelta::minutes(1) {
        return Err(Error::invalid(
            field,
            format!("`{field}` ({at}) is in the future"),
        ));
    }
    Ok(at)
}

/// The services an incident with these CIs and hand-named services affects: derived ones
/// from the blast radius of the CIs, hand-named ones as given (at the worse state when also
/// derived); with the criticality of each, for the suggested impact.
pub(super) async fn derive_services(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    incident_id: Uuid,
    ci_ids: &[Uuid],
    manual: &[ManualService],
) -> Result<(
    Vec<incident_service::Model>,
    Vec<(Option<Criticality>, ServiceState)>,
)> {
    let radius = blast_radius(db, cache, limits, ci_ids).await?;
    let mut rows: Vec<incident_service::Model> = manual
        .iter()
        .map(|m| incident_service::Model {
            incident_id,
            service_id: m.service_id,
            origin: Origin::Manual,
            state: m.state,
        })
        .collect();
    let manual_ids: Vec<Uuid> = manual.iter().map(|m| m.service_id).collect();
    for (service, state) in &radius.services {
        if let Some(row) = rows.iter_mut().find(|r| r.service_id == service.id) {
            row.state = row.state.max(*state);
            continue;
        }
        rows.push(incident_service::Model {
            incident_id,
            service_id: service.id,
            origin: Origin::Analysis,
            state: *state,
        });
    }
    let mut services = crate::domain::service::get_many(db, &manual_ids).await?;
    for (service, _) in radius.services {
        services.insert(service.id, service);
    }
    let criticalities = rows
        .iter()
        .map(|row| {
            (
                services.get(&row.service_id).and_then(|s| s.criticality),
                row.state,
            )
        })
        .collect();
    Ok((rows, criticalities))
}

/// Replaces the stored affected CIs and services of an incident.
pub(super) async fn store_links(
    db: &impl ConnectionTrait,
    incident_id: Uuid,
    ci_ids: &[Uuid],
    services: &[incident_service::Model],
) -> Result<()> {
    incident_ci::Entity::delete_many()
        .filter(incident_ci::Column::IncidentId.eq(incident_id))
        .exec(db)
        .await?;
    incident_service::Entity::delete_many()
        .filter(incident_service::Column::IncidentId.eq(incident_id))
        .exec(db)
        .await?;
    if !ci_ids.is_empty() {
        incident_ci::Entity::insert_many(ci_ids.iter().map(|ci_id| incident_ci::ActiveModel {
            incident_id: Set(incident_id),
            ci_id: Set(*ci_id),
        }))
        .exec_without_returning(db)
        .await?;
    }
    if !services.is_empty() {
        incident_service::Entity::insert_many(
            services
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Writes `after` over `before`, only if nobody changed it in between.
pub(super) async fn save(
    db: &impl ConnectionTrait,
    before: &incident::Model,
    after: &incident::Model,
) -> Result<()> {
    let result = incident::Entity::update_many()
        .set(after.clone().into_active_model().reset_all())
        .filter(incident::Column::Id.eq(before.id))
        .filter(incident::Column::Version.eq(before.version))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        let current = get(db, before.id).await?;
        return Err(Error::VersionMismatch {
            expected: before.version,
            actual: current.version,
        });
    }
    Ok(())
}

pub(super) async fn links_of(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<(Vec<Uuid>, Vec<incident_service::Model>)> {
    let ci_ids = ci_ids_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let services = services_of(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok((ci_ids, services))
}
