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
mod tests {
    use super::*;
    use crate::domain::impact::graph::{EdgeRecord, NodeFacts, TypeRule};
    use proptest::prelude::*;

    const DEPENDS_ON: i32 = 1;
    const CONTAINS: i32 = 2;
    const PEER: i32 = 3;
    const BACKUP: i32 = 4;
    const MEMBER_OF: i32 = 5;

    fn options(direction: Direction) -> Options {
        Options {
            direction,
            max_depth: 10,
            types: None,
            include_retired: false,
            max_nodes: 1_000_000,
        }
    }

    struct Builder {
        graph: Graph,
        ids: Vec<Uuid>,
    }

    impl Builder {
        fn new(nodes: usize) -> Self {
            let mut graph = Graph::default();
            graph.set_types([
                (DEPENDS_ON, TypeRule::spreading(Propagation::TargetToSource)),
                (CONTAINS, TypeRule::spreading(Propagation::SourceToTarget)),
                (PEER, TypeRule::spreading(Propagation::Both)),
                (BACKUP, TypeRule::spreading(Propagation::None)),
                (
                    MEMBER_OF,
                    TypeRule {
                        propagation: Propagation::SourceToTarget,
                        membership: true,
                    },
                ),
            ]);
            let ids: Vec<Uuid> = (0..nodes).map(|_| Uuid::now_v7()).collect();
            for id in &ids {
                graph.upsert_node(*id, NodeFacts::in_service(1, "n"));
            }
            Builder { graph, ids }
        }

        fn edge(&mut self, source: usize, type_id: i32, target: usize) -> Uuid {
            let id = Uuid::now_v7();
            self.graph.upsert_edge(EdgeRecord {
                id,
                source: self.ids[source],
                target: self.ids[target],
                type_id,
            });
            id
        }

        fn group(&mut self, node: usize, min_healthy: u32) {
            let id = self.ids[node];
            self.graph.upsert_node(
                id,
                NodeFacts {
                    min_healthy: Some(min_healthy),
                    ..NodeFacts::in_service(1, "group")
                },
            );
        }

        fn retire(&mut self, node: usize) {
            let id = self.ids[node];
            self.graph.upsert_node(
                id,
                NodeFacts {
                    status: entity::values::LifecycleStatus::Retired,
                    ..NodeFacts::in_service(1, "retired")
                },
            );
        }

        fn state_of(&self, analysis: &Analysis, node: usize) -> Option<ImpactState> {
            analysis
                .reached
                .iter()
                .find(|r| r.id == self.ids[node])
                .map(|r| r.state)
        }
    }

    #[test]
    fn downstream_follows_each_types_rule_and_upstream_the_reverse() {
        // 0 app depends_on 1 db; 1 db depends_on 2 vm; 3 rack contains 2 vm; 1 backed up to 4.
        let mut b = Builder::new(5);
        b.edge(0, DEPENDS_ON, 1);
        b.edge(1, DEPENDS_ON, 2);
        b.edge(3, CONTAINS, 2);
        b.edge(1, BACKUP, 4);
        let down = analyse(&b.graph, &[b.ids[3]], &options(Direction::Downstream));
        let reached: Vec<(Uuid, u32)> = down.reached.iter().map(|r| (r.id, r.depth)).collect();
        assert_eq!(
            reached,
            vec![(b.ids[3], 0), (b.ids[2], 1), (b.ids[1], 2), (b.ids[0], 3)]
        );
        assert!(down.reached.iter().all(|r| r.state == ImpactState::Down));
        assert_eq!(down.path(&down.reached[3]).len(), 3);

        let up = analyse(&b.graph, &[b.ids[0]], &options(Direction::Upstream));
        let ids: Vec<Uuid> = up.reached.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![b.ids[0], b.ids[1], b.ids[2], b.ids[3]]);
        assert_eq!(up.reached[1].state, ImpactState::Dependency);
    }

    #[test]
    fn a_cycle_ends_and_does_not_keep_itself_down() {
        // 0 and 1 depend on each other; 1 also feeds group 2 through a peer link.
        let mut b = Builder::new(3);
        b.edge(0, DEPENDS_ON, 1);
        b.edge(1, DEPENDS_ON, 0);
        let analysis = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(analysis.reached.len(), 2);
        assert_eq!(b.state_of(&analysis, 1), Some(ImpactState::Down));
    }

    #[test]
    fn a_cluster_with_enough_members_left_is_degraded_and_so_is_what_needs_it() {
        // Members 0, 1, 2 are member_of cluster 3 (any two enough); app 4 depends_on 3;
        // service-level app 5 depends_on 4.
        let mut b = Builder::new(6);
        for member in 0..3 {
            b.edge(member, MEMBER_OF, 3);
        }
        b.group(3, 2);
        b.edge(4, DEPENDS_ON, 3);
        b.edge(5, DEPENDS_ON, 4);
        let one = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(b.state_of(&one, 0), Some(ImpactState::Down));
        assert_eq!(b.state_of(&one, 3), Some(ImpactState::Degraded));
        assert_eq!(b.state_of(&one, 4), Some(ImpactState::Degraded));
        assert_eq!(b.state_of(&one, 5), Some(ImpactState::Degraded));

        let two = analyse(
            &b.graph,
            &[b.ids[0], b.ids[1]],
            &options(Direction::Downstream),
        );
        assert_eq!(b.state_of(&two, 3), Some(ImpactState::Down));
        assert_eq!(b.state_of(&two, 5), Some(ImpactState::Down));

        // A retired member is not a healthy one.
        b.retire(2);
        let one_left = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(b.state_of(&one_left, 3), Some(ImpactState::Down));
    }

    #[test]
    fn only_members_count_toward_redundancy_and_what_a_group_needs_takes_it_down() {
        // Members 0 and 1 are member_of cluster 2 (one enough); the cluster depends_on the
        // load balancer 3; app 4 depends_on the cluster.
        let mut b = Builder::new(5);
        let m0 = b.edge(0, MEMBER_OF, 2);
        b.edge(1, MEMBER_OF, 2);
        let needs_lb = b.edge(2, DEPENDS_ON, 3);
        let needs_cluster = b.edge(4, DEPENDS_ON, 2);
        b.group(2, 1);
        let node = |analysis: &Analysis, i: usize| {
            *analysis
                .reached
                .iter()
                .find(|r| r.id == b.ids[i])
                .expect("reached")
        };

        let one = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(b.state_of(&one, 2), Some(ImpactState::Degraded));

        // Both members down: no member is up, whatever else feeds the cluster.
        let both = analyse(
            &b.graph,
            &[b.ids[0], b.ids[1]],
            &options(Direction::Downstream),
        );
        assert_eq!(b.state_of(&both, 2), Some(ImpactState::Down));
        assert_eq!(both.path(&node(&both, 2)).len(), 1);

        // The load balancer is a single point of failure, not a member.
        let lb = analyse(&b.graph, &[b.ids[3]], &options(Direction::Downstream));
        assert_eq!(b.state_of(&lb, 2), Some(ImpactState::Down));
        assert_eq!(b.state_of(&lb, 4), Some(ImpactState::Down));
        // The path of a DOWN CI is the chain of failures that took it down.
        assert_eq!(lb.path(&node(&lb, 4)), vec![needs_lb, needs_cluster]);

        // With one member down, the app is degraded and its path shows how it was reached.
        let one = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(b.state_of(&one, 4), Some(ImpactState::Degraded));
        assert_eq!(one.path(&node(&one, 4)), vec![m0, needs_cluster]);
    }

    #[test]
    fn retired_cis_neither_appear_nor_carry_impact_unless_asked() {
        let mut b = Builder::new(3);
        b.edge(1, DEPENDS_ON, 0);
        b.edge(2, DEPENDS_ON, 1);
        b.retire(1);
        let analysis = analyse(&b.graph, &[b.ids[0]], &options(Direction::Downstream));
        assert_eq!(analysis.reached.len(), 1);
        let mut with_retired = options(Direction::Downstream);
        with_retired.include_retired = true;
        assert_eq!(
            analyse(&b.graph, &[b.ids[0]], &with_retired).reached.len(),
            3
        );
    }

    #[test]
    fn depth_type_and_node_limits_bound_the_walk() {
        let mut b = Builder::new(5);
        b.edge(1, DEPENDS_ON, 0);
        b.edge(2, DEPENDS_ON, 1);
        b.edge(3, PEER, 2);
        b.edge(4, PEER, 3);
        let mut shallow = options(Direction::Downstream);
        shallow.max_depth = 1;
        assert_eq!(analyse(&b.graph, &[b.ids[0]], &shallow).reached.len(), 2);
        let mut typed = options(Direction::Downstream);
        typed.types = Some([DEPENDS_ON].into_iter().collect());
        assert_eq!(analyse(&b.graph, &[b.ids[0]], &typed).reached.len(), 3);
        let mut small = options(Direction::Downstream);
        small.max_nodes = 2;
        let stopped = analyse(&b.graph, &[b.ids[0]], &small);
        assert!(stopped.stopped());
        assert_eq!(stopped.reached.len(), 2);
    }

    #[test]
    fn the_shared_upstream_ci_is_the_first_root_cause_candidate() {
        // 0 and 1 depend on db 2; 2 depends on vm 3; 4 depends on 0.
        let mut b = Builder::new(5);
        b.edge(0, DEPENDS_ON, 2);
        b.edge(1, DEPENDS_ON, 2);
        b.edge(2, DEPENDS_ON, 3);
        b.edge(4, DEPENDS_ON, 0);
        let failing = [b.ids[0], b.ids[1], b.ids[4]];
        let (candidates, trees) = root_causes(&b.graph, &failing, &options(Direction::Upstream));
        assert_eq!(candidates[0].id, b.ids[2]);
        assert_eq!(candidates[0].explains.len(), 3);
        assert_eq!(candidates[1].id, b.ids[3]);
        assert_eq!(candidates[2].id, b.ids[0], "0 explains itself and 4");
        assert_eq!(trees[&b.ids[4]].path(b.ids[2]).len(), 2);
    }

    /// A plain breadth-first search over an edge list, as the reference.
    fn reference_bfs(
        nodes: usize,
        edges: &[(usize, i32, usize)],
        rules: &FastMap<i32, Propagation>,
        start: &[usize],
        max_depth: u32,
        downstream: bool,
    ) -> Vec<Option<u32>> {
        let mut depth = vec![None; nodes];
        let mut queue = VecDeque::new();
        for s in start {
            if depth[*s].is_none() {
                depth[*s] = Some(0);
                queue.push_back(*s);
            }
        }
        while let Some(u) = queue.pop_front() {
            let d = depth[u].unwrap_or_default();
            if d >= max_depth {
                continue;
            }
            for (source, type_id, target) in edges {
                let (s2t, t2s) = spreads(rules[type_id]);
                let (s2t, t2s) = if downstream { (s2t, t2s) } else { (t2s, s2t) };
                let next = if *source == u && s2t {
                    Some(*target)
                } else if *target == u && t2s {
                    Some(*source)
                } else {
                    None
                };
                if let Some(v) = next
                    && depth[v].is_none()
                {
                    depth[v] = Some(d + 1);
                    queue.push_back(v);
                }
            }
        }
        depth
    }

    /// (node count, edges as (source, type, target), starting nodes, max depth)
    type RandomGraph = (usize, Vec<(usize, i32, usize)>, Vec<usize>, u32);

    fn graph_strategy() -> impl Strategy<Value = RandomGraph> {
        (2usize..25).prop_flat_map(|nodes| {
            let edge = (0..nodes, 1i32..=4, 0..nodes);
            (
                Just(nodes),
                prop::collection::vec(edge, 0..60),
                prop::collection::vec(0..nodes, 1..4),
                1u32..8,
            )
        })
    }

    proptest! {
        #[test]
        fn the_walk_reaches_what_a_plain_bfs_reaches_at_the_same_depths(
            (nodes, edges, start, max_depth) in graph_strategy(),
            downstream in any::<bool>(),
        ) {
            let mut b = Builder::new(nodes);
            let mut distinct = Vec::new();
            for (source, type_id, target) in edges {
                if source != target && !distinct.iter().any(|e: &(usize, i32, usize)| e.0 == source && e.1 == type_id && e.2 == target) {
                    b.edge(source, type_id, target);
                    distinct.push((source, type_id, target));
                }
            }
            let rules: FastMap<i32, Propagation> = [
                (DEPENDS_ON, Propagation::TargetToSource),
                (CONTAINS, Propagation::SourceToTarget),
                (PEER, Propagation::Both),
                (BACKUP, Propagation::None),
            ]
            .into_iter()
            .collect();
            let mut opts = options(if downstream { Direction::Downstream } else { Direction::Upstream });
            opts.max_depth = max_depth;
            let start_ids: Vec<Uuid> = start.iter().map(|i| b.ids[*i]).collect();
            let analysis = analyse(&b.graph, &start_ids, &opts);
            let expected = reference_bfs(nodes, &distinct, &rules, &start, max_depth, downstream);
            for (i, id) in b.ids.iter().enumerate() {
                let got = analysis.reached.iter().find(|r| r.id == *id).map(|r| r.depth);
                prop_assert_eq!(got, expected[i], "node {} of {}", i, nodes);
            }
            // Each path is as long as the depth, starts at a starting CI and ends at the CI.
            for reached in &analysis.reached {
                let path = analysis.path(reached);
                prop_assert_eq!(path.len() as u32, reached.depth);
            }
            // Without redundancy groups, everything reached downstream is down.
            if downstream {
                prop_assert!(analysis.reached.iter().all(|r| r.state == ImpactState::Down));
            }
        }
    }
}
