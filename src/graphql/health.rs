//! `cmdbHealth`: the CMDB's verification of its own accuracy.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, TimeDelta, Utc};

use super::catalog::{CiClass, class_by_id};
use super::ci::ConfigurationItem;
use super::context::{db, limits};
use super::incident::cis_by_ids;
use crate::domain::health::{self, DuplicateReason as Reason, HealthOptions, HealthReport};
use crate::error::Error;

/// Why CIs look like duplicates.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Reason")]
pub enum DuplicateReason {
    /// Same class and same name (ignoring case and surrounding spaces).
    SameName,
    /// Same class and same value of an identifier attribute.
    SameIdentifier,
}

/// A CI missing attributes its class asks for.
pub struct IncompleteCi(health::IncompleteCi);

/// A CI missing attributes its class asks for.
#[Object]
impl IncompleteCi {
    /// The CI.
    async fn ci(&self, ctx: &Context<'_>) -> Result<Option<ConfigurationItem>> {
        Ok(cis_by_ids(ctx, &[self.0.ci_id]).await?.pop())
    }

    /// Required attributes it lacks (required since it was last written).
    async fn missing_required(&self) -> &[String] {
        &self.0.missing_required
    }

    /// Recommended attributes it lacks.
    async fn missing_recommended(&self) -> &[String] {
        &self.0.missing_recommended
    }
}

/// When a discovery source last reported a CI.
#[derive(SimpleObject)]
pub struct SourceSighting {
    /// The source.
    pub source: String,
    /// When it last reported the CI.
    pub last_seen_at: DateTime<Utc>,
}

/// A CI its discovery sources no longer report.
pub struct StaleCi(health::StaleCi);

/// A CI its discovery sources no longer report.
#[Object]
impl StaleCi {
    /// The CI.
    async fn ci(&self, ctx: &Context<'_>) -> Result<Option<ConfigurationItem>> {
        Ok(cis_by_ids(ctx, &[self.0.ci_id]).await?.pop())
    }

    /// The sources that stopped reporting it, and when each last did.
    async fn sources(&self) -> Vec<SourceSighting> {
        self.0
            .sources
            .iter()
            .map(|(source, at)| SourceSighting {
                source: source.clone(),
                last_seen_at: *at,
            })
            .collect()
    }
}

/// CIs that look like one thing recorded several times.
pub struct DuplicateGroup(health::DuplicateGroup);

/// CIs that look like one thing recorded several times.
#[Object]
impl DuplicateGroup {
    /// Same name or same identifier.
    async fn reason(&self) -> DuplicateReason {
        self.0.reason.into()
    }

    /// Their class.
    async fn ci_class(&self, ctx: &Context<'_>) -> Result<CiClass> {
        class_by_id(ctx, self.0.class_id).await
    }

    /// The identifier attribute they share, for `SAME_IDENTIFIER`.
    async fn attribute(&self) -> Option<&str> {
        self.0.attribute.as_deref()
    }

    /// The shared name or value, as compared (trimmed, lower-cased).
    async fn value(&self) -> &str {
        &self.0.value
    }

    /// The CIs.
    async fn cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.ci_ids).await
    }
}

/// CIs missing attributes.
#[derive(SimpleObject)]
pub struct CompletenessFinding {
    /// How many CIs.
    pub count: usize,
    /// The first of them, those missing required attributes first.
    pub cis: Vec<IncompleteCi>,
}

/// CIs not seen by their sources.
#[derive(SimpleObject)]
pub struct StalenessFinding {
    /// How many CIs.
    pub count: usize,
    /// The first of them.
    pub cis: Vec<StaleCi>,
}

/// CIs related to nothing and in no service.
pub struct OrphanFinding {
    count: usize,
    ci_ids: Vec<uuid::Uuid>,
}

/// CIs related to nothing and in no service.
#[Object]
impl OrphanFinding {
    /// How many CIs.
    async fn count(&self) -> usize {
        self.count
    }

    /// The first of them, by name.
    async fn cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.ci_ids).await
    }
}

/// Suspected duplicates.
#[derive(SimpleObject)]
pub struct DuplicateFinding {
    /// How many groups.
    pub count: usize,
    /// The first groups, largest first.
    pub groups: Vec<DuplicateGroup>,
}

/// The verification of the CMDB's accuracy over every CI that is not retired.
pub struct CmdbHealth(HealthReport);

/// The verification of the CMDB's accuracy.
#[Object]
impl CmdbHealth {
    /// When the check ran.
    async fn checked_at(&self) -> DateTime<Utc> {
        self.0.checked_at
    }

    /// CIs checked (every CI not retired).
    async fn total_cis(&self) -> usize {
        self.0.total_cis
    }

    /// CIs with no finding at all.
    async fn healthy_cis(&self) -> usize {
        self.0.healthy_cis
    }

    /// Healthy CIs over checked ones, in percent; 100 for an empty CMDB.
    async fn accuracy_percent(&self) -> f64 {
        if self.0.total_cis == 0 {
            100.0
        } else {
            100.0 * self.0.healthy_cis as f64 / self.0.total_cis as f64
        }
    }

    /// The staleness threshold used, in hours.
    async fn stale_after_hours(&self) -> i64 {
        self.0.stale_after.num_hours()
    }

    /// CIs missing required or recommended attributes of their class.
    async fn completeness(&self) -> CompletenessFinding {
        CompletenessFinding {
            count: self.0.incomplete.count,
            cis: self
                .0
                .incomplete
                .items
                .iter()
                .cloned()
                .map(IncompleteCi)
                .collect(),
        }
    }

    /// CIs a discovery source has not reported within the threshold (or found missing in a
    /// full sync).
    async fn staleness(&self) -> StalenessFinding {
        StalenessFinding {
            count: self.0.stale.count,
            cis: self.0.stale.items.iter().cloned().map(StaleCi).collect(),
        }
    }

    /// CIs with no relationship and in no service.
    async fn orphans(&self) -> OrphanFinding {
        OrphanFinding {
            count: self.0.orphans.count,
            ci_ids: self.0.orphans.items.clone(),
        }
    }

    /// Relationships people declared that no discovery source has observed within the
    /// threshold (`relationshipDrift` lists them, and contradictions, for one source).
    async fn unobserved_declared_relationships(&self) -> usize {
        self.0.unobserved_declared_relationships
    }

    /// CIs of one class sharing a name or an identifier attribute's value.
    async fn duplicates(&self) -> DuplicateFinding {
        DuplicateFinding {
            count: self.0.duplicates.count,
            groups: self
                .0
                .duplicates
                .items
                .iter()
                .cloned()
                .map(DuplicateGroup)
                .collect(),
        }
    }
}

/// The health query.
#[derive(Default)]
pub struct HealthQuery;

/// The health query.
#[Object]
impl HealthQuery {
    /// Verifies the CMDB's accuracy: completeness, staleness, orphans and suspected
    /// duplicates, each with a count and the first CIs concerned.
    async fn cmdb_health(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 168,
            desc = "A source that has not reported a CI for this many hours has lost it."
        )]
        stale_after_hours: i32,
        #[graphql(default = 100, desc = "Most CIs (or groups) listed per finding.")] limit: i32,
    ) -> Result<CmdbHealth> {
        if stale_after_hours < 1 {
            return Err(
                Error::invalid("staleAfterHours", "`staleAfterHours` must be at least 1").into(),
            );
        }
        let max = limits(ctx)?.max_page_size;
        if limit < 0 || limit as usize > max {
            return Err(Error::LimitExceeded(format!(
                "`limit` is {limit}, outside 0 to {max} (limit `max_page_size`)"
            ))
            .into());
        }
        let options = HealthOptions {
            stale_after: TimeDelta::hours(stale_after_hours.into()),
            limit: limit as usize,
        };
        Ok(CmdbHealth(health::check(db(ctx)?, options).await?))
    }
}
