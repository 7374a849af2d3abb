//! Reads as of a past instant: the ordinary read of a record table, made over its version
//! table (kept by [`super::history`]) narrowed to the versions valid at that instant. Lower
//! than every record module, so each can offer its reads as of an instant.

use chrono::{DateTime, Utc};
use entity::configuration_item;
use sea_orm::{
    ConnectionTrait, EntityTrait, QueryFilter, QueryTrait, Select,
    sea_query::{Alias, Expr, ExprTrait, SelectStatement},
};
use uuid::Uuid;

use super::{Error, Result, bulk, now};

/// A kept record kind: the version table and the record table it mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    ConfigurationItem,
    Relationship,
    Service,
    ServiceMember,
}

impl Table {
    /// The version table.
    pub fn name(self) -> &'static str {
        match self {
            Table::ConfigurationItem => "configuration_item_version",
            Table::Relationship => "relationship_version",
            Table::Service => "service_version",
            Table::ServiceMember => "service_member_version",
        }
    }

    /// The record table, whose name the version table takes in an as-of read.
    pub fn record(self) -> &'static str {
        match self {
            Table::ConfigurationItem => "configuration_item",
            Table::Relationship => "relationship",
            Table::Service => "service",
            Table::ServiceMember => "service_member",
        }
    }
}

/// Turns a read of the record table into the same read as of `at`: from the version table
/// (under the record table's name, so every column and condition still applies), keeping the
/// versions valid at that instant.
pub fn narrow(query: &mut SelectStatement, table: Table, at: DateTime<Utc>) {
    query
        .from_clear()
        .from_as(Alias::new(table.name()), Alias::new(table.record()));
    let column = |name: &str| Expr::col((Alias::new(table.record()), Alias::new(name)));
    query.and_where(column("valid_from").lte(Expr::val(at)));
    query.and_where(
        column("valid_to")
            .is_null()
            .or(column("valid_to").gt(Expr::val(at))),
    );
}

/// [`narrow`] for a sea-orm select; `None` leaves the current read.
pub fn as_of<E: EntityTrait>(
    mut select: Select<E>,
    table: Table,
    at: Option<DateTime<Utc>>,
) -> Select<E> {
    if let Some(at) = at {
        narrow(QueryTrait::query(&mut select), table, at);
    }
    select
}

/// Refuses an instant the history cannot answer for: in the future, or before the first
/// event of the audit trail (`VALIDATION`).
pub async fn check_instant(
    db: &impl ConnectionTrait,
    field: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    if at > now() {
        return Err(Error::invalid(field, format!("`{field}` is in the future")));
    }
    let row = db
        .query_one_raw(bulk::statement(
            db,
            "SELECT MIN(occurred_at) FROM audit_event",
            vec![],
        ))
        .await?;
    let first: Option<DateTime<Utc>> = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    match first {
        Some(first) if at >= first => Ok(()),
        Some(first) => Err(Error::invalid(
            field,
            format!("`{field}` is before the first recorded change ({first})"),
        )),
        None => Err(Error::invalid(
            field,
            format!("`{field}`: nothing has been recorded yet"),
        )),
    }
}

/// The CI as it was at `at`, if it existed then.
pub async fn ci_at(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<configuration_item::Model>> {
    let select = configuration_item::Entity::find()
        .filter(Expr::col((Alias::new("configuration_item"), Alias::new("id"))).eq(id));
    Ok(as_of(select, Table::ConfigurationItem, Some(at))
        .one(db)
        .await?)
}

impl Table {
    /// The kept record kind whose record table is `name`.
    pub fn for_record(name: &str) -> Option<Table> {
        [
            Table::ConfigurationItem,
            Table::Relationship,
            Table::Service,
            Table::ServiceMember,
        ]
        .into_iter()
        .find(|t| t.record() == name)
    }
}

/// [`narrow`] when `at` is given.
pub fn narrow_if(query: &mut SelectStatement, table: Table, at: Option<DateTime<Utc>>) {
    if let Some(at) = at {
        narrow(query, table, at);
    }
}

/// Joins `table` (inner) on `on`: the record table, or with `at`, its versions valid then
/// under the record table's name.
pub fn join(
    query: &mut SelectStatement,
    table: Table,
    on: impl sea_orm::sea_query::IntoCondition,
    at: Option<DateTime<Utc>>,
) {
    use sea_orm::sea_query::JoinType;
    let Some(at) = at else {
        query.join(JoinType::InnerJoin, Alias::new(table.record()), on);
        return;
    };
    query.join_as(
        JoinType::InnerJoin,
        Alias::new(table.name()),
        Alias::new(table.record()),
        on,
    );
    let column = |name: &str| Expr::col((Alias::new(table.record()), Alias::new(name)));
    query.and_where(column("valid_from").lte(Expr::val(at)));
    query.and_where(
        column("valid_to")
            .is_null()
            .or(column("valid_to").gt(Expr::val(at))),
    );
}

/// The CIs among `ids` as they were at `at` (those that existed then), keyed by id.
pub async fn cis_at(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    at: &DateTime<Utc>,
) -> Result<std::collections::HashMap<Uuid, configuration_item::Model>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let select = configuration_item::Entity::find().filter(
            Expr::col((Alias::new("configuration_item"), Alias::new("id")))
                .is_in(chunk.iter().copied()),
        );
        for ci in as_of(select, Table::ConfigurationItem, Some(*at))
            .all(db)
            .await?
        {
            found.insert(ci.id, ci);
        }
    }
    Ok(found)
}
