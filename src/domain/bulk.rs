//! Writing many rows in one statement, the fastest way each engine offers.
//!
//! SQLite: a multi-row `VALUES` list with bound parameters, as many rows a statement as its
//! parameter limit allows. PostgreSQL: the rows as one JSON document turned into rows by
//! `jsonb_populate_recordset`, so that one short statement, prepared once, carries a
//! thousand rows (a `VALUES` list of a thousand rows is thirteen thousand parameters for
//! PostgreSQL to parse and plan, every time).
//!
//! The tail of a statement (`ON CONFLICT ...`) is the same on both engines.

use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, IdenStatic, Iterable, ModelTrait, Statement, Value,
};
use serde_json::{Map, Value as Json};

use super::{Error, Result};

/// Rows of one table, ready to insert.
#[derive(Debug, Clone)]
pub struct Rows {
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Rows of `table` with `columns`, none yet.
    pub fn new(table: &str, columns: &[&str]) -> Self {
        Rows {
            table: table.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Every column of the models of an entity, in the entity's column order.
    pub fn of_models<E>(models: &[E::Model]) -> Self
    where
        E: EntityTrait,
        E::Model: ModelTrait<Entity = E>,
    {
        let columns: Vec<E::Column> = E::Column::iter().collect();
        Rows {
            table: E::default().table_name().to_owned(),
            columns: columns.iter().map(|c| c.as_str().to_owned()).collect(),
            rows: models
                .iter()
                .map(|model| columns.iter().map(|c| model.get(*c)).collect())
                .collect(),
        }
    }

    /// Adds a row; its values in the order of the columns.
    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Most bound parameters one SQLite statement carries (its limit is 32,766).
const SQLITE_PARAMETERS: usize = 30_000;

/// Inserts the rows, with `tail` (an `ON CONFLICT` clause, or empty) after each statement;
/// returns how many rows were written.
pub async fn insert(db: &impl ConnectionTrait, rows: Rows, tail: &str) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let columns = rows
        .columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ");
    let table = quoted(&rows.table);
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let document = postgres_document(rows)?;
            let sql = format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM \
                 jsonb_populate_recordset(NULL::{table}, CAST($1 AS jsonb)) {tail}"
            );
            let result = db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [document.into()],
                ))
                .await?;
            Ok(result.rows_affected())
        }
        backend => {
            let mut written = 0;
            for (placeholders, values) in sqlite_chunks(rows) {
                let sql = format!("INSERT INTO {table} ({columns}) VALUES {placeholders} {tail}");
                written += db
                    .execute_raw(Statement::from_sql_and_values(backend, sql, values))
                    .await?
                    .rows_affected();
            }
            Ok(written)
        }
    }
}

/// Inserts the rows and returns `returning` (an id and a text column) of each row written.
pub async fn insert_returning(
    db: &impl ConnectionTrait,
    rows: Rows,
    returning: &str,
) -> Result<Vec<(i64, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let columns = rows
        .columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ");
    let table = quoted(&rows.table);
    let mut statements = Vec::new();
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let document = postgres_document(rows)?;
            statements.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "INSERT INTO {table} ({columns}) SELECT {columns} FROM \
                     jsonb_populate_recordset(NULL::{table}, CAST($1 AS jsonb)) \
                     RETURNING {returning}"
                ),
                [document.into()],
            ));
        }
        backend => {
            for (placeholders, values) in sqlite_chunks(rows) {
                statements.push(Statement::from_sql_and_values(
                    backend,
                    format!("INSERT INTO {table} ({columns}) VALUES {placeholders} RETURNING {returning}"),
                    values,
                ));
            }
        }
    }
    let mut written = Vec::new();
    for statement in statements {
        for row in db.query_all_raw(statement).await? {
            written.push((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
        }
    }
    Ok(written)
}

/// The rows as the JSON array `jsonb_populate_recordset` reads.
fn postgres_document(rows: Rows) -> Result<String> {
    let mut objects = Vec::with_capacity(rows.rows.len());
    for row in rows.rows {
        let mut object = Map::with_capacity(rows.columns.len());
        for (column, value) in rows.columns.iter().zip(row) {
            object.insert(column.clone(), to_json(value)?);
        }
        objects.push(Json::Object(object));
    }
    Ok(serde_json::to_string(&objects)?)
}

/// The rows cut into SQLite statements: each chunk's `VALUES` placeholders and its values.
fn sqlite_chunks(rows: Rows) -> Vec<(String, Vec<Value>)> {
    let per_statement = (SQLITE_PARAMETERS / rows.columns.len().max(1)).max(1);
    let row_placeholder = format!("({})", vec!["?"; rows.columns.len()].join(", "));
    let mut chunks = Vec::new();
    let mut all = rows.rows.into_iter().peekable();
    while all.peek().is_some() {
        let chunk: Vec<Vec<Value>> = all.by_ref().take(per_statement).collect();
        let placeholders = vec![row_placeholder.as_str(); chunk.len()].join(", ");
        chunks.push((placeholders, chunk.into_iter().flatten().collect()));
    }
    chunks
}

/// The JSON form of a value, as `jsonb_populate_recordset` reads it into a column.
fn to_json(value: Value) -> Result<Json> {
    Ok(match value {
        Value::Bool(v) => v.map_or(Json::Null, Json::from),
        Value::TinyInt(v) => v.map_or(Json::Null, Json::from),
        Value::SmallInt(v) => v.map_or(Json::Null, Json::from),
        Value::Int(v) => v.map_or(Json::Null, Json::from),
        Value::BigInt(v) => v.map_or(Json::Null, Json::from),
        Value::Unsigned(v) => v.map_or(Json::Null, Json::from),
        Value::BigUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::Float(v) => v.map_or(Json::Null, Json::from),
        Value::Double(v) => v.map_or(Json::Null, Json::from),
        Value::String(v) => v.map_or(Json::Null, Json::from),
        Value::Json(v) => v.map_or(Json::Null, |j| *j),
        Value::ChronoDateTimeUtc(v) => v.map_or(Json::Null, |t| {
            Json::from(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }),
        Value::Uuid(v) => v.map_or(Json::Null, |u| Json::from(u.to_string())),
        other => {
            return Err(Error::internal(anyhow::anyhow!(
                "a bulk write cannot carry the value {other:?}"
            )));
        }
    })
}

/// A statement of `sql` written with `$n` placeholders, which SQLite spells `?n`.
pub fn statement(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
                out.push(if numbered { '?' } else { c });
            }
            out
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `$first, $first+1, ...`: placeholders for `count` values.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ON CONFLICT (keys) DO UPDATE SET col = excluded.col, ...` for the given columns.
pub fn upsert_tail(keys: &[&str], update: &[&str], condition: Option<&str>) -> String {
    let keys = keys
        .iter()
        .map(|k| quoted(k))
        .collect::<Vec<_>>()
        .join(", ");
    let set = update
        .iter()
        .map(|c| format!("{0} = excluded.{0}", quoted(c)))
        .collect::<Vec<_>>()
        .join(", ");
    match condition {
        Some(condition) => format!("ON CONFLICT ({keys}) DO UPDATE SET {set} WHERE {condition}"),
        None => format!("ON CONFLICT ({keys}) DO UPDATE SET {set}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_the_json_a_column_reads() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00.000001Z")
            .expect("a time")
            .with_timezone(&chrono::Utc);
        assert_eq!(
            to_json(Value::ChronoDateTimeUtc(Some(at))).ok(),
            Some(Json::from("2026-03-01T08:00:00.000001Z"))
        );
        assert_eq!(to_json(Value::String(None)).ok(), Some(Json::Null));
        assert_eq!(
            to_json(Value::Uuid(Some(uuid::Uuid::nil()))).ok(),
            Some(Json::from("00000000-0000-0000-0000-000000000000"))
        );
        assert!(to_json(Value::Bytes(Some(vec![1]))).is_err());
    }

    #[test]
    fn an_upsert_tail_names_its_keys_and_columns() {
        assert_eq!(
            upsert_tail(&["id"], &["name", "version"], Some("t.version = 1")),
            "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = excluded.\"name\", \"version\" = excluded.\"version\" WHERE t.version = 1"
        );
    }
}
