//! The graph as it was at a past instant, for impact analysis as of then: the current graph
//! rewound, by reading as of that instant only the CIs, relationships and services that
//! changed since (the version tables say which), so a recent instant costs little more than
//! a copy of the graph. When most of the estate changed since, the graph is read whole as of
//! the instant instead. The graph of a settled past instant never changes, so the few last
//! asked for are kept (an incident's opening, a baseline are asked for again and again).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::graph::{FastSet, Graph};
use super::{edge_rows, facts, load, node_rows, services_with_members};
use crate::domain::as_of::Table;
use crate::domain::changes::Mark;
use crate::domain::{Result, bulk};

/// How many past graphs are kept.
const KEPT: usize = 4;

/// How long after an instant nothing more can commit with a stamp at or before it (a stamp
/// is taken just before its commit): only graphs of instants older than this are kept.
const SETTLED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// The graphs of the last past instants asked for, each with the mark of the relationship
/// type catalogue it was built with (the rules it follows are today's).
#[derive(Default)]
pub(super) struct Kept(std::sync::Mutex<Vec<KeptGraph>>);

/// A kept past graph: its instant, the catalogue mark it was built under, the graph.
type KeptGraph = (DateTime<Utc>, Mark, Arc<Graph>);

impl Kept {
    /// The kept graph of `at`, if its catalogue mark still holds (`holds` says).
    pub(super) fn get(
        &self,
        at: DateTime<Utc>,
        holds: impl Fn(Mark) -> bool,
    ) -> Option<Arc<Graph>> {
        let kept = self.0.lock().ok()?;
        kept.iter()
            .find(|(instant, mark, _)| *instant == at && holds(*mark))
            .map(|(_, _, graph)| graph.clone())
    }

    /// Keeps the graph of `at` when the instant is settled (and the catalogue watched).
    pub(super) fn keep(&self, at: DateTime<Utc>, catalog: Mark, graph: Arc<Graph>) {
        if catalog.is_none() || at > crate::domain::now() - SETTLED_AFTER {
            return;
        }
        if let Ok(mut kept) = self.0.lock() {
            kept.retain(|(instant, _, _)| *instant != at);
            if kept.len() == KEPT {
                kept.remove(0);
            }
            kept.push((at, catalog, graph));
        }
    }
}

/// Past this share of the graph changed since the instant, reading the graph whole as of
/// then is cheaper than rewinding.
const REWIND_AT_MOST: f64 = 0.25;

/// The ids of the records of `table` with a version that began or ended after `at`: those
/// whose state at `at` may differ from now.
async fn changed_since(
    db: &impl ConnectionTrait,
    table: Table,
    id_column: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let sql = format!(
        "SELECT {id_column} FROM {t} WHERE valid_from > $1 \
         UNION SELECT {id_column} FROM {t} WHERE valid_to > $1",
        t = table.name()
    );
    let rows = db
        .query_all_raw(bulk::statement(db, &sql, vec![Value::from(at)]))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get_by_index::<Uuid>(0)?))
        .collect()
}

/// The graph as it was at `at`, from `current` (the graph now).
pub(super) async fn graph_at(
    db: &impl ConnectionTrait,
    current: Arc<Graph>,
    at: DateTime<Utc>,
) -> Result<Graph> {
    let cis = changed_since(db, Table::ConfigurationItem, "id", at).await?;
    let edges = changed_since(db, Table::Relationship, "id", at).await?;
    let mut services = changed_since(db, Table::Service, "id", at).await?;
    services.extend(changed_since(db, Table::ServiceMember, "service_id", at).await?);
    services.sort_unstable();
    services.dedup();
    let size = (current.node_count() + current.edge_count()).max(1) as f64;
    if (cis.len() + edges.len()) as f64 > size * REWIND_AT_MOST {
        return load(db, 0, Some(at)).await;
    }
    let mut graph = Arc::unwrap_or_clone(current);
    graph.version = 0;
    for chunk in cis.chunks(500) {
        let rows = node_rows(db, Some(chunk), Some(at)).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.0).collect();
        for row in &rows {
            graph.upsert_node(row.0, facts(row));
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_node(*id);
        }
    }
    for chunk in edges.chunks(500) {
        let rows = edge_rows(db, Some(chunk), Some(at)).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.id).collect();
        for row in rows {
            graph.upsert_edge(row);
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_edge(*id);
        }
    }
    for chunk in services.chunks(500) {
        let rows = services_with_members(db, Some(chunk), Some(at)).await?;
        let present: FastSet<Uuid> = rows.iter().map(|r| r.0.id).collect();
        for (service, members) in rows {
            graph.upsert_service(service, members);
        }
        for id in chunk.iter().filter(|id| !present.contains(id)) {
            graph.remove_service(*id);
        }
    }
    Ok(graph)
}
