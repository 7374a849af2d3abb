//! The batch upsert: one call per batch of discovered CIs and relationships.
//!
//! Steps, in one write transaction (on PostgreSQL also under an advisory lock that
//! serialises discovery writers): check each item; identify it (the source's external id,
//! else the identifier attributes in priority order); reconcile each reported field with
//! what other sources and people set; write new and changed CIs in bulk, with their
//! identity keys, identifiers and audit events; then the relationships and their sightings;
//! in full-sync mode, mark what the source no longer reports stale. A retryable database
//! failure (a lock timeout, a serialisation failure) replays the whole batch.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::values::{Criticality, LifecycleStatus};
use entity::{
    ci_identifier, configuration_item, discovery_run, relationship, relationship_sighting,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement,
    prelude::{Expr, Json},
    sea_query::{Alias, ExprTrait, OnConflict},
};
use serde_json::Map;
use uuid::Uuid;

use super::super::audit::{Action, Actor, EntityType, Event};
use super::super::ci_class::{ClassCatalog, validate_attributes};
use super::super::relationship_type::TypeCatalog;
use super::super::{Error, Result, now, optional_text, required_text, text_limits};
use super::identity;
use super::provenance::{self, attribute_key};
use super::reconcile::{Decision, KeepReason, Situation, decide};
use super::rules::RuleSet;
use super::{DiscoveryConfig, check_source};
use crate::domain::unit_of_work::UnitOfWork;
use crate::limits::Limits;

/// How a batch relates to what the source reported before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The batch adds to and updates what the source reported; nothing becomes stale.
    Merge,
    /// The batch (or the run of batches sharing a run id) is everything the source has in its
    /// scope: what it reported before in that scope and not now becomes stale.
    FullSync,
}

/// One discovered CI.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub class: String,
    pub name: String,
    pub external_id: String,
    pub attributes: Option<Json>,
    pub description: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub environment: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    /// Attributes to identify the item by, in priority order, instead of the class's.
    pub identifying_attributes: Option<Vec<String>>,
}

/// One end of a discovered relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiRef {
    /// A CI this source knows by this external id (in this batch or before).
    ExternalId(String),
    /// A CI by its id in the CMDB.
    Id(Uuid),
}

/// One discovered relationship.
#[derive(Debug, Clone)]
pub struct RelationshipInput {
    pub source: CiRef,
    pub target: CiRef,
    pub type_name: String,
    pub attributes: Option<Json>,
}

/// One call.
#[derive(Debug, Clone)]
pub struct UpsertBatch {
    pub source: String,
    pub items: Vec<ItemInput>,
    pub relationships: Vec<RelationshipInput>,
    pub mode: Mode,
    pub scope: Option<String>,
    /// Several batches of one full sync share a run id; the last says `final_batch`.
    pub run_id: Option<String>,
    pub final_batch: bool,
    pub dry_run: bool,
    pub atomic: bool,
}

/// What happened to an item or relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// Why an item or relationship was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The code of the [`Error`] that refused it.
    pub code: &'static str,
    pub message: String,
}

impl From<Error> for Rejection {
    fn from(err: Error) -> Self {
        Rejection {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

/// A reported value that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredField {
    pub field: String,
    pub owner: String,
    pub reason: KeepReason,
}

/// The result of one item.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub index: usize,
    pub ci_id: Option<Uuid>,
    pub outcome: Outcome,
    pub changed: Vec<String>,
    /// `externalId`, `attribute:<name>`, or none for a created CI.
    pub identified_by: Option<String>,
    pub ignored: Vec<IgnoredField>,
    pub error: Option<Rejection>,
}

/// The result of one relationship.
#[derive(Debug, Clone)]
pub struct RelationshipResult {
    pub index: usize,
    pub relationship_id: Option<Uuid>,
    pub outcome: Outcome,
    pub error: Option<Rejection>,
}

/// How many of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub stale: usize,
    pub rejected: usize,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }
}

/// The answer to a batch.
#[derive(Debug, Clone)]
pub struct UpsertReport {
    pub source: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub run_id: Option<String>,
    /// Whether this call closed a full sync (and so marked what was not reported stale).
    pub run_closed: bool,
    pub items: Counts,
    pub item_results: Vec<ItemResult>,
    pub relationships: Counts,
    pub relationship_results: Vec<RelationshipResult>,
}

/// A write lost a race with another writer; the batch is replayed.
#[derive(Debug, thiserror::Error)]
#[error("a CI changed while the batch was being written")]
struct ConcurrentChange;

fn is_retryable(err: &Error) -> bool {
    let Error::Internal(cause) = err else {
        return false;
    };
    if cause.downcast_ref::<ConcurrentChange>().is_some() {
        return true;
    }
    cause
        .downcast_ref::<DbErr>()
        .is_some_and(crate::error::is_lost_race)
}

/// Applies one batch. Rejected items are reported, not raised; an error is returned only for
/// a malformed batch (`VALIDATION`), one over the limits (`LIMIT_EXCEEDED`), or an
/// infrastructure failure (`INTERNAL`), and then nothing is written.
///
/// The audit trail records the token that sent the batch as the actor (the source itself
/// when no token sent it, as from the command line), and the source beside it.
pub async fn upsert(
    db: &DatabaseConnection,
    config: &DiscoveryConfig,
    limits: &Limits,
    batch: &UpsertBatch,
    sender: Option<&str>,
) -> Result<UpsertReport> {
    check_batch(batch, limits)?;
    let source = batch.source.trim();
    let actor = Actor::named(sender.unwrap_or(source)).for_source(source);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply(db, config, batch, &actor).await {
            Err(err) if attempt < 6 && is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "discovery batch replayed");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Ok(report) => {
                if !report.dry_run {
                    let added = report.items.created + report.relationships.created;
                    super::statistics::note_growth(db, added as u64).await;
                }
                return Ok(report);
            }
            other => return other,
        }
    }
}

fn check_batch(batch: &UpsertBatch, limits: &Limits) -> Result<()> {
    check_source("source", &batch.source)?;
    for (what, count) in [
        ("items", batch.items.len()),
        ("relationships", batch.relationships.len()),
    ] {
        if count > limits.max_batch_size {
            return Err(Error::LimitExceeded(format!(
                "{count} {what} in one batch, over the limit of {} (limit `max_batch_size`)",
                limits.max_batch_size
            )));
        }
    }
    if let Some(scope) = &batch.scope {
        required_text("scope", scope, 255)?;
    }
    if batch.mode == Mode::FullSync && batch.scope.is_none() {
        return Err(Error::invalid(
            "scope",
            "a full sync needs a `scope`: the part of the estate the source reports in full",
        ));
    }
    if let Some(run_id) = &batch.run_id {
        required_text("runId", run_id, 100)?;
        if batch.mode != Mode::FullSync {
            return Err(Error::invalid(
                "runId",
                "a `runId` groups the batches of a full sync",
            ));
        }
    }
    Ok(())
}

/// An item that passed its own checks.
struct Prepared {
    index: usize,
    class_id: i32,
    class_name: String,
    external_id: String,
    name: String,
    description: Option<String>,
    status: Option<LifecycleStatus>,
    environment: Option<String>,
    criticality: Option<Criticality>,
    owner: Option<String>,
    /// The reported attributes, type-checked; null values mean "remove".
    attributes: Map<String, Json>,
    identifying: Vec<String>,
}

fn prepare(index: usize, item: &ItemInput, catalog: &ClassCatalog) -> Result<Prepared> {
    let class = catalog.resolve("class", item.class.trim())?;
    let external_id = required_text("externalId", &item.external_id, 255)?;
    let name = required_text("name", &item.name, text_limits::NAME)?;
    let optional = |field: &str, value: &Option<String>, max: usize| -> Result<Option<String>> {
        value
            .as_deref()
            .map(|v| optional_text(field, v.trim(), max))
            .transpose()
    };
    if let Some(attributes) = &item.attributes {
        super::super::json_without_nul("attributes", attributes)?;
    }
    let attributes = match &item.attributes {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map.clone(),
        Some(_) => {
            return Err(Error::invalid(
                "attributes",
                "`attributes` must be a JSON object",
            ));
        }
    };
    // Types now; required attributes once merged with what the CI already has.
    let definitions: Vec<_> = catalog
        .effective_attributes(class.id)
        .into_iter()
        .map(|mut d| {
            d.required = false;
            d
        })
        .collect();
    let present: Map<String, Json> = attributes
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let checked = validate_attributes(&class.name, &definitions, Json::Object(present))?;
    let mut attributes: Map<String, Json> = attributes
        .into_iter()
        .filter(|(_, v)| v.is_null())
        .collect();
    if let Json::Object(checked) = checked {
        attributes.extend(checked);
    }
    let identifying = match &item.identifying_attributes {
        Some(list) => {
            let effective = catalog.effective_attributes(class.id);
            for (i, name) in list.iter().enumerate() {
                if !effective.iter().any(|d| &d.name == name) && !attributes.contains_key(name) {
                    return Err(Error::invalid(
                        format!("identifyingAttributes[{i}]"),
                        format!(
                            "`{name}` is neither an attribute of class `{}` nor reported",
                            class.name
                        ),
                    ));
                }
            }
            list.clone()
        }
        None => catalog.effective_identifiers(class.id),
    };
    Ok(Prepared {
        index,
        class_id: class.id,
        class_name: class.name.clone(),
        external_id,
        name,
        description: optional("description", &item.description, text_limits::DESCRIPTION)?,
        status: item.status,
        environment: optional("environment", &item.environment, 64)?,
        criticality: item.criticality,
        owner: optional("owner", &item.owner, text_limits::SHORT)?,
        attributes,
        identifying,
    })
}

/// Where an item goes.
enum Target {
    New,
    Existing { ci_id: Uuid, identified_by: String },
}

fn rejected(index: usize, error: Rejection) -> ItemResult {
    ItemResult {
        index,
        ci_id: None,
        outcome: Outcome::Rejected,
        changed: Vec::new(),
        identified_by: None,
        ignored: Vec::new(),
        error: Some(error),
    }
}

fn ambiguous(message: String) -> Rejection {
    Error::AmbiguousIdentity(message).into()
}

/// The value of a core field on a CI, as JSON for comparisons.
fn core_value(ci: &configuration_item::Model, field: &str) -> Json {
    match field {
        "name" => Json::from(ci.name.clone()),
        "description" => serde_json::to_value(&ci.description).unwrap_or_default(),
        "status" => serde_json::to_value(ci.status).unwrap_or_default(),
        "environment" => serde_json::to_value(&ci.environment).unwrap_or_default(),
        "criticality" => serde_json::to_value(ci.criticality).unwrap_or_default(),
        "owner" => serde_json::to_value(&ci.owner).unwrap_or_default(),
        _ => Json::Null,
    }
}

fn set_core(ci: &mut configuration_item::Model, field: &str, item: &Prepared) {
    match field {
        "name" => ci.name = item.name.clone(),
        "description" => ci.description = item.description.clone(),
        "status" => {
            if let Some(status) = item.status {
                ci.status = status;
            }
        }
        "environment" => ci.environment = item.environment.clone(),
        "criticality" => ci.criticality = item.criticality,
        "owner" => ci.owner = item.owner.clone(),
        _ => {}
    }
}

/// The core fields an item reports (a field left out is not reported).
fn reported_core(item: &Prepared) -> Vec<(&'static str, Json)> {
    let mut fields = vec![("name", Json::from(item.name.clone()))];
    if let Some(description) = &item.description {
        fields.push(("description", Json::from(description.clone())));
    }
    if let Some(status) = item.status {
        fields.push(("status", serde_json::to_value(status).unwrap_or_default()));
    }
    if let Some(environment) = &item.environment {
        fields.push(("environment", Json::from(environment.clone())));
    }
    if let Some(criticality) = item.criticality {
        fields.push((
            "criticality",
            serde_json::to_value(criticality).unwrap_or_default(),
        ));
    }
    if let Some(owner) = &item.owner {
        fields.push(("owner", Json::from(owner.clone())));
    }
    fields
}

struct Context<'a> {
    source: &'a str,
    at: DateTime<Utc>,
    catalog: &'a ClassCatalog,
    rules: &'a RuleSet,
    overrides_manual: HashMap<i32, bool>,
    /// When each source last reported each CI.
    last_seen: HashMap<(Uuid, String), DateTime<Utc>>,
    /// Time spent in each step, for the debug log.
    phases: Phases,
}

/// Time spent in the steps of a batch.
#[derive(Clone)]
struct Phases(std::sync::Arc<std::sync::Mutex<PhaseLog>>);

/// When the last step ended, and each step's duration in milliseconds.
type PhaseLog = (std::time::Instant, Vec<(&'static str, f64)>);

impl Phases {
    fn new() -> Self {
        Phases(std::sync::Arc::new(std::sync::Mutex::new((
            std::time::Instant::now(),
            Vec::new(),
        ))))
    }

    /// Records the time since the previous mark as `step`.
    fn mark(&self, step: &'static str) {
        if let Ok(mut phases) = self.0.lock() {
            let now = std::time::Instant::now();
            let elapsed = (now - phases.0).as_secs_f64() * 1000.0;
            phases.0 = now;
            phases.1.push((step, elapsed));
        }
    }

    fn summary(&self) -> String {
        self.0
            .lock()
            .map(|p| {
                p.1.iter()
                    .map(|(step, ms)| format!("{step}={ms:.1}ms"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

/// Applies the item to an existing CI, field by field; `None` when nothing changes.
fn reconcile(
    cx: &Context,
    item: &Prepared,
    before: &configuration_item::Model,
    ignored: &mut Vec<IgnoredField>,
) -> Option<(configuration_item::Model, Vec<String>)> {
    let mut after = before.clone();
    let mut changed = Vec::new();
    let may_write = |field: &str, ignored: &mut Vec<IgnoredField>| -> bool {
        let owner = provenance::entry(&before.provenance, field);
        let owner_last_seen = owner
            .as_ref()
            .and_then(|o| cx.last_seen.get(&(before.id, o.source.clone())).copied());
        let situation = Situation {
            owner: owner.as_ref(),
            owner_last_seen,
            ranking: cx.rules.ranking(cx.catalog, before.class_id, field),
            overrides_manual: cx
                .overrides_manual
                .get(&before.class_id)
                .copied()
                .unwrap_or(false),
            now: cx.at,
        };
        match decide(cx.source, &situation) {
            Decision::Write => true,
            Decision::Keep { owner, reason } => {
                ignored.push(IgnoredField {
                    field: field.to_owned(),
                    owner,
                    reason,
                });
                false
            }
        }
    };
    for (field, value) in reported_core(item) {
        if core_value(before, field) != value && may_write(field, ignored) {
            set_core(&mut after, field, item);
            provenance::stamp(&mut after.provenance, field, cx.source, cx.at);
            changed.push(field.to_owned());
        }
    }
    let mut attributes = before.attributes.as_object().cloned().unwrap_or_default();
    let mut attributes_changed = false;
    for (name, value) in &item.attributes {
        let field = attribute_key(name);
        let current = attributes.get(name);
        let differs = if value.is_null() {
            current.is_some()
        } else {
            current != Some(value)
        };
        if differs && may_write(&field, ignored) {
            if value.is_null() {
                attributes.remove(name);
                provenance::forget(&mut after.provenance, &field);
            } else {
                attributes.insert(name.clone(), value.clone());
                provenance::stamp(&mut after.provenance, &field, cx.source, cx.at);
            }
            changed.push(field);
            attributes_changed = true;
        }
    }
    if attributes_changed {
        after.attributes = Json::Object(attributes);
    }
    if changed.is_empty() {
        return None;
    }
    after.version = before.version + 1;
    after.updated_at = cx.at;
    Some((after, changed))
}

fn new_ci(cx: &Context, item: &Prepared) -> (configuration_item::Model, Vec<String>) {
    let attributes: Map<String, Json> = item
        .attributes
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let ci = configuration_item::Model {
        id: Uuid::now_v7(),
        class_id: item.class_id,
        name: item.name.clone(),
        description: item.description.clone(),
        status: item.status.unwrap_or(LifecycleStatus::InService),
        environment: item.environment.clone(),
        criticality: item.criticality,
        owner: item.owner.clone(),
        attributes: Json::Object(attributes),
        version: 1,
        created_at: cx.at,
        updated_at: cx.at,
        provenance: Json::Object(Map::new()),
    };
    let changed = provenance::changed_fields(None, &ci);
    let mut ci = ci;
    let mut stamped = ci.provenance.clone();
    provenance::stamp_changes(&mut stamped, &ci, &changed, cx.source, cx.at);
    ci.provenance = stamped;
    (ci, changed)
}

fn active(ci: &configuration_item::Model) -> configuration_item::ActiveModel {
    configuration_item::ActiveModel {
        id: Set(ci.id),
        class_id: Set(ci.class_id),
        name: Set(ci.name.clone()),
        description: Set(ci.description.clone()),
        status: Set(ci.status),
        environment: Set(ci.environment.clone()),
        criticality: Set(ci.criticality),
        owner: Set(ci.owner.clone()),
        attributes: Set(ci.attributes.clone()),
        version: Set(ci.version),
        created_at: Set(ci.created_at),
        updated_at: Set(ci.updated_at),
        provenance: Set(ci.provenance.clone()),
    }
}

async fn lock_writers(db: &impl ConnectionTrait) -> Result<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        // One discovery writer at a time: identification reads then writes, and two
        // concurrent batches must not both decide that a CI is new.
        db.execute_unprepared("SELECT pg_advisory_xact_lock(7468201)")
            .await?;
    }
    Ok(())
}

async fn existing_cis(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, configuration_item::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut query = configuration_item::Entity::find()
            .filter(configuration_item::Column::Id.is_in(chunk.iter().copied()));
        if db.get_database_backend() == DbBackend::Postgres {
            // People's edits to these CIs wait for the batch, so none is lost.
            query = query.lock_exclusive();
        }
        for ci in query.all(db).await? {
            found.insert(ci.id, ci);
        }
    }
    Ok(found)
}

/// The CIs (and their statuses) this source knows by the given external ids. The ids go to
/// the database as one JSON array: a single prepared statement whatever their number.
async fn known_external_ids(
    db: &impl ConnectionTrait,
    source: &str,
    external_ids: &[String],
) -> Result<HashMap<String, (Uuid, LifecycleStatus)>> {
    let mut found = HashMap::with_capacity(external_ids.len());
    if external_ids.is_empty() {
        return Ok(found);
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT i.external_id, i.ci_id, c.status FROM ci_identifier i \
             JOIN configuration_item c ON c.id = i.ci_id \
             WHERE i.source = $1 AND i.external_id IN (SELECT jsonb_array_elements_text(CAST($2 AS jsonb)))"
        }
        _ => {
            "SELECT i.external_id, i.ci_id, c.status FROM ci_identifier i \
             JOIN configuration_item c ON c.id = i.ci_id \
             WHERE i.source = ? AND i.external_id IN (SELECT value FROM json_each(?))"
        }
    };
    for chunk in external_ids.chunks(5_000) {
        let list = serde_json::to_string(chunk)?;
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [source.into(), list.into()],
            ))
            .await?;
        for row in rows {
            let external_id: String = row.try_get("", "external_id")?;
            let ci_id: Uuid = row.try_get("", "ci_id")?;
            let status: LifecycleStatus = row.try_get("", "status")?;
            found.insert(external_id, (ci_id, status));
        }
    }
    Ok(found)
}

async fn identifiers_of(
    db: &impl ConnectionTrait,
    source: &str,
    external_ids: &[String],
) -> Result<HashMap<String, Uuid>> {
    Ok(known_external_ids(db, source, external_ids)
        .await?
        .into_iter()
        .map(|(external_id, (ci_id, _))| (external_id, ci_id))
        .collect())
}

async fn last_seen_of(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
) -> Result<HashMap<(Uuid, String), DateTime<Utc>>> {
    let mut seen = HashMap::new();
    for chunk in ci_ids.chunks(500) {
        let rows = ci_identifier::Entity::find()
            .filter(ci_identifier::Column::CiId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for row in rows {
            let entry = seen
                .entry((row.ci_id, row.source))
                .or_insert(row.last_seen_at);
            if row.last_seen_at > *entry {
                *entry = row.last_seen_at;
            }
        }
    }
    Ok(seen)
}

/// Where the items of a batch go, and why.
struct Identification {
    targets: Vec<(Prepared, Target)>,
}

async fn identify(
    db: &impl ConnectionTrait,
    source: &str,
    prepared: Vec<Prepared>,
    results: &mut [Option<ItemResult>],
) -> Result<Identification> {
    let external_ids: Vec<String> = prepared.iter().map(|p| p.external_id.clone()).collect();
    let known = identifiers_of(db, source, &external_ids).await?;

    // Identity lookups for the items the source does not know yet, grouped per class and
    // attribute so that each group is one query.
    let mut wanted: HashMap<(i32, String), HashSet<String>> = HashMap::new();
    for item in prepared
        .iter()
        .filter(|p| !known.contains_key(&p.external_id))
    {
        for attribute in &item.identifying {
            if let Some(value) = item.attributes.get(attribute).and_then(identity::normalise) {
                wanted
                    .entry((item.class_id, attribute.clone()))
                    .or_default()
                    .insert(value);
            }
        }
    }
    let mut matches: HashMap<(i32, String, String), Vec<Uuid>> = HashMap::new();
    for ((class_id, attribute), values) in wanted {
        let values: Vec<String> = values.into_iter().collect();
        for (value, ids) in identity::lookup(db, class_id, &attribute, &values).await? {
            matches.insert((class_id, attribute.clone(), value), ids);
        }
    }

    let mut targets = Vec::with_capacity(prepared.len());
    let mut claimed: HashMap<Uuid, usize> = HashMap::new();
    let mut new_keys: HashMap<(i32, String, String), usize> = HashMap::new();
    'items: for item in prepared {
        let mut target = None;
        if let Some(ci_id) = known.get(&item.external_id) {
            target = Some(Target::Existing {
                ci_id: *ci_id,
                identified_by: "externalId".into(),
            });
        } else {
            for attribute in &item.identifying {
                let Some(value) = item.attributes.get(attribute).and_then(identity::normalise)
                else {
                    continue;
                };
                let key = (item.class_id, attribute.clone(), value.clone());
                if let Some(other) = new_keys.get(&key) {
                    results[item.index] = Some(rejected(
                        item.index,
                        ambiguous(format!(
                            "`{attribute}` = `{value}` also identifies input[{other}] of this batch"
                        )),
                    ));
                    continue 'items;
                }
                match matches.get(&key).map(Vec::as_slice) {
                    Some([single]) => {
                        target = Some(Target::Existing {
                            ci_id: *single,
                            identified_by: format!("attribute:{attribute}"),
                        });
                        break;
                    }
                    Some(several) if several.len() > 1 => {
                        let names: Vec<String> = several.iter().map(Uuid::to_string).collect();
                        results[item.index] = Some(rejected(
                            item.index,
                            ambiguous(format!(
                                "`{attribute}` = `{value}` matches {} CIs: {}; nothing was merged",
                                several.len(),
                                names.join(", ")
                            )),
                        ));
                        continue 'items;
                    }
                    _ => {}
                }
            }
        }
        let target = match target {
            Some(target) => target,
            None => {
                for attribute in &item.identifying {
                    if let Some(value) =
                        item.attributes.get(attribute).and_then(identity::normalise)
                    {
                        new_keys.insert((item.class_id, attribute.clone(), value), item.index);
                    }
                }
                Target::New
            }
        };
        if let Target::Existing { ci_id, .. } = &target
            && let Some(other) = claimed.insert(*ci_id, item.index)
        {
            results[item.index] = Some(rejected(
                item.index,
                ambiguous(format!(
                    "input[{}] and input[{other}] both identify configuration item {ci_id}",
                    item.index
                )),
            ));
            continue;
        }
        targets.push((item, target));
    }
    Ok(Identification { targets })
}

/// The items' part of a batch: identification, reconciliation and the writes.
struct ItemsApplied {
    /// External id -> CI, for the relationships of this batch.
    by_external_id: HashMap<String, Uuid>,
    /// Statuses of the CIs of this batch, after it.
    statuses: HashMap<Uuid, LifecycleStatus>,
}

async fn apply_items(
    uow: &UnitOfWork,
    cx: &Context<'_>,
    batch: &UpsertBatch,
    results: &mut [Option<ItemResult>],
) -> Result<ItemsApplied> {
    let db = uow.txn();
    let mut prepared = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, item) in batch.items.iter().enumerate() {
        match prepare(index, item, cx.catalog) {
            Ok(item) => {
                if let Some(first) = seen.insert(item.external_id.clone(), index) {
                    results[index] = Some(rejected(
                        index,
                        Error::invalid(
                            "externalId",
                            format!("externalId `{}` repeats input[{first}]", item.external_id),
                        )
                        .into(),
                    ));
                } else {
                    prepared.push(item);
                }
            }
            Err(err) => {
                results[index] = Some(rejected(
                    index,
                    err.within(&format!("items[{index}]")).into(),
                ))
            }
        }
    }

    cx.phases.mark("check");
    let Identification { targets } = identify(db, cx.source, prepared, results).await?;
    cx.phases.mark("identify");
    let existing_ids: Vec<Uuid> = targets
        .iter()
        .filter_map(|(_, t)| match t {
            Target::Existing { ci_id, .. } => Some(*ci_id),
            Target::New => None,
        })
        .collect();
    let existing = existing_cis(db, &existing_ids).await?;
    let cx = Context {
        last_seen: last_seen_of(db, &existing_ids).await?,
        ..Context {
            source: cx.source,
            at: cx.at,
            catalog: cx.catalog,
            rules: cx.rules,
            overrides_manual: cx.overrides_manual.clone(),
            last_seen: HashMap::new(),
            phases: cx.phases.clone(),
        }
    };

    let mut created: Vec<configuration_item::Model> = Vec::new();
    let mut updated: Vec<(configuration_item::Model, configuration_item::Model)> = Vec::new();
    let mut new_identifiers: Vec<(String, Uuid)> = Vec::new();
    let mut seen_identifiers: Vec<String> = Vec::new();
    let mut applied = ItemsApplied {
        by_external_id: HashMap::new(),
        statuses: HashMap::new(),
    };
    for (item, target) in targets {
        let index = item.index;
        let mut ignored = Vec::new();
        let result = match target {
            Target::New => {
                let (ci, changed) = new_ci(&cx, &item);
                let definitions = cx.catalog.effective_attributes(ci.class_id);
                if let Err(err) =
                    validate_attributes(&item.class_name, &definitions, ci.attributes.clone())
                {
                    results[index] = Some(rejected(
                        index,
                        err.within(&format!("items[{index}]")).into(),
                    ));
                    continue;
                }
                new_identifiers.push((item.external_id.clone(), ci.id));
                let result = ItemResult {
                    index,
                    ci_id: Some(ci.id),
                    outcome: Outcome::Created,
                    changed,
                    identified_by: None,
                    ignored,
                    error: None,
                };
                applied.statuses.insert(ci.id, ci.status);
                created.push(ci);
                result
            }
            Target::Existing {
                ci_id,
                identified_by,
            } => {
                let Some(before) = existing.get(&ci_id) else {
                    results[index] = Some(rejected(
                        index,
                        Error::not_found("configuration item", ci_id).into(),
                    ));
                    continue;
                };
                if before.class_id != item.class_id {
                    let class = cx
                        .catalog
                        .get(before.class_id)
                        .map(|c| c.name.clone())
                        .unwrap_or_default();
                    results[index] = Some(rejected(
                        index,
                        Error::invalid(
                            format!("items[{index}].class"),
                            format!(
                                "the item is identified ({identified_by}) as configuration item {ci_id}, \
                                 which is a `{class}`, not a `{}`",
                                item.class_name
                            ),
                        )
                        .into(),
                    ));
                    continue;
                }
                if identified_by == "externalId" {
                    seen_identifiers.push(item.external_id.clone());
                } else {
                    new_identifiers.push((item.external_id.clone(), ci_id));
                }
                let (outcome, changed) = match reconcile(&cx, &item, before, &mut ignored) {
                    None => {
                        applied.statuses.insert(ci_id, before.status);
                        (Outcome::Unchanged, Vec::new())
                    }
                    Some((after, changed)) => {
                        let definitions = cx.catalog.effective_attributes(after.class_id);
                        if let Err(err) = validate_attributes(
                            &item.class_name,
                            &definitions,
                            after.attributes.clone(),
                        ) {
                            results[index] = Some(rejected(
                                index,
                                err.within(&format!("items[{index}]")).into(),
                            ));
                            continue;
                        }
                        applied.statuses.insert(ci_id, after.status);
                        updated.push((before.clone(), after));
                        (Outcome::Updated, changed)
                    }
                };
                ItemResult {
                    index,
                    ci_id: Some(ci_id),
                    outcome,
                    changed,
                    identified_by: Some(identified_by),
                    ignored,
                    error: None,
                }
            }
        };
        if let Some(ci_id) = result.ci_id {
            applied
                .by_external_id
                .insert(item.external_id.clone(), ci_id);
        }
        results[index] = Some(result);
    }

    cx.phases.mark("reconcile");
    // Writes, in bulk.
    for chunk in created.chunks(1_000) {
        configuration_item::Entity::insert_many(chunk.iter().map(active))
            .exec_without_returning(db)
            .await?;
    }
    for chunk in updated.chunks(1_000) {
        let expected = chunk.len() as u64;
        let mut on_conflict = OnConflict::column(configuration_item::Column::Id);
        on_conflict
            .update_columns([
                configuration_item::Column::Name,
                configuration_item::Column::Description,
                configuration_item::Column::Status,
                configuration_item::Column::Environment,
                configuration_item::Column::Criticality,
                configuration_item::Column::Owner,
                configuration_item::Column::Attributes,
                configuration_item::Column::Version,
                configuration_item::Column::UpdatedAt,
                configuration_item::Column::Provenance,
            ])
            .action_and_where(
                Expr::col((
                    configuration_item::Entity,
                    configuration_item::Column::Version,
                ))
                .eq(Expr::col((
                    Alias::new("excluded"),
                    configuration_item::Column::Version,
                ))
                .sub(1)),
            );
        let written =
            configuration_item::Entity::insert_many(chunk.iter().map(|(_, after)| active(after)))
                .on_conflict(on_conflict)
                .exec_without_returning(db)
                .await?;
        if written != expected {
            return Err(Error::internal(ConcurrentChange));
        }
    }
    let rekeyed: Vec<&configuration_item::Model> = updated
        .iter()
        .filter(|(before, after)| before.attributes != after.attributes)
        .map(|(_, after)| after)
        .collect();
    cx.phases.mark("write CIs");
    identity::insert(db, cx.catalog, &created.iter().collect::<Vec<_>>()).await?;
    identity::replace(db, cx.catalog, &rekeyed).await?;
    cx.phases.mark("identity keys");

    let identifier_rows: Vec<ci_identifier::ActiveModel> = new_identifiers
        .iter()
        .map(|(external_id, ci_id)| ci_identifier::ActiveModel {
            source: Set(cx.source.to_owned()),
            external_id: Set(external_id.clone()),
            ci_id: Set(*ci_id),
            scope: Set(batch.scope.clone()),
            first_seen_at: Set(cx.at),
            last_seen_at: Set(cx.at),
            stale: Set(false),
        })
        .collect();
    for chunk in identifier_rows.chunks(1_000) {
        ci_identifier::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    for chunk in seen_identifiers.chunks(500) {
        let mut update = ci_identifier::Entity::update_many()
            .col_expr(ci_identifier::Column::LastSeenAt, Expr::value(cx.at))
            .col_expr(ci_identifier::Column::Stale, Expr::value(false));
        if let Some(scope) = &batch.scope {
            update = update.col_expr(ci_identifier::Column::Scope, Expr::value(scope.clone()));
        }
        update
            .filter(ci_identifier::Column::Source.eq(cx.source))
            .filter(ci_identifier::Column::ExternalId.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }

    cx.phases.mark("identifiers");
    let mut events = Vec::with_capacity(created.len() + updated.len());
    for ci in &created {
        events.push(Event::new(
            EntityType::ConfigurationItem,
            ci.id,
            Action::Create,
            None,
            Some(ci),
        )?);
    }
    for (before, after) in &updated {
        events.push(Event::new(
            EntityType::ConfigurationItem,
            after.id,
            Action::Update,
            Some(before),
            Some(after),
        )?);
    }
    uow.record_all(events);
    cx.phases.mark("audit");
    Ok(applied)
}

async fn apply_relationships(
    uow: &UnitOfWork,
    cx: &Context<'_>,
    batch: &UpsertBatch,
    items: &ItemsApplied,
    results: &mut [Option<RelationshipResult>],
    types: &TypeCatalog,
) -> Result<()> {
    let db = uow.txn();
    if batch.relationships.is_empty() {
        return Ok(());
    }
    let reject = |index: usize, err: Error| RelationshipResult {
        index,
        relationship_id: None,
        outcome: Outcome::Rejected,
        error: Some(err.within(&format!("relationships[{index}]")).into()),
    };
    // External ids not in this batch: CIs this source reported before.
    let unknown: Vec<String> = batch
        .relationships
        .iter()
        .flat_map(|r| [&r.source, &r.target])
        .filter_map(|end| match end {
            CiRef::ExternalId(id) if !items.by_external_id.contains_key(id) => Some(id.clone()),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let known = known_external_ids(db, cx.source, &unknown).await?;
    let mut statuses = items.statuses.clone();
    statuses.extend(known.values().copied());
    let earlier: HashMap<String, Uuid> = known.into_iter().map(|(k, (id, _))| (k, id)).collect();
    let resolve = |end: &CiRef| -> Option<Uuid> {
        match end {
            CiRef::ExternalId(id) => items
                .by_external_id
                .get(id)
                .or_else(|| earlier.get(id))
                .copied(),
            CiRef::Id(id) => Some(*id),
        }
    };
    let ends: Vec<Uuid> = batch
        .relationships
        .iter()
        .flat_map(|r| [resolve(&r.source), resolve(&r.target)])
        .flatten()
        .filter(|id| !statuses.contains_key(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in ends.chunks(500) {
        let rows = configuration_item::Entity::find()
            .select_only()
            .column(configuration_item::Column::Id)
            .column(configuration_item::Column::Status)
            .filter(configuration_item::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple::<(Uuid, LifecycleStatus)>()
            .all(db)
            .await?;
        statuses.extend(rows);
    }

    let mut accepted: Vec<(usize, Uuid, Uuid, i32, Option<Json>)> = Vec::new();
    let mut keys: HashMap<(Uuid, Uuid, i32), usize> = HashMap::new();
    for (index, input) in batch.relationships.iter().enumerate() {
        let relationship_type = match types.resolve("type", input.type_name.trim()) {
            Ok(t) => t,
            Err(err) => {
                results[index] = Some(reject(index, err));
                continue;
            }
        };
        let mut ends = [Uuid::nil(); 2];
        let mut failed = None;
        for (slot, (field, end)) in [("source", &input.source), ("target", &input.target)]
            .into_iter()
            .enumerate()
        {
            match resolve(end) {
                None => {
                    let CiRef::ExternalId(id) = end else {
                        unreachable!("ids always resolve")
                    };
                    failed = Some(Error::NotFound {
                        message: format!(
                            "source `{}` has reported no CI with externalId `{id}`",
                            cx.source
                        ),
                        field: Some(field.to_owned()),
                    });
                }
                Some(id) => match statuses.get(&id) {
                    None => failed = Some(Error::not_found("configuration item", id).within(field)),
                    Some(LifecycleStatus::Retired) => {
                        failed = Some(Error::invalid(
                            field,
                            format!("configuration item {id} is retired"),
                        ))
                    }
                    Some(_) => ends[slot] = id,
                },
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(err) = failed {
            results[index] = Some(reject(index, err));
            continue;
        }
        if ends[0] == ends[1] {
            results[index] = Some(reject(
                index,
                Error::invalid("target", "a configuration item cannot relate to itself"),
            ));
            continue;
        }
        if let Some(Err(err)) = input
            .attributes
            .as_ref()
            .map(|a| super::super::json_without_nul("attributes", a))
        {
            results[index] = Some(reject(index, err));
            continue;
        }
        let attributes = match &input.attributes {
            None | Some(Json::Null) => None,
            Some(Json::Object(map)) => Some(Json::Object(
                map.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )),
            Some(_) => {
                results[index] = Some(reject(
                    index,
                    Error::invalid("attributes", "`attributes` must be a JSON object"),
                ));
                continue;
            }
        };
        let key = (ends[0], ends[1], relationship_type.id);
        if let Some(first) = keys.insert(key, index) {
            results[index] = Some(reject(
                index,
                Error::invalid(
                    "target",
                    format!("repeats relationships[{first}]: same source, target and type"),
                ),
            ));
            continue;
        }
        accepted.push((index, ends[0], ends[1], relationship_type.id, attributes));
    }

    cx.phases.mark("resolve ends");
    let sources: Vec<Uuid> = accepted
        .iter()
        .map(|a| a.1)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut existing: HashMap<(Uuid, Uuid, i32), relationship::Model> = HashMap::new();
    for row in super::super::relationship::outgoing(db, &sources)
        .await?
        .into_values()
        .flatten()
    {
        existing.insert((row.source_id, row.target_id, row.type_id), row);
    }
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut sighted = Vec::new();
    for (index, source_id, target_id, type_id, attributes) in accepted {
        let (id, outcome) = match existing.get(&(source_id, target_id, type_id)) {
            Some(row) => match attributes {
                Some(attributes) if attributes != row.attributes => {
                    let mut after = row.clone();
                    after.attributes = attributes;
                    updated.push((row.clone(), after));
                    (row.id, Outcome::Updated)
                }
                _ => (row.id, Outcome::Unchanged),
            },
            None => {
                let row = relationship::Model {
                    id: Uuid::now_v7(),
                    source_id,
                    target_id,
                    type_id,
                    attributes: attributes.unwrap_or_else(|| Json::Object(Map::new())),
                    created_at: cx.at,
                };
                let id = row.id;
                created.push(row);
                (id, Outcome::Created)
            }
        };
        sighted.push(id);
        results[index] = Some(RelationshipResult {
            index,
            relationship_id: Some(id),
            outcome,
            error: None,
        });
    }

    cx.phases.mark("existing relationships");
    for chunk in created.chunks(1_000) {
        let rows = chunk.iter().map(|row| relationship::ActiveModel {
            id: Set(row.id),
            source_id: Set(row.source_id),
            target_id: Set(row.target_id),
            type_id: Set(row.type_id),
            attributes: Set(row.attributes.clone()),
            created_at: Set(row.created_at),
        });
        relationship::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    for (_, after) in &updated {
        relationship::ActiveModel {
            id: Set(after.id),
            attributes: Set(after.attributes.clone()),
            ..Default::default()
        }
        .update(db)
        .await?;
    }
    cx.phases.mark("write relationships");
    let sightings: Vec<relationship_sighting::ActiveModel> = sighted
        .iter()
        .map(|id| relationship_sighting::ActiveModel {
            relationship_id: Set(*id),
            source: Set(cx.source.to_owned()),
            scope: Set(batch.scope.clone()),
            first_seen_at: Set(cx.at),
            last_seen_at: Set(cx.at),
            stale: Set(false),
        })
        .collect();
    let mut refresh = OnConflict::columns([
        relationship_sighting::Column::RelationshipId,
        relationship_sighting::Column::Source,
    ]);
    refresh.update_columns([
        relationship_sighting::Column::LastSeenAt,
        relationship_sighting::Column::Stale,
        relationship_sighting::Column::Scope,
    ]);
    if batch.mode == Mode::Merge {
        // Only a full sync reads when a relationship was last seen: a merge records new
        // sightings, revives stale ones and leaves current ones alone, so that a repeat
        // writes nothing.
        refresh.action_and_where(
            Expr::col((
                relationship_sighting::Entity,
                relationship_sighting::Column::Stale,
            ))
            .eq(true),
        );
    }
    for chunk in sightings.chunks(1_000) {
        relationship_sighting::Entity::insert_many(chunk.to_vec())
            .on_conflict(refresh.clone())
            .exec_without_returning(db)
            .await?;
    }
    cx.phases.mark("sightings");
    let mut events = Vec::with_capacity(created.len() + updated.len());
    for row in &created {
        events.push(Event::new(
            EntityType::Relationship,
            row.id,
            Action::Create,
            None,
            Some(row),
        )?);
    }
    for (before, after) in &updated {
        events.push(Event::new(
            EntityType::Relationship,
            after.id,
            Action::Update,
            Some(before),
            Some(after),
        )?);
    }
    uow.record_all(events);
    Ok(())
}

/// Marks stale what the source reported before `since` in `scope` and not since; returns
/// how many CIs and relationships became stale.
async fn mark_stale(
    db: &impl ConnectionTrait,
    source: &str,
    scope: &str,
    since: DateTime<Utc>,
) -> Result<(usize, usize)> {
    let cis = ci_identifier::Entity::update_many()
        .col_expr(ci_identifier::Column::Stale, Expr::value(true))
        .filter(ci_identifier::Column::Source.eq(source))
        .filter(ci_identifier::Column::Scope.eq(scope))
        .filter(ci_identifier::Column::LastSeenAt.lt(since))
        .filter(ci_identifier::Column::Stale.eq(false))
        .exec(db)
        .await?
        .rows_affected;
    let relationships = relationship_sighting::Entity::update_many()
        .col_expr(relationship_sighting::Column::Stale, Expr::value(true))
        .filter(relationship_sighting::Column::Source.eq(source))
        .filter(relationship_sighting::Column::Scope.eq(scope))
        .filter(relationship_sighting::Column::LastSeenAt.lt(since))
        .filter(relationship_sighting::Column::Stale.eq(false))
        .exec(db)
        .await?
        .rows_affected;
    Ok((cis as usize, relationships as usize))
}

/// Records the batch in its run; closes the run (marking stale) on its final batch, or on a
/// full sync sent as one batch. Returns whether the run closed and what became stale.
async fn full_sync(
    db: &impl ConnectionTrait,
    batch: &UpsertBatch,
    at: DateTime<Utc>,
) -> Result<(bool, usize, usize)> {
    let (source, scope) = (
        batch.source.trim(),
        batch.scope.as_deref().unwrap_or_default(),
    );
    let Some(run_id) = &batch.run_id else {
        let (cis, relationships) = mark_stale(db, source, scope, at).await?;
        return Ok((true, cis, relationships));
    };
    let run = discovery_run::Entity::find_by_id(run_id.clone())
        .one(db)
        .await?;
    let run = match run {
        None => {
            discovery_run::ActiveModel {
                id: Set(run_id.clone()),
                source: Set(source.to_owned()),
                scope: Set(scope.to_owned()),
                started_at: Set(at),
                updated_at: Set(at),
                completed_at: Set(None),
                batches: Set(1),
                stale_cis: Set(0),
                stale_relationships: Set(0),
            }
            .insert(db)
            .await?
        }
        Some(run) => {
            if run.source != source || run.scope != scope {
                return Err(Error::invalid(
                    "runId",
                    format!(
                        "run `{run_id}` belongs to source `{}` and scope `{}`",
                        run.source, run.scope
                    ),
                ));
            }
            if run.completed_at.is_some() {
                return Err(Error::Conflict(format!(
                    "run `{run_id}` is already closed; start a new run"
                )));
            }
            let batches = run.batches + 1;
            let mut active: discovery_run::ActiveModel = run.into();
            active.batches = Set(batches);
            active.updated_at = Set(at);
            active.update(db).await?
        }
    };
    if !batch.final_batch {
        return Ok((false, 0, 0));
    }
    let (cis, relationships) = mark_stale(db, source, scope, run.started_at).await?;
    let mut active: discovery_run::ActiveModel = run.into();
    active.completed_at = Set(Some(at));
    active.stale_cis = Set(cis as i32);
    active.stale_relationships = Set(relationships as i32);
    active.update(db).await?;
    Ok((true, cis, relationships))
}

async fn apply(
    db: &DatabaseConnection,
    config: &DiscoveryConfig,
    batch: &UpsertBatch,
    actor: &Actor,
) -> Result<UpsertReport> {
    let source = batch.source.trim().to_owned();
    let mut uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    lock_writers(txn).await?;
    let at = now();
    let catalog = ClassCatalog::load(txn).await?;
    let types = TypeCatalog::load(txn).await?;
    let rules = RuleSet::load(txn, config.handover_after).await?;
    let cx = Context {
        source: &source,
        at,
        catalog: &catalog,
        rules: &rules,
        overrides_manual: catalog
            .all()
            .iter()
            .map(|c| (c.id, c.discovery_overrides_manual))
            .collect(),
        last_seen: HashMap::new(),
        phases: Phases::new(),
    };
    cx.phases.mark("begin");

    let mut item_results: Vec<Option<ItemResult>> = vec![None; batch.items.len()];
    let items = apply_items(&uow, &cx, batch, &mut item_results).await?;
    let mut relationship_results: Vec<Option<RelationshipResult>> =
        vec![None; batch.relationships.len()];
    apply_relationships(&uow, &cx, batch, &items, &mut relationship_results, &types).await?;
    cx.phases.mark("relationships");

    let mut report = UpsertReport {
        source: source.clone(),
        mode: batch.mode,
        dry_run: batch.dry_run,
        run_id: batch.run_id.clone(),
        run_closed: false,
        items: Counts::default(),
        item_results: item_results
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                r.unwrap_or_else(|| {
                    rejected(
                        index,
                        Error::internal(anyhow::anyhow!("item {index} was not processed")).into(),
                    )
                })
            })
            .collect(),
        relationships: Counts::default(),
        relationship_results: relationship_results
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                r.unwrap_or(RelationshipResult {
                    index,
                    relationship_id: None,
                    outcome: Outcome::Rejected,
                    error: Some(
                        Error::internal(anyhow::anyhow!("relationship {index} was not processed"))
                            .into(),
                    ),
                })
            })
            .collect(),
    };
    for r in &report.item_results {
        report.items.add(r.outcome);
    }
    for r in &report.relationship_results {
        report.relationships.add(r.outcome);
    }

    let any_rejected = report.items.rejected > 0 || report.relationships.rejected > 0;
    if batch.atomic && any_rejected {
        // Nothing is written.
        uow.rollback().await?;
        return Ok(refuse_all(report));
    }
    if batch.mode == Mode::FullSync {
        let (closed, stale_cis, stale_relationships) = full_sync(txn, batch, at).await?;
        report.run_closed = closed;
        report.items.stale = stale_cis;
        report.relationships.stale = stale_relationships;
    }
    if batch.dry_run {
        uow.rollback().await?;
        return Ok(report);
    }
    // An unchanged batch still records when the source last saw what it reported.
    uow.bookkeeping_only("when the source last saw its CIs and relationships");
    uow.commit().await?;
    cx.phases.mark("commit");
    tracing::debug!(
        source = %report.source,
        items = report.item_results.len(),
        relationships = report.relationship_results.len(),
        phases = %cx.phases.summary(),
        "discovery batch"
    );
    Ok(report)
}

/// The report of an atomic batch with a failure: every item not already rejected is
/// rejected as `BATCH_REJECTED`, and nothing was written.
fn refuse_all(mut report: UpsertReport) -> UpsertReport {
    let first_item = report
        .item_results
        .iter()
        .find(|r| r.error.is_some())
        .map(|r| r.index);
    let first_relationship = report
        .relationship_results
        .iter()
        .find(|r| r.error.is_some())
        .map(|r| r.index);
    let why = match (first_item, first_relationship) {
        (Some(i), _) => format!("not written: items[{i}] failed and the batch is atomic"),
        (None, Some(i)) => {
            format!("not written: relationships[{i}] failed and the batch is atomic")
        }
        (None, None) => "not written: the batch is atomic".to_owned(),
    };
    let refusal = Rejection::from(Error::BatchRejected(why));
    for r in &mut report.item_results {
        if r.error.is_none() {
            *r = rejected(r.index, refusal.clone());
        }
    }
    for r in &mut report.relationship_results {
        if r.error.is_none() {
            r.relationship_id = None;
            r.outcome = Outcome::Rejected;
            r.error = Some(refusal.clone());
        }
    }
    report.items = Counts {
        rejected: report.item_results.len(),
        ..Counts::default()
    };
    report.relationships = Counts {
        rejected: report.relationship_results.len(),
        ..Counts::default()
    };
    report
}
