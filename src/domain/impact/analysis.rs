//! Impact traversal over the in-memory graph: pure functions, no I/O.
//!
//! Downstream: from failing CIs to what their failure hits, following each relationship
//! type's propagation rule (`app depends_on db` is followed from `db` to `app`). Upstream:
//! the reverse, to what the CIs need. A breadth-first walk gives every reached CI its
//! shortest depth and one shortest path; cycles end because a CI is visited once.
//!
//! States (downstream): starting CIs are `Down`; a reached CI is `Down` when a `Down`
//! neighbour hits it, else `Degraded`. A redundancy group (a CI with `min_healthy`) is `Down`
//! when fewer than `min_healthy` of its members (the CIs feeding it through a membership
//! type such as `member_of`) are still up, or when anything else it needs is `Down` (a load
//! balancer in front of a cluster is a single point of failure). Only `Down` spreads as
//! `Down`; the states are the least fixed point of these rules, so a cycle never keeps
//! itself down.
//!
//! Paths: a `Down` CI's path is the chain of `Down` CIs that took it down, each step the
//! failure that made the next one fail; other CIs get the shortest path that reached them.

use std::collections::VecDeque;

use entity::values::Propagation;
use uuid::Uuid;

use super::graph::{FastMap, FastSet, Graph};

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To what the starting CIs' failure hits.
    Downstream,
    /// To what the starting CIs need.
    Upstream,
    /// Both of the above.
    Both,
}

/// How a reached CI is affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImpactState {
    /// Found upstream: the starting CIs need it; their failure does not hit it.
    Dependency,
    /// Works, with less redundancy or capacity.
    Degraded,
    /// Out of service.
    Down,
}

/// What to follow.
#[derive(Debug, Clone)]
pub struct Options {
    pub direction: Direction,
    pub max_depth: u32,
    /// Only these relationship types; all when `None`.
    pub types: Option<FastSet<i32>>,
    pub include_retired: bool,
    /// Most CIs one walk may visit before it stops.
    pub max_nodes: usize,
}

/// Which walk found a CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Downstream,
    Upstream,
}

/// A CI reached by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub id: Uuid,
    pub depth: u32,
    pub state: ImpactState,
    pub walk: Walk,
}

/// The CIs one walk reached, with the edge each was first reached by.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// CIs in the order they were reached (so by depth).
    pub order: Vec<Uuid>,
    /// Depth and (relationship, previous CI) of each reached CI; none for starting CIs.
    pub entries: FastMap<Uuid, (u32, Option<(Uuid, Uuid)>)>,
    /// The walk stopped at `max_nodes`.
    pub stopped: bool,
}

impl Tree {
    /// The relationships from a starting CI to `id`, in walking order.
    pub fn path(&self, id: Uuid) -> Vec<Uuid> {
        let mut path = Vec::new();
        let mut current = id;
        while let Some((_, Some((edge, previous)))) = self.entries.get(&current) {
            path.push(*edge);
            current = *previous;
        }
        path.reverse();
        path
    }

    /// The depth of a reached CI.
    pub fn depth(&self, id: &Uuid) -> Option<u32> {
        self.entries.get(id).map(|(depth, _)| *depth)
    }
}

/// The result of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Every reached CI, starting CIs first, then by depth.
    pub reached: Vec<Reached>,
    pub downstream: Tree,
    pub upstream: Tree,
    /// For each CI that went `Down` downstream: the relationship and the `Down` CI that
    /// took it down.
    pub causes: FastMap<Uuid, (Uuid, Uuid)>,
}

impl Analysis {
    /// The relationships explaining why `reached` is in the result: for a `Down` CI, the
    /// failures that took it down, from a starting CI; otherwise the shortest path.
    pub fn path(&self, reached: &Reached) -> Vec<Uuid> {
        match reached.walk {
            Walk::Downstream if reached.state == ImpactState::Down => {
                let mut path = Vec::new();
                let mut current = reached.id;
                while let Some((edge, previous)) = self.causes.get(&current) {
                    path.push(*edge);
                    current = *previous;
                }
                path.reverse();
                path
            }
            Walk::Downstream => self.downstream.path(reached.id),
            Walk::Upstream => self.upstream.path(reached.id),
        }
    }

    /// Whether a walk stopped at the node limit.
    pub fn stopped(&self) -> bool {
        self.downstream.stopped || self.upstream.stopped
    }
}

fn follows(options: &Options, type_id: i32) -> bool {
    options
        .types
        .as_ref()
        .is_none_or(|types| types.contains(&type_id))
}

/// Whether a failing source hits its target, and a failing target its source.
fn spreads(propagation: Propagation) -> (bool, bool) {
    match propagation {
        Propagation::SourceToTarget => (true, false),
        Propagation::TargetToSource => (false, true),
        Propagation::Both => (true, true),
        Propagation::None => (false, false),
    }
}

/// The neighbours of `id` one step along `walk`, as (relationship, neighbour), in adjacency
/// order: downstream, the CIs its failure hits; upstream, the CIs whose failure hits it.
pub fn neighbours<'g>(
    graph: &'g Graph,
    options: &'g Options,
    id: Uuid,
    walk: Walk,
) -> impl Iterator<Item = (Uuid, Uuid)> + 'g {
    let node = graph.node(&id);
    let outgoing = node.map(|n| n.outgoing.as_slice()).unwrap_or(&[]);
    let incoming = node.map(|n| n.incoming.as_slice()).unwrap_or(&[]);
    let out = outgoing.iter().filter(move |edge| {
        let (source_hits_target, target_hits_source) = spreads(graph.propagation(edge.type_id));
        follows(options, edge.type_id)
            && match walk {
                Walk::Downstream => source_hits_target,
                Walk::Upstream => target_hits_source,
            }
    });
    let inc = incoming.iter().filter(move |edge| {
        let (source_hits_target, target_hits_source) = spreads(graph.propagation(edge.type_id));
        follows(options, edge.type_id)
            && match walk {
                Walk::Downstream => target_hits_source,
                Walk::Upstream => source_hits_target,
            }
    });
    out.chain(inc).map(|edge| (edge.id, edge.other))
}

fn active(graph: &Graph, options: &Options, id: &Uuid) -> bool {
    graph
        .node(id)
        .is_some_and(|node| options.include_retired || !node.retired)
}

/// Breadth-first walk from `start`.
pub fn walk(graph: &Graph, start: &[Uuid], options: &Options, walk: Walk) -> Tree {
    let mut tree = Tree::default();
    let mut queue = VecDeque::new();
    for id in start {
        if active(graph, options, id) && !tree.entries.contains_key(id) {
            tree.entries.insert(*id, (0, None));
            tree.order.push(*id);
            queue.push_back(*id);
        }
    }
    while let Some(id) = queue.pop_front() {
        let depth = tree.entries[&id].0;
        if depth >= options.max_depth {
            continue;
        }
        for (edge, next) in neighbours(graph, options, id, walk) {
            if tree.entries.contains_key(&next) || !active(graph, options, &next) {
                continue;
            }
            if tree.order.len() >= options.max_nodes {
                tree.stopped = true;
                return tree;
            }
            tree.entries.insert(next, (depth + 1, Some((edge, id))));
            tree.order.push(next);
            queue.push_back(next);
        }
    }
    tree
}

/// The states of the CIs a downstream walk reached, and for each `Down` one the failure
/// that took it down (see the module documentation).
pub fn states(
    graph: &Graph,
    tree: &Tree,
    options: &Options,
) -> (FastMap<Uuid, ImpactState>, FastMap<Uuid, (Uuid, Uuid)>) {
    let mut state: FastMap<Uuid, ImpactState> = tree
        .entries
        .iter()
        .map(|(id, (depth, _))| {
            let initial = if *depth == 0 {
                ImpactState::Down
            } else {
                ImpactState::Degraded
            };
            (*id, initial)
        })
        .collect();
    let mut causes: FastMap<Uuid, (Uuid, Uuid)> = FastMap::default();
    let is_membership = |edge: &Uuid| {
        graph
            .edge(edge)
            .is_some_and(|e| graph.is_membership(e.type_id))
    };
    let mut work: VecDeque<Uuid> = tree
        .order
        .iter()
        .filter(|id| tree.entries[*id].0 == 0)
        .copied()
        .collect();
    while let Some(down) = work.pop_front() {
        for (edge, next) in neighbours(graph, options, down, Walk::Downstream) {
            if state.get(&next) != Some(&ImpactState::Degraded) {
                continue;
            }
            let becomes_down = match graph.node(&next).and_then(|n| n.min_healthy) {
                None => true,
                // Something the group needs that is not one of its members.
                Some(_) if !is_membership(&edge) => true,
                Some(needed) => {
                    let healthy = neighbours(graph, options, next, Walk::Upstream)
                        .filter(|(edge, _)| is_membership(edge))
                        .map(|(_, member)| member)
                        .collect::<FastSet<Uuid>>()
                        .into_iter()
                        .filter(|member| {
                            active(graph, options, member)
                                && state.get(member) != Some(&ImpactState::Down)
                        })
                        .count();
                    (healthy as u64) < u64::from(needed)
                }
            };
            if becomes_down {
                state.insert(next, ImpactState::Down);
                causes.insert(next, (edge, down));
                work.push_back(next);
            }
        }
    }
    (state, causes)
}

/// Walks from `start` as `options` say and gives every reached CI its depth and state.
pub fn analyse(graph: &Graph, start: &[Uuid], options: &Options) -> Analysis {
    let mut analysis = Analysis::default();
    let mut seen = FastSet::default();
    if matches!(options.direction, Direction::Downstream | Direction::Both) {
        analysis.downstream = walk(graph, start, options, Walk::Downstream);
        let (states, causes) = states(graph, &analysis.downstream, options);
        analysis.causes = causes;
        for id in &analysis.downstream.order {
            seen.insert(*id);
            analysis.reached.push(Reached {
                id: *id,
                depth: analysis.downstream.entries[id].0,
                state: states[id],
                walk: Walk::Downstream,
            });
        }
    }
    if matches!(options.direction, Direction::Upstream | Direction::Both) {
        analysis.upstream = walk(graph, start, options, Walk::Upstream);
        for id in &analysis.upstream.order {
            if !seen.insert(*id) {
                continue;
            }
            let depth = analysis.upstream.entries[id].0;
            analysis.reached.push(Reached {
                id: *id,
                depth,
                state: if depth == 0 {
                    ImpactState::Down
                } else {
                    ImpactState::Dependency
                },
                walk: Walk::Upstream,
            });
        }
        if options.direction == Direction::Both {
            analysis.reached.sort_by_key(|r| r.depth);
        }
    }
    analysis
}

/// An upstream CI shared by failing CIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: Uuid,
    /// The failing CIs it explains, in the order they were given.
    pub explains: Vec<Uuid>,
    /// Sum of the distances to the failing CIs it explains.
    pub total_distance: u32,
}

/// The CIs upstream of the failing ones, ranked by how many failing CIs each explains, then
/// by how close it is to them. A CI explains a failing CI when it is upstream of it (or is
/// it). With several failing CIs, only CIs explaining at least two are candidates.
pub fn root_causes(
    graph: &Graph,
    failing: &[Uuid],
    options: &Options,
) -> (Vec<Candidate>, FastMap<Uuid, Tree>) {
    let mut trees: FastMap<Uuid, Tree> = FastMap::default();
    let mut tally: FastMap<Uuid, Candidate> = FastMap::default();
    let mut order = Vec::new();
    for failing_ci in failing {
        if trees.contains_key(failing_ci) {
            continue;
        }
        let tree = walk(graph, &[*failing_ci], options, Walk::Upstream);
        for id in &tree.order {
            let depth = tree.entries[id].0;
            let candidate = tally.entry(*id).or_insert_with(|| {
                order.push(*id);
                Candidate {
                    id: *id,
                    explains: Vec::new(),
                    total_distance: 0,
                }
            });
            candidate.explains.push(*failing_ci);
            candidate.total_distance += depth;
        }
        trees.insert(*failing_ci, tree);
    }
    let minimum = if trees.len() > 1 { 2 } else { 1 };
    let mut candidates: Vec<Candidate> = order
        .into_iter()
        .filter_map(|id| tally.remove(&id))
        .filter(|c| c.explains.len() >= minimum)
        .collect();
    candidates.sort_by(|a, b| {
        b.explains
            .len()
            .cmp(&a.explains.len())
            .then(a.total_distance.cmp(&b.total_distance))
    });
    (candidates, trees)
}

#[cfg(test)]
mod tests;
