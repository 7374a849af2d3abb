//! The blast radius of a set of CIs: what their failure (or their change) hits downstream,
//! and which services, how badly. Incidents derive their affected services from it, and
//! change assessments their risk and collisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use entity::service;
use entity::values::ServiceState;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::analysis::{self, Direction, ImpactState, Reached};
use super::graph::{FastSet, Graph};
use super::{AffectedService, GraphCache, options};
use crate::domain::{Error, Result};
use crate::limits::Limits;

/// What the failure of some CIs hits.
#[derive(Debug, Clone, Default)]
pub struct BlastRadius {
    /// Every CI hit, the starting ones included, nearest first.
    pub ci_ids: Vec<Uuid>,
    /// The services with hit members, worst first, then the most critical.
    pub services: Vec<(service::Model, ServiceState)>,
}

impl BlastRadius {
    /// The CIs hit, as a set.
    pub fn ci_set(&self) -> FastSet<Uuid> {
        self.ci_ids.iter().copied().collect()
    }
}

/// The services with members among `reached`, each with the worst state of its members,
/// worst first, then the most critical, then by name.
pub fn affected_services(graph: &Graph, reached: &[Reached]) -> Vec<AffectedService> {
    let mut services: BTreeMap<Uuid, AffectedService> = BTreeMap::new();
    for r in reached {
        let Some(node) = graph.node(&r.id) else {
            continue;
        };
        for service_id in &node.services {
            let Some(entry) = graph.service(service_id) else {
                continue;
            };
            let affected = services
                .entry(*service_id)
                .or_insert_with(|| AffectedService {
                    service: entry.model.clone(),
                    state: r.state,
                    affected_members: Vec::new(),
                });
            affected.state = affected.state.max(r.state);
            affected.affected_members.push(r.id);
        }
    }
    let mut services: Vec<AffectedService> = services.into_values().collect();
    services.sort_by(|a, b| {
        b.state
            .cmp(&a.state)
            .then(b.service.criticality.cmp(&a.service.criticality))
            .then(a.service.name.cmp(&b.service.name))
    });
    services
}

/// The graph and walking options of one request, read once however many blast radii it
/// computes (a change schedule compares hundreds).
pub struct BlastContext {
    graph: Arc<Graph>,
    options: analysis::Options,
    max_nodes: usize,
}

impl BlastContext {
    /// Reads the current graph and the relationship types: downstream, all relationship
    /// types, the default depth.
    pub async fn prepare(
        db: &impl ConnectionTrait,
        cache: &GraphCache,
        limits: &Limits,
    ) -> Result<Self> {
        let graph = cache.current(db).await?;
        let types = cache.types(db).await?;
        let options = options(&types, Direction::Downstream, None, None, false, limits)?;
        Ok(BlastContext {
            graph,
            options,
            max_nodes: limits.max_impact_nodes,
        })
    }

    /// The blast radius of `ci_ids`. CIs the graph does not hold (retired ones) hit nothing.
    pub fn radius(&self, ci_ids: &[Uuid]) -> Result<BlastRadius> {
        let graph = &self.graph;
        let known: Vec<Uuid> = ci_ids
            .iter()
            .copied()
            .filter(|id| graph.node(id).is_some())
            .collect();
        if known.is_empty() {
            return Ok(BlastRadius::default());
        }
        let analysis = analysis::analyse(graph, &known, &self.options);
        if analysis.stopped() {
            return Err(Error::LimitExceeded(format!(
                "the blast radius holds more than {} CIs (limit `max_impact_nodes`)",
                self.max_nodes
            )));
        }
        let services = affected_services(graph, &analysis.reached)
            .into_iter()
            .filter_map(|affected| {
                let state = match affected.state {
                    ImpactState::Down => ServiceState::Down,
                    ImpactState::Degraded => ServiceState::Degraded,
                    ImpactState::Dependency => return None,
                };
                Some((affected.service, state))
            })
            .collect();
        Ok(BlastRadius {
            ci_ids: analysis.reached.iter().map(|r| r.id).collect(),
            services,
        })
    }
}

/// The blast radius of `ci_ids` on the current graph (see [`BlastContext`]).
pub async fn blast_radius(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    ci_ids: &[Uuid],
) -> Result<BlastRadius> {
    BlastContext::prepare(db, cache, limits)
        .await?
        .radius(ci_ids)
}
