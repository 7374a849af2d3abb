//! Service level management: the targets each service promises (availability over a
//! period, response and resolution times per incident priority) and the report that
//! measures a service against them over a period.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use entity::values::{ChangeState, PriorityTarget, PriorityTargets, ServiceState};
use entity::{change_service, incident, incident_service, service, service_level};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use serde::Serialize;
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::unit_of_work::UnitOfWork;
use super::{Error, Result, now};

/// The targets of each of the services that have some.
pub async fn levels_of(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
) -> Result<HashMap<Uuid, service_level::Model>> {
    let column = service_level::Column::ServiceId;
    let rows = super::rows_in::<service_level::Entity>(db, column, service_ids, &[]).await?;
    Ok(rows.into_iter().map(|row| (row.service_id, row)).collect())
}

/// The target for incidents of `priority`, when the service has one.
pub fn target_for(level: &service_level::Model, priority: i32) -> Option<&PriorityTarget> {
    level.targets.0.iter().find(|t| t.priority == priority)
}

fn check_targets(availability: Option<f64>, targets: &[PriorityTarget]) -> Result<()> {
    if let Some(availability) = availability
        && !(availability > 0.0 && availability <= 100.0)
    {
        return Err(Error::invalid(
            "availabilityTarget",
            format!("an availability target of {availability} is not a percentage above 0"),
        ));
    }
    for (i, target) in targets.iter().enumerate() {
        let field = format!("targets[{i}]");
        if !(1..=5).contains(&target.priority) {
            return Err(Error::invalid(
                format!("{field}.priority"),
                format!("priority {} is not between 1 and 5", target.priority),
            ));
        }
        if targets[..i].iter().any(|t| t.priority == target.priority) {
            return Err(Error::invalid(
                format!("{field}.priority"),
                format!("priority {} has two targets", target.priority),
            ));
        }
        for (name, minutes) in [
            ("responseMinutes", target.response_minutes),
            ("resolutionMinutes", target.resolution_minutes),
        ] {
            if minutes.is_some_and(|m| m <= 0) {
                return Err(Error::invalid(
                    format!("{field}.{name}"),
                    format!("`{name}` must be a positive number of minutes"),
                ));
            }
        }
        if let (Some(response), Some(resolution)) =
            (target.response_minutes, target.resolution_minutes)
            && response > resolution
        {
            return Err(Error::invalid(
                format!("{field}.responseMinutes"),
                "the response target is longer than the resolution target",
            ));
        }
    }
    Ok(())
}

/// Sets the targets of a service, replacing the ones it had.
pub async fn set(
    db: &DatabaseConnection,
    actor: &Actor,
    service_id: Uuid,
    availability_target: Option<f64>,
    targets: Vec<PriorityTarget>,
) -> Result<service_level::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = set_in(&uow, service_id, availability_target, targets).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn set_in(
    uow: &UnitOfWork,
    service_id: Uuid,
    availability_target: Option<f64>,
    mut targets: Vec<PriorityTarget>,
) -> Result<service_level::Model> {
    check_targets(availability_target, &targets)?;
    targets.sort_by_key(|t| t.priority);
    let txn = uow.txn();
    // Locking the service serialises writers of its service level.
    super::service::get_for_update(txn, service_id).await?;
    let before = service_level::Entity::find_by_id(service_id)
        .one(txn)
        .await?;
    let after = service_level::Model {
        service_id,
        availability_target,
        targets: PriorityTargets(targets),
        version: before.as_ref().map_or(1, |b| b.version + 1),
        updated_at: now(),
    };
    if let Some(before) = &before {
        if before.availability_target == after.availability_target
            && before.targets == after.targets
        {
            return Ok(before.clone());
        }
        service_level::Entity::delete_by_id(service_id)
            .exec(txn)
            .await?;
    }
    after.clone().into_active_model().insert(txn).await?;
    uow.record(Event::new(
        EntityType::ServiceLevel,
        service_id,
        if before.is_some() {
            Action::Update
        } else {
            Action::Create
        },
        before.as_ref(),
        Some(&after),
    )?);
    Ok(after)
}

/// How many incidents met a target, missed it, or are still within it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Compliance {
    pub met: usize,
    pub missed: usize,
    /// Not yet answered (or resolved), and still within the target.
    pub pending: usize,
    /// Incidents whose priority has no such target.
    pub without_target: usize,
}

impl Compliance {
    /// The share of decided incidents that met the target; `None` when none is decided.
    pub fn share(&self) -> Option<f64> {
        let decided = self.met + self.missed;
        (decided > 0).then(|| self.met as f64 / decided as f64)
    }

    fn count(
        &mut self,
        target: Option<i64>,
        opened: DateTime<Utc>,
        done: Option<DateTime<Utc>>,
        as_of: DateTime<Utc>,
    ) {
        let Some(minutes) = target else {
            self.without_target += 1;
            return;
        };
        let limit = opened + TimeDelta::minutes(minutes);
        match done {
            Some(done) if done <= limit => self.met += 1,
            Some(_) => self.missed += 1,
            None if as_of > limit => self.missed += 1,
            None => self.pending += 1,
        }
    }
}

/// A stretch of time during which the service was down, and the incidents that made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub incident_ids: Vec<Uuid>,
}

/// A service measured over a period.
#[derive(Debug, Clone)]
pub struct ServiceReport {
    pub service: service::Model,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub level: Option<service_level::Model>,
    /// Incidents affecting the service opened in the period, newest first.
    pub incidents: Vec<incident::Model>,
    pub incidents_by_priority: Vec<(i32, usize)>,
    pub mean_time_to_resolve: Option<TimeDelta>,
    pub response: Compliance,
    pub resolution: Compliance,
    pub outages: Vec<Outage>,
    pub downtime: TimeDelta,
    /// Percent of the period (up to now) the service was not down.
    pub availability: f64,
    pub changes_by_outcome: Vec<(ChangeState, usize)>,
    pub change_success_rate: Option<f64>,
}

/// The periods within `[from, until)` during which an incident was open: from its opening
/// to now, less the periods it spent resolved (`resolved` holds each resolution with its
/// reopening, if any). An incident recorded resolved without such periods ends at its
/// `resolved_at`.
pub fn open_periods(
    incident: &incident::Model,
    resolved: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Outage> {
    let mut resolved = resolved.to_vec();
    if resolved.is_empty()
        && let Some(at) = incident.resolved_at
    {
        resolved.push((at, None));
    }
    resolved.sort();
    let mut periods = Vec::new();
    let mut start = incident.opened_at;
    for (resolved_at, reopened_at) in resolved {
        periods.push((start, resolved_at));
        match reopened_at {
            Some(reopened) => start = reopened,
            None => {
                start = DateTime::<Utc>::MAX_UTC;
                break;
            }
        }
    }
    periods.push((start, until));
    periods
        .into_iter()
        .map(|(start, end)| (start.max(from), end.min(until)))
        .filter(|(start, end)| start < end)
        .map(|(start, end)| Outage {
            start,
            end,
            incident_ids: vec![incident.id],
        })
        .collect()
}

/// Merges intervals that overlap or touch, keeping the incidents behind each.
pub fn merge_outages(mut intervals: Vec<Outage>) -> Vec<Outage> {
    intervals.sort_by_key(|o| (o.start, o.end));
    let mut merged: Vec<Outage> = Vec::new();
    for interval in intervals {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => {
                last.end = last.end.max(interval.end);
                last.incident_ids.extend(interval.incident_ids);
            }
            _ => merged.push(interval),
        }
    }
    merged
}

/// The report of a service over `[from, to)`. Incidents count when opened in the period;
/// downtime is the time within the period (up to now) during which an incident had the
/// service down, overlapping incidents counted once; changes count by the outcome they
/// reached, when their window (or, without one, their creation) starts in the period.
pub async fn report(
    db: &impl ConnectionTrait,
    service_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ServiceReport> {
    if to <= from {
        return Err(Error::invalid(
            "to",
            format!("the period ends ({to}) before it starts ({from})"),
        ));
    }
    let service = super::service::get(db, service_id).await?;
    let level = levels_of(db, &[service_id]).await?.remove(&service_id);
    let links = incident_service::Entity::find()
        .filter(incident_service::Column::ServiceId.eq(service_id))
        .all(db)
        .await?;
    let state_of: HashMap<Uuid, ServiceState> =
        links.iter().map(|l| (l.incident_id, l.state)).collect();
    let ids: Vec<Uuid> = state_of.keys().copied().collect();
    let linked = super::incident::get_many(db, &ids).await?;
    let as_of = now().min(to);

    let down: Vec<Uuid> = linked
        .values()
        .filter(|i| state_of.get(&i.id) == Some(&ServiceState::Down))
        .map(|i| i.id)
        .collect();
    let mut resolutions = super::incident::resolutions_of(db, &down).await?;
    let mut outages = Vec::new();
    for id in &down {
        let incident = &linked[id];
        let resolved: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = resolutions
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.resolved_at, r.reopened_at))
            .collect();
        outages.extend(open_periods(incident, &resolved, from, as_of));
    }
    let outages = merge_outages(outages);
    let downtime = outages
        .iter()
        .fold(TimeDelta::zero(), |sum, o| sum + (o.end - o.start));
    let measured = (as_of - from).max(TimeDelta::zero());
    let availability = if measured.is_zero() {
        100.0
    } else {
        100.0 * (1.0 - downtime.num_milliseconds() as f64 / measured.num_milliseconds() as f64)
    };

    let mut incidents: Vec<incident::Model> = linked
        .into_values()
        .filter(|i| i.opened_at >= from && i.opened_at < to)
        .collect();
    incidents.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(b.id.cmp(&a.id)));
    let mut by_priority: BTreeMap<i32, usize> = BTreeMap::new();
    let mut response = Compliance::default();
    let mut resolution = Compliance::default();
    let mut resolve_times = Vec::new();
    for incident in &incidents {
        *by_priority.entry(incident.priority).or_default() += 1;
        let target = level
            .as_ref()
            .and_then(|level| target_for(level, incident.priority));
        response.count(
            target.and_then(|t| t.response_minutes),
            incident.opened_at,
            incident.acknowledged_at,
            as_of,
        );
        resolution.count(
            target.and_then(|t| t.resolution_minutes),
            incident.opened_at,
            incident.resolved_at,
            as_of,
        );
        if let Some(resolved) = incident.resolved_at {
            resolve_times.push(resolved - incident.opened_at);
        }
    }
    let mean_time_to_resolve = (!resolve_times.is_empty()).then(|| {
        let total = resolve_times
            .iter()
            .fold(TimeDelta::zero(), |sum, t| sum + *t);
        total / resolve_times.len() as i32
    });

    let change_ids: Vec<Uuid> = change_service::Entity::find()
        .filter(change_service::Column::ServiceId.eq(service_id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.change_id)
        .collect();
    let changes = super::change::get_many(db, &change_ids).await?;
    let mut by_outcome: BTreeMap<String, (ChangeState, usize)> = BTreeMap::new();
    for change in changes.values() {
        let Some(outcome) = change.outcome else {
            continue;
        };
        let reference = change.planned_start.unwrap_or(change.created_at);
        if reference < from || reference >= to {
            continue;
        }
        by_outcome
            .entry(super::change::state_name(outcome))
            .or_insert((outcome, 0))
            .1 += 1;
    }
    let changes_by_outcome: Vec<(ChangeState, usize)> = by_outcome.into_values().collect();
    let finished: usize = changes_by_outcome.iter().map(|(_, n)| n).sum();
    let completed = changes_by_outcome
        .iter()
        .find(|(state, _)| *state == ChangeState::Completed)
        .map_or(0, |(_, n)| *n);
    Ok(ServiceReport {
        service,
        from,
        to,
        level,
        incidents,
        incidents_by_priority: by_priority.into_iter().collect(),
        mean_time_to_resolve,
        response,
        resolution,
        outages,
        downtime,
        availability,
        changes_by_outcome,
        change_success_rate: (finished > 0).then(|| completed as f64 / finished as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
    }

    fn outage(start: u32, end: u32, id: u128) -> Outage {
        Outage {
            start: at(start),
            end: at(end),
            incident_ids: vec![Uuid::from_u128(id)],
        }
    }

    #[test]
    fn an_incident_is_an_outage_only_while_it_is_open() {
        let incident = incident::Model {
            id: Uuid::from_u128(7),
            number: "INC-000007".into(),
            title: "t".into(),
            description: None,
            impact: entity::values::Level::High,
            urgency: entity::values::Level::High,
            priority: 1,
            suggested_impact: None,
            major: false,
            assignee_group: None,
            state: entity::values::IncidentState::Resolved,
            resolution_notes: None,
            opened_at: at(8),
            acknowledged_at: None,
            resolved_at: Some(at(11)),
            closed_at: None,
            version: 5,
            created_at: at(8),
            updated_at: at(11),
        };
        // Resolved at 9, reopened at 10, resolved again at 11.
        let periods = open_periods(
            &incident,
            &[(at(9), Some(at(10))), (at(11), None)],
            at(0),
            at(20),
        );
        let spans: Vec<_> = periods.iter().map(|o| (o.start, o.end)).collect();
        assert_eq!(spans, vec![(at(8), at(9)), (at(10), at(11))]);
        // Still open after the reopening: open until the end of the measured period.
        let periods = open_periods(&incident, &[(at(9), Some(at(10)))], at(0), at(12));
        let spans: Vec<_> = periods.iter().map(|o| (o.start, o.end)).collect();
        assert_eq!(spans, vec![(at(8), at(9)), (at(10), at(12))]);
        // Without recorded periods, the resolution time ends it; the period cuts it.
        let periods = open_periods(&incident, &[], at(9), at(20));
        let spans: Vec<_> = periods.iter().map(|o| (o.start, o.end)).collect();
        assert_eq!(spans, vec![(at(9), at(11))]);
    }

    #[test]
    fn overlapping_outages_count_once() {
        let merged = merge_outages(vec![outage(5, 6, 3), outage(1, 3, 1), outage(2, 4, 2)]);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start, merged[0].end), (at(1), at(4)));
        assert_eq!(merged[0].incident_ids.len(), 2);
        assert_eq!((merged[1].start, merged[1].end), (at(5), at(6)));
    }

    #[test]
    fn compliance_counts_met_missed_and_pending() {
        let mut c = Compliance::default();
        c.count(Some(60), at(1), Some(at(2)), at(10)); // exactly on time
        c.count(Some(60), at(1), Some(at(3)), at(10)); // late
        c.count(Some(60), at(9), None, at(9)); // still within
        c.count(Some(60), at(1), None, at(10)); // never answered, past the target
        c.count(None, at(1), None, at(10));
        assert_eq!(
            c,
            Compliance {
                met: 1,
                missed: 2,
                pending: 1,
                without_target: 1
            }
        );
        assert_eq!(c.share(), Some(1.0 / 3.0));
        assert_eq!(Compliance::default().share(), None);
    }

    #[test]
    fn targets_are_checked() {
        let target = |priority, response, resolution| PriorityTarget {
            priority,
            response_minutes: response,
            resolution_minutes: resolution,
        };
        assert!(check_targets(Some(99.9), &[target(1, Some(15), Some(240))]).is_ok());
        assert!(check_targets(Some(120.0), &[]).is_err());
        assert!(check_targets(None, &[target(6, None, None)]).is_err());
        assert!(check_targets(None, &[target(1, Some(60), Some(30))]).is_err());
        assert!(check_targets(None, &[target(2, None, None), target(2, None, None)]).is_err());
        assert!(check_targets(None, &[target(2, Some(0), None)]).is_err());
    }
}
