//! The relationship graph in memory: nodes (CIs with what impact analysis needs of them),
//! typed edges in both directions, relationship types' propagation rules, and services with
//! their members.
//!
//! Invariants: every edge is listed once in its source's `outgoing` and once in its target's
//! `incoming`; adjacency lists are sorted by relationship id (ids are time-ordered UUIDs), so
//! traversals visit neighbours in the same order on every instance whatever order the graph
//! was loaded in.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use entity::service;
use entity::values::{LifecycleStatus, Propagation};
use rustc_hash::FxHasher;
use uuid::Uuid;

/// A hash map with a fast hasher; keys here are random UUIDs, not attacker-chosen text.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A hash set with a fast hasher.
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// One end's view of a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The relationship's id.
    pub id: Uuid,
    /// The CI at the other end.
    pub other: Uuid,
    /// The relationship type.
    pub type_id: i32,
}

/// A relationship as the graph knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeRecord {
    pub id: Uuid,
    pub source: Uuid,
    pub target: Uuid,
    pub type_id: i32,
}

/// A CI as impact analysis needs it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub class_id: i32,
    /// Its name, so that large answers can name CIs without reading them again.
    pub name: Arc<str>,
    pub status: Option<LifecycleStatus>,
    pub retired: bool,
    /// Set on redundancy groups (such as clusters): how many of the members feeding the
    /// group must be up for it to serve.
    pub min_healthy: Option<u32>,
    pub outgoing: Vec<Edge>,
    pub incoming: Vec<Edge>,
    /// Services the CI is a member of.
    pub services: Vec<Uuid>,
}

/// A service and its members.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub model: service::Model,
    pub members: Vec<Uuid>,
}

/// The attributes of a CI that the graph keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub class_id: i32,
    pub name: Arc<str>,
    pub status: LifecycleStatus,
    pub min_healthy: Option<u32>,
}

impl NodeFacts {
    /// Facts of a CI in service, for tests.
    pub fn in_service(class_id: i32, name: &str) -> Self {
        NodeFacts {
            class_id,
            name: Arc::from(name),
            status: LifecycleStatus::InService,
            min_healthy: None,
        }
    }
}

/// What impact analysis needs of a relationship type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRule {
    pub propagation: Propagation,
    /// The source is a member of the target: it counts toward the target's redundancy.
    pub membership: bool,
}

impl TypeRule {
    /// A rule for a type that is not a membership.
    pub fn spreading(propagation: Propagation) -> Self {
        TypeRule {
            propagation,
            membership: false,
        }
    }
}

/// The whole graph at one version of the graph change log.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The graph change log version this graph reflects.
    pub version: i64,
    nodes: FastMap<Uuid, Node>,
    edges: FastMap<Uuid, EdgeRecord>,
    types: FastMap<i32, TypeRule>,
    services: FastMap<Uuid, ServiceEntry>,
}

fn insert_sorted(list: &mut Vec<Edge>, edge: Edge) {
    match list.binary_search_by(|e| e.id.cmp(&edge.id)) {
        Ok(position) => list[position] = edge,
        Err(position) => list.insert(position, edge),
    }
}

fn remove_by_id(list: &mut Vec<Edge>, id: Uuid) {
    if let Ok(position) = list.binary_search_by(|e| e.id.cmp(&id)) {
        list.remove(position);
    }
}

impl Graph {
    /// The node of a CI.
    pub fn node(&self, id: &Uuid) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// How many CIs the graph holds.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// How many relationships the graph holds.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// A relationship by id.
    pub fn edge(&self, id: &Uuid) -> Option<&EdgeRecord> {
        self.edges.get(id)
    }

    /// The propagation rule of a relationship type (`NONE` for an unknown type).
    pub fn propagation(&self, type_id: i32) -> Propagation {
        self.types
            .get(&type_id)
            .map_or(Propagation::None, |rule| rule.propagation)
    }

    /// Whether relationships of the type make their source a member of their target.
    pub fn is_membership(&self, type_id: i32) -> bool {
        self.types.get(&type_id).is_some_and(|rule| rule.membership)
    }

    /// A service by id.
    pub fn service(&self, id: &Uuid) -> Option<&ServiceEntry> {
        self.services.get(id)
    }

    /// Replaces the rules of the relationship types.
    pub fn set_types(&mut self, rules: impl IntoIterator<Item = (i32, TypeRule)>) {
        self.types = rules.into_iter().collect();
    }

    /// Adds a CI, or updates its facts keeping its relationships.
    pub fn upsert_node(&mut self, id: Uuid, facts: NodeFacts) {
        let node = self.nodes.entry(id).or_default();
        node.class_id = facts.class_id;
        node.retired = facts.status == LifecycleStatus::Retired;
        node.status = Some(facts.status);
        node.name = facts.name;
        node.min_healthy = facts.min_healthy;
    }

    /// Removes a CI with its relationships and memberships.
    pub fn remove_node(&mut self, id: Uuid) {
        let Some(node) = self.nodes.remove(&id) else {
            return;
        };
        for edge in node.outgoing.iter().chain(node.incoming.iter()) {
            self.remove_edge(edge.id);
        }
        for service in node.services {
            if let Some(entry) = self.services.get_mut(&service) {
                entry.members.retain(|m| *m != id);
            }
        }
    }

    /// Adds or replaces a relationship. Returns false (and changes nothing) when an end is
    /// not in the graph.
    pub fn upsert_edge(&mut self, record: EdgeRecord) -> bool {
        if !self.nodes.contains_key(&record.source) || !self.nodes.contains_key(&record.target) {
            return false;
        }
        if let Some(existing) = self.edges.get(&record.id).copied() {
            if existing == record {
                return true;
            }
            self.remove_edge(record.id);
        }
        self.edges.insert(record.id, record);
        if let Some(source) = self.nodes.get_mut(&record.source) {
            insert_sorted(
                &mut source.outgoing,
                Edge {
                    id: record.id,
                    other: record.target,
                    type_id: record.type_id,
                },
            );
        }
        if let Some(target) = self.nodes.get_mut(&record.target) {
            insert_sorted(
                &mut target.incoming,
                Edge {
                    id: record.id,
                    other: record.source,
                    type_id: record.type_id,
                },
            );
        }
        true
    }

    /// Removes a relationship.
    pub fn remove_edge(&mut self, id: Uuid) {
        let Some(record) = self.edges.remove(&id) else {
            return;
        };
        if let Some(source) = self.nodes.get_mut(&record.source) {
            remove_by_id(&mut source.outgoing, id);
        }
        if let Some(target) = self.nodes.get_mut(&record.target) {
            remove_by_id(&mut target.incoming, id);
        }
    }

    /// Adds or replaces a service and its members.
    pub fn upsert_service(&mut self, model: service::Model, members: Vec<Uuid>) {
        let id = model.id;
        self.remove_service(id);
        let members: Vec<Uuid> = members
            .into_iter()
            .filter(|m| self.nodes.contains_key(m))
            .collect();
        for member in &members {
            if let Some(node) = self.nodes.get_mut(member) {
                node.services.push(id);
            }
        }
        self.services.insert(id, ServiceEntry { model, members });
    }

    /// Removes a service.
    pub fn remove_service(&mut self, id: Uuid) {
        if let Some(entry) = self.services.remove(&id) {
            for member in entry.members {
                if let Some(node) = self.nodes.get_mut(&member) {
                    node.services.retain(|s| *s != id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts::in_service(1, "n")
    }

    #[test]
    fn edges_are_listed_at_both_ends_in_id_order_whatever_the_insertion_order() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let mut graph = Graph::default();
        for id in [a, b, c] {
            graph.upsert_node(id, facts());
        }
        assert!(graph.upsert_edge(EdgeRecord {
            id: second,
            source: a,
            target: c,
            type_id: 1
        }));
        assert!(graph.upsert_edge(EdgeRecord {
            id: first,
            source: a,
            target: b,
            type_id: 1
        }));
        let outgoing: Vec<Uuid> = graph
            .node(&a)
            .unwrap()
            .outgoing
            .iter()
            .map(|e| e.other)
            .collect();
        assert_eq!(outgoing, vec![b, c]);
        assert_eq!(graph.node(&c).unwrap().incoming[0].other, a);
        graph.remove_edge(first);
        assert_eq!(graph.node(&a).unwrap().outgoing.len(), 1);
        assert!(graph.node(&b).unwrap().incoming.is_empty());
        assert_eq!(graph.edge_count(), 1);
    }

    #[test]
    fn removing_a_node_removes_its_edges_and_memberships() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut graph = Graph::default();
        graph.upsert_node(a, facts());
        graph.upsert_node(b, facts());
        let edge = Uuid::now_v7();
        graph.upsert_edge(EdgeRecord {
            id: edge,
            source: a,
            target: b,
            type_id: 1,
        });
        let at = crate::domain::now();
        let service = service::Model {
            id: Uuid::now_v7(),
            name: "s".into(),
            kind: entity::values::ServiceKind::Business,
            description: None,
            owner: None,
            criticality: None,
            version: 1,
            created_at: at,
            updated_at: at,
        };
        let service_id = service.id;
        graph.upsert_service(service, vec![a, b]);
        graph.remove_node(b);
        assert!(graph.edge(&edge).is_none());
        assert!(graph.node(&a).unwrap().outgoing.is_empty());
        assert_eq!(graph.service(&service_id).unwrap().members, vec![a]);
    }

    #[test]
    fn an_edge_to_an_unknown_node_is_refused() {
        let mut graph = Graph::default();
        let a = Uuid::now_v7();
        graph.upsert_node(a, facts());
        assert!(!graph.upsert_edge(EdgeRecord {
            id: Uuid::now_v7(),
            source: a,
            target: Uuid::now_v7(),
            type_id: 1
        }));
        assert_eq!(graph.edge_count(), 0);
    }
}
