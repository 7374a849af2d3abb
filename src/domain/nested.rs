//! Lists under a record, for nested fields: the lists of a whole page of owners read in a
//! couple of statements, each owner's list cut to its first rows inside the database, so
//! that no row is read only to be thrown away.
//!
//! The cut: one statement counts, per owner, the rows over the cap (an index-only count
//! that usually finds none); the owners within it are read together, the rare ones over it
//! one by one with `LIMIT`. Numbering rows per owner (`ROW_NUMBER() OVER (PARTITION BY
//! ...)`) does the same in one statement, but costs SQLite more than the reading itself.
//!
//! Rows cross from the database as one JSON document ([`super::json_rows`]); a statement
//! built here names each row's owner in the column [`OWNER`].

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Alias, ColumnType, Expr, ExprTrait, JoinType, Order, SelectStatement};
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::Result;
use super::json_rows;

/// The column naming each row's owner.
pub const OWNER: &str = "owner_id";

/// How many owners one statement asks about: within every engine's parameter limit.
pub const OWNERS_PER_STATEMENT: usize = 500;

/// How to read lists: `base` selects the rows of the given owners that belong in their
/// lists (the listed record's columns, and the owner as [`OWNER`]); `record` is the JSON
/// object of the record's columns (see [`json_rows::columns_object`]); `owner` is the
/// owner's column; `order` the list's order; `first` the cap per owner; `join` the record
/// read beside each row.
pub struct Lists<'a> {
    pub base: &'a (dyn Fn(&[Uuid]) -> SelectStatement + Sync),
    pub record: String,
    pub owner: Expr,
    pub order: Vec<(Expr, Order)>,
    pub first: Option<u64>,
    pub join: Option<Joined<'a>>,
}

/// A record read beside each row of a list: `add` joins its table and selects its columns
/// (prefixed, see [`with_columns_of`]); `object` is the JSON object of those columns (see
/// [`json_rows::columns_object`]).
pub struct Joined<'a> {
    pub add: &'a (dyn Fn(&mut SelectStatement) + Sync),
    pub object: String,
}

/// Each owner's list: records of `M`, each with the record joined to it.
pub type ListsByOwner<M, O> = HashMap<Uuid, Vec<(M, Option<O>)>>;

/// One row of a list: its owner, the record and the record joined to it.
#[derive(serde::Deserialize)]
struct OwnedRow<M, O> {
    w: Uuid,
    m: M,
    o: Option<O>,
}

/// The lists of `owners`, as `lists` says: each owner's records `M` in order, each with
/// the record `O` joined to it when `lists.join` is given.
pub async fn read<M, O>(
    db: &impl ConnectionTrait,
    owners: &[Uuid],
    lists: &Lists<'_>,
) -> Result<ListsByOwner<M, O>>
where
    M: serde::de::DeserializeOwned,
    O: serde::de::DeserializeOwned,
{
    let mut grouped: ListsByOwner<M, O> = HashMap::new();
    for chunk in owners.chunks(OWNERS_PER_STATEMENT) {
        let over = match lists.first {
            Some(first) => over_the_cap(db, chunk, lists, first).await?,
            None => HashSet::new(),
        };
        let within: Vec<Uuid> = chunk
            .iter()
            .filter(|o| !over.contains(o))
            .copied()
            .collect();
        if !within.is_empty() {
            let select = ordered((lists.base)(&within), lists, None);
            for row in fetch::<M, O>(db, &select, lists).await? {
                grouped.entry(row.w).or_default().push((row.m, row.o));
            }
        }
        for owner in over {
            let select = ordered((lists.base)(&[owner]), lists, lists.first);
            let rows = fetch::<M, O>(db, &select, lists).await?;
            grouped
                .entry(owner)
                .or_default()
                .extend(rows.into_iter().map(|row| (row.m, row.o)));
        }
    }
    Ok(grouped)
}

/// The owners among `chunk` with more rows than `first`.
async fn over_the_cap(
    db: &impl ConnectionTrait,
    chunk: &[Uuid],
    lists: &Lists<'_>,
    first: u64,
) -> Result<HashSet<Uuid>> {
    let mut count = (lists.base)(chunk);
    count
        .clear_selects()
        .clear_order_by()
        .expr_as(lists.owner.clone(), Alias::new(OWNER))
        .add_group_by([lists.owner.clone()])
        .and_having(Expr::cust("COUNT(*)").gt(first));
    let mut over = HashSet::new();
    for row in db.query_all(&count).await? {
        over.insert(row.try_get::<Uuid>("", OWNER)?);
    }
    Ok(over)
}

/// `select` in list order, with the joined record and at most `limit` rows.
fn ordered(mut select: SelectStatement, lists: &Lists<'_>, limit: Option<u64>) -> SelectStatement {
    if let Some(join) = &lists.join {
        (join.add)(&mut select);
    }
    for (expr, direction) in &lists.order {
        select.order_by_expr(expr.clone(), direction.clone());
    }
    if let Some(limit) = limit {
        select.limit(limit);
    }
    select
}

async fn fetch<M, O>(
    db: &impl ConnectionTrait,
    select: &SelectStatement,
    lists: &Lists<'_>,
) -> Result<Vec<OwnedRow<M, O>>>
where
    M: serde::de::DeserializeOwned,
    O: serde::de::DeserializeOwned,
{
    let backend = db.get_database_backend();
    let other = match &lists.join {
        Some(join) => join.object.as_str(),
        None => "NULL",
    };
    let row = json_rows::object(
        backend,
        &[
            format!(
                "'w', {}",
                json_rows::value(backend, OWNER, &ColumnType::Uuid)
            ),
            format!("'m', {}", lists.record),
            format!("'o', {other}"),
        ],
    );
    json_rows::fetch(db, select, &row).await
}

/// Adds `columns` of `E` to `select` under `prefix` (`other_id`, `other_name`...), for
/// reading a joined record beside the main one.
pub fn with_columns_of<E: EntityTrait>(
    select: &mut SelectStatement,
    prefix: &str,
    columns: &[E::Column],
) {
    use sea_orm::IdenStatic;
    for column in columns.iter().copied() {
        select.expr_as(
            Expr::col((E::default(), column)),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
    }
}

/// Records of `R` linked to owners through the link table `L`: each owner's records
/// meeting `condition`, in `order`, at most `first` each (all when `None`). `owner` and
/// `record` are the link's columns naming the owner and the record; `id` is the record's
/// own id column. With `at`, the records and links as they were at that instant (both must
/// be kept in the history).
#[allow(clippy::too_many_arguments)]
pub async fn linked<R, L>(
    db: &impl ConnectionTrait,
    owners: &[Uuid],
    owner: L::Column,
    record: L::Column,
    id: R::Column,
    condition: sea_orm::Condition,
    order: Vec<(Expr, Order)>,
    first: Option<u64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<HashMap<Uuid, Vec<R::Model>>>
where
    R: EntityTrait,
    L: EntityTrait,
    R::Model: serde::de::DeserializeOwned,
{
    use sea_orm::{QueryFilter, QueryTrait};
    let kept = |name: &str| {
        super::as_of::Table::for_record(name).ok_or_else(|| {
            super::Error::internal(anyhow::anyhow!("`{name}` is not kept in the history"))
        })
    };
    let tables = match at {
        Some(at) => Some((
            kept(R::default().table_name())?,
            kept(L::default().table_name())?,
            at,
        )),
        None => None,
    };
    let base = |owners: &[Uuid]| {
        let mut select = R::find().filter(condition.clone()).into_query();
        let on = Expr::col((L::default(), record)).equals((R::default(), id));
        match tables {
            Some((records, links, at)) => {
                super::as_of::narrow(&mut select, records, at);
                super::as_of::join(&mut select, links, on, Some(at));
            }
            None => {
                select.join(JoinType::InnerJoin, L::default(), on);
            }
        }
        select
            .and_where(Expr::col((L::default(), owner)).is_in(owners.iter().copied()))
            .expr_as(Expr::col((L::default(), owner)), Alias::new(OWNER));
        select
    };
    let lists = Lists {
        base: &base,
        record: json_rows::entity_object::<R>(db.get_database_backend(), ""),
        owner: Expr::col((L::default(), owner)),
        order,
        first,
        join: None,
    };
    Ok(read::<R::Model, ()>(db, owners, &lists)
        .await?
        .into_iter()
        .map(|(owner, list)| (owner, list.into_iter().map(|(m, _)| m).collect()))
        .collect())
}
