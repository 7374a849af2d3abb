//! Relationships: typed, directed edges between CIs, created and deleted in bulk, all or
//! nothing.
//!
//! Invariants: unique per (source, target, type); never from a CI to itself; never to or
//! from a CI that does not exist; new relationships never touch a retired CI.

pub mod assertions;

use std::collections::{HashMap, HashSet};

use entity::configuration_item;
use entity::relationship::{self, Column, Entity};
use entity::values::LifecycleStatus;
use sea_orm::Iterable;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, prelude::Json, sea_query::Condition,
};
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::ci_class::MAX_ATTRIBUTES_BYTES;
use super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::relationship_type::TypeCatalog;
use super::unit_of_work::UnitOfWork;
use super::{Error, Result};
use crate::limits::Limits;

/// A relationship to create; the type is given by name.
#[derive(Debug, Clone)]
pub struct NewRelationship {
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub type_name: String,
    pub attributes: Option<Json>,
}

/// Which relationships to list; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct RelationshipFilter {
    /// Relationships with this CI at either end.
    pub ci_id: Option<Uuid>,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    /// Type names; any of them.
    pub types: Option<Vec<String>>,
    /// The relationships as they were at this instant, rather than as they are.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// The relationship with that id, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<relationship::Model> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("relationship", id))
}

/// The relationship with that id as it was at `at`, if it existed then.
pub async fn get_at(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<relationship::Model>> {
    let select = Entity::find().filter(Column::Id.eq(id));
    Ok(
        super::as_of::as_of(select, super::as_of::Table::Relationship, Some(at))
            .one(db)
            .await?,
    )
}

/// Which end of a relationship a lookup starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The relationships leaving the CI.
    Source,
    /// The relationships arriving at the CI.
    Target,
}

/// How a nested field lists the relationships at one end of CIs: the arguments of the
/// field, so that one statement answers every CI of a page that asked the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    pub end: End,
    /// Only relationships of these type ids.
    pub types: Option<Vec<i32>>,
    /// At most this many per CI, oldest first.
    pub first: u64,
    /// Whether to read the relationships' attributes and times (the field's selection
    /// shows them); without, those of the listed records are empty.
    pub whole: bool,
    /// Read the CI at the other end too, with these columns (the field's selection asks
    /// for it).
    pub other_end: Option<super::ci::Columns>,
    /// The relationships (and CIs at the other end) as they were at this instant.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// A relationship as a listing reads it: without its attributes and times unless the
/// listing asks for them (they are then empty).
#[derive(Debug, Clone, serde::Deserialize)]
struct Read {
    id: Uuid,
    source_id: Uuid,
    target_id: Uuid,
    type_id: i32,
    #[serde(default)]
    attributes: Json,
    #[serde(default)]
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Read> for relationship::Model {
    fn from(read: Read) -> Self {
        relationship::Model {
            id: read.id,
            source_id: read.source_id,
            target_id: read.target_id,
            type_id: read.type_id,
            attributes: read.attributes,
            created_at: read.created_at,
        }
    }
}

/// A relationship, with the CI at its other end when the listing asked for it (with the
/// columns it asked for).
pub type Listed = (relationship::Model, Option<configuration_item::Model>);

/// The relationships at `listing.end` of each CI, oldest first, at most `listing.first`
/// each: one statement per 500 CIs, the cut made in the database.
pub async fn listed(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
    listing: &Listing,
) -> Result<HashMap<Uuid, Vec<Listed>>> {
    use sea_orm::QueryTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order};
    let (own, other) = match listing.end {
        End::Source => (Column::SourceId, Column::TargetId),
        End::Target => (Column::TargetId, Column::SourceId),
    };
    let base = |owners: &[Uuid]| {
        let mut find = Entity::find().filter(own.is_in(owners.iter().copied()));
        if let Some(types) = &listing.types {
            find = find.filter(Column::TypeId.is_in(types.iter().copied()));
        }
        let mut select = find.into_query();
        super::as_of::narrow_if(
            &mut select,
            super::as_of::Table::Relationship,
            listing.as_of,
        );
        select.expr_as(Expr::col((Entity, own)), Alias::new(super::nested::OWNER));
        select
    };
    let columns = listing
        .other_end
        .map(super::ci::Columns::list)
        .unwrap_or_default();
    let join = |select: &mut sea_orm::sea_query::SelectStatement| {
        super::as_of::join(
            select,
            super::as_of::Table::ConfigurationItem,
            Expr::col((configuration_item::Entity, configuration_item::Column::Id))
                .equals((Entity, other)),
            listing.as_of,
        );
        super::nested::with_columns_of::<configuration_item::Entity>(select, "other_", &columns);
    };
    let record_columns: Vec<Column> = if listing.whole {
        Column::iter().collect()
    } else {
        vec![
            Column::Id,
            Column::SourceId,
            Column::TargetId,
            Column::TypeId,
        ]
    };
    let lists = super::nested::Lists {
        base: &base,
        record: super::json_rows::columns_object::<Entity>(
            db.get_database_backend(),
            "",
            &record_columns,
        ),
        owner: Expr::col((Entity, own)),
        order: vec![
            (Expr::col((Entity, Column::CreatedAt)), Order::Asc),
            (Expr::col((Entity, Column::Id)), Order::Asc),
        ],
        first: Some(listing.first),
        join: listing.other_end.map(|_| super::nested::Joined {
            add: &join,
            object: super::json_rows::columns_object::<configuration_item::Entity>(
                db.get_database_backend(),
                "other_",
                &columns,
            ),
        }),
    };
    Ok(
        super::nested::read::<Read, super::ci::Read>(db, ci_ids, &lists)
            .await?
            .into_iter()
            .map(|(owner, list)| {
                let list = list
                    .into_iter()
                    .map(|(relationship, other)| (relationship.into(), other.map(Into::into)))
                    .collect();
                (owner, list)
            })
            .collect(),
    )
}

/// The relationships among `ids` that exist, keyed by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, relationship::Model>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        for row in Entity::find()
            .filter(Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(row.id, row);
        }
    }
    Ok(found)
}

impl RelationshipFilter {
    fn condition(&self, types: &TypeCatalog) -> Result<Condition> {
        let mut condition = Condition::all();
        if let Some(ci) = self.ci_id {
            condition = condition.add(
                Condition::any()
                    .add(Column::SourceId.eq(ci))
                    .add(Column::TargetId.eq(ci)),
            );
        }
        if let Some(source) = self.source_id {
            condition = condition.add(Column::SourceId.eq(source));
        }
        if let Some(target) = self.target_id {
            condition = condition.add(Column::TargetId.eq(target));
        }
        if let Some(names) = &self.types {
            condition = condition.add(Column::TypeId.is_in(types.ids_of("filter.types", names)?));
        }
        Ok(condition)
    }
}

/// One page of the relationships matching `filter`, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &RelationshipFilter,
    window: &PageWindow,
) -> Result<Page<relationship::Model>> {
    let types = TypeCatalog::load(db).await?;
    let select = Entity::find().filter(filter.condition(&types)?);
    let select = super::as_of::as_of(select, super::as_of::Table::Relationship, filter.as_of);
    let key = SortKey::by(
        Column::CreatedAt,
        KeyKind::Time,
        Column::Id,
        false,
        "relationship:created:asc",
    );
    fetch_page(db, select, &key, window, |r| {
        (Some(KeyValue::Time(r.created_at)), KeyValue::Uuid(r.id))
    })
    .await
}

/// How many relationships match `filter`.
pub async fn count(db: &impl ConnectionTrait, filter: &RelationshipFilter) -> Result<u64> {
    let types = TypeCatalog::load(db).await?;
    let select = Entity::find().filter(filter.condition(&types)?);
    Ok(
        super::as_of::as_of(select, super::as_of::Table::Relationship, filter.as_of)
            .count(db)
            .await?,
    )
}

fn check_attributes(field: &str, attributes: Option<Json>) -> Result<Json> {
    if let Some(attributes) = &attributes {
        super::json_without_nul(field, attributes)?;
    }
    match attributes {
        None | Some(Json::Null) => Ok(Json::Object(Default::default())),
        Some(Json::Object(map)) => {
            let map: serde_json::Map<String, Json> =
                map.into_iter().filter(|(_, v)| !v.is_null()).collect();
            let value = Json::Object(map);
            if serde_json::to_vec(&value)?.len() > MAX_ATTRIBUTES_BYTES {
                return Err(Error::LimitExceeded(format!(
                    "{field}: attributes over the limit of {MAX_ATTRIBUTES_BYTES} bytes \
                     (limit `max_attributes_bytes`)"
                )));
            }
            Ok(value)
        }
        Some(_) => Err(Error::invalid(field, "`attributes` must be a JSON object")),
    }
}

/// Creates all the relationships or none: any invalid item fails the whole call with an
/// error naming the item (`input[i]`).
pub async fn create_many(
    db: &DatabaseConnection,
    actor: &Actor,
    inputs: Vec<NewRelationship>,
    limits: &Limits,
) -> Result<Vec<relationship::Model>> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let rows = create_many_in(&uow, inputs, limits).await?;
    uow.commit().await?;
    Ok(rows)
}

/// Creates relationships as part of a larger write.
pub async fn create_many_in(
    uow: &UnitOfWork,
    inputs: Vec<NewRelationship>,
    limits: &Limits,
) -> Result<Vec<relationship::Model>> {
    if inputs.len() > limits.max_batch_size {
        return Err(Error::LimitExceeded(format!(
            "{} relationships in one call, over the limit of {} (limit `max_batch_size`)",
            inputs.len(),
            limits.max_batch_size
        )));
    }
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let txn = uow.txn();
    let types = TypeCatalog::load(txn).await?;
    let ci_ids: Vec<Uuid> = inputs
        .iter()
        .flat_map(|r| [r.source_id, r.target_id])
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let cis = super::ci::get_many(txn, &ci_ids).await?;

    let at = uow.at();
    let mut seen: HashMap<(Uuid, Uuid, i32), usize> = HashMap::new();
    let mut rows = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let item = format!("input[{i}]");
        let relationship_type = types
            .resolve("type", input.type_name.trim())
            .map_err(|e| e.within(&item))?;
        if input.source_id == input.target_id {
            return Err(Error::invalid(
                format!("{item}.targetId"),
                format!("{item}: a configuration item cannot relate to itself"),
            ));
        }
        for (field, id) in [("sourceId", input.source_id), ("targetId", input.target_id)] {
            match cis.get(&id) {
                None => {
                    return Err(Error::not_found("configuration item", id)
                        .within(&format!("{item}.{field}")));
                }
                Some(ci) if ci.status == LifecycleStatus::Retired => {
                    return Err(Error::invalid(
                        format!("{item}.{field}"),
                        format!(
                            "{item}: configuration item `{}` is retired and takes no new relationships",
                            ci.name
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let key = (input.source_id, input.target_id, relationship_type.id);
        if let Some(first) = seen.insert(key, i) {
            return Err(Error::Conflict(format!(
                "{item} repeats input[{first}]: the same source, target and type"
            )));
        }
        let attributes = check_attributes(&format!("{item}.attributes"), input.attributes)?;
        rows.push(relationship::Model {
            id: Uuid::now_v7(),
            source_id: input.source_id,
            target_id: input.target_id,
            type_id: relationship_type.id,
            attributes,
            created_at: at,
        });
    }

    // Refuse duplicates of existing relationships with a message naming the item; the
    // unique index stays the last line of defence against a concurrent writer.
    let sources: Vec<Uuid> = seen
        .keys()
        .map(|k| k.0)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut existing_rows = Vec::new();
    for chunk in sources.chunks(500) {
        let targets: HashSet<Uuid> = seen
            .keys()
            .filter(|k| chunk.contains(&k.0))
            .map(|k| k.1)
            .collect();
        existing_rows.extend(
            Entity::find()
                .filter(Column::SourceId.is_in(chunk.iter().copied()))
                .filter(Column::TargetId.is_in(targets))
                .all(txn)
                .await?,
        );
    }
    for existing in existing_rows {
        if let Some(i) = seen.get(&(existing.source_id, existing.target_id, existing.type_id)) {
            return Err(Error::Conflict(format!(
                "input[{i}]: this relationship already exists (id {})",
                existing.id
            )));
        }
    }

    for chunk in rows.chunks(500) {
        let models = chunk.iter().cloned().map(|row| relationship::ActiveModel {
            id: Set(row.id),
            source_id: Set(row.source_id),
            target_id: Set(row.target_id),
            type_id: Set(row.type_id),
            attributes: Set(row.attributes),
            created_at: Set(row.created_at),
        });
        Entity::insert_many(models)
            .exec_without_returning(txn)
            .await?;
    }
    let events = rows
        .iter()
        .map(|row| {
            Event::new(
                EntityType::Relationship,
                row.id,
                Action::Create,
                None,
                Some(row),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    uow.record_all(events);
    Ok(rows)
}

/// Deletes all the relationships or none: an unknown id fails the whole call.
pub async fn delete_many(
    db: &DatabaseConnection,
    actor: &Actor,
    ids: Vec<Uuid>,
    limits: &Limits,
) -> Result<Vec<relationship::Model>> {
    if ids.len() > limits.max_batch_size {
        return Err(Error::LimitExceeded(format!(
            "{} relationships in one call, over the limit of {} (limit `max_batch_size`)",
            ids.len(),
            limits.max_batch_size
        )));
    }
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let mut found = get_many(txn, &ids).await?;
    let mut deleted = Vec::with_capacity(ids.len());
    let mut unique = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !unique.insert(*id) {
            continue;
        }
        match found.remove(id) {
            Some(row) => deleted.push(row),
            None => return Err(Error::not_found("relationship", id).within(&format!("ids[{i}]"))),
        }
    }
    remove(&uow, &deleted).await?;
    uow.commit().await?;
    Ok(deleted)
}

async fn remove(uow: &UnitOfWork, rows: &[relationship::Model]) -> Result<()> {
    let txn = uow.txn();
    for chunk in rows.chunks(500) {
        Entity::delete_many()
            .filter(Column::Id.is_in(chunk.iter().map(|r| r.id)))
            .exec(txn)
            .await?;
    }
    let events = rows
        .iter()
        .map(|row| {
            Event::new(
                EntityType::Relationship,
                row.id,
                Action::Delete,
                Some(row),
                None,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    uow.record_all(events);
    Ok(())
}

/// Deletes every relationship with the CI at either end (part of deleting the CI).
pub async fn delete_touching(uow: &UnitOfWork, ci_id: Uuid) -> Result<()> {
    let rows = Entity::find()
        .filter(
            Condition::any()
                .add(Column::SourceId.eq(ci_id))
                .add(Column::TargetId.eq(ci_id)),
        )
        .all(uow.txn())
        .await?;
    remove(uow, &rows).await
}
