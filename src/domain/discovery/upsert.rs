//! The batch upsert: one call per batch of discovered CIs and relationships, in one unit of
//! work (on PostgreSQL also under an advisory lock that serialises discovery writers):
//! check the batch and its items; load what is stored for them ([`super::snapshot`]);
//! decide everything ([`super::plan`], a pure function); write the decisions in bulk
//! ([`super::write`]); in full-sync mode, mark what the source no longer reports stale. A
//! lost race (a lock timeout, a serialisation failure) replays the whole batch.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{ci_identifier, discovery_run, relationship_sighting};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, prelude::Expr,
};
use uuid::Uuid;

use super::super::audit::Actor;
use super::super::ci_class::ClassCatalog;
use super::super::relationship_type::TypeCatalog;
use super::super::unit_of_work::{EventSink, UnitOfWork};
use super::super::{Error, Result};
use super::DiscoveryConfig;
use super::batch::{Counts, Mode, UpsertBatch, UpsertReport, check_batch, refuse_all};
use super::plan::{self, Context};
use super::rules::RuleSet;
use super::write::{self, ConcurrentChange};
use super::{snapshot, statistics};
use crate::limits::Limits;

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
    upsert_with_sink(db, config, limits, batch, sender, None).await
}

/// The same, telling `sink` of the committed changes.
pub async fn upsert_with_sink(
    db: &DatabaseConnection,
    config: &DiscoveryConfig,
    limits: &Limits,
    batch: &UpsertBatch,
    sender: Option<&str>,
    sink: Option<Arc<dyn EventSink>>,
) -> Result<UpsertReport> {
    check_batch(batch, limits)?;
    let source = batch.source.trim();
    let actor = Actor::named(sender.unwrap_or(source)).for_source(source);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut uow = UnitOfWork::begin_with_sink(db, &actor, sink.clone()).await?;
        match upsert_in(&mut uow, config, batch).await {
            Err(err) if attempt < 6 && is_retryable(&err) => {
                drop(uow);
                tracing::debug!(attempt, error = %err, "discovery batch replayed");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Ok(Applied::Write(report)) => {
                let committing = std::time::Instant::now();
                match uow.commit().await {
                    // A race lost at commit (PostgreSQL checks some constraints then) is
                    // replayed like one lost before.
                    Err(err) if attempt < 6 && is_retryable(&err) => {
                        tracing::debug!(attempt, error = %err, "discovery batch replayed");
                        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                        continue;
                    }
                    other => {
                        other?;
                    }
                }
                tracing::debug!(
                    commit_ms = committing.elapsed().as_secs_f64() * 1000.0,
                    "discovery batch committed"
                );
                if !report.dry_run {
                    let added = report.items.created + report.relationships.created;
                    statistics::note_growth(db, added as u64).await;
                }
                return Ok(report);
            }
            Ok(Applied::Discard(report)) => {
                uow.rollback().await?;
                return Ok(report);
            }
            Err(err) => return Err(err),
        }
    }
}

/// What became of a batch in its unit of work.
pub enum Applied {
    /// Commit it.
    Write(UpsertReport),
    /// Roll it back: a dry run, or an atomic batch with a refusal.
    Discard(UpsertReport),
}

/// Applies a batch in a unit of work the caller commits (or discards, as told).
pub async fn upsert_in(
    uow: &mut UnitOfWork,
    config: &DiscoveryConfig,
    batch: &UpsertBatch,
) -> Result<Applied> {
    let source = batch.source.trim().to_owned();
    let txn = uow.txn();
    lock_writers(txn).await?;
    let at = uow.at();
    let catalog = ClassCatalog::load(txn).await?;
    let types = TypeCatalog::load(txn).await?;
    let rules = RuleSet::load(txn, config.handover_after).await?;
    let started = std::time::Instant::now();
    let (prepared, refused) = plan::prepare(&batch.items, &catalog);
    let needs = plan::needs(batch, &prepared);
    let snapshot = snapshot::load(txn, &source, &needs, &types).await?;
    let loaded = started.elapsed();
    let cx = Context {
        source: &source,
        at,
        mode: batch.mode,
        scope: batch.scope.as_deref(),
        catalog: &catalog,
        types: &types,
        rules: &rules,
    };
    let decided = plan::plan(&cx, batch, prepared, refused, &snapshot, &mut Uuid::now_v7)?;
    let planned = started.elapsed();

    let mut report = UpsertReport {
        source: source.clone(),
        mode: batch.mode,
        dry_run: batch.dry_run,
        run_id: batch.run_id.clone(),
        run_closed: false,
        items: Counts::default(),
        item_results: decided.item_results.clone(),
        relationships: Counts::default(),
        relationship_results: decided.relationship_results.clone(),
    };
    for r in &report.item_results {
        report.items.add(r.outcome);
    }
    for r in &report.relationship_results {
        report.relationships.add(r.outcome);
    }
    let any_rejected = report.items.rejected > 0 || report.relationships.rejected > 0;
    if batch.atomic && any_rejected {
        return Ok(Applied::Discard(refuse_all(report)));
    }
    let target = write::Target {
        source: &source,
        scope: batch.scope.as_deref(),
        at,
        catalog: &catalog,
    };
    write::write(uow, &target, decided).await?;
    if batch.mode == Mode::FullSync {
        let (closed, stale_cis, stale_relationships) = full_sync(uow.txn(), batch, at).await?;
        report.run_closed = closed;
        report.items.stale = stale_cis;
        report.relationships.stale = stale_relationships;
    }
    tracing::debug!(
        source = %report.source,
        items = report.item_results.len(),
        relationships = report.relationship_results.len(),
        load_ms = loaded.as_secs_f64() * 1000.0,
        plan_ms = (planned - loaded).as_secs_f64() * 1000.0,
        write_ms = (started.elapsed() - planned).as_secs_f64() * 1000.0,
        "discovery batch"
    );
    if batch.dry_run {
        return Ok(Applied::Discard(report));
    }
    // A batch that changed no record still records when the source last saw what it
    // reported.
    uow.bookkeeping_only("when the source last saw its CIs and relationships");
    Ok(Applied::Write(report))
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
