//! Impact analysis and root-cause candidates.

mod fast;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextSelectionSet, Enum, ID, InputObject, Object, OutputType, Positioned, Result,
    ServerResult, SimpleObject, Value,
};
use chrono::{DateTime, Utc};
use entity::configuration_item;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::catalog::{CiClass, class_by_id};
use super::ci::{ConfigurationItem, Criticality};
use super::context::{db, limits, loaders, parse_ids};
use super::customer::{AffectedCustomer, affected_customers};
use super::loaders::{Catalogs, CiAt, CiById};
use super::relationship::Relationship;
use super::service::Service;
use crate::domain::impact::{self, GraphCache, ImpactRequest, PathStep, analysis};
use crate::domain::relationship_type::TypeCatalog;
use crate::domain::{as_of, ci};
use crate::error::Error;

/// Which way to walk from the starting CIs.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum ImpactDirection {
    /// What depends on them: what is hit when they fail.
    #[default]
    Downstream,
    /// What they depend on.
    Upstream,
    /// Both.
    Both,
}

impl From<ImpactDirection> for analysis::Direction {
    fn from(direction: ImpactDirection) -> Self {
        match direction {
            ImpactDirection::Downstream => analysis::Direction::Downstream,
            ImpactDirection::Upstream => analysis::Direction::Upstream,
            ImpactDirection::Both => analysis::Direction::Both,
        }
    }
}

/// How an affected CI or service is hit.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "analysis::ImpactState")]
pub enum ImpactState {
    /// Found upstream: the starting CIs need it, their failure does not hit it.
    Dependency,
    /// Still works, with less redundancy or capacity: enough members of a redundant group
    /// it relies on remain up.
    Degraded,
    /// Out of service.
    Down,
}

/// What to analyse.
#[derive(InputObject)]
pub struct ImpactAnalysisInput {
    /// The failing (or changing) CIs.
    pub ci_ids: Vec<ID>,
    /// Which way to walk.
    #[graphql(default)]
    pub direction: ImpactDirection,
    /// How many relationships away to look (10 when not given; capped by the server).
    pub max_depth: Option<i32>,
    /// Follow only relationships of these type names; all types when not given.
    pub relationship_types: Option<Vec<String>>,
    /// Include retired CIs (by default they neither appear nor carry impact).
    #[graphql(default)]
    pub include_retired: bool,
    /// Most CIs to list in `affectedCis` (counts stay exact; see `truncated`).
    pub limit: Option<i32>,
    /// Analyse the estate as it was at this instant (CIs, relationships and services then;
    /// the relationship types' propagation rules as they are now). In the future or before
    /// the first recorded change is `VALIDATION`.
    pub as_of: Option<DateTime<Utc>>,
}

/// What the report's resolvers share: the CI records and relationship types fetched once
/// for the whole report, so that a large report does not go through a loader per field.
#[derive(Default)]
struct Prefetched {
    cis: HashMap<Uuid, Arc<configuration_item::Model>>,
    types: Option<Arc<TypeCatalog>>,
    /// The instant the report is of, when not now: CIs are read as of it.
    as_of: Option<DateTime<Utc>>,
}

/// An affected CI, with why it is affected.
pub struct AffectedCi {
    entry: impact::AffectedCi,
    prefetched: Arc<Prefetched>,
}

fn path(steps: &[PathStep], prefetched: &Prefetched) -> Vec<Relationship> {
    steps
        .iter()
        .map(|step| {
            let known_type = prefetched
                .types
                .as_ref()
                .and_then(|types| types.shared(step.type_id));
            Relationship::known(step, known_type).read_as_of(prefetched.as_of)
        })
        .collect()
}

/// A CI of the answer: as it is, or as it was at `at`.
async fn ci(
    ctx: &Context<'_>,
    id: uuid::Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<ConfigurationItem> {
    if let Some(at) = at {
        let ci = loaders(ctx)?
            .load_one(CiAt { id, args: at })
            .await?
            .ok_or_else(|| Error::not_found("configuration item", id))?;
        return Ok(ConfigurationItem::at(ci, Some(at)));
    }
    let ci = loaders(ctx)?
        .load_one(CiById(id))
        .await?
        .ok_or_else(|| Error::not_found("configuration item", id))?;
    Ok(ConfigurationItem::shared(ci))
}

/// CIs of the answer, in order: as they are, or as they were at `at`.
async fn cis(
    ctx: &Context<'_>,
    ids: &[uuid::Uuid],
    at: Option<DateTime<Utc>>,
) -> Result<Vec<ConfigurationItem>> {
    if let Some(at) = at {
        let found = loaders(ctx)?
            .load_many(ids.iter().map(|id| CiAt { id: *id, args: at }))
            .await?;
        return Ok(ids
            .iter()
            .filter_map(|id| {
                found
                    .get(&CiAt { id: *id, args: at })
                    .cloned()
                    .map(|ci| ConfigurationItem::at(ci, Some(at)))
            })
            .collect());
    }
    let found = loaders(ctx)?
        .load_many(ids.iter().map(|id| CiById(*id)))
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            found
                .get(&CiById(*id))
                .cloned()
                .map(ConfigurationItem::shared)
        })
        .collect())
}

/// An affected CI, with why it is affected.
#[Object]
impl AffectedCi {
    /// The CI.
    async fn ci(&self, ctx: &Context<'_>) -> Result<ConfigurationItem> {
        match self.prefetched.cis.get(&self.entry.ci_id) {
            Some(model) => Ok(ConfigurationItem(
                model.clone(),
                ci::Columns::All,
                self.prefetched.as_of,
            )),
            None => ci(ctx, self.entry.ci_id, self.prefetched.as_of).await,
        }
    }

    /// How many relationships away from a starting CI it is (0 for a starting CI).
    async fn depth(&self) -> u32 {
        self.entry.depth
    }

    /// How it is hit.
    async fn state(&self) -> ImpactState {
        self.entry.state.into()
    }

    /// One shortest chain of relationships from a starting CI to this one: why it is
    /// affected. Empty for a starting CI.
    async fn path(&self) -> Vec<Relationship> {
        path(&self.entry.path, &self.prefetched)
    }
}

/// A service with affected members.
pub struct AffectedService(impact::AffectedService, Option<DateTime<Utc>>);

/// A service with affected members.
#[Object]
impl AffectedService {
    /// The service.
    async fn service(&self) -> Service {
        Service(self.0.service.clone(), self.1)
    }

    /// The worst state among its affected members.
    async fn state(&self) -> ImpactState {
        self.0.state.into()
    }

    /// The service's criticality.
    async fn criticality(&self) -> Option<Criticality> {
        self.0.service.criticality.map(Into::into)
    }

    /// Its members that are affected: why the service is.
    async fn affected_members(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis(ctx, &self.0.affected_members, self.1).await
    }
}

/// How many affected CIs are of one class.
pub struct ClassCount {
    class_id: i32,
    count: usize,
}

/// How many affected CIs are of one class.
#[Object]
impl ClassCount {
    /// The class.
    async fn ci_class(&self, ctx: &Context<'_>) -> Result<CiClass> {
        class_by_id(ctx, self.class_id).await
    }

    /// How many.
    async fn count(&self) -> usize {
        self.count
    }
}

/// How many affected CIs are at one depth.
#[derive(SimpleObject)]
pub struct DepthCount {
    /// Relationships away from a starting CI.
    pub depth: u32,
    /// How many.
    pub count: usize,
}

/// How many affected CIs are in one state.
#[derive(SimpleObject)]
pub struct StateCount {
    /// The state.
    pub state: ImpactState,
    /// How many.
    pub count: usize,
}

/// The answer to an impact analysis: what is hit, how, and why.
pub struct ImpactReport {
    report: Arc<impact::ImpactReport>,
}

impl ImpactReport {
    /// Runs an analysis for another part of the schema (an incident's impact at opening).
    pub(super) async fn of(ctx: &Context<'_>, request: &ImpactRequest) -> Result<ImpactReport> {
        let cache = ctx.data::<Arc<GraphCache>>()?;
        let report = impact::analyse(db(ctx)?, cache, limits(ctx)?, request).await?;
        Ok(ImpactReport {
            report: Arc::new(report),
        })
    }
}

/// The affected CIs of a report: written straight into the response when the selection
/// allows (see `fast`), resolved field by field otherwise.
pub struct AffectedCiList {
    report: Arc<impact::ImpactReport>,
}

impl OutputType for AffectedCiList {
    fn type_name() -> Cow<'static, str> {
        <Vec<AffectedCi> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<AffectedCi> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<AffectedCi> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let at = field.pos;
        let catalogs = ctx
            .data::<Catalogs>()
            .map_err(|e| e.into_server_error(at))?;
        let db = ctx
            .data::<DatabaseConnection>()
            .map_err(|e| e.into_server_error(at))?;
        let server_error = |e: Error| async_graphql::Error::from(e).into_server_error(at);
        if let Some(plan) = fast::plan(&ctx.item.node) {
            let classes = if plan.needs_classes {
                Some(catalogs.classes().await.map_err(server_error)?)
            } else {
                None
            };
            let types = if plan.needs_types {
                Some(catalogs.types().await.map_err(server_error)?)
            } else {
                None
            };
            let sources = fast::Sources {
                graph: &self.report.graph,
                classes: classes.as_deref(),
                types: types.as_deref(),
            };
            if let Some(value) = fast::write(&plan, &self.report.affected, &sources) {
                return Ok(value);
            }
        }
        // Field by field, with the CI records and types read once for the whole list.
        let ids: Vec<Uuid> = self.report.affected.iter().map(|a| a.ci_id).collect();
        let as_of = self.report.as_of;
        let cis = match as_of {
            Some(at) => as_of::cis_at(db, &ids, &at).await,
            None => ci::get_many(db, &ids).await,
        }
        .map_err(server_error)?
        .into_iter()
        .map(|(id, model)| (id, Arc::new(model)))
        .collect();
        let types = Some(catalogs.types().await.map_err(server_error)?);
        let prefetched = Arc::new(Prefetched { cis, types, as_of });
        let items: Vec<AffectedCi> = self
            .report
            .affected
            .iter()
            .cloned()
            .map(|entry| AffectedCi {
                entry,
                prefetched: prefetched.clone(),
            })
            .collect();
        items.resolve(ctx, field).await
    }
}

/// The answer to an impact analysis: what is hit, how, and why.
#[Object]
impl ImpactReport {
    /// The affected CIs, starting CIs first, then by depth; at most `limit` of them.
    #[graphql(complexity = "20 * child_complexity")]
    async fn affected_cis(&self) -> AffectedCiList {
        AffectedCiList {
            report: self.report.clone(),
        }
    }

    /// The services with affected members, worst hit and most critical first.
    #[graphql(complexity = "5 * child_complexity")]
    async fn affected_services(&self) -> Vec<AffectedService> {
        self.report
            .services
            .iter()
            .cloned()
            .map(|service| AffectedService(service, self.report.as_of))
            .collect()
    }

    /// The customers consuming the affected services, with their agreements.
    async fn affected_customers(&self, ctx: &Context<'_>) -> Result<Vec<AffectedCustomer>> {
        let ids: Vec<Uuid> = self.report.services.iter().map(|s| s.service.id).collect();
        affected_customers(ctx, &ids, None).await
    }

    /// How many CIs are affected in all (starting CIs included), whatever the `limit`.
    async fn total_affected_cis(&self) -> usize {
        self.report.total
    }

    /// Affected CIs by class.
    async fn counts_by_class(&self) -> Vec<ClassCount> {
        self.report
            .by_class
            .iter()
            .map(|(class_id, count)| ClassCount {
                class_id: *class_id,
                count: *count,
            })
            .collect()
    }

    /// Affected CIs by depth.
    async fn counts_by_depth(&self) -> Vec<DepthCount> {
        self.report
            .by_depth
            .iter()
            .map(|(depth, count)| DepthCount {
                depth: *depth,
                count: *count,
            })
            .collect()
    }

    /// Affected CIs by state.
    async fn counts_by_state(&self) -> Vec<StateCount> {
        self.report
            .by_state
            .iter()
            .map(|(state, count)| StateCount {
                state: (*state).into(),
                count: *count,
            })
            .collect()
    }

    /// Whether `limit` cut the list of affected CIs.
    async fn truncated(&self) -> bool {
        self.report.truncated
    }
}

/// How a candidate reaches one failing CI.
pub struct Explanation {
    failing: uuid::Uuid,
    path: Vec<PathStep>,
    as_of: Option<DateTime<Utc>>,
}

/// How a candidate reaches one failing CI.
#[Object]
impl Explanation {
    /// The failing CI explained.
    async fn failing_ci(&self, ctx: &Context<'_>) -> Result<ConfigurationItem> {
        ci(ctx, self.failing, self.as_of).await
    }

    /// The relationships from the candidate to the failing CI.
    async fn path(&self) -> Vec<Relationship> {
        let prefetched = Prefetched {
            as_of: self.as_of,
            ..Prefetched::default()
        };
        path(&self.path, &prefetched)
    }
}

/// An upstream CI that would explain several failures at once.
pub struct RootCauseCandidate(impact::RootCause, Option<DateTime<Utc>>);

/// An upstream CI that would explain several failures at once.
#[Object]
impl RootCauseCandidate {
    /// The suspect.
    async fn ci(&self, ctx: &Context<'_>) -> Result<ConfigurationItem> {
        ci(ctx, self.0.ci_id, self.1).await
    }

    /// How many of the failing CIs it explains.
    async fn explains(&self) -> usize {
        self.0.explains.len()
    }

    /// The failing CIs it explains.
    async fn explained_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis(ctx, &self.0.explains, self.1).await
    }

    /// The sum of its distances to the failing CIs it explains (smaller is closer).
    async fn total_distance(&self) -> u32 {
        self.0.total_distance
    }

    /// For each failing CI it explains, the chain of relationships from it.
    async fn paths(&self) -> Vec<Explanation> {
        self.0
            .paths
            .iter()
            .map(|(failing, path)| Explanation {
                failing: *failing,
                path: path.clone(),
                as_of: self.1,
            })
            .collect()
    }
}

fn non_negative(field: &str, value: Option<i32>) -> Result<Option<u32>, Error> {
    value
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| Error::invalid(field, format!("`{field}` must not be negative")))
        })
        .transpose()
}

/// Impact queries.
#[derive(Default)]
pub struct ImpactQuery;

/// Impact queries.
#[Object]
impl ImpactQuery {
    /// What the failure of the given CIs hits (or what they need, upstream), with the state
    /// of each affected CI and service and the path that explains it.
    async fn impact_analysis(
        &self,
        ctx: &Context<'_>,
        input: ImpactAnalysisInput,
    ) -> Result<ImpactReport> {
        let request = ImpactRequest {
            ci_ids: parse_ids("input.ciIds", &input.ci_ids)?,
            direction: input.direction.into(),
            max_depth: non_negative("maxDepth", input.max_depth)?,
            relationship_types: input.relationship_types,
            include_retired: input.include_retired,
            limit: non_negative("limit", input.limit)?.map(|l| l as usize),
            as_of: input.as_of,
        };
        if let Some(at) = input.as_of {
            as_of::check_instant(db(ctx)?, "input.asOf", at).await?;
        }
        let cache = ctx.data::<Arc<GraphCache>>()?;
        let report = impact::analyse(db(ctx)?, cache, limits(ctx)?, &request).await?;
        Ok(ImpactReport {
            report: Arc::new(report),
        })
    }

    /// Given CIs failing at once, the upstream CIs they share, ranked by how many of them
    /// each explains, then by closeness, with the paths.
    async fn root_cause_candidates(
        &self,
        ctx: &Context<'_>,
        ci_ids: Vec<ID>,
        max_depth: Option<i32>,
        #[graphql(default = 10, desc = "Most candidates to return.")] limit: i32,
        #[graphql(desc = "Look for causes in the estate as it was at this instant.")] as_of: Option<
            DateTime<Utc>,
        >,
    ) -> Result<Vec<RootCauseCandidate>> {
        if let Some(at) = as_of {
            as_of::check_instant(db(ctx)?, "asOf", at).await?;
        }
        let failing = parse_ids("ciIds", &ci_ids)?;
        let max_depth = non_negative("maxDepth", max_depth)?;
        let limit = non_negative("limit", Some(limit))?.unwrap_or(10) as usize;
        let cache = ctx.data::<Arc<GraphCache>>()?;
        let candidates = impact::root_causes(
            db(ctx)?,
            cache,
            limits(ctx)?,
            &failing,
            max_depth,
            limit,
            as_of,
        )
        .await?;
        Ok(candidates
            .into_iter()
            .map(|candidate| RootCauseCandidate(candidate, as_of))
            .collect())
    }
}
