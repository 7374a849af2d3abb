//! Reading many rows as one: a select wrapped so that the database answers a single row
//! holding a JSON array of the selected records, decoded straight into models.
//!
//! SQLite's driver hands every row from SQLite's thread to the caller's and copies each of
//! its values on the way; for the hundreds of small rows of a nested page, that hand-over
//! costs more than reading the rows. Built into JSON inside the database, the page crosses
//! once. PostgreSQL writes each column in its JSON form already (uuids and times as text,
//! `jsonb` as JSON, booleans as `true`/`false`); SQLite needs its blobs, JSON text and
//! integer booleans turned into the same forms, which [`column_json`] does.
//!
//! The models decode with their `serde` implementations, which read these forms: a test
//! (`json_rows_decode_as_the_driver_does`) compares them with the driver's decoding for
//! every entity read this way, on both engines.

use sea_orm::sea_query::{ColumnType, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, Iterable};
use serde::de::DeserializeOwned;

use super::{Error, Result};

/// The SQL of one column of the subquery `sub` as a JSON value of the engine.
fn column_json(backend: DbBackend, name: &str, column_type: &ColumnType) -> String {
    let column = format!("sub.\"{name}\"");
    if backend == DbBackend::Postgres {
        return column;
    }
    match column_type {
        ColumnType::Uuid => format!("iif({column} IS NULL, NULL, hex({column}))"),
        ColumnType::Json | ColumnType::JsonBinary => format!("json({column})"),
        ColumnType::Boolean => {
            format!("iif({column} IS NULL, NULL, json(iif({column}, 'true', 'false')))")
        }
        _ => column,
    }
}

/// One JSON object builder call of `pairs` (`'key', value`).
pub fn object(backend: DbBackend, pairs: &[String]) -> String {
    match backend {
        DbBackend::Postgres => format!("json_build_object({})", pairs.join(", ")),
        _ => format!("json_object({})", pairs.join(", ")),
    }
}

/// The JSON object of the columns of `E` that the subquery names with `prefix`.
pub fn entity_object<E: EntityTrait>(backend: DbBackend, prefix: &str) -> String {
    columns_object::<E>(backend, prefix, &E::Column::iter().collect::<Vec<_>>())
}

/// The JSON object of `columns` of `E`, as the subquery names them with `prefix`.
pub fn columns_object<E: EntityTrait>(
    backend: DbBackend,
    prefix: &str,
    columns: &[E::Column],
) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|column| {
            let name = column.as_str();
            format!(
                "'{name}', {}",
                column_json(
                    backend,
                    &format!("{prefix}{name}"),
                    column.def().get_column_type()
                )
            )
        })
        .collect();
    object(backend, &pairs)
}

/// A JSON value of the subquery's column `name`, of `column_type`.
pub fn value(backend: DbBackend, name: &str, column_type: &ColumnType) -> String {
    column_json(backend, name, column_type)
}

/// Runs `select` as the subquery `sub` of one statement answering a JSON array of `row`
/// (an object built from `sub`'s columns, see [`entity_object`]), and decodes its
/// elements as `T`.
pub async fn fetch<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    select: &SelectStatement,
    row: &str,
) -> Result<Vec<T>> {
    let backend = db.get_database_backend();
    let mut statement = backend.build(select);
    statement.sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT CAST(json_agg({row}) AS text) AS rows FROM ({}) AS sub",
            statement.sql
        ),
        _ => format!(
            "SELECT json_group_array({row}) AS rows FROM ({}) AS sub",
            statement.sql
        ),
    };
    let text: Option<String> = match db.query_one_raw(statement).await? {
        Some(answer) => answer.try_get("", "rows")?,
        None => None,
    };
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|err| {
            Error::internal(anyhow::Error::new(err).context("a JSON row does not decode"))
        }),
    }
}

/// The records `select` reads (every column of `E`, unprefixed), decoded as models.
pub async fn models<E>(db: &impl ConnectionTrait, select: &SelectStatement) -> Result<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: DeserializeOwned,
{
    let row = entity_object::<E>(db.get_database_backend(), "");
    fetch(db, select, &row).await
}
