//! `cmdb import`: streams a file of discovered CIs and relationships into the CMDB, in
//! batches, through the same upsert as the GraphQL mutation.
//!
//! Formats: NDJSON (one record per line), a JSON array of records, or a JSON object with
//! `items` and `relationships` arrays. A record with `externalId` is an item; one with
//! `source`, `target` and `type` is a relationship. The file is read twice, items first and
//! relationships second, so that a relationship may name an item anywhere in the file; it
//! is never held in memory whole.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::discovery::DiscoveryConfig;
use crate::domain::discovery::batch::{
    self, CiRef, ItemInput, Mode, RelationshipInput, UpsertBatch, UpsertReport,
};
use crate::domain::discovery::upsert;
use crate::error::{Error, Result};
use crate::limits::Limits;

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

/// One record of the file.
#[derive(Debug)]
enum Record {
    Item(ItemInput),
    Relationship(RelationshipInput),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    class: String,
    name: String,
    external_id: String,
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<entity::values::LifecycleStatus>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    criticality: Option<entity::values::Criticality>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    identifying_attributes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRef {
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    id: Option<uuid::Uuid>,
}

#[derive(Deserialize)]
struct RawRelationship {
    source: RawRef,
    target: RawRef,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    attributes: Option<Value>,
}

fn reference(raw: RawRef) -> std::result::Result<CiRef, String> {
    match (raw.external_id, raw.id) {
        (Some(external_id), None) => Ok(CiRef::ExternalId(external_id)),
        (None, Some(id)) => Ok(CiRef::Id(id)),
        _ => Err("a relationship end needs exactly one of `externalId` and `id`".into()),
    }
}

fn record(value: Value) -> std::result::Result<Record, String> {
    let is_relationship = value.get("externalId").is_none()
        && value.get("source").is_some()
        && value.get("target").is_some();
    if is_relationship {
        let raw: RawRelationship = serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(Record::Relationship(RelationshipInput {
            source: reference(raw.source)?,
            target: reference(raw.target)?,
            type_name: raw.kind,
            attributes: raw.attributes,
        }))
    } else {
        let raw: RawItem = serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(Record::Item(ItemInput {
            class: raw.class,
            name: raw.name,
            external_id: raw.external_id,
            attributes: raw.attributes,
            description: raw.description,
            status: raw.status,
            environment: raw.environment,
            criticality: raw.criticality,
            owner: raw.owner,
            identifying_attributes: raw.identifying_attributes,
        }))
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Lines,
    Array,
    Document,
}

fn detect(path: &Path) -> std::io::Result<Format> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut first_line = String::new();
    loop {
        first_line.clear();
        if reader.read_line(&mut first_line)? == 0 {
            return Ok(Format::Lines);
        }
        if !first_line.trim().is_empty() {
            break;
        }
    }
    let line = first_line.trim();
    if line.starts_with('[') {
        Ok(Format::Array)
    } else if serde_json::from_str::<serde_json::Map<String, Value>>(line).is_ok() {
        let one: Value = serde_json::from_str(line).unwrap_or_default();
        // A whole document on one line is still a document.
        if one.get("items").is_some_and(Value::is_array) {
            Ok(Format::Document)
        } else {
            Ok(Format::Lines)
        }
    } else {
        Ok(Format::Document)
    }
}

type Sink<'a> = dyn FnMut(usize, Value) -> std::result::Result<(), String> + 'a;

/// Feeds each element of a JSON array to the sink, one at a time.
struct Elements<'a, 'b> {
    sink: &'a mut Sink<'b>,
    count: &'a mut usize,
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            (self.sink)(*self.count, value).map_err(de::Error::custom)?;
            *self.count += 1;
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

/// Feeds the elements of the document's `items` and `relationships` arrays to the sink.
struct Document<'a, 'b> {
    sink: &'a mut Sink<'b>,
    count: &'a mut usize,
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `items` and `relationships` arrays")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" || key == "relationships" {
                map.next_value_seed(Elements {
                    sink: &mut *self.sink,
                    count: &mut *self.count,
                })?;
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads every record of the file, in order, calling `sink` with its position and value.
fn read_records(
    path: &Path,
    read: Arc<AtomicU64>,
    sink: &mut Sink,
) -> std::result::Result<(), String> {
    let format = detect(path).map_err(|e| e.to_string())?;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = BufReader::with_capacity(1 << 16, Counting { inner: file, read });
    let mut count = 0;
    match format {
        Format::Lines => {
            for (number, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| e.to_string())?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value =
                    serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", number + 1))?;
                sink(count, value)?;
                count += 1;
            }
        }
        Format::Array => {
            let mut deserializer = serde_json::Deserializer::from_reader(reader);
            Elements {
                sink,
                count: &mut count,
            }
            .deserialize(&mut deserializer)
            .map_err(|e| e.to_string())?;
        }
        Format::Document => {
            let mut deserializer = serde_json::Deserializer::from_reader(reader);
            de::Deserializer::deserialize_map(
                &mut deserializer,
                Document {
                    sink,
                    count: &mut count,
                },
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Items,
    Relationships,
}

/// Streams one pass over the file: records of the pass's kind, in batches.
fn stream_pass(
    path: PathBuf,
    pass: Pass,
    batch_size: usize,
    read: Arc<AtomicU64>,
) -> mpsc::Receiver<std::result::Result<Vec<Record>, String>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(batch_size);
        let mut sink = |position: usize, value: Value| -> std::result::Result<(), String> {
            let record = record(value).map_err(|e| format!("record {}: {e}", position + 1))?;
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

/// Imports the file; returns the totals.
pub async fn import(
    db: &DatabaseConnection,
    config: &DiscoveryConfig,
    limits: &Limits,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    let size = std::fs::metadata(&options.file)
        .map_err(|e| {
            Error::invalid(
                "FILE",
                format!("cannot read {}: {e}", options.file.display()),
            )
        })?
        .len();
    let read = Arc::new(AtomicU64::new(0));
    let bar = if options.progress {
        let bar = ProgressBar::new(size * 2);
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
    let run_id = options
        .full_sync_scope
        .as_ref()
        .map(|_| format!("import-{}", uuid::Uuid::now_v7()));
    let batch_size = options.batch_size.clamp(1, limits.max_batch_size);
    let mut summary = ImportSummary::default();
    let mut offsets = (0usize, 0usize);
    for (number, pass) in [Pass::Items, Pass::Relationships].into_iter().enumerate() {
        let mut batches = stream_pass(options.file.clone(), pass, batch_size, read.clone());
        while let Some(records) = batches.recv().await {
            let records = records.map_err(|e| Error::invalid("FILE", e))?;
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
            let report = upsert::upsert(db, config, limits, &batch, None).await?;
            summary.add(&report, offsets.0, offsets.1);
            offsets.0 += item_count;
            offsets.1 += relationship_count;
            bar.set_position(number as u64 * size + read.load(Ordering::Relaxed).min(size));
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
        let report = upsert::upsert(db, config, limits, &closing, None).await?;
        summary.add(&report, offsets.0, offsets.1);
    }
    bar.finish_and_clear();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(content: &str) -> Vec<Value> {
        let mut file = tempfile::NamedTempFile::new().expect("a file");
        file.write_all(content.as_bytes()).expect("written");
        let mut seen = Vec::new();
        let mut sink = |_: usize, value: Value| -> std::result::Result<(), String> {
            seen.push(value);
            Ok(())
        };
        read_records(file.path(), Arc::new(AtomicU64::new(0)), &mut sink).expect("read");
        seen
    }

    #[test]
    fn the_three_formats_give_the_same_records() {
        let item = r#"{"class":"server","name":"a","externalId":"1"}"#;
        let rel = r#"{"source":{"externalId":"1"},"target":{"externalId":"2"},"type":"runs_on"}"#;
        let lines = collect(&format!("{item}\n\n{rel}\n"));
        let array = collect(&format!("[{item},\n{rel}]"));
        let document = collect(&format!(
            "{{\"items\": [{item}],\n \"relationships\": [{rel}]}}"
        ));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines, array);
        assert_eq!(lines, document);
    }

    #[test]
    fn records_are_items_or_relationships() {
        let item = record(
            serde_json::json!({"class": "server", "name": "a", "externalId": "1", "status": "PLANNED"}),
        );
        assert!(matches!(
            item,
            Ok(Record::Item(ItemInput {
                status: Some(_),
                ..
            }))
        ));
        let relationship = record(
            serde_json::json!({"source": {"id": uuid::Uuid::nil()}, "target": {"externalId": "x"}, "type": "uses"}),
        );
        assert!(matches!(relationship, Ok(Record::Relationship(_))));
        let both_ends = record(
            serde_json::json!({"source": {"id": uuid::Uuid::nil(), "externalId": "y"}, "target": {"externalId": "x"}, "type": "uses"}),
        );
        assert!(both_ends.is_err());
        assert!(record(serde_json::json!({"name": "no class"})).is_err());
    }
}
