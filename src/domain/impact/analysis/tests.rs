//! Unit tests of the impact analysis.

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
