//! Impact analysis: what a failure (or a change) hits, which services suffer, and which
//! upstream CI best explains several failures at once.
//!
//! Traversal runs on an in-memory copy of the relationship graph ([`GraphCache`]). Before
//! each analysis the cache compares its version with the graph change log's and applies the
//! changes committed since, so an analysis made right after a write sees it, on any number
//! of server instances sharing one database.

pub mod analysis;
pub mod blast;
pub mod graph;
mod past;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use entity::values::LifecycleStatus;
use entity::{configuration_item, relationship, relationship_type, service, service_member};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, prelude::Expr,
};
use uuid::Uuid;

use self::analysis::{Candidate, Direction, ImpactState, Options, Reached};
use self::graph::{EdgeRecord, FastMap, FastSet, Graph, NodeFacts};
use super::as_of;
use super::audit::EntityType;
use super::changes::{ChangeWatch, Mark, Topic};
use super::relationship_type::TypeCatalog;
use super::{Error, Result, graph_log};
use crate::limits::Limits;

/// The attribute that makes a CI a redundancy group.
pub const MIN_HEALTHY_ATTRIBUTE: &str = "min_healthy_members";

/// The relationship graph of one server process, kept current with the change log. With a
/// change watch, a graph nothing has changed since is answered without asking the
/// database (see [`super::changes`]).
#[derive(Default)]
pub struct GraphCache {
    graph: RwLock<Option<(Arc<Graph>, Mark)>>,
    refresh: tokio::sync::Mutex<()>,
    watch: Option<Arc<ChangeWatch>>,
    /// The relationship types the analyses follow, kept the same way.
    types: RwLock<Option<(Arc<TypeCatalog>, Mark)>>,
    /// Graphs of past instants lately asked for (see [`past::Kept`]).
    past: past::Kept,
}

type NodeRow = (Uuid, i32, LifecycleStatus, String, Option<String>);

fn min_healthy_expression(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::cust("attributes ->> 'min_healthy_members'"),
        _ => Expr::cust("CAST(json_extract(attributes, '$.min_healthy_members') AS TEXT)"),
    }
}

fn facts(row: &NodeRow) -> NodeFacts {
    NodeFacts {
        class_id: row.1,
        name: Arc::from(row.3.as_str()),
        status: row.2,
        min_healthy: row
            .4
            .as_deref()
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|n| *n >= 0.0)
            .map(|n| n as u32),
    }
}

async fn node_rows(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<NodeRow>> {
    let mut query = configuration_item::Entity::find()
        .select_only()
        .column(configuration_item::Column::Id)
        .column(configuration_item::Column::ClassId)
        .column(configuration_item::Column::Status)
        .column(configuration_item::Column::Name)
        .expr_as(
            min_healthy_expression(db.get_database_backend()),
            "min_healthy",
        );
    if let Some(ids) = ids {
        query = query.filter(configuration_item::Column::Id.is_in(ids.iter().copied()));
    }
    let query = as_of::as_of(query, as_of::Table::ConfigurationItem, at);
    Ok(query.into_tuple::<NodeRow>().all(db).await?)
}

async fn edge_rows(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<EdgeRecord>> {
    let mut query = relationship::Entity::find()
        .select_only()
        .column(relationship::Column::Id)
        .column(relationship::Column::SourceId)
        .column(relationship::Column::TargetId)
        .column(relationship::Column::TypeId);
    if let Some(ids) = ids {
        query = query.filter(relationship::Column::Id.is_in(ids.iter().copied()));
    }
    let query = as_of::as_of(query, as_of::Table::Relationship, at);
    Ok(query
        .into_tuple::<(Uuid, Uuid, Uuid, i32)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, source, target, type_id)| EdgeRecord {
            id,
            source,
            target,
            type_id,
        })
        .collect())
}

async fn services_with_members(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<(service::Model, Vec<Uuid>)>> {
    let mut services = service::Entity::find();
    let mut members = service_member::Entity::find();
    if let Some(ids) = ids {
        services = services.filter(service::Column::Id.is_in(ids.iter().copied()));
        members = members.filter(service_member::Column::ServiceId.is_in(ids.iter().copied()));
    }
    let services = as_of::as_of(services, as_of::Table::Service, at);
    let members = as_of::as_of(members, as_of::Table::ServiceMember, at);
    let mut by_service: FastMap<Uuid, Vec<(chrono::DateTime<chrono::Utc>, Uuid)>> =
        FastMap::default();
    for member in members.all(db).await? {
        by_service
            .entry(member.service_id)
            .or_default()
            .push((member.added_at, member.ci_id));
    }
    Ok(services
        .all(db)
        .await?
        .into_iter()
        .map(|service| {
            let mut list = by_service.remove(&service.id).unwrap_or_default();
            list.sort();
            (service, list.into_iter().map(|(_, ci)| ci).collect())
        })
        .collect())
}

async fn type_rules(db: &impl ConnectionTrait) -> Result<Vec<(i32, graph::TypeRule)>> {
    Ok(relationship_type::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| {
            (
                t.id,
                graph::TypeRule {
                    propagation: t.propagation,
                    membership: t.membership,
                },
            )
        })
        .collect())
}

/// Reads the whole graph (as it was at `at`, when given).
async fn load(db: &impl ConnectionTrait, version: i64, at: Option<DateTime<Utc>>) -> Result<Graph> {
    let mut graph = Graph::default();
    graph.version = version;
    graph.set_types(type_rules(db).await?);
    for row in node_rows(db, None, at).await? {
        graph.upsert_node(row.0, facts(&row));
    }
    for edge in edge_rows(db, None, at).await? {
        graph.upsert_edge(edge);
    }
    for (service, members) in services_with_members(db, None, at).await? {
        graph.upsert_service(service, members);
    }
    Ok(graph)
}

/// Applies the changes listed by the log since the graph's version, by reading the current
/// state of each changed entity (so applying a change twice is harmless).
async fn apply_changes(db: &impl ConnectionTrait, graph: &mut Graph, up_to: i64) -> Result<()> {
    let mut cis = FastSet::default();
    let mut edges = FastSet::default();
    let mut services = FastSet::default();
    let mut types_changed = false;
    for (entity_type, id) in graph_log::changes(db, graph.version, up_to).await? {
        let Ok(uuid) = Uuid::parse_str(&id) else {
            types_changed |= entity_type == EntityType::RelationshipType;
            continue;
        };
        match entity_type {
            EntityType::ConfigurationItem => cis.insert(uuid),
            EntityType::Relationship => edges.insert(uuid),
            EntityType::Service => services.insert(uuid),
            _ => false,
        };
    }
    if types_changed {
        graph.set_types(type_rules(db).await?);
    }
    let cis: Vec<Uuid> = cis.into_iter().collect();
    for chunk in cis.chunks(500) {
        let rows = node_rows(db, Some(chunk), None).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.0).collect();
        for row in &rows {
            graph.upsert_node(row.0, facts(row));
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_node(*id);
        }
    }
    let edges: Vec<Uuid> = edges.into_iter().collect();
    for chunk in edges.chunks(500) {
        let rows = edge_rows(db, Some(chunk), None).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.id).collect();
        for row in rows {
            graph.upsert_edge(row);
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_edge(*id);
        }
    }
    let services: Vec<Uuid> = services.into_iter().collect();
    for chunk in services.chunks(500) {
        let rows = services_with_members(db, Some(chunk), None).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.0.id).collect();
        for (service, members) in rows {
            graph.upsert_service(service, members);
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_service(*id);
        }
    }
    graph.version = up_to;
    Ok(())
}

impl GraphCache {
    /// An empty cache; the graph is read on first use, and its version checked on every
    /// use.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that trusts `watch` to say when the graph may have changed.
    pub fn watched(watch: Arc<ChangeWatch>) -> Self {
        GraphCache {
            watch: Some(watch),
            ..Self::default()
        }
    }

    /// The relationship type catalogue, read again only when the watch says it may have
    /// changed (every time without a watch).
    pub async fn types(&self, db: &impl ConnectionTrait) -> Result<Arc<TypeCatalog>> {
        if let Some(watch) = &self.watch
            && let Ok(kept) = self.types.read()
            && let Some((types, mark)) = kept.as_ref()
            && watch.unchanged_since(Topic::Catalog, *mark)
        {
            return Ok(types.clone());
        }
        let mark = self.watch.as_ref().and_then(|w| w.mark(Topic::Catalog));
        let types = Arc::new(TypeCatalog::load(db).await?);
        if let Ok(mut kept) = self.types.write() {
            *kept = Some((types.clone(), mark));
        }
        Ok(types)
    }

    fn snapshot(&self) -> Option<(Arc<Graph>, Mark)> {
        self.graph.read().ok().and_then(|g| g.clone())
    }

    /// The graph as it was at `at` (the current one rewound through the history; the
    /// types' rules are today's), or the current one.
    pub async fn at(
        &self,
        db: &impl ConnectionTrait,
        at: Option<DateTime<Utc>>,
    ) -> Result<Arc<Graph>> {
        match at {
            None => self.current(db).await,
            Some(at) => {
                let catalog = self.watch.as_ref().and_then(|w| w.mark(Topic::Catalog));
                let still = |mark| {
                    self.watch
                        .as_ref()
                        .is_some_and(|w| w.unchanged_since(Topic::Catalog, mark))
                };
                if let Some(graph) = self.past.get(at, still) {
                    return Ok(graph);
                }
                let current = self.current(db).await?;
                let graph = Arc::new(past::graph_at(db, current, at).await?);
                self.past.keep(at, catalog, graph.clone());
                Ok(graph)
            }
        }
    }

    /// The graph as of the latest committed change.
    pub async fn current(&self, db: &impl ConnectionTrait) -> Result<Arc<Graph>> {
        if let (Some(watch), Some((graph, mark))) = (&self.watch, self.snapshot())
            && watch.unchanged_since(Topic::Graph, mark)
        {
            return Ok(graph);
        }
        // Marked before asking: a change committed meanwhile moves the generation past it.
        let mark = self.watch.as_ref().and_then(|w| w.mark(Topic::Graph));
        let (version, pruned_below) = graph_log::current(db).await?;
        if let Some((graph, _)) = self.snapshot()
            && graph.version == version
        {
            self.keep(graph.clone(), mark);
            return Ok(graph);
        }
        let _refreshing = self.refresh.lock().await;
        let snapshot = self.snapshot().map(|(graph, _)| graph);
        let graph = match snapshot {
            Some(graph) if graph.version >= version => return Ok(graph),
            Some(graph) if graph.version >= pruned_below => {
                let mut graph = Arc::unwrap_or_clone(graph);
                apply_changes(db, &mut graph, version).await?;
                graph
            }
            _ => {
                let started = std::time::Instant::now();
                let graph = load(db, version, None).await?;
                tracing::info!(
                    cis = graph.node_count(),
                    relationships = graph.edge_count(),
                    millis = started.elapsed().as_millis() as u64,
                    "impact graph loaded"
                );
                graph
            }
        };
        let graph = Arc::new(graph);
        self.keep(graph.clone(), mark);
        Ok(graph)
    }

    /// Keeps `graph`, known current as of `mark`, unless a newer one is kept already.
    fn keep(&self, graph: Arc<Graph>, mark: Mark) {
        if let Ok(mut slot) = self.graph.write() {
            let newer_kept = slot
                .as_ref()
                .is_some_and(|(kept, _)| kept.version > graph.version);
            if !newer_kept {
                *slot = Some((graph, mark));
            }
        }
    }
}

/// What to analyse.
#[derive(Debug, Clone)]
pub struct ImpactRequest {
    pub ci_ids: Vec<Uuid>,
    pub direction: Direction,
    pub max_depth: Option<u32>,
    /// Relationship type names to follow; all when `None`.
    pub relationship_types: Option<Vec<String>>,
    pub include_retired: bool,
    /// Most CIs to list; counts stay exact.
    pub limit: Option<usize>,
    /// Analyse the graph as it was at this instant rather than as it is.
    pub as_of: Option<DateTime<Utc>>,
}

/// One relationship of a path, as the graph knows it.
pub type PathStep = EdgeRecord;

/// An affected CI and why.
#[derive(Debug, Clone)]
pub struct AffectedCi {
    pub ci_id: Uuid,
    pub depth: u32,
    pub state: ImpactState,
    /// From a starting CI to this one.
    pub path: Vec<PathStep>,
}

/// A service with affected members.
#[derive(Debug, Clone)]
pub struct AffectedService {
    pub service: service::Model,
    /// The worst state of its affected members.
    pub state: ImpactState,
    pub affected_members: Vec<Uuid>,
}

/// The answer to an impact analysis.
#[derive(Debug, Clone)]
pub struct ImpactReport {
    pub affected: Vec<AffectedCi>,
    pub services: Vec<AffectedService>,
    pub total: usize,
    pub by_class: Vec<(i32, usize)>,
    pub by_depth: Vec<(u32, usize)>,
    pub by_state: Vec<(ImpactState, usize)>,
    pub truncated: bool,
    /// The graph the answer was computed on: it names every CI of the answer.
    pub graph: Arc<Graph>,
    /// The instant the graph is of, when not the current one.
    pub as_of: Option<DateTime<Utc>>,
}

fn options(
    types: &TypeCatalog,
    direction: Direction,
    max_depth: Option<u32>,
    relationship_types: Option<&[String]>,
    include_retired: bool,
    limits: &Limits,
) -> Result<Options> {
    let max_depth = max_depth.unwrap_or(10);
    if max_depth > limits.max_impact_depth {
        return Err(Error::LimitExceeded(format!(
            "`maxDepth` is {max_depth}, over the limit of {} (limit `max_impact_depth`)",
            limits.max_impact_depth
        )));
    }
    let types = relationship_types
        .map(|names| types.ids_of("relationshipTypes", names))
        .transpose()?
        .map(|ids| ids.into_iter().collect());
    Ok(Options {
        direction,
        max_depth,
        types,
        include_retired,
        max_nodes: limits.max_impact_nodes,
    })
}

fn check_known(graph: &Graph, ids: &[Uuid], field: &str) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        if graph.node(id).is_none() {
            return Err(Error::not_found("configuration item", id).within(&format!("{field}[{i}]")));
        }
    }
    if ids.is_empty() {
        return Err(Error::invalid(
            field,
            format!("`{field}` must name at least one CI"),
        ));
    }
    Ok(())
}

fn path_steps(graph: &Graph, edges: Vec<Uuid>) -> Vec<PathStep> {
    edges
        .into_iter()
        .filter_map(|edge| graph.edge(&edge).copied())
        .collect()
}

fn count_by<K: Ord + Copy>(reached: &[Reached], key: impl Fn(&Reached) -> K) -> Vec<(K, usize)> {
    let mut counts: BTreeMap<K, usize> = BTreeMap::new();
    for r in reached {
        *counts.entry(key(r)).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// Analyses the impact of the failure of `request.ci_ids`.
pub async fn analyse(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    request: &ImpactRequest,
) -> Result<ImpactReport> {
    let limit = request.limit.unwrap_or(limits.default_impact_results);
    if limit > limits.max_impact_results {
        return Err(Error::LimitExceeded(format!(
            "`limit` is {limit}, over the limit of {} (limit `max_impact_results`)",
            limits.max_impact_results
        )));
    }
    let types = cache.types(db).await?;
    let options = options(
        &types,
        request.direction,
        request.max_depth,
        request.relationship_types.as_deref(),
        request.include_retired,
        limits,
    )?;
    let graph = cache.at(db, request.as_of).await?;
    check_known(&graph, &request.ci_ids, "ciIds")?;
    let analysis = analysis::analyse(&graph, &request.ci_ids, &options);
    if analysis.stopped() {
        return Err(Error::LimitExceeded(format!(
            "the analysis visited more than {} CIs (limit `max_impact_nodes`); lower `maxDepth` \
             or follow fewer relationship types",
            limits.max_impact_nodes
        )));
    }
    let reached = &analysis.reached;
    let class_of = |r: &Reached| graph.node(&r.id).map(|n| n.class_id).unwrap_or_default();
    let by_class = count_by(reached, class_of);
    let by_depth = count_by(reached, |r| r.depth);
    let by_state = count_by(reached, |r| r.state);

    let services = blast::affected_services(&graph, reached);

    let affected = reached
        .iter()
        .take(limit)
        .map(|r| AffectedCi {
            ci_id: r.id,
            depth: r.depth,
            state: r.state,
            path: path_steps(&graph, analysis.path(r)),
        })
        .collect();
    Ok(ImpactReport {
        affected,
        services,
        total: reached.len(),
        by_class,
        by_depth,
        by_state,
        truncated: reached.len() > limit,
        graph: graph.clone(),
        as_of: request.as_of,
    })
}

/// A root-cause candidate with the paths from it to each failing CI it explains.
#[derive(Debug, Clone)]
pub struct RootCause {
    pub ci_id: Uuid,
    pub explains: Vec<Uuid>,
    pub total_distance: u32,
    /// For each explained failing CI, the relationships from the candidate to it.
    pub paths: Vec<(Uuid, Vec<PathStep>)>,
}

/// The upstream CIs shared by the failing ones, best explanation first.
pub async fn root_causes(
    db: &impl ConnectionTrait,
    cache: &GraphCache,
    limits: &Limits,
    failing: &[Uuid],
    max_depth: Option<u32>,
    limit: usize,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<RootCause>> {
    let types = cache.types(db).await?;
    let options = options(&types, Direction::Upstream, max_depth, None, false, limits)?;
    let graph = cache.at(db, at).await?;
    check_known(&graph, failing, "ciIds")?;
    let (candidates, trees) = analysis::root_causes(&graph, failing, &options);
    Ok(candidates
        .into_iter()
        .take(limit)
        .map(
            |Candidate {
                 id,
                 explains,
                 total_distance,
             }| {
                let paths = explains
                    .iter()
                    .map(|failing_ci| {
                        let mut path = path_steps(&graph, trees[failing_ci].path(id));
                        path.reverse();
                        (*failing_ci, path)
                    })
                    .collect();
                RootCause {
                    ci_id: id,
                    explains,
                    total_distance,
                    paths,
                }
            },
        )
        .collect())
}
