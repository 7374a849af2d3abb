//! `cmdb import`: streams a file of discovered CIs and relationships into the CMDB, in
//! batches, through the same upsert as the GraphQL mutation.
//!
//! Formats: NDJSON (one record per line), a JSON array of records, or a JSON object with
//! `items` and `relationships` arrays. A record with `class` (or `externalId`) is an item;
//! one with `source`, `target` and `type` is a relationship. An item without `externalId`
//! is keyed by the values of its class's identifier attributes, which identify it as the
//! API's upsert does.
//!
//! The file is read three times and never held in memory whole: once to check every
//! record (a malformed one stops the import before anything is written), then items, then
//! relationships, so that a relationship may name an item anywhere in the file. When a
//! write fails part-way, the error says which batches were committed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::discovery::DiscoveryConfig;
use crate::domain::discovery::batch::{self, Mode, UpsertBatch, UpsertReport};
use crate::domain::discovery::upsert;
use crate::error::Error;
use crate::limits::Limits;
use records::{Identifiers, Record, read_records, record};

mod records;

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub file: PathBuf,
    pub source: String,
    /// Full sync of this scope, instead of a merge.
    pub full_sync_scope: Option<String>,
    pub batch_size: usize,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// Totals of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub items: batch::Counts,
    pub relationships: batch::Counts,
    /// The first rejections, as `record N: CODE message`.
    pub rejections: Vec<String>,
    pub batches: usize,
}

impl ImportSummary {
    fn add(&mut self, report: &UpsertReport, item_offset: usize, relationship_offset: usize) {
        for (total, counts) in [
            (&mut self.items, &report.items),
            (&mut self.relationships, &report.relationships),
        ] {
            total.created += counts.created;
            total.updated += counts.updated;
            total.unchanged += counts.unchanged;
            total.stale += counts.stale;
            total.rejected += counts.rejected;
        }
        let errors = report
            .item_results
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| ("item", item_offset + r.index, e)))
            .chain(report.relationship_results.iter().filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| ("relationship", relationship_offset + r.index, e))
            }));
        for (kind, index, error) in errors {
            if self.rejections.len() < 20 {
                self.rejections.push(format!(
                    "{kind} {}: {} {}",
                    index + 1,
                    error.code,
                    error.message
                ));
            }
        }
        self.batches += 1;
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (what, c) in [
            ("items", &self.items),
            ("relationships", &self.relationships),
        ] {
            writeln!(
                f,
                "{what}: {} created, {} updated, {} unchanged, {} stale, {} rejected",
                c.created, c.updated, c.unchanged, c.stale, c.rejected
            )?;
        }
        write!(f, "{} batches", self.batches)?;
        for rejection in &self.rejections {
            write!(f, "\n  {rejection}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Items,
    Relationships,
}

/// Reads the whole file once without writing anything: every record must be well-formed
/// JSON of the right shape before the first batch is written, so that a malformed line
/// stops the import with nothing half-done. Returns the counts of items and relationships.
fn check(
    path: &Path,
    identifiers: &Identifiers,
    read: Arc<AtomicU64>,
) -> std::result::Result<(usize, usize), String> {
    let (mut items, mut relationships) = (0, 0);
    let mut sink = |position: usize, value: Value| -> std::result::Result<(), String> {
        match record(value, identifiers).map_err(|e| format!("record {}: {e}", position + 1))? {
            Record::Item(_) => items += 1,
            Record::Relationship(_) => relationships += 1,
        }
        Ok(())
    };
    read_records(path, read, &mut sink)?;
    Ok((items, relationships))
}

/// Streams one pass over the file: records of the pass's kind, in batches.
fn stream_pass(
    path: PathBuf,
    pass: Pass,
    batch_size: usize,
    read: Arc<AtomicU64>,
    identifiers: Arc<Identifiers>,
) -> mpsc::Receiver<std::result::Result<Vec<Record>, String>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(batch_size);
        let mut sink = |position: usize, value: Value| -> std::result::Result<(), String> {
            let record =
                record(value, &identifiers).map_err(|e| format!("record {}: {e}", position + 1))?;
            let wanted = matches!(
                (&record, pass),
                (Record::Item(_), Pass::Items) | (Record::Relationship(_), Pass::Relationships)
            );
            if wanted {
                batch.push(record);
                if batch.len() >= batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    tx.blocking_send(Ok(full))
                        .map_err(|_| "stopped".to_owned())?;
                }
            }
            Ok(())
        };
        let outcome = read_records(&path, read, &mut sink);
        let _ = match outcome {
            Ok(()) if batch.is_empty() => Ok(()),
            Ok(()) => tx.blocking_send(Ok(batch)),
            Err(e) => tx.blocking_send(Err(e)),
        };
    });
    rx
}

/// An import that stopped part-way: what it had committed before, and why it stopped.
#[derive(Debug)]
pub struct ImportStopped {
    /// The batches committed before the failure (each batch is all-or-nothing).
    pub committed: ImportSummary,
    pub error: Error,
}

impl fmt::Display for ImportStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.committed.batches == 0 {
            return write!(f, "{}; nothing was imported", self.error);
        }
        write!(
            f,
            "{}\nCommitted before it stopped (each batch whole; running the same import again \
             is safe and finds them unchanged):\n{}",
            self.error, self.committed
        )
    }
}

/// Imports the file; returns the totals, or what was committed before it stopped. The
/// file is checked whole first: a malformed record stops it before anything is written.
pub async fn import(
    db: &DatabaseConnection,
    config: &DiscoveryConfig,
    limits: &Limits,
    options: &ImportOptions,
) -> std::result::Result<ImportSummary, ImportStopped> {
    let mut summary = ImportSummary::default();
    let stopped = |committed: &ImportSummary, error: Error| ImportStopped {
        committed: committed.clone(),
        error,
    };
    let size = std::fs::metadata(&options.file)
        .map_err(|e| {
            Error::invalid(
                "FILE",
                format!("cannot read {}: {e}", options.file.display()),
            )
        })
        .map_err(|e| stopped(&summary, e))?
        .len();
    let catalog = crate::domain::ci_class::ClassCatalog::load(db)
        .await
        .map_err(|e| stopped(&summary, e))?;
    let identifiers: Arc<Identifiers> = Arc::new(
        catalog
            .all()
            .iter()
            .map(|class| (class.name.clone(), catalog.effective_identifiers(class.id)))
            .collect(),
    );
    let read = Arc::new(AtomicU64::new(0));
    let bar = if options.progress {
        let bar = ProgressBar::new(size * 3);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("checking the file");
    let checked = {
        let (path, identifiers, read) = (options.file.clone(), identifiers.clone(), read.clone());
        tokio::task::spawn_blocking(move || check(&path, &identifiers, read)).await
    };
    match checked {
        Ok(Ok(_counts)) => {}
        Ok(Err(e)) => return Err(stopped(&summary, Error::invalid("FILE", e))),
        Err(join) => return Err(stopped(&summary, Error::internal(join))),
    }
    read.store(0, Ordering::Relaxed);
    let run_id = options
        .full_sync_scope
        .as_ref()
        .map(|_| format!("import-{}", uuid::Uuid::now_v7()));
    let batch_size = options.batch_size.clamp(1, limits.max_batch_size);
    let mut offsets = (0usize, 0usize);
    for (number, pass) in [Pass::Items, Pass::Relationships].into_iter().enumerate() {
        let mut batches = stream_pass(
            options.file.clone(),
            pass,
            batch_size,
            read.clone(),
            identifiers.clone(),
        );
        while let Some(records) = batches.recv().await {
            let records = records
                .map_err(|e| Error::invalid("FILE", e))
                .map_err(|e| stopped(&summary, e))?;
            let mut items = Vec::new();
            let mut relationships = Vec::new();
            for record in records {
                match record {
                    Record::Item(item) => items.push(item),
                    Record::Relationship(relationship) => relationships.push(relationship),
                }
            }
            let (item_count, relationship_count) = (items.len(), relationships.len());
            let batch = UpsertBatch {
                source: options.source.clone(),
                items,
                relationships,
                mode: if options.full_sync_scope.is_some() {
                    Mode::FullSync
                } else {
                    Mode::Merge
                },
                scope: options.full_sync_scope.clone(),
                run_id: run_id.clone(),
                final_batch: false,
                dry_run: false,
                atomic: false,
            };
            let report = upsert::upsert(db, config, limits, &batch, None)
                .await
                .map_err(|e| stopped(&summary, e))?;
            summary.add(&report, offsets.0, offsets.1);
            offsets.0 += item_count;
            offsets.1 += relationship_count;
            let position = (number as u64 + 1) * size + read.load(Ordering::Relaxed).min(size);
            bar.set_position(position);
            bar.set_message(format!("{} items, {} relationships", offsets.0, offsets.1));
        }
        read.store(0, Ordering::Relaxed);
    }
    if run_id.is_some() {
        // Close the run: what the source no longer reports in the scope becomes stale.
        let closing = UpsertBatch {
            source: options.source.clone(),
            items: Vec::new(),
            relationships: Vec::new(),
            mode: Mode::FullSync,
            scope: options.full_sync_scope.clone(),
            run_id,
            final_batch: true,
            dry_run: false,
            atomic: false,
        };
        let report = upsert::upsert(db, config, limits, &closing, None)
            .await
            .map_err(|e| stopped(&summary, e))?;
        summary.add(&report, offsets.0, offsets.1);
    }
    bar.finish_and_clear();
    Ok(summary)
}
