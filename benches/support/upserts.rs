//! Discovery batches of a synthetic estate, as `upsertConfigurationItems` request bodies.

#![allow(dead_code)]

use serde_json::{Value, json};

use super::estate;

/// Items (or relationships) per batch.
pub const BATCH: usize = 1_000;

/// The upsert, with its per-item report.
pub const UPSERT: &str = "mutation($input: UpsertConfigurationItemsInput!) { upsertConfigurationItems(input: $input) { created updated unchanged rejected relationships { created updated unchanged rejected } } }";

/// One discovered item; `revision` (when given) changes its attributes.
pub fn item(ci: &estate::EstateCi, revision: Option<u64>) -> Value {
    let mut attributes = ci.attributes.clone();
    if let Some(revision) = revision
        && let Some(object) = attributes.as_object_mut()
    {
        object.insert("benchmark_revision".into(), json!(revision));
    }
    json!({ "class": ci.class, "name": ci.name, "externalId": format!("ci-{}", ci.key), "attributes": attributes })
}

fn body(input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "query": UPSERT, "variables": { "input": input } })).expect("JSON")
}

/// Item batches of the CIs `keep` selects, those `change` selects at `revision`.
pub fn item_bodies(
    estate: &estate::Estate,
    keep: impl Fn(usize) -> bool,
    change: impl Fn(usize) -> bool,
    revision: u64,
) -> Vec<Vec<u8>> {
    let cis: Vec<&estate::EstateCi> = estate.cis.iter().filter(|ci| keep(ci.key)).collect();
    cis.chunks(BATCH)
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .map(|ci| item(ci, change(ci.key).then_some(revision)))
                .collect();
            body(json!({ "source": "bench", "items": items }))
        })
        .collect()
}

/// Relationship batches of the whole estate.
pub fn relationship_bodies(estate: &estate::Estate) -> Vec<Vec<u8>> {
    estate
        .relationships
        .chunks(BATCH)
        .map(|chunk| {
            let relationships: Vec<Value> = chunk
                .iter()
                .map(|r| {
                    json!({ "source": { "externalId": format!("ci-{}", r.source) },
                            "target": { "externalId": format!("ci-{}", r.target) }, "type": r.kind })
                })
                .collect();
            body(json!({ "source": "bench", "items": [], "relationships": relationships }))
        })
        .collect()
}
