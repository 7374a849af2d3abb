//! The verification of the CMDB's own accuracy, which ISO/IEC 20000 asks for at planned
//! intervals: which CIs miss attributes they should have, which their discovery sources no
//! longer report, which are connected to nothing, and which look like duplicates.
//!
//! Retired CIs are left out: they are kept for the record, not for operations. Counts are
//! exact; the CIs listed per finding are capped.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use entity::values::LifecycleStatus;
use entity::{ci_identifier, configuration_item};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::ci_class::ClassCatalog;
use super::impact::graph::FastSet;
use super::{Result, now};

/// A CI missing attributes its class asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteCi {
    pub ci_id: Uuid,
    pub missing_required: Vec<String>,
    pub missing_recommended: Vec<String>,
}

/// A CI that a discovery source knows but has not reported for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleCi {
    pub ci_id: Uuid,
    /// The sources that stopped reporting it, with when each last did.
    pub sources: Vec<(String, DateTime<Utc>)>,
}

/// Why CIs look like duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateReason {
    /// Same class, same name (ignoring case and surrounding spaces).
    SameName,
    /// Same class, same value of an identifier attribute.
    SameIdentifier,
}

/// CIs that look like one thing recorded several times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateGroup {
    pub reason: DuplicateReason,
    pub class_id: i32,
    /// The identifier attribute, for `SameIdentifier`.
    pub attribute: Option<String>,
    /// The shared name or identifier value.
    pub value: String,
    pub ci_ids: Vec<Uuid>,
}

/// One finding: how many, and the first ones.
#[derive(Debug, Clone)]
pub struct Finding<T> {
    pub count: usize,
    pub items: Vec<T>,
}

impl<T> Finding<T> {
    fn new(mut items: Vec<T>, limit: usize) -> Self {
        let count = items.len();
        items.truncate(limit);
        Finding { count, items }
    }
}

/// The accuracy report of the CMDB.
#[derive(Debug, Clone)]
pub struct HealthReport {
    pub checked_at: DateTime<Utc>,
    /// CIs checked: every CI not retired.
    pub total_cis: usize,
    /// CIs with no finding at all.
    pub healthy_cis: usize,
    pub incomplete: Finding<IncompleteCi>,
    pub stale: Finding<StaleCi>,
    pub orphans: Finding<Uuid>,
    pub duplicates: Finding<DuplicateGroup>,
    pub stale_after: TimeDelta,
    /// Relationships people declared that no discovery source observed within
    /// `stale_after` (see `relationshipDrift` for one source's view).
    pub unobserved_declared_relationships: usize,
}

/// What to check and how much to list.
#[derive(Debug, Clone, Copy)]
pub struct HealthOptions {
    /// A source that has not reported a CI for this long has lost it.
    pub stale_after: TimeDelta,
    /// Most CIs (or groups) listed per finding.
    pub limit: usize,
}

/// Which of the class's attributes the CI lacks: absent, null or blank text all count.
pub fn missing_attributes(
    catalog: &ClassCatalog,
    class_id: i32,
    attributes: &serde_json::Value,
) -> (Vec<String>, Vec<String>) {
    let mut required = Vec::new();
    let mut recommended = Vec::new();
    for definition in catalog.effective_attributes(class_id) {
        let present = match attributes.get(&definition.name) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(text)) => !text.trim().is_empty(),
            Some(_) => true,
        };
        if present {
            continue;
        }
        if definition.required {
            required.push(definition.name);
        } else if definition.recommended {
            recommended.push(definition.name);
        }
    }
    (required, recommended)
}

/// The text an identifier value is compared by: strings trimmed and lower-cased, other
/// values as JSON.
fn identifier_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) if text.trim().is_empty() => None,
        serde_json::Value::String(text) => Some(text.trim().to_lowercase()),
        other => Some(other.to_string()),
    }
}

/// CIs scanned per statement.
const SCAN_PAGE: u64 = 2_000;

/// Checks every CI that is not retired.
pub async fn check(db: &impl ConnectionTrait, options: HealthOptions) -> Result<HealthReport> {
    let catalog = ClassCatalog::load(db).await?;
    let mut flagged: FastSet<Uuid> = FastSet::default();
    let mut incomplete = Vec::new();
    let mut names: HashMap<(i32, String), Vec<Uuid>> = HashMap::new();
    let mut identifiers: HashMap<(i32, String, String), Vec<Uuid>> = HashMap::new();
    let mut total = 0usize;
    let mut last: Option<Uuid> = None;
    loop {
        let mut query = configuration_item::Entity::find()
            .select_only()
            .columns([
                configuration_item::Column::Id,
                configuration_item::Column::ClassId,
                configuration_item::Column::Name,
                configuration_item::Column::Attributes,
            ])
            .filter(configuration_item::Column::Status.ne(LifecycleStatus::Retired))
            .order_by_asc(configuration_item::Column::Id)
            .limit(SCAN_PAGE);
        if let Some(last) = last {
            query = query.filter(configuration_item::Column::Id.gt(last));
        }
        let rows: Vec<(Uuid, i32, String, serde_json::Value)> = query.into_tuple().all(db).await?;
        let Some(end) = rows.last() else {
            break;
        };
        last = Some(end.0);
        total += rows.len();
        for (id, class_id, name, attributes) in rows {
            let (required, recommended) = missing_attributes(&catalog, class_id, &attributes);
            if !required.is_empty() || !recommended.is_empty() {
                flagged.insert(id);
                incomplete.push(IncompleteCi {
                    ci_id: id,
                    missing_required: required,
                    missing_recommended: recommended,
                });
            }
            names
                .entry((class_id, name.trim().to_lowercase()))
                .or_default()
                .push(id);
            for attribute in catalog.effective_identifiers(class_id) {
                if let Some(value) = attributes.get(&attribute).and_then(identifier_text) {
                    identifiers
                        .entry((class_id, attribute, value))
                        .or_default()
                        .push(id);
                }
            }
        }
    }
    // Required attributes missing come first: they break validation on the next edit.
    incomplete.sort_by_key(|i| (i.missing_required.is_empty(), i.ci_id));

    let mut duplicates = Vec::new();
    for ((class_id, value), ci_ids) in names {
        if ci_ids.len() > 1 {
            flagged.extend(ci_ids.iter().copied());
            duplicates.push(DuplicateGroup {
                reason: DuplicateReason::SameName,
                class_id,
                attribute: None,
                value,
                ci_ids,
            });
        }
    }
    for ((class_id, attribute, value), ci_ids) in identifiers {
        if ci_ids.len() > 1 {
            flagged.extend(ci_ids.iter().copied());
            duplicates.push(DuplicateGroup {
                reason: DuplicateReason::SameIdentifier,
                class_id,
                attribute: Some(attribute),
                value,
                ci_ids,
            });
        }
    }
    for group in &mut duplicates {
        group.ci_ids.sort();
    }
    duplicates.sort_by(|a, b| {
        b.ci_ids
            .len()
            .cmp(&a.ci_ids.len())
            .then(a.value.cmp(&b.value))
            .then(a.attribute.cmp(&b.attribute))
    });

    let stale = stale_cis(db, now() - options.stale_after).await?;
    flagged.extend(stale.iter().map(|s| s.ci_id));
    let orphans = orphans(db).await?;
    flagged.extend(orphans.iter().copied());

    let unobserved_declared_relationships =
        super::relationship::assertions::unobserved_count(db, now() - options.stale_after).await?;
    Ok(HealthReport {
        checked_at: now(),
        total_cis: total,
        healthy_cis: total.saturating_sub(flagged.len()),
        incomplete: Finding::new(incomplete, options.limit),
        stale: Finding::new(stale, options.limit),
        orphans: Finding::new(orphans, options.limit),
        duplicates: Finding::new(duplicates, options.limit),
        stale_after: options.stale_after,
        unobserved_declared_relationships,
    })
}

/// CIs (not retired) that some source has not reported since `seen_before`, or that a
/// full sync found missing.
async fn stale_cis(db: &impl ConnectionTrait, seen_before: DateTime<Utc>) -> Result<Vec<StaleCi>> {
    let rows = ci_identifier::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(ci_identifier::Column::LastSeenAt.lt(seen_before))
                .add(ci_identifier::Column::Stale.eq(true)),
        )
        .order_by_asc(ci_identifier::Column::CiId)
        .all(db)
        .await?;
    let mut by_ci: BTreeMap<Uuid, Vec<(String, DateTime<Utc>)>> = BTreeMap::new();
    for row in rows {
        by_ci
            .entry(row.ci_id)
            .or_default()
            .push((row.source, row.last_seen_at));
    }
    let ids: Vec<Uuid> = by_ci.keys().copied().collect();
    let live = super::ci::get_many(db, &ids).await?;
    Ok(by_ci
        .into_iter()
        .filter(|(id, _)| {
            live.get(id)
                .is_some_and(|ci| ci.status != LifecycleStatus::Retired)
        })
        .map(|(ci_id, sources)| StaleCi { ci_id, sources })
        .collect())
}

/// CIs (not retired) with no relationship and in no service, by name.
async fn orphans(db: &impl ConnectionTrait) -> Result<Vec<Uuid>> {
    let sql = "SELECT ci.id AS id FROM configuration_item ci \
               WHERE ci.status <> 'RETIRED' \
               AND NOT EXISTS (SELECT 1 FROM relationship r WHERE r.source_id = ci.id) \
               AND NOT EXISTS (SELECT 1 FROM relationship r WHERE r.target_id = ci.id) \
               AND NOT EXISTS (SELECT 1 FROM service_member m WHERE m.ci_id = ci.id) \
               ORDER BY ci.name, ci.id";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<Uuid>("", "id")?))
        .collect()
}
