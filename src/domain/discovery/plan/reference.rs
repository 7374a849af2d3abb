//! The plan checked against a reference model: a plain, item-by-item simulation of how a
//! single source's batches identify and update CIs of one class with one identifier
//! attribute. Random sequences of batches go through both; the plan must decide every item
//! as the model does, never create a duplicate, and find a repeated batch unchanged.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use entity::values::{AttributeDefinition, AttributeDefinitions, AttributeNames, AttributeType};
use entity::{ci_class, configuration_item};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::super::super::ci_class::ClassCatalog;
use super::super::super::relationship_type::TypeCatalog;
use super::super::batch::{ItemInput, Mode, Outcome, UpsertBatch};
use super::super::rules::RuleSet;
use super::{Context, Known, Plan, Snapshot, needs, plan, prepare};

const CLASS: i32 = 1;
const SOURCE: &str = "probe";

fn catalog() -> ClassCatalog {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    ClassCatalog::new(vec![ci_class::Model {
        id: CLASS,
        name: "server".into(),
        label: "Server".into(),
        description: None,
        parent_id: None,
        attributes: AttributeDefinitions(vec![
            AttributeDefinition {
                name: "serial".into(),
                kind: AttributeType::String,
                required: false,
                recommended: false,
                description: None,
            },
            AttributeDefinition {
                name: "memory".into(),
                kind: AttributeType::Integer,
                required: false,
                recommended: false,
                description: None,
            },
        ]),
        identifier_attributes: AttributeNames(vec!["serial".into()]),
        created_at: at,
        updated_at: at,
        discovery_overrides_manual: false,
    }])
}

/// One reported item: external id, serial number (if any), memory.
type Report = (u8, Option<u8>, u8);

fn input((external, serial, memory): Report) -> ItemInput {
    let mut attributes = json!({ "memory": memory });
    if let Some(serial) = serial {
        attributes["serial"] = json!(format!("SN{serial}"));
    }
    ItemInput {
        class: "server".into(),
        name: format!("host-{external}"),
        external_id: format!("x{external}"),
        attributes: Some(attributes),
        ..ItemInput::default()
    }
}

/// The model's CI.
#[derive(Debug, Clone, PartialEq)]
struct ModelCi {
    name: u8,
    serial: Option<u8>,
    memory: u8,
}

/// The reference: CIs, and the external ids the source gave them.
#[derive(Debug, Default)]
struct Model {
    cis: Vec<ModelCi>,
    external: HashMap<u8, usize>,
}

/// What the model says of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

impl Model {
    fn apply(&mut self, batch: &[Report]) -> Vec<Expect> {
        let mut outcomes = Vec::new();
        let mut seen_external: Vec<u8> = Vec::new();
        let mut claimed: Vec<usize> = Vec::new();
        let mut new_serials: Vec<u8> = Vec::new();
        // Items are identified against what was stored when the batch began.
        let stored = self.cis.clone();
        for &(external, serial, memory) in batch {
            if seen_external.contains(&external) {
                outcomes.push(Expect::Rejected);
                continue;
            }
            seen_external.push(external);
            let target = match self.external.get(&external) {
                Some(&ci) => Some(ci),
                None => match serial {
                    Some(serial) if new_serials.contains(&serial) => {
                        outcomes.push(Expect::Rejected);
                        continue;
                    }
                    Some(serial) => {
                        let matching: Vec<usize> = (0..stored.len())
                            .filter(|&i| stored[i].serial == Some(serial))
                            .collect();
                        match matching.as_slice() {
                            [one] => Some(*one),
                            [] => None,
                            _ => {
                                outcomes.push(Expect::Rejected);
                                continue;
                            }
                        }
                    }
                    None => None,
                },
            };
            match target {
                Some(ci) if claimed.contains(&ci) => outcomes.push(Expect::Rejected),
                Some(ci) => {
                    claimed.push(ci);
                    self.external.insert(external, ci);
                    let current = &mut self.cis[ci];
                    // A serial the source does not report stays as it is.
                    let after = ModelCi {
                        name: external,
                        serial: serial.or(current.serial),
                        memory,
                    };
                    if *current == after {
                        outcomes.push(Expect::Unchanged);
                    } else {
                        *current = after;
                        outcomes.push(Expect::Updated);
                    }
                }
                None => {
                    if let Some(serial) = serial {
                        new_serials.push(serial);
                    }
                    self.cis.push(ModelCi {
                        name: external,
                        serial,
                        memory,
                    });
                    let ci = self.cis.len() - 1;
                    claimed.push(ci);
                    self.external.insert(external, ci);
                    outcomes.push(Expect::Created);
                }
            }
        }
        outcomes
    }
}

/// The stored state the plan sees, kept up to date with each plan as the write would.
#[derive(Default)]
struct Store {
    cis: HashMap<Uuid, configuration_item::Model>,
    external: HashMap<String, Uuid>,
}

impl Store {
    fn snapshot(&self, at: DateTime<Utc>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (external, ci) in &self.external {
            snapshot.known.insert(
                external.clone(),
                Known {
                    ci_id: *ci,
                    status: self.cis[ci].status,
                    last_seen_at: at,
                    stale: false,
                    scope: None,
                },
            );
        }
        for ci in self.cis.values() {
            if let Some(value) = ci
                .attributes
                .get("serial")
                .and_then(super::super::identity::normalise)
            {
                snapshot
                    .identity
                    .entry((CLASS, "serial".into(), value))
                    .or_default()
                    .push(ci.id);
            }
        }
        snapshot.cis = self.cis.clone();
        snapshot
    }

    fn apply(&mut self, plan: &Plan) {
        for ci in &plan.created_cis {
            self.cis.insert(ci.id, ci.clone());
        }
        for (_, after) in &plan.updated_cis {
            self.cis.insert(after.id, after.clone());
        }
        for (external, ci) in &plan.new_identifiers {
            self.external.insert(external.clone(), *ci);
        }
    }
}

fn run(store: &mut Store, batch: &[Report], at: DateTime<Utc>) -> Plan {
    let catalog = catalog();
    let types = TypeCatalog::new(Vec::<entity::relationship_type::Model>::new());
    let rules = RuleSet::default();
    let batch = UpsertBatch {
        source: SOURCE.into(),
        items: batch.iter().copied().map(input).collect(),
        relationships: Vec::new(),
        mode: Mode::Merge,
        scope: None,
        run_id: None,
        final_batch: false,
        dry_run: false,
        atomic: false,
    };
    let cx = Context {
        source: SOURCE,
        at,
        mode: Mode::Merge,
        scope: None,
        catalog: &catalog,
        types: &types,
        rules: &rules,
    };
    let (prepared, refused) = prepare(&batch.items, &catalog);
    let _ = needs(&batch, &prepared);
    let snapshot = store.snapshot(at);
    let decided =
        plan(&cx, &batch, prepared, refused, &snapshot, &mut Uuid::new_v4).expect("a plan");
    store.apply(&decided);
    decided
}

fn outcome(o: Outcome) -> Expect {
    match o {
        Outcome::Created => Expect::Created,
        Outcome::Updated => Expect::Updated,
        Outcome::Unchanged => Expect::Unchanged,
        Outcome::Rejected => Expect::Rejected,
    }
}

fn report() -> impl Strategy<Value = Report> {
    (0u8..12, proptest::option::of(0u8..6), 0u8..3)
}

proptest! {
    #[test]
    fn the_plan_decides_every_item_as_the_reference_model_does(
        batches in proptest::collection::vec(proptest::collection::vec(report(), 0..10), 1..5)
    ) {
        let mut model = Model::default();
        let mut store = Store::default();
        for (n, batch) in batches.iter().enumerate() {
            let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(n as i64);
            let expected = model.apply(batch);
            let decided = run(&mut store, batch, at);
            let got: Vec<Expect> = decided.item_results.iter().map(|r| outcome(r.outcome)).collect();
            prop_assert_eq!(&got, &expected, "batch {} of {:?}", n, batches);
            // As many CIs as the model has, each external id on one CI.
            prop_assert_eq!(store.cis.len(), model.cis.len());
            prop_assert_eq!(store.external.len(), model.external.len());
            // Every record change comes with its event, and only those.
            let changes = decided.created_cis.len() + decided.updated_cis.len();
            prop_assert_eq!(decided.events.len(), changes);
        }
        // Repeating the last batch settles: each repeat is decided as the model decides it,
        // and once the model finds nothing to create or update, the plan writes nothing.
        // (A repeat may still bind an item that was refused as ambiguous before, when the
        // batch itself moved the identifier that made it ambiguous.)
        if let Some(last) = batches.last() {
            for round in 0..=last.len() + 1 {
                let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(round as i64);
                let expected = model.apply(last);
                let again = run(&mut store, last, at);
                let got: Vec<Expect> = again.item_results.iter().map(|r| outcome(r.outcome)).collect();
                prop_assert_eq!(&got, &expected, "repeat {} of {:?}", round, last);
                if expected.iter().all(|e| matches!(e, Expect::Unchanged | Expect::Rejected)) {
                    prop_assert!(again.events.is_empty());
                    break;
                }
                prop_assert!(round <= last.len(), "the batch never settles: {:?}", last);
            }
        }
    }
}
