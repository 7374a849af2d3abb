//! Baselines: named reference points in time, and what changed since one (or between two).

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::baseline;

use super::context::{actor, db, parse_id, parse_ids};
use super::history::{DifferenceConnection, differences};
use super::lean::ReadyFields;
use super::pagination::{self, TotalCount, connection, connection_type};
use crate::domain::history::baseline::{self as baselines, BaselineScope, NewBaseline};
use crate::domain::now;

/// A named, immutable reference point: an instant and a scope. Nothing is copied; the
/// history answers as of its instant (`configurationItems(asOf: baseline.at)`).
pub struct Baseline(pub baseline::Model);

impl ReadyFields for Baseline {
    fn ready_field(&self, _name: &str) -> Option<async_graphql::Value> {
        None
    }
}

/// A named, immutable reference point: an instant and a scope.
#[Object]
impl Baseline {
    /// Its id (fetch it again with `node(id)`).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Its unique name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The instant it records.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// Who took it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    /// The service whose dependency closure it covers, if any.
    async fn scope_service_id(&self) -> Option<ID> {
        BaselineScope::of(&self.0)
            .service_id
            .map(|id| ID(id.to_string()))
    }

    /// The CIs it covers, if it names some.
    async fn scope_ci_ids(&self) -> Option<Vec<ID>> {
        BaselineScope::of(&self.0)
            .ci_ids
            .map(|ids| ids.into_iter().map(|id| ID(id.to_string())).collect())
    }
}

connection_type!(
    BaselineConnection,
    BaselineEdge,
    Baseline,
    "A page of baselines, oldest first.",
    "A baseline in a page, with its cursor."
);

/// What a baseline covers; the whole CMDB when empty.
#[derive(InputObject, Default)]
pub struct BaselineScopeInput {
    /// A service's dependency closure.
    pub service_id: Option<ID>,
    /// These CIs (with their relationships and memberships).
    pub ci_ids: Option<Vec<ID>>,
}

/// A baseline to take.
#[derive(InputObject)]
pub struct CreateBaselineInput {
    /// Unique name, such as `release-2026-12`.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What it covers; the whole CMDB when not given.
    pub scope: Option<BaselineScopeInput>,
}

/// Baseline queries.
#[derive(Default)]
pub struct BaselineQuery;

/// Baseline queries.
#[Object]
impl BaselineQuery {
    /// Baselines, oldest first, a page at a time.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    async fn baselines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<BaselineConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let page = baselines::list(db(ctx)?, &window).await?;
        let total = TotalCount::new(|db| Box::pin(async move { baselines::count(&db).await }));
        Ok(connection(page, total, Baseline))
    }

    /// The baseline with this name; null with a `NOT_FOUND` error when there is none.
    async fn baseline(&self, ctx: &Context<'_>, name: String) -> Result<Option<Baseline>> {
        Ok(Some(Baseline(baselines::get(db(ctx)?, &name).await?)))
    }

    /// What changed from baseline `from` to baseline `to` (to now when `to` is not given),
    /// in `from`'s scope: the same answer as `changesBetween` over their instants.
    #[graphql(complexity = "pagination::complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn baseline_diff(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<DifferenceConnection> {
        let window = pagination::window(ctx, first, after, last, before)?;
        let (start, end, scope) =
            baselines::interval(db(ctx)?, &from, to.as_deref(), now()).await?;
        differences(ctx, start, end, scope.ci_ids, scope.service_id, window).await
    }
}

/// Baseline mutations.
#[derive(Default)]
pub struct BaselineMutation;

/// Baseline mutations.
#[Object]
impl BaselineMutation {
    /// Takes a baseline now (cheap: an instant and a scope, no copy). Names are unique
    /// (`CONFLICT`); baselines are never changed.
    async fn create_baseline(
        &self,
        ctx: &Context<'_>,
        input: CreateBaselineInput,
    ) -> Result<Baseline> {
        let scope = input.scope.unwrap_or_default();
        let scope = BaselineScope {
            service_id: scope
                .service_id
                .map(|id| parse_id("input.scope.serviceId", &id))
                .transpose()?,
            ci_ids: scope
                .ci_ids
                .map(|ids| parse_ids("input.scope.ciIds", &ids))
                .transpose()?,
        };
        let new = NewBaseline {
            name: input.name,
            description: input.description,
            scope,
        };
        Ok(Baseline(
            baselines::create(db(ctx)?, &actor(ctx), new).await?,
        ))
    }
}
