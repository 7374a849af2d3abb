//! Configuration items: create, read, filter, update with optimistic concurrency, retire,
//! delete.
//!
//! Invariants: a CI's attributes satisfy its class whenever they are written; `version`
//! grows by exactly one per applied change and never for a no-op; an update with a stale
//! expected version changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::configuration_item::{self, Column, Entity};
use entity::service_member;
use entity::values::{Criticality, LifecycleStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, QueryTrait,
    prelude::{Expr, Json},
    sea_query::Condition,
};
use uuid::Uuid;

use super::as_of;
use super::audit::{Action, Actor, EntityType, Event};
use super::ci_class::{ClassCatalog, validate_attributes};
use super::discovery::{identity, provenance};
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::unit_of_work::UnitOfWork;
use super::{
    Error, Patch, Result, TextMatch, check_version, optional_trimmed, patch_trimmed, required_text,
    text_limits,
};
use crate::db::backend;

/// Which columns of a CI a read brings: all, or a summary (what lists of related CIs
/// usually show: no description, attributes, provenance or times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Columns {
    All,
    Summary,
}

impl Columns {
    /// The columns this read brings.
    pub fn list(self) -> Vec<Column> {
        use sea_orm::Iterable;
        match self {
            Columns::All => Column::iter().collect(),
            Columns::Summary => vec![
                Column::Id,
                Column::ClassId,
                Column::Name,
                Column::Status,
                Column::Environment,
                Column::Criticality,
                Column::Owner,
                Column::Version,
            ],
        }
    }
}

/// A CI as read with [`Columns`]: the columns a summary leaves out have their empty
/// values, and whoever shows them must read the whole CI first.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Read {
    id: Uuid,
    class_id: i32,
    name: String,
    #[serde(default)]
    description: Option<String>,
    status: LifecycleStatus,
    environment: Option<String>,
    criticality: Option<Criticality>,
    owner: Option<String>,
    #[serde(default)]
    attributes: Json,
    version: i32,
    #[serde(default)]
    created_at: DateTime<Utc>,
    #[serde(default)]
    updated_at: DateTime<Utc>,
    #[serde(default)]
    provenance: Json,
}

impl From<Read> for configuration_item::Model {
    fn from(read: Read) -> Self {
        configuration_item::Model {
            id: read.id,
            class_id: read.class_id,
            name: read.name,
            description: read.description,
            status: read.status,
            environment: read.environment,
            criticality: read.criticality,
            owner: read.owner,
            attributes: read.attributes,
            version: read.version,
            created_at: read.created_at,
            updated_at: read.updated_at,
            provenance: read.provenance,
        }
    }
}

/// A configuration item to create. The class is given by name.
#[derive(Debug, Clone, Default)]
pub struct NewCi {
    pub class: String,
    pub name: String,
    pub description: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub environment: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    pub attributes: Option<Json>,
}

/// Changes to a configuration item. `attributes` replaces the whole set;
/// `attribute_patch` merges into it (a key set to null removes that attribute).
#[derive(Debug, Clone, Default)]
pub struct CiChanges {
    pub name: Option<String>,
    pub description: Patch<String>,
    pub status: Option<LifecycleStatus>,
    pub environment: Patch<String>,
    pub criticality: Patch<Criticality>,
    pub owner: Patch<String>,
    pub attributes: Option<Json>,
    pub attribute_patch: Option<Json>,
}

/// Which CIs to list; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    pub ids: Option<Vec<Uuid>>,
    /// A class name; matches CIs of that class and of all its subclasses.
    pub class: Option<String>,
    pub statuses: Option<Vec<LifecycleStatus>>,
    pub environment: Option<String>,
    pub owner: Option<String>,
    pub criticality: Option<Criticality>,
    pub name: Option<TextMatch>,
    /// Attributes that must equal the given JSON values.
    pub attributes: Vec<(String, Json)>,
    pub updated_since: Option<DateTime<Utc>>,
    /// Only members of this service.
    pub service_id: Option<Uuid>,
    /// The CIs as they were at this instant (every other criterion applies to that state),
    /// rather than as they are.
    pub as_of: Option<DateTime<Utc>>,
}

/// The column a CI list is sorted by; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CiSortField {
    #[default]
    Name,
    CreatedAt,
    UpdatedAt,
}

/// The order of a CI list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CiOrder {
    pub field: CiSortField,
    pub descending: bool,
}

/// The CI with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<configuration_item::Model> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("configuration item", id))
}

/// The configuration item with that id, locked until the write transaction `txn` ends (see
/// [`super::lock_row`]), or `NOT_FOUND`. Every read-modify-write starts here.
pub async fn get_for_update(
    txn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<configuration_item::Model> {
    super::lock_row(txn, Entity::find_by_id(id))
        .await?
        .ok_or_else(|| Error::not_found("configuration item", id))
}

/// The CIs among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, configuration_item::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    // Bounded IN lists keep SQLite under its limit of bound parameters.
    for chunk in ids.chunks(500) {
        for ci in Entity::find()
            .filter(Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(ci.id, ci);
        }
    }
    Ok(found)
}

/// `attributes.<name> = value`, written for each engine's JSON operators.
fn attribute_equals(backend: DbBackend, name: &str, value: &Json) -> Result<Condition> {
    let value = serde_json::to_string(value)?;
    let expression = match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            r#""configuration_item"."attributes" -> $1 = $2::jsonb"#,
            [name.to_owned(), value],
        ),
        _ => Expr::cust_with_values(
            r#"("configuration_item"."attributes" -> ?) = json(?)"#,
            [sqlite_json_path(name), value],
        ),
    };
    Ok(Condition::all().add(expression))
}

/// A JSON path naming one top-level key, quoted so that any key works.
fn sqlite_json_path(key: &str) -> String {
    format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

impl CiFilter {
    fn condition(&self, catalog: &ClassCatalog, backend: DbBackend) -> Result<Condition> {
        let mut condition = Condition::all();
        if let Some(ids) = &self.ids {
            condition = condition.add(Column::Id.is_in(ids.iter().copied()));
        }
        if let Some(class) = &self.class {
            let class = catalog.resolve("filter.class", class)?;
            condition = condition.add(Column::ClassId.is_in(catalog.with_descendants(class.id)));
        }
        if let Some(statuses) = &self.statuses {
            condition = condition.add(Column::Status.is_in(statuses.iter().copied()));
        }
        if let Some(environment) = &self.environment {
            condition = condition.add(Column::Environment.eq(environment.as_str()));
        }
        if let Some(owner) = &self.owner {
            condition = condition.add(Column::Owner.eq(owner.as_str()));
        }
        if let Some(criticality) = self.criticality {
            condition = condition.add(Column::Criticality.eq(criticality));
        }
        if let Some(name) = &self.name {
            condition = condition.add(name.condition(Column::Name));
        }
        for (name, value) in &self.attributes {
            condition = condition.add(attribute_equals(backend, name, value)?);
        }
        if let Some(since) = self.updated_since {
            condition = condition.add(Column::UpdatedAt.gte(since));
        }
        if let Some(service_id) = self.service_id {
            let members = service_member::Entity::find()
                .select_only()
                .column(service_member::Column::CiId)
                .filter(service_member::Column::ServiceId.eq(service_id));
            let members = as_of::as_of(members, as_of::Table::ServiceMember, self.as_of);
            condition = condition.add(Column::Id.in_subquery(members.into_query()));
        }
        Ok(condition)
    }
}

fn sort_key(order: CiOrder) -> SortKey<Column> {
    let (column, kind, tag) = match (order.field, order.descending) {
        (CiSortField::Name, false) => (Column::Name, KeyKind::Text, "ci:name:asc"),
        (CiSortField::Name, true) => (Column::Name, KeyKind::Text, "ci:name:desc"),
        (CiSortField::CreatedAt, false) => (Column::CreatedAt, KeyKind::Time, "ci:created:asc"),
        (CiSortField::CreatedAt, true) => (Column::CreatedAt, KeyKind::Time, "ci:created:desc"),
        (CiSortField::UpdatedAt, false) => (Column::UpdatedAt, KeyKind::Time, "ci:updated:asc"),
        (CiSortField::UpdatedAt, true) => (Column::UpdatedAt, KeyKind::Time, "ci:updated:desc"),
    };
    SortKey::by(column, kind, Column::Id, order.descending, tag)
}

/// One page of the CIs matching `filter`, in `order`.
/// `catalog` resolves the class filter.
pub async fn list(
    db: &impl ConnectionTrait,
    catalog: &ClassCatalog,
    filter: &CiFilter,
    order: CiOrder,
    window: &PageWindow,
) -> Result<Page<configuration_item::Model>> {
    let select = Entity::find().filter(filter.condition(catalog, backend(db))?);
    let select = as_of::as_of(select, as_of::Table::ConfigurationItem, filter.as_of);
    let field = order.field;
    fetch_page(db, select, &sort_key(order), window, move |ci| {
        let key = match field {
            CiSortField::Name => KeyValue::Text(ci.name.clone()),
            CiSortField::CreatedAt => KeyValue::Time(ci.created_at),
            CiSortField::UpdatedAt => KeyValue::Time(ci.updated_at),
        };
        (Some(key), KeyValue::Uuid(ci.id))
    })
    .await
}

/// How many CIs match `filter` (`catalog` resolves the class filter).
pub async fn count(
    db: &impl ConnectionTrait,
    catalog: &ClassCatalog,
    filter: &CiFilter,
) -> Result<u64> {
    let select = Entity::find().filter(filter.condition(catalog, backend(db))?);
    Ok(
        as_of::as_of(select, as_of::Table::ConfigurationItem, filter.as_of)
            .count(db)
            .await?,
    )
}

/// The ids of the CIs matching `filter` (as of its instant, when it has one), at most
/// `limit` (`LIMIT_EXCEEDED` past it: the ids are for a scope, not a page).
pub async fn ids_matching(
    db: &impl ConnectionTrait,
    catalog: &ClassCatalog,
    filter: &CiFilter,
    limit: usize,
) -> Result<Vec<Uuid>> {
    let select = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(filter.condition(catalog, backend(db))?)
        .limit(limit as u64 + 1);
    let ids: Vec<Uuid> = as_of::as_of(select, as_of::Table::ConfigurationItem, filter.as_of)
        .into_tuple()
        .all(db)
        .await?;
    if ids.len() > limit {
        return Err(Error::LimitExceeded(format!(
            "more than {limit} CIs match the filter; narrow it"
        )));
    }
    Ok(ids)
}

/// Checks that every CI of `ids` exists; the error names the first missing one as
/// `field[index]`.
pub async fn ensure_exist(db: &impl ConnectionTrait, field: &str, ids: &[Uuid]) -> Result<()> {
    let found = get_many(db, ids).await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.contains_key(id) {
            return Err(Error::not_found("configuration item", id).within(&format!("{field}[{i}]")));
        }
    }
    Ok(())
}

/// Creates a CI after checking its attributes against its class.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewCi,
) -> Result<configuration_item::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let model = create_in(&uow, input).await?;
    uow.commit().await?;
    Ok(model)
}

/// Creates a CI as part of a larger write.
pub async fn create_in(uow: &UnitOfWork, input: NewCi) -> Result<configuration_item::Model> {
    let name = required_text("name", &input.name, text_limits::NAME)?;
    let description = optional_trimmed("description", input.description, text_limits::DESCRIPTION)?;
    let environment = optional_trimmed("environment", input.environment, 64)?;
    let owner = optional_trimmed("owner", input.owner, text_limits::SHORT)?;
    let txn = uow.txn();
    let catalog = ClassCatalog::load(txn).await?;
    let class = catalog.resolve("class", input.class.trim())?;
    let attributes = validate_attributes(
        &class.name,
        &catalog.effective_attributes(class.id),
        input.attributes.unwrap_or(Json::Null),
    )?;
    let at = uow.at();
    let mut model = configuration_item::Model {
        id: Uuid::now_v7(),
        class_id: class.id,
        name,
        description,
        status: input.status.unwrap_or(LifecycleStatus::InService),
        environment,
        criticality: input.criticality,
        owner,
        attributes,
        version: 1,
        created_at: at,
        updated_at: at,
        provenance: Json::Object(Default::default()),
    };
    let changed = provenance::changed_fields(None, &model);
    let mut stamped = model.provenance.clone();
    provenance::stamp_changes(&mut stamped, &model, &changed, provenance::MANUAL, at);
    model.provenance = stamped;
    let model = sea_orm::IntoActiveModel::into_active_model(model)
        .insert(txn)
        .await?;
    identity::replace(txn, &catalog, &[&model]).await?;
    uow.record(Event::new(
        EntityType::ConfigurationItem,
        model.id,
        Action::Create,
        None,
        Some(&model),
    )?);
    Ok(model)
}

/// Merges `patch` into `attributes`: keys set to null are removed.
fn merge_attributes(attributes: &Json, patch: Json) -> Result<Json> {
    let Json::Object(patch) = patch else {
        return Err(Error::invalid(
            "attributePatch",
            "`attributePatch` must be a JSON object",
        ));
    };
    let mut merged = match attributes {
        Json::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    Ok(Json::Object(merged))
}

/// Writes `after` over `before` if nobody changed the CI in between, bumping the version,
/// and records the event. A concurrent writer makes this a `VERSION_MISMATCH`.
async fn write_change(
    uow: &UnitOfWork,
    action: Action,
    before: &configuration_item::Model,
    mut after: configuration_item::Model,
) -> Result<configuration_item::Model> {
    let txn = uow.txn();
    after.version = before.version + 1;
    after.updated_at = uow.at();
    let changed = provenance::changed_fields(Some(before), &after);
    let mut stamped = after.provenance.clone();
    provenance::stamp_changes(
        &mut stamped,
        &after,
        &changed,
        provenance::MANUAL,
        after.updated_at,
    );
    after.provenance = stamped;
    let result = Entity::update_many()
        .col_expr(Column::Name, Expr::value(after.name.clone()))
        .col_expr(Column::Description, Expr::value(after.description.clone()))
        .col_expr(Column::Status, Expr::value(after.status))
        .col_expr(Column::Environment, Expr::value(after.environment.clone()))
        .col_expr(Column::Criticality, Expr::value(after.criticality))
        .col_expr(Column::Owner, Expr::value(after.owner.clone()))
        .col_expr(Column::Attributes, Expr::value(after.attributes.clone()))
        .col_expr(Column::Version, Expr::value(after.version))
        .col_expr(Column::UpdatedAt, Expr::value(after.updated_at))
        .col_expr(Column::Provenance, Expr::value(after.provenance.clone()))
        .filter(Column::Id.eq(before.id))
        .filter(Column::Version.eq(before.version))
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        let current = get(txn, before.id).await?;
        return Err(Error::VersionMismatch {
            expected: before.version,
            actual: current.version,
        });
    }
    uow.record(Event::new(
        EntityType::ConfigurationItem,
        after.id,
        action,
        Some(before),
        Some(&after),
    )?);
    Ok(after)
}

/// Applies `changes` to a CI. With `expected_version`, applies them only if the CI is still
/// at that version. A change that changes nothing writes nothing.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: CiChanges,
) -> Result<configuration_item::Model> {
    update_as(db, actor, id, expected_version, changes, Action::Update).await
}

/// [`update`], recorded in the audit trail as `action` (a revert is an update that says
/// why).
pub async fn update_as(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    changes: CiChanges,
    action: Action,
) -> Result<configuration_item::Model> {
    let name = changes
        .name
        .map(|n| required_text("name", &n, text_limits::NAME))
        .transpose()?;
    let description = patch_trimmed("description", changes.description, text_limits::DESCRIPTION)?;
    let environment = patch_trimmed("environment", changes.environment, 64)?;
    let owner = patch_trimmed("owner", changes.owner, text_limits::SHORT)?;

    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    let mut after = before.clone();
    if let Some(name) = name {
        after.name = name;
    }
    after.description = description.apply(after.description);
    if let Some(status) = changes.status {
        after.status = status;
    }
    after.environment = environment.apply(after.environment);
    after.criticality = changes.criticality.apply(after.criticality);
    after.owner = owner.apply(after.owner);
    if changes.attributes.is_some() || changes.attribute_patch.is_some() {
        let mut attributes = changes
            .attributes
            .unwrap_or_else(|| before.attributes.clone());
        if let Some(patch) = changes.attribute_patch {
            attributes = merge_attributes(&attributes, patch)?;
        }
        let catalog = ClassCatalog::load(txn).await?;
        let class_name = catalog
            .get(before.class_id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        after.attributes = validate_attributes(
            &class_name,
            &catalog.effective_attributes(before.class_id),
            attributes,
        )?;
    }
    if after == before {
        return Ok(before);
    }
    let after = write_change(&uow, action, &before, after).await?;
    if after.attributes != before.attributes {
        let catalog = ClassCatalog::load(txn).await?;
        identity::replace(txn, &catalog, &[&after]).await?;
    }
    uow.commit().await?;
    Ok(after)
}

/// Marks a CI retired: it stays on record, with its relationships, but leaves the impact
/// graph. Retiring a retired CI changes nothing.
pub async fn retire(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<configuration_item::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    if before.status == LifecycleStatus::Retired {
        return Ok(before);
    }
    let mut after = before.clone();
    after.status = LifecycleStatus::Retired;
    let after = write_change(&uow, Action::Retire, &before, after).await?;
    uow.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests;
