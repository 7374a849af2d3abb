//! Reading the records of an import file: its format (NDJSON, a JSON array, or a document
//! with `items` and `relationships`), streamed one record at a time, and each record turned
//! into a discovered item or relationship.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::domain::discovery::batch::{CiRef, ItemInput, RelationshipInput};

/// One record of the file.
#[derive(Debug)]
pub(super) enum Record {
    Item(ItemInput),
    Relationship(RelationshipInput),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    class: String,
    name: String,
    #[serde(default)]
    external_id: Option<String>,
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

/// The key of an item without `externalId`: its class and the values of the identifier
/// attributes that apply to it (its own, or its class's), which is how the upsert finds the
/// CI anyway. The same values give the same key on every run, so a re-import is idempotent.
fn identifier_key(
    class: &str,
    attributes: Option<&Value>,
    identifiers: &[String],
) -> std::result::Result<String, String> {
    let values: Vec<String> = identifiers
        .iter()
        .filter_map(|name| {
            let value = attributes?.get(name)?;
            (!value.is_null()).then(|| format!("{name}={value}"))
        })
        .collect();
    if values.is_empty() {
        return Err(if identifiers.is_empty() {
            format!(
                "an item needs `externalId`: class `{class}` declares no identifier attributes \
                 to identify it by"
            )
        } else {
            format!(
                "an item needs `externalId` or a value for one of the identifier attributes of \
                 class `{class}`: {}",
                identifiers.join(", ")
            )
        });
    }
    Ok(format!("{class}:{}", values.join(",")))
}

/// The identifier attributes that apply to items of each class, for items without
/// `externalId`.
pub type Identifiers = std::collections::HashMap<String, Vec<String>>;

pub(super) fn record(
    value: Value,
    identifiers: &Identifiers,
) -> std::result::Result<Record, String> {
    let is_relationship = value.get("externalId").is_none()
        && value.get("class").is_none()
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
        let external_id = match raw.external_id {
            Some(external_id) => external_id,
            None => {
                let wanted = raw
                    .identifying_attributes
                    .as_deref()
                    .or_else(|| identifiers.get(&raw.class).map(Vec::as_slice))
                    .unwrap_or_default();
                identifier_key(&raw.class, raw.attributes.as_ref(), wanted)?
            }
        };
        Ok(Record::Item(ItemInput {
            class: raw.class,
            name: raw.name,
            external_id,
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
pub(super) struct Counting<R> {
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

pub(super) type Sink<'a> = dyn FnMut(usize, Value) -> std::result::Result<(), String> + 'a;

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
pub(super) fn read_records(
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
        let none = Identifiers::new();
        let record = |value: Value| record(value, &none);
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

    #[test]
    fn an_item_without_external_id_is_keyed_by_its_identifier_attributes() {
        let identifiers: Identifiers = [(
            "server".to_owned(),
            vec!["serial_number".to_owned(), "fqdn".to_owned()],
        )]
        .into();
        let keyed = |value: Value| match record(value, &identifiers) {
            Ok(Record::Item(item)) => Ok(item.external_id),
            Ok(Record::Relationship(_)) => Err("a relationship".to_owned()),
            Err(e) => Err(e),
        };
        assert_eq!(
            keyed(
                serde_json::json!({"class": "server", "name": "a", "attributes": {"fqdn": "a.example"}})
            ),
            Ok(r#"server:fqdn="a.example""#.to_owned())
        );
        let missing = keyed(serde_json::json!({"class": "server", "name": "a", "attributes": {}}));
        assert!(missing.is_err_and(|e| e.contains("serial_number, fqdn")));
        let unknown_class = keyed(serde_json::json!({"class": "thing", "name": "a"}));
        assert!(unknown_class.is_err_and(|e| e.contains("declares no identifier")));
    }
}
