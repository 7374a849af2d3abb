//! A change's assessment as things stand: the blast radius of its CIs on one reading of the
//! impact graph, the services and customers hit, the open incidents already there, the
//! committed changes overlapping it in time and radius, and the risk the rules give. Also
//! the schedule's collisions between changes.

use super::*;

/// The blast radius of each of `changes`, from their CIs, on one reading of the graph.
pub(super) async fn radii(
    db: &impl ConnectionTrait,
    context: &BlastContext,
    changes: &[&change_request::Model],
) -> Result<HashMap<Uuid, BlastRadius>> {
    let ids: Vec<Uuid> = changes.iter().map(|c| c.id).collect();
    let mut cis = ci_ids_of(db, &ids).await?;
    ids.into_iter()
        .map(|id| Ok((id, context.radius(&cis.remove(&id).unwrap_or_default())?)))
        .collect()
}

pub(super) fn shared(radius: &BlastRadius, other: &BlastRadius) -> Vec<Uuid> {
    let other = other.ci_set();
    radius
        .ci_ids
        .iter()
        .copied()
        .filter(|id| other.contains(id))
        .collect()
}

/// Most changes one collision check compares.
pub const MAX_SCHEDULE: usize = 1_000;

/// The committed changes (other than `except`) whose window overlaps `window`.
pub(super) async fn committed_in(
    db: &impl ConnectionTrait,
    window: (DateTime<Utc>, DateTime<Utc>),
    states: &[ChangeState],
    except: Option<Uuid>,
) -> Result<Vec<change_request::Model>> {
    let filter = ChangeFilter {
        states: Some(states.to_vec()),
        window: Some(window),
        ..Default::default()
    };
    let mut query = change_request::Entity::find().filter(filter.condition());
    if let Some(id) = except {
        query = query.filter(change_request::Column::Id.ne(id));
    }
    let found = query
        .order_by_asc(change_request::Column::PlannedStart)
        .order_by_asc(change_request::Column::Number)
        .all(db)
        .await?;
    if found.len() > MAX_SCHEDULE {
        return Err(Error::LimitExceeded(format!(
            "more than {MAX_SCHEDULE} changes in the period; ask for a shorter period"
        )));
    }
    Ok(found)
}

/// Computes the assessment of a change with these CIs as things stand now.
pub(super) async fn compute_assessment(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    change: &change_request::Model,
    ci_ids: &[Uuid],
) -> Result<Assessment> {
    let context = BlastContext::prepare(db, cache, limits).await?;
    let radius = context.radius(ci_ids)?;
    let services: Vec<AssessedService> = radius
        .services
        .iter()
        .map(|(service, state)| AssessedService {
            service_id: service.id,
            name: service.name.clone(),
            criticality: service.criticality,
            state: *state,
        })
        .collect();
    let service_ids: Vec<Uuid> = services.iter().map(|s| s.service_id).collect();
    let affected_customers = crate::domain::customer::customers_of_services(db, &service_ids)
        .await?
        .into_iter()
        .map(|link| AssessedCustomer {
            customer_id: link.customer_id,
            service_id: link.service_id,
            agreement: link.agreement,
        })
        .collect();
    let open_incidents = crate::domain::incident::open_on_cis(db, &radius.ci_ids).await?;
    let mut collisions = Vec::new();
    if let Some(window) = window_of(change) {
        let others = committed_in(db, window, &COMMITTED_STATES, Some(change.id)).await?;
        let refs: Vec<&change_request::Model> = others.iter().collect();
        let other_radii = radii(db, &context, &refs).await?;
        for other in &others {
            let (Some(other_window), Some(other_radius)) =
                (window_of(other), other_radii.get(&other.id))
            else {
                continue;
            };
            let Some((start, end)) = overlap(window, other_window) else {
                continue;
            };
            let shared = shared(&radius, other_radius);
            if shared.is_empty() {
                continue;
            }
            collisions.push(Collision {
                change_id: other.id,
                number: other.number.clone(),
                overlap_start: start,
                overlap_end: end,
                shared_ci_count: shared.len(),
                shared_ci_ids: shared.into_iter().take(LISTED_CIS).collect(),
            });
        }
    }
    let incident_facts: Vec<(String, bool)> = open_incidents
        .iter()
        .map(|i| (i.number.clone(), i.major))
        .collect();
    let (risk, reasons) = judge(&RiskFacts {
        change_type: change.change_type,
        has_window: window_of(change).is_some(),
        blast_radius: radius.ci_ids.len(),
        services: &services,
        open_incidents: &incident_facts,
        collisions: &collisions,
    });
    Ok(Assessment {
        assessed_at: now(),
        risk,
        reasons,
        blast_radius: radius.ci_ids.len(),
        blast_radius_ci_ids: radius.ci_ids.iter().copied().take(LISTED_CIS).collect(),
        affected_services: services,
        affected_customers,
        open_incident_ids: open_incidents.iter().map(|i| i.id).collect(),
        collisions,
    })
}

/// Stores an assessment on the change (model and its services hit).
pub(super) async fn store_assessment(
    db: &impl ConnectionTrait,
    change: &mut change_request::Model,
    assessment: &Assessment,
) -> Result<()> {
    change.risk = Some(assessment.risk);
    change.assessment = Some(serde_json::to_value(assessment)?);
    change.assessed_at = Some(assessment.assessed_at);
    change_service::Entity::delete_many()
        .filter(change_service::Column::ChangeId.eq(change.id))
        .exec(db)
        .await?;
    if !assessment.affected_services.is_empty() {
        change_service::Entity::insert_many(assessment.affected_services.iter().map(|s| {
            change_service::ActiveModel {
                change_id: Set(change.id),
                service_id: Set(s.service_id),
                state: Set(s.state),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Recomputes the assessment of a submitted change as things stand now; a submitted change
/// becomes assessed. Finished changes keep the assessment they were decided on.
pub async fn assess(
    db: &DatabaseConnection,
    cache: &GraphCache,
    limits: &Limits,
    actor: &Actor,
    id: Uuid,
) -> Result<change_request::Model> {
    let current = get(db, id).await?;
    if current.state == ChangeState::Submitted {
        return transition(
            db,
            cache,
            limits,
            actor,
            id,
            None,
            ChangeState::Assessed,
            TransitionDetails::default(),
        )
        .await;
    }
    if !matches!(
        current.state,
        ChangeState::Assessed | ChangeState::Approved | ChangeState::Scheduled
    ) {
        return Err(Error::InvalidTransition(format!(
            "change {} is {}: only submitted, assessed, approved or scheduled changes are \
             assessed",
            current.number,
            state_name(current.state)
        )));
    }
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    // Decided again on the locked row: the change may have moved on since it was read.
    if before.state != current.state {
        return Err(Error::Conflict(format!(
            "change {} moved from {} to {} while it was being assessed; try again",
            before.number,
            state_name(current.state),
            state_name(before.state)
        )));
    }
    let ci_ids = ci_ids_of(txn, &[id]).await?.remove(&id).unwrap_or_default();
    let mut after = before.clone();
    let assessment = compute_assessment(txn, cache, limits, &after, &ci_ids).await?;
    store_assessment(txn, &mut after, &assessment).await?;
    after.version = before.version + 1;
    after.updated_at = now();
    save(txn, &before, &after).await?;
    uow.record(Event::new(
        EntityType::Change,
        id,
        Action::Assess,
        Some(&snapshot(&before, &ci_ids)),
        Some(&snapshot(&after, &ci_ids)),
    )?);
    uow.commit().await?;
    Ok(after)
}

pub(super) fn type_name(change_type: ChangeType) -> &'static str {
    match change_type {
        ChangeType::Standard => "standard",
        ChangeType::Normal => "normal",
        ChangeType::Emergency => "emergency",
    }
}

/// Two changes on the schedule that overlap in time and in blast radius.
#[derive(Debug, Clone)]
pub struct ScheduledCollision {
    pub first: change_request::Model,
    pub second: change_request::Model,
    pub overlap_start: DateTime<Utc>,
    pub overlap_end: DateTime<Utc>,
    pub shared_ci_count: usize,
    pub shared_ci_ids: Vec<Uuid>,
}

/// The pairs of active changes whose windows overlap each other within `[from, to)` and
/// whose blast radii share CIs: the change schedule's conflicts, earliest first.
pub async fn collisions_between(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ScheduledCollision>> {
    if to <= from {
        return Err(Error::invalid(
            "to",
            format!("the period ends ({to}) before it starts ({from})"),
        ));
    }
    let changes = committed_in(db, (from, to), &ACTIVE_STATES, None).await?;
    let refs: Vec<&change_request::Model> = changes.iter().collect();
    let context = BlastContext::prepare(db, cache, limits).await?;
    let radii = radii(db, &context, &refs).await?;
    let mut found = Vec::new();
    for (i, first) in changes.iter().enumerate() {
        for second in &changes[i + 1..] {
            let (Some(a), Some(b)) = (window_of(first), window_of(second)) else {
                continue;
            };
            let Some((start, end)) = overlap(a, b) else {
                continue;
            };
            // Only the part of the overlap inside the period asked about.
            let Some((start, end)) = overlap((start, end), (from, to)) else {
                continue;
            };
            let (Some(ra), Some(rb)) = (radii.get(&first.id), radii.get(&second.id)) else {
                continue;
            };
            let shared = shared(ra, rb);
            if shared.is_empty() {
                continue;
            }
            found.push(ScheduledCollision {
                first: first.clone(),
                second: second.clone(),
                overlap_start: start,
                overlap_end: end,
                shared_ci_count: shared.len(),
                shared_ci_ids: shared.into_iter().take(LISTED_CIS).collect(),
            });
        }
    }
    found.sort_by(|a, b| {
        a.overlap_start
            .cmp(&b.overlap_start)
            .then(a.first.number.cmp(&b.first.number))
            .then(a.second.number.cmp(&b.second.number))
    });
    Ok(found)
}
