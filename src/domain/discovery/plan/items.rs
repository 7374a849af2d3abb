//! The items of a batch: their own checks, which CI each is, and what each reported field
//! does to it.

use std::collections::{HashMap, HashSet};

use entity::configuration_item;
use entity::values::{Criticality, LifecycleStatus};
use sea_orm::prelude::Json;
use serde_json::Map;
use uuid::Uuid;

use super::super::super::audit::{Action, EntityType, Event};
use super::super::super::ci_class::{ClassCatalog, validate_attributes};
use super::super::super::{
    Error, Result, json_without_nul, optional_text, required_text, text_limits,
};
use super::super::batch::{IgnoredField, ItemInput, ItemResult, Outcome, Rejection, rejected};
use super::super::identity;
use super::super::provenance::{self, Entry, attribute_key};
use super::super::reconcile::{Decision, Situation, decide as decide_field};
use super::{Context, IdentityKey, Placed, Plan, Snapshot};

/// An item that passed its own checks.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub index: usize,
    pub class_id: i32,
    pub class_name: String,
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub environment: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    /// The reported attributes, type-checked; null values mean "remove".
    pub attributes: Map<String, Json>,
    /// The attributes that identify it, in priority order.
    pub identifying: Vec<String>,
}

impl Prepared {
    /// The identity keys the item carries, in priority order.
    pub fn identity_keys(&self) -> Vec<IdentityKey> {
        self.identifying
            .iter()
            .filter_map(|attribute| {
                let value = self
                    .attributes
                    .get(attribute)
                    .and_then(identity::normalise)?;
                Some((self.class_id, attribute.clone(), value))
            })
            .collect()
    }

    /// The core fields the item reports (a field left out is not reported).
    fn reported_core(&self) -> Vec<(&'static str, Json)> {
        let mut fields = vec![("name", Json::from(self.name.clone()))];
        if let Some(description) = &self.description {
            fields.push(("description", Json::from(description.clone())));
        }
        if let Some(status) = self.status {
            fields.push(("status", serde_json::to_value(status).unwrap_or_default()));
        }
        if let Some(environment) = &self.environment {
            fields.push(("environment", Json::from(environment.clone())));
        }
        if let Some(criticality) = self.criticality {
            fields.push((
                "criticality",
                serde_json::to_value(criticality).unwrap_or_default(),
            ));
        }
        if let Some(owner) = &self.owner {
            fields.push(("owner", Json::from(owner.clone())));
        }
        fields
    }
}

/// Checks every item on its own (class, texts, attribute types, identifying attributes);
/// an external id given twice is refused the second time. Returns the items that passed
/// and the results of those that did not.
pub fn prepare(items: &[ItemInput], catalog: &ClassCatalog) -> (Vec<Prepared>, Vec<ItemResult>) {
    let mut prepared = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        match prepare_one(index, item, catalog) {
            Ok(item) => {
                if let Some(first) = seen.insert(item.external_id.clone(), index) {
                    refused.push(rejected(
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
            Err(err) => refused.push(rejected(
                index,
                err.within(&format!("items[{index}]")).into(),
            )),
        }
    }
    (prepared, refused)
}

fn prepare_one(index: usize, item: &ItemInput, catalog: &ClassCatalog) -> Result<Prepared> {
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
        json_without_nul("attributes", attributes)?;
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

/// The result of an item the plan did not reach (a defect: every item gets a result).
pub fn unprocessed(index: usize) -> ItemResult {
    rejected(
        index,
        Error::internal(anyhow::anyhow!("item {index} was not processed")).into(),
    )
}

fn ambiguous(message: String) -> Rejection {
    Error::AmbiguousIdentity(message).into()
}

/// Where an item goes.
enum Target {
    New,
    Existing { ci_id: Uuid, identified_by: String },
}

/// Identifies the items: by the source's external id, else by their identity keys in
/// priority order. Two candidates, or two items for one CI, is `AMBIGUOUS_IDENTITY`.
fn identify(
    prepared: Vec<Prepared>,
    snapshot: &Snapshot,
    results: &mut [Option<ItemResult>],
) -> Vec<(Prepared, Target)> {
    let mut targets = Vec::with_capacity(prepared.len());
    let mut claimed: HashMap<Uuid, usize> = HashMap::new();
    let mut new_keys: HashMap<IdentityKey, usize> = HashMap::new();
    'items: for item in prepared {
        let mut target = None;
        if let Some(known) = snapshot.known.get(&item.external_id) {
            target = Some(Target::Existing {
                ci_id: known.ci_id,
                identified_by: "externalId".into(),
            });
        } else {
            for key in item.identity_keys() {
                let (_, attribute, value) = &key;
                if let Some(other) = new_keys.get(&key) {
                    results[item.index] = Some(rejected(
                        item.index,
                        ambiguous(format!(
                            "`{attribute}` = `{value}` also identifies input[{other}] of this batch"
                        )),
                    ));
                    continue 'items;
                }
                match snapshot.identity.get(&key).map(Vec::as_slice) {
                    Some([single]) => {
                        target = Some(Target::Existing {
                            ci_id: *single,
                            identified_by: format!("attribute:{attribute}"),
                        });
                        break;
                    }
                    Some(several) if several.len() > 1 => {
                        let ids: Vec<String> = several.iter().map(Uuid::to_string).collect();
                        results[item.index] = Some(rejected(
                            item.index,
                            ambiguous(format!(
                                "`{attribute}` = `{value}` matches {} CIs: {}; nothing was merged",
                                several.len(),
                                ids.join(", ")
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
                for key in item.identity_keys() {
                    new_keys.insert(key, item.index);
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
    targets
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

/// Applies the item to a stored CI, field by field, as the reconciliation rules allow;
/// `None` when nothing changes. Fields kept are listed in `ignored` with the reason.
fn reconcile(
    cx: &Context,
    snapshot: &Snapshot,
    item: &Prepared,
    before: &configuration_item::Model,
    ignored: &mut Vec<IgnoredField>,
) -> Option<(configuration_item::Model, Vec<String>)> {
    let mut after = before.clone();
    let mut fields = provenance::decode(&before.provenance);
    let mut changed = Vec::new();
    let overrides_manual = cx
        .catalog
        .get(before.class_id)
        .is_some_and(|c| c.discovery_overrides_manual);
    let stamp = Entry {
        source: cx.source.to_owned(),
        at: cx.at,
    };
    let mut may_write = |field: &str, fields: &provenance::Fields| -> bool {
        let owner = fields.get(field);
        let owner_last_seen = owner.and_then(|o| {
            snapshot
                .last_seen
                .get(&(before.id, o.source.clone()))
                .copied()
        });
        let situation = Situation {
            owner,
            owner_last_seen,
            ranking: cx.rules.ranking(cx.catalog, before.class_id, field),
            overrides_manual,
            now: cx.at,
        };
        match decide_field(cx.source, &situation) {
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
    for (field, value) in item.reported_core() {
        if core_value(before, field) != value && may_write(field, &fields) {
            set_core(&mut after, field, item);
            fields.insert(field.to_owned(), stamp.clone());
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
        if differs && may_write(&field, &fields) {
            if value.is_null() {
                attributes.remove(name);
                fields.remove(&field);
            } else {
                attributes.insert(name.clone(), value.clone());
                fields.insert(field.clone(), stamp.clone());
            }
            changed.push(field);
            attributes_changed = true;
        }
    }
    if changed.is_empty() {
        return None;
    }
    if attributes_changed {
        after.attributes = Json::Object(attributes);
    }
    after.provenance = provenance::encode(&fields);
    after.version = before.version + 1;
    after.updated_at = cx.at;
    Some((after, changed))
}

/// A new CI from an item, every reported field stamped with the source.
fn new_ci(cx: &Context, item: &Prepared, id: Uuid) -> (configuration_item::Model, Vec<String>) {
    let attributes: Map<String, Json> = item
        .attributes
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut ci = configuration_item::Model {
        id,
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
    let mut stamped = ci.provenance.clone();
    provenance::stamp_changes(&mut stamped, &ci, &changed, cx.source, cx.at);
    ci.provenance = stamped;
    (ci, changed)
}

/// Decides every prepared item: its result, and the rows and events it needs.
pub(super) fn decide(
    cx: &Context,
    prepared: Vec<Prepared>,
    snapshot: &Snapshot,
    results: &mut [Option<ItemResult>],
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<Placed> {
    let mut placed = Placed::default();
    let mut rekeyed: HashSet<Uuid> = HashSet::new();
    for (item, target) in identify(prepared, snapshot, results) {
        let index = item.index;
        let mut ignored = Vec::new();
        let result = match target {
            Target::New => {
                let (ci, changed) = new_ci(cx, &item, new_id());
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
                plan.new_identifiers.push((item.external_id.clone(), ci.id));
                placed.statuses.insert(ci.id, ci.status);
                rekeyed.insert(ci.id);
                plan.events.push(Event::new(
                    EntityType::ConfigurationItem,
                    ci.id,
                    Action::Create,
                    None,
                    Some(&ci),
                )?);
                let result = ItemResult {
                    index,
                    ci_id: Some(ci.id),
                    outcome: Outcome::Created,
                    changed,
                    identified_by: None,
                    ignored,
                    error: None,
                };
                plan.created_cis.push(ci);
                result
            }
            Target::Existing {
                ci_id,
                identified_by,
            } => {
                let Some(before) = snapshot.cis.get(&ci_id) else {
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
                                "the item is identified ({identified_by}) as configuration item \
                                 {ci_id}, which is a `{class}`, not a `{}`",
                                item.class_name
                            ),
                        )
                        .into(),
                    ));
                    continue;
                }
                let (outcome, changed) = match reconcile(cx, snapshot, &item, before, &mut ignored)
                {
                    None => {
                        placed.statuses.insert(ci_id, before.status);
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
                        placed.statuses.insert(ci_id, after.status);
                        if after.attributes != before.attributes {
                            rekeyed.insert(ci_id);
                        }
                        plan.events.push(Event::new(
                            EntityType::ConfigurationItem,
                            ci_id,
                            Action::Update,
                            Some(before),
                            Some(&after),
                        )?);
                        plan.updated_cis.push((before.clone(), after));
                        (Outcome::Updated, changed)
                    }
                };
                if identified_by == "externalId" {
                    plan.seen_identifiers.push(item.external_id.clone());
                } else {
                    plan.new_identifiers.push((item.external_id.clone(), ci_id));
                }
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
            placed
                .by_external_id
                .insert(item.external_id.clone(), ci_id);
        }
        results[index] = Some(result);
    }
    let mut rekeyed: Vec<Uuid> = rekeyed.into_iter().collect();
    rekeyed.sort();
    plan.rekeyed = rekeyed;
    Ok(placed)
}
