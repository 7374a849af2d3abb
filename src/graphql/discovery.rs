//! Discovery: the batch upsert, reconciliation rules, and what CIs tell of their sources.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputObject, Json, Object, OneofObject, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::{ci_identifier, reconciliation_rule};
use serde_json::Value;

use super::catalog::CiClass;
use super::ci::{Criticality, LifecycleStatus};
use super::context::{actor, db, limits, parse_id};
use crate::domain::auth::Principal;
use crate::domain::discovery::batch::{
    self, CiRef, ItemInput, Mode, Outcome, RelationshipInput, UpsertBatch,
};
use crate::domain::discovery::upsert;
use crate::domain::discovery::{DiscoveryConfig, rules};
use crate::error::Error;
use crate::metrics::Metrics;

/// Whether a batch adds to what the source reported, or is all of it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum UpsertMode {
    /// Add and update; nothing becomes stale.
    #[default]
    Merge,
    /// The batch (or the run of batches sharing `runId`) is everything the source has in
    /// `scope`: what it reported there before and not now becomes stale.
    FullSync,
}

/// What happened to an item or relationship.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Outcome")]
pub enum UpsertOutcome {
    /// A new CI or relationship was recorded.
    Created,
    /// An existing one was changed.
    Updated,
    /// It was already as reported: nothing was written.
    Unchanged,
    /// It was refused; see `error`.
    Rejected,
}

/// One discovered CI.
#[derive(InputObject)]
pub struct UpsertItemInput {
    /// Class name, such as `server`.
    pub class: String,
    /// Name of the CI.
    pub name: String,
    /// The source's own id for it; the same id names the same CI on every run.
    pub external_id: String,
    /// Attributes as the source sees them; a null value removes the attribute.
    pub attributes: Option<Json<Value>>,
    /// Free text.
    pub description: Option<String>,
    /// Lifecycle status (a new CI is `IN_SERVICE` when not given).
    pub status: Option<LifecycleStatus>,
    /// Environment, such as `production`.
    pub environment: Option<String>,
    /// Business criticality.
    pub criticality: Option<Criticality>,
    /// Responsible team.
    pub owner: Option<String>,
    /// Attributes to identify this item by, in priority order, instead of its class's
    /// identifier attributes.
    pub identifying_attributes: Option<Vec<String>>,
}

/// A CI named by the source's external id or by its id; give exactly one.
#[derive(OneofObject)]
pub enum CiRefInput {
    /// The external id this source gave it, in this batch or an earlier one.
    ExternalId(String),
    /// Its id in the CMDB.
    Id(ID),
}

/// One discovered relationship.
#[derive(InputObject)]
pub struct UpsertRelationshipInput {
    /// The CI the relationship starts from.
    pub source: CiRefInput,
    /// The CI it points to.
    pub target: CiRefInput,
    /// Relationship type name, such as `runs_on`.
    #[graphql(name = "type")]
    pub relationship_type: String,
    /// Free attributes, as a JSON object.
    pub attributes: Option<Json<Value>>,
}

/// A batch from a discovery source.
#[derive(InputObject)]
pub struct UpsertConfigurationItemsInput {
    /// The discovery source's name, such as `vcenter`; also the actor in the audit trail.
    pub source: String,
    /// The CIs, at most the server's batch size.
    pub items: Vec<UpsertItemInput>,
    /// Relationships between CIs of this batch, of earlier batches, or any CI by id.
    pub relationships: Option<Vec<UpsertRelationshipInput>>,
    /// `MERGE` (the default) or `FULL_SYNC`.
    #[graphql(default)]
    pub mode: UpsertMode,
    /// The part of the estate the source reports in full (required for `FULL_SYNC`).
    pub scope: Option<String>,
    /// Groups the batches of one full sync; only the batch with `final: true` marks what
    /// was not reported stale. Without a run id, a full-sync batch is the whole run.
    pub run_id: Option<String>,
    /// Closes the run named by `runId`.
    #[graphql(name = "final", default)]
    pub final_batch: bool,
    /// Report what would happen, and write nothing.
    #[graphql(default)]
    pub dry_run: bool,
    /// Refuse the whole batch when any item or relationship is refused.
    #[graphql(default)]
    pub atomic: bool,
}

/// Why something was refused.
#[derive(SimpleObject)]
pub struct UpsertError {
    /// Stable code: `VALIDATION`, `NOT_FOUND`, `AMBIGUOUS_IDENTITY`, `BATCH_REJECTED`...
    pub code: String,
    /// What went wrong, naming the field.
    pub message: String,
}

/// A reported value that was not written, and why.
#[derive(SimpleObject)]
pub struct IgnoredAttribute {
    /// The attribute (or core field such as `name`).
    pub attribute: String,
    /// The source that set the current value, or `manual` for people.
    pub owner: String,
    /// `SET_BY_HAND` or `HIGHER_PRIORITY_SOURCE`.
    pub reason: String,
}

/// The result of one item, in input order.
#[derive(SimpleObject)]
pub struct UpsertItemResult {
    /// Position of the item in `items`.
    pub index: usize,
    /// The CI it created or matched (the would-be id of a new CI in a dry run).
    pub ci_id: Option<ID>,
    /// What happened.
    pub outcome: UpsertOutcome,
    /// The attributes (and core fields such as `name`) whose values changed.
    pub changed_attributes: Vec<String>,
    /// How the item was matched to an existing CI: `externalId` or `attribute:<name>`.
    pub identified_by: Option<String>,
    /// Reported values left as they were because another source or a person owns them.
    pub ignored_attributes: Vec<IgnoredAttribute>,
    /// Why it was refused.
    pub error: Option<UpsertError>,
}

/// The result of one relationship, in input order.
#[derive(SimpleObject)]
pub struct UpsertRelationshipResult {
    /// Position of the relationship in `relationships`.
    pub index: usize,
    /// The relationship created or matched.
    pub relationship_id: Option<ID>,
    /// What happened.
    pub outcome: UpsertOutcome,
    /// Why it was refused.
    pub error: Option<UpsertError>,
}

/// What happened to the relationships of a batch.
#[derive(SimpleObject)]
pub struct RelationshipUpsertSummary {
    /// Recorded anew.
    pub created: usize,
    /// Attributes changed.
    pub updated: usize,
    /// Already as reported.
    pub unchanged: usize,
    /// Reported before in the scope but not in this full sync: marked stale.
    pub stale: usize,
    /// Refused.
    pub rejected: usize,
    /// One result per relationship, in input order.
    pub items: Vec<UpsertRelationshipResult>,
}

/// What a batch did.
#[derive(SimpleObject)]
pub struct UpsertReport {
    /// The source.
    pub source: String,
    /// Whether nothing was written (`dryRun`).
    pub dry_run: bool,
    /// The run the batch belongs to.
    pub run_id: Option<String>,
    /// Whether this batch closed a full sync, marking what was not reported stale.
    pub run_closed: bool,
    /// CIs recorded anew.
    pub created: usize,
    /// CIs changed.
    pub updated: usize,
    /// CIs already as reported: nothing written, no version, no audit event.
    pub unchanged: usize,
    /// CIs reported before in the scope but not in this full sync: marked stale.
    pub stale: usize,
    /// Items refused.
    pub rejected: usize,
    /// One result per item, in input order.
    pub items: Vec<UpsertItemResult>,
    /// What happened to the relationships.
    pub relationships: RelationshipUpsertSummary,
}

fn plain_field(field: &str) -> String {
    field
        .strip_prefix("attributes.")
        .unwrap_or(field)
        .to_owned()
}

fn error(rejection: Option<batch::Rejection>) -> Option<UpsertError> {
    rejection.map(|r| UpsertError {
        code: r.code.to_owned(),
        message: r.message,
    })
}

impl From<batch::UpsertReport> for UpsertReport {
    fn from(report: batch::UpsertReport) -> Self {
        let items = report
            .item_results
            .into_iter()
            .map(|r| UpsertItemResult {
                index: r.index,
                ci_id: r.ci_id.map(|id| ID(id.to_string())),
                outcome: r.outcome.into(),
                changed_attributes: r.changed.iter().map(|f| plain_field(f)).collect(),
                identified_by: r.identified_by,
                ignored_attributes: r
                    .ignored
                    .into_iter()
                    .map(|i| IgnoredAttribute {
                        attribute: plain_field(&i.field),
                        owner: i.owner,
                        reason: i.reason.as_str().to_owned(),
                    })
                    .collect(),
                error: error(r.error),
            })
            .collect();
        let relationship_items = report
            .relationship_results
            .into_iter()
            .map(|r| UpsertRelationshipResult {
                index: r.index,
                relationship_id: r.relationship_id.map(|id| ID(id.to_string())),
                outcome: r.outcome.into(),
                error: error(r.error),
            })
            .collect();
        UpsertReport {
            source: report.source,
            dry_run: report.dry_run,
            run_id: report.run_id,
            run_closed: report.run_closed,
            created: report.items.created,
            updated: report.items.updated,
            unchanged: report.items.unchanged,
            stale: report.items.stale,
            rejected: report.items.rejected,
            items,
            relationships: RelationshipUpsertSummary {
                created: report.relationships.created,
                updated: report.relationships.updated,
                unchanged: report.relationships.unchanged,
                stale: report.relationships.stale,
                rejected: report.relationships.rejected,
                items: relationship_items,
            },
        }
    }
}

fn ci_ref(field: &str, input: CiRefInput) -> Result<CiRef, Error> {
    Ok(match input {
        CiRefInput::ExternalId(id) => CiRef::ExternalId(id),
        CiRefInput::Id(id) => CiRef::Id(parse_id(field, &id)?),
    })
}

/// Turns the GraphQL input into a domain batch.
pub fn batch(input: UpsertConfigurationItemsInput) -> Result<UpsertBatch, Error> {
    let items = input
        .items
        .into_iter()
        .map(|item| ItemInput {
            class: item.class,
            name: item.name,
            external_id: item.external_id,
            attributes: item.attributes.map(|a| a.0),
            description: item.description,
            status: item.status.map(Into::into),
            environment: item.environment,
            criticality: item.criticality.map(Into::into),
            owner: item.owner,
            identifying_attributes: item.identifying_attributes,
        })
        .collect();
    let relationships = input
        .relationships
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(RelationshipInput {
                source: ci_ref(&format!("relationships[{i}].source.id"), r.source)?,
                target: ci_ref(&format!("relationships[{i}].target.id"), r.target)?,
                type_name: r.relationship_type,
                attributes: r.attributes.map(|a| a.0),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(UpsertBatch {
        source: input.source,
        items,
        relationships,
        mode: match input.mode {
            UpsertMode::Merge => Mode::Merge,
            UpsertMode::FullSync => Mode::FullSync,
        },
        scope: input.scope,
        run_id: input.run_id,
        final_batch: input.final_batch,
        dry_run: input.dry_run,
        atomic: input.atomic,
    })
}

/// A reconciliation rule: for a class and a field, the sources in order of authority.
pub struct ReconciliationRule(reconciliation_rule::Model);

/// A reconciliation rule: for a class and a field, the sources in order of authority.
#[Object]
impl ReconciliationRule {
    /// The class it applies to (and its subclasses).
    async fn ci_class(&self, ctx: &Context<'_>) -> Result<CiClass> {
        super::catalog::class_by_id(ctx, self.0.class_id).await
    }

    /// The field: an attribute name, a core field (`name`, `status`, `environment`,
    /// `owner`, `description`, `criticality`) or `*` for every field.
    async fn attribute(&self) -> String {
        plain_field(&self.0.attribute)
    }

    /// The sources, most authoritative first. Sources not listed rank last.
    async fn sources(&self) -> &[String] {
        &self.0.sources.0
    }

    /// After how many hours without a report from the owning source its values are handed
    /// over to lower-ranked sources; null: the server's default.
    async fn stale_after_hours(&self) -> Option<f64> {
        self.0.stale_after_seconds.map(|s| s as f64 / 3600.0)
    }

    /// When the rule last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A rule to set.
#[derive(InputObject)]
pub struct SetReconciliationRuleInput {
    /// Class name.
    pub class: String,
    /// Attribute name, core field, or `*`.
    pub attribute: String,
    /// Source names, most authoritative first.
    pub sources: Vec<String>,
    /// Hand-over period in hours; the server's default when not given.
    pub stale_after_hours: Option<f64>,
}

/// How a discovery source knows a CI.
#[derive(SimpleObject)]
pub struct DiscoveryRecord {
    /// The source.
    pub source: String,
    /// The source's own id for the CI.
    pub external_id: String,
    /// The scope the source last reported it in.
    pub scope: Option<String>,
    /// When the source first reported it.
    pub first_seen_at: DateTime<Utc>,
    /// When the source last reported it.
    pub last_seen_at: DateTime<Utc>,
    /// Whether a full sync of the source no longer found it.
    pub stale: bool,
}

impl From<ci_identifier::Model> for DiscoveryRecord {
    fn from(row: ci_identifier::Model) -> Self {
        DiscoveryRecord {
            source: row.source,
            external_id: row.external_id,
            scope: row.scope,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            stale: row.stale,
        }
    }
}

/// Who set a field of a CI, and when.
#[derive(SimpleObject)]
pub struct FieldProvenance {
    /// The field: `name`, `status`... or `attributes.<name>`.
    pub field: String,
    /// The discovery source, or `manual` for an edit made by a person.
    pub source: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
}

/// Discovery queries.
#[derive(Default)]
pub struct DiscoveryQuery;

/// Discovery queries.
#[Object]
impl DiscoveryQuery {
    /// Reconciliation rules, of one class or all.
    async fn reconciliation_rules(
        &self,
        ctx: &Context<'_>,
        class: Option<String>,
    ) -> Result<Vec<ReconciliationRule>> {
        let list = rules::list(db(ctx)?, class.as_deref()).await?;
        Ok(list.into_iter().map(ReconciliationRule).collect())
    }
}

/// Discovery mutations.
#[derive(Default)]
pub struct DiscoveryMutation;

/// Discovery mutations.
#[Object]
impl DiscoveryMutation {
    /// Records a batch from a discovery source: identifies each item (by the source's
    /// external id, else by its class's identifier attributes), reconciles each field with
    /// what other sources and people set, writes only what changed, and reports per item.
    /// A refused item does not stop the others, unless `atomic`.
    async fn upsert_configuration_items(
        &self,
        ctx: &Context<'_>,
        input: UpsertConfigurationItemsInput,
    ) -> Result<UpsertReport> {
        let batch = batch(input)?;
        let config = ctx.data::<Arc<DiscoveryConfig>>()?;
        let sender = ctx.data_opt::<Principal>().map(|p| p.name.as_str());
        let report = upsert::upsert(db(ctx)?, config, limits(ctx)?, &batch, sender).await?;
        if let Some(metrics) = ctx.data_opt::<Arc<Metrics>>() {
            let (items, relationships) = (&report.items, &report.relationships);
            metrics.discovery_batch(&[
                ("item", "created", items.created as u64),
                ("item", "updated", items.updated as u64),
                ("item", "unchanged", items.unchanged as u64),
                ("item", "rejected", items.rejected as u64),
                ("item", "stale", items.stale as u64),
                ("relationship", "created", relationships.created as u64),
                ("relationship", "updated", relationships.updated as u64),
                ("relationship", "unchanged", relationships.unchanged as u64),
                ("relationship", "rejected", relationships.rejected as u64),
                ("relationship", "stale", relationships.stale as u64),
            ]);
        }
        Ok(report.into())
    }

    /// Sets the order of authority of sources for a field of a class.
    async fn set_reconciliation_rule(
        &self,
        ctx: &Context<'_>,
        input: SetReconciliationRuleInput,
    ) -> Result<ReconciliationRule> {
        let stale_after_seconds = match input.stale_after_hours {
            Some(hours) if !hours.is_finite() || hours <= 0.0 => {
                return Err(Error::invalid(
                    "staleAfterHours",
                    "`staleAfterHours` must be positive",
                )
                .into());
            }
            Some(hours) => Some((hours * 3600.0).round() as i64),
            None => None,
        };
        let rule = rules::set(
            db(ctx)?,
            &actor(ctx),
            rules::RuleInput {
                class: input.class,
                field: input.attribute,
                sources: input.sources,
                stale_after_seconds,
            },
        )
        .await?;
        Ok(ReconciliationRule(rule))
    }

    /// Deletes a reconciliation rule; returns whether one was deleted.
    async fn delete_reconciliation_rule(
        &self,
        ctx: &Context<'_>,
        class: String,
        attribute: String,
    ) -> Result<bool> {
        rules::delete(db(ctx)?, &actor(ctx), &class, &attribute).await?;
        Ok(true)
    }
}
