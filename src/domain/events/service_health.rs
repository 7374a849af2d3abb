//! What a service's watchers are told: whether an event touched the service's dependency
//! closure, the path from the CI it touched to the service, and the service's state before
//! and after.
//!
//! The closure is what the service's members need, followed upstream through every
//! relationship that spreads failure (as impact analysis follows it), so it widens and
//! narrows as relationships and members come and go. The state is decided by impact
//! analysis itself: the failures are the closure's CIs that are under maintenance, retired
//! while still needed, or named by an open incident; the service is `DOWN` when they take a
//! member down (redundancy rules included), `DEGRADED` when they reach a member without
//! taking it down, and `UP` otherwise.

use entity::values::LifecycleStatus;
use entity::{incident, incident_ci};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::Result;
use crate::domain::audit::EntityType;
use crate::domain::impact::analysis::{self, Direction, ImpactState, Options, Tree, Walk};
use crate::domain::impact::graph::{FastSet, Graph};
use crate::domain::incident::is_open;
use crate::limits::Limits;

/// A service's operational state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Degraded,
    Down,
}

/// The CIs a service depends on, each with how it reaches the service.
#[derive(Debug, Clone, Default)]
pub struct Closure {
    tree: Tree,
}

impl Closure {
    /// Whether the CI is in the closure.
    pub fn contains(&self, ci: &Uuid) -> bool {
        self.tree.entries.contains_key(ci)
    }

    /// The CIs of the closure, members first.
    pub fn cis(&self) -> &[Uuid] {
        &self.tree.order
    }

    /// The CIs from `ci` to the service's member it feeds, `ci` first; `None` outside.
    pub fn path(&self, ci: Uuid) -> Option<Vec<Uuid>> {
        let mut path = vec![ci];
        let mut current = ci;
        loop {
            match self.tree.entries.get(&current)? {
                (_, Some((_, previous))) => {
                    path.push(*previous);
                    current = *previous;
                }
                (_, None) => return Some(path),
            }
        }
    }
}

fn options(limits: &Limits, direction: Direction) -> Options {
    Options {
        direction,
        max_depth: limits.max_impact_depth,
        types: None,
        include_retired: true,
        max_nodes: limits.max_impact_nodes,
    }
}

/// The dependency closure of the service in `graph` (empty when the service is unknown).
pub fn closure(graph: &Graph, service: Uuid, limits: &Limits) -> Closure {
    let Some(entry) = graph.service(&service) else {
        return Closure::default();
    };
    Closure {
        tree: analysis::walk(
            graph,
            &entry.members,
            &options(limits, Direction::Upstream),
            Walk::Upstream,
        ),
    }
}

/// The CIs of the closure that have an open incident on them.
pub async fn with_open_incidents(
    db: &impl ConnectionTrait,
    closure: &Closure,
) -> Result<Vec<Uuid>> {
    let mut links: Vec<(Uuid, Uuid)> = Vec::new();
    for chunk in closure.cis().chunks(500) {
        links.extend(
            incident_ci::Entity::find()
                .select_only()
                .column(incident_ci::Column::CiId)
                .column(incident_ci::Column::IncidentId)
                .filter(incident_ci::Column::CiId.is_in(chunk.iter().copied()))
                .into_tuple::<(Uuid, Uuid)>()
                .all(db)
                .await?,
        );
    }
    let mut incidents: Vec<Uuid> = links.iter().map(|(_, incident)| *incident).collect();
    incidents.sort();
    incidents.dedup();
    let mut open: FastSet<Uuid> = FastSet::default();
    for chunk in incidents.chunks(500) {
        let states: Vec<(Uuid, entity::values::IncidentState)> = incident::Entity::find()
            .select_only()
            .column(incident::Column::Id)
            .column(incident::Column::State)
            .filter(incident::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        open.extend(
            states
                .into_iter()
                .filter(|(_, state)| is_open(*state))
                .map(|(id, _)| id),
        );
    }
    let mut found: Vec<Uuid> = links
        .into_iter()
        .filter(|(_, incident)| open.contains(incident))
        .map(|(ci, _)| ci)
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

/// The service's state, given the closure's CIs with open incidents.
pub fn health(
    graph: &Graph,
    service: Uuid,
    closure: &Closure,
    open_incidents: &[Uuid],
    limits: &Limits,
) -> Health {
    let Some(entry) = graph.service(&service) else {
        return Health::Up;
    };
    let mut failing: FastSet<Uuid> = open_incidents.iter().copied().collect();
    failing.extend(closure.cis().iter().copied().filter(|ci| {
        graph.node(ci).is_some_and(|node| {
            node.retired || node.status == Some(LifecycleStatus::UnderMaintenance)
        })
    }));
    if failing.is_empty() {
        return Health::Up;
    }
    let failing: Vec<Uuid> = failing.into_iter().collect();
    let result = analysis::analyse(graph, &failing, &options(limits, Direction::Downstream));
    let worst = result
        .reached
        .iter()
        .filter(|reached| entry.members.contains(&reached.id))
        .map(|reached| reached.state)
        .max();
    match worst {
        Some(ImpactState::Down) => Health::Down,
        Some(ImpactState::Degraded) => Health::Degraded,
        _ => Health::Up,
    }
}

/// The CIs an event touches in a way a service's state may depend on; empty when it
/// cannot matter (a CI's description, a resolved incident's notes, another service).
pub fn touched_cis(
    entity_type: &str,
    entity_id: &str,
    before: Option<&Json>,
    after: Option<&Json>,
    service: Uuid,
) -> Vec<Uuid> {
    let field = |state: Option<&Json>, name: &str| state.and_then(|s| s.get(name)).cloned();
    let id = |value: Option<Json>| value.and_then(|v| serde_json::from_value::<Uuid>(v).ok());
    let ids = |value: Option<Json>| {
        value
            .and_then(|v| serde_json::from_value::<Vec<Uuid>>(v).ok())
            .unwrap_or_default()
    };
    let mut touched = Vec::new();
    match EntityType::parse(entity_type) {
        Some(EntityType::ConfigurationItem) => {
            let moved = ["status", "attributes"]
                .iter()
                .any(|f| field(before, f) != field(after, f));
            if moved || before.is_none() || after.is_none() {
                touched.extend(entity_id.parse::<Uuid>().ok());
            }
        }
        Some(EntityType::Relationship) => {
            for state in [before, after] {
                touched.extend(id(field(state, "source_id")));
                touched.extend(id(field(state, "target_id")));
            }
        }
        Some(EntityType::Service) if entity_id == service.to_string() => {
            let (old, new) = (
                ids(field(before, "member_ids")),
                ids(field(after, "member_ids")),
            );
            touched.extend(old.iter().filter(|m| !new.contains(m)));
            touched.extend(new.iter().filter(|m| !old.contains(m)));
        }
        Some(EntityType::Incident) => {
            let open = |state: Option<&Json>| {
                field(state, "state")
                    .and_then(|s| serde_json::from_value(s).ok())
                    .is_some_and(is_open)
            };
            let (old, new) = (ids(field(before, "ci_ids")), ids(field(after, "ci_ids")));
            if open(before) != open(after) {
                touched.extend(old.iter().chain(new.iter()));
            } else if open(after) {
                touched.extend(old.iter().filter(|m| !new.contains(m)));
                touched.extend(new.iter().filter(|m| !old.contains(m)));
            }
        }
        _ => {}
    }
    touched.sort();
    touched.dedup();
    touched
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_incident_touches_its_cis_only_when_it_opens_or_resolves() {
        let service = Uuid::now_v7();
        let ci = Uuid::now_v7();
        let open = json!({"state": "NEW", "ci_ids": [ci]});
        let working = json!({"state": "IN_PROGRESS", "ci_ids": [ci]});
        let resolved = json!({"state": "RESOLVED", "ci_ids": [ci]});
        let touched = |before: Option<&Json>, after: Option<&Json>| {
            touched_cis("INCIDENT", "x", before, after, service)
        };
        assert_eq!(touched(None, Some(&open)), [ci]);
        assert!(touched(Some(&open), Some(&working)).is_empty());
        assert_eq!(touched(Some(&working), Some(&resolved)), [ci]);
    }

    #[test]
    fn a_cis_description_does_not_touch_a_service_but_its_status_does() {
        let service = Uuid::now_v7();
        let ci = Uuid::now_v7();
        let before = json!({"status": "IN_SERVICE", "description": "a"});
        let renamed = json!({"status": "IN_SERVICE", "description": "b"});
        let down = json!({"status": "UNDER_MAINTENANCE", "description": "a"});
        let id = ci.to_string();
        assert!(
            touched_cis(
                "CONFIGURATION_ITEM",
                &id,
                Some(&before),
                Some(&renamed),
                service
            )
            .is_empty()
        );
        assert_eq!(
            touched_cis(
                "CONFIGURATION_ITEM",
                &id,
                Some(&before),
                Some(&down),
                service
            ),
            [ci]
        );
    }
}
