//! Carrying out a plan: every row it decided, written with multi-row statements (see
//! [`super::super::bulk`]), in the unit of work of the batch, which records its events.

use chrono::{DateTime, Utc};
use entity::{
    ci_identifier, configuration_item, identity_key, relationship, relationship_sighting,
};
use sea_orm::{ConnectionTrait, DbBackend, EntityName, Value};
use uuid::Uuid;

use super::super::bulk::{self, Rows};
use super::super::ci_class::ClassCatalog;
use super::super::unit_of_work::UnitOfWork;
use super::super::{Error, Result};
use super::identity;
use super::plan::Plan;

/// A write lost a race with another writer; the batch is replayed.
#[derive(Debug, thiserror::Error)]
#[error("a CI changed while the batch was being written")]
pub struct ConcurrentChange;

/// What the write needs besides the plan.
pub struct Target<'a> {
    pub source: &'a str,
    pub scope: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub catalog: &'a ClassCatalog,
}

/// Writes the plan and records its events in the unit of work.
pub async fn write(uow: &UnitOfWork, target: &Target<'_>, plan: Plan) -> Result<()> {
    let db = uow.txn();
    let started = std::time::Instant::now();
    let mut steps: Vec<(&str, f64)> = Vec::new();
    let mut mark = |step: &'static str| {
        steps.push((step, started.elapsed().as_secs_f64() * 1000.0));
    };
    bulk::insert(
        db,
        Rows::of_models::<configuration_item::Entity>(&plan.created_cis),
        "",
    )
    .await?;
    mark("created");
    update_cis(db, &plan).await?;
    mark("updated");
    rekey(db, target.catalog, &plan).await?;
    mark("identity keys");
    identifiers(db, target, &plan).await?;
    mark("identifiers");
    bulk::insert(
        db,
        Rows::of_models::<relationship::Entity>(&plan.created_relationships),
        "",
    )
    .await?;
    let changed: Vec<relationship::Model> = plan
        .updated_relationships
        .iter()
        .map(|(_, after)| after.clone())
        .collect();
    bulk::insert(
        db,
        Rows::of_models::<relationship::Entity>(&changed),
        &bulk::upsert_tail(&["id"], &["attributes"], None),
    )
    .await?;
    mark("relationships");
    sightings(db, target, &plan.sightings).await?;
    mark("sightings");
    tracing::debug!(?steps, "discovery plan written (ms since start)");
    uow.record_all(plan.events);
    Ok(())
}

/// Writes the changed CIs, each only if it is still at the version the plan read.
async fn update_cis(db: &impl ConnectionTrait, plan: &Plan) -> Result<()> {
    if plan.updated_cis.is_empty() {
        return Ok(());
    }
    let after: Vec<configuration_item::Model> =
        plan.updated_cis.iter().map(|(_, a)| a.clone()).collect();
    let expected = after.len() as u64;
    let tail = bulk::upsert_tail(
        &["id"],
        &[
            "name",
            "description",
            "status",
            "environment",
            "criticality",
            "owner",
            "attributes",
            "version",
            "updated_at",
            "provenance",
        ],
        Some("\"configuration_item\".\"version\" = excluded.\"version\" - 1"),
    );
    let written = bulk::insert(
        db,
        Rows::of_models::<configuration_item::Entity>(&after),
        &tail,
    )
    .await?;
    if written != expected {
        return Err(Error::internal(ConcurrentChange));
    }
    Ok(())
}

/// Rewrites the identity keys of the CIs whose identifier values may have changed.
async fn rekey(db: &impl ConnectionTrait, catalog: &ClassCatalog, plan: &Plan) -> Result<()> {
    if plan.rekeyed.is_empty() {
        return Ok(());
    }
    let created: Vec<Uuid> = plan.created_cis.iter().map(|c| c.id).collect();
    let stored: Vec<Uuid> = plan
        .rekeyed
        .iter()
        .filter(|id| !created.contains(id))
        .copied()
        .collect();
    for chunk in stored.chunks(1_000) {
        let sql = format!(
            "DELETE FROM identity_key WHERE ci_id IN ({})",
            bulk::placeholders(1, chunk.len())
        );
        db.execute_raw(bulk::statement(
            db,
            &sql,
            chunk.iter().map(|id| Value::from(*id)).collect(),
        ))
        .await?;
    }
    let mut rows = Rows::new(
        identity_key::Entity.table_name(),
        &["class_id", "attribute", "value", "ci_id"],
    );
    let states = plan
        .created_cis
        .iter()
        .chain(plan.updated_cis.iter().map(|(_, after)| after))
        .filter(|ci| plan.rekeyed.binary_search(&ci.id).is_ok());
    for ci in states {
        for (attribute, value) in
            identity::keys(&catalog.effective_identifiers(ci.class_id), &ci.attributes)
        {
            rows.push(vec![
                ci.class_id.into(),
                attribute.into(),
                value.into(),
                ci.id.into(),
            ]);
        }
    }
    bulk::insert(db, rows, "ON CONFLICT DO NOTHING").await?;
    Ok(())
}

/// Records the external ids used for the first time, and marks the others seen.
async fn identifiers(db: &impl ConnectionTrait, target: &Target<'_>, plan: &Plan) -> Result<()> {
    let mut rows = Rows::new(
        ci_identifier::Entity.table_name(),
        &[
            "source",
            "external_id",
            "ci_id",
            "scope",
            "first_seen_at",
            "last_seen_at",
            "stale",
        ],
    );
    for (external_id, ci_id) in &plan.new_identifiers {
        rows.push(vec![
            target.source.into(),
            external_id.as_str().into(),
            (*ci_id).into(),
            target.scope.map(str::to_owned).into(),
            target.at.into(),
            target.at.into(),
            false.into(),
        ]);
    }
    bulk::insert(db, rows, "").await?;
    if plan.seen_identifiers.is_empty() {
        return Ok(());
    }
    let list = match db.get_database_backend() {
        DbBackend::Postgres => "SELECT jsonb_array_elements_text(CAST($3 AS jsonb))",
        _ => "SELECT value FROM json_each($3)",
    };
    let scope = if target.scope.is_some() {
        ", scope = $4"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE ci_identifier SET last_seen_at = $1, stale = false{scope} \
         WHERE source = $2 AND external_id IN ({list})"
    );
    let mut values: Vec<Value> = vec![
        target.at.into(),
        target.source.into(),
        serde_json::to_string(&plan.seen_identifiers)?.into(),
    ];
    if let Some(scope) = target.scope {
        values.push(scope.into());
    }
    db.execute_raw(bulk::statement(db, &sql, values)).await?;
    Ok(())
}

/// Records that the source saw these relationships now (new sightings, or refreshed).
async fn sightings(db: &impl ConnectionTrait, target: &Target<'_>, ids: &[Uuid]) -> Result<()> {
    let mut rows = Rows::new(
        relationship_sighting::Entity.table_name(),
        &[
            "relationship_id",
            "source",
            "scope",
            "first_seen_at",
            "last_seen_at",
            "stale",
        ],
    );
    for id in ids {
        rows.push(vec![
            (*id).into(),
            target.source.into(),
            target.scope.map(str::to_owned).into(),
            target.at.into(),
            target.at.into(),
            false.into(),
        ]);
    }
    bulk::insert(
        db,
        rows,
        &bulk::upsert_tail(
            &["relationship_id", "source"],
            &["last_seen_at", "stale", "scope"],
            None,
        ),
    )
    .await?;
    Ok(())
}
