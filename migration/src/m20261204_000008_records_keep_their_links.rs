//! Records keep the CIs and services they name: the links from incidents and changes to
//! CIs and services no longer vanish when the CI or service is deleted (`ON DELETE
//! RESTRICT` instead of `CASCADE`). The application refuses such deletions with a reason;
//! the database now refuses them too, whatever path a deletion takes. Deleting an incident
//! or a change still removes its own links.
//!
//! PostgreSQL changes the constraints in place. SQLite cannot alter a constraint: each link
//! table is rebuilt from its own definition with the one clause changed, its rows copied.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (link table, constraint, column, referenced table).
const LINKS: [(&str, &str, &str, &str); 4] = [
    (
        "incident_ci",
        "fk_incident_ci_ci",
        "ci_id",
        "configuration_item",
    ),
    (
        "incident_service",
        "fk_incident_service_service",
        "service_id",
        "service",
    ),
    (
        "change_ci",
        "fk_change_ci_ci",
        "ci_id",
        "configuration_item",
    ),
    (
        "change_service",
        "fk_change_service_service",
        "service_id",
        "service",
    ),
];

async fn set_action(manager: &SchemaManager<'_>, action: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match db.get_database_backend() {
        DbBackend::Postgres => {
            for (table, constraint, column, referenced) in LINKS {
                db.execute_unprepared(&format!(
                    "ALTER TABLE \"{table}\" DROP CONSTRAINT \"{constraint}\", \
                     ADD CONSTRAINT \"{constraint}\" FOREIGN KEY (\"{column}\") \
                     REFERENCES \"{referenced}\" (\"id\") ON DELETE {action}"
                ))
                .await?;
            }
        }
        _ => {
            for (table, _, column, _) in LINKS {
                rebuild_sqlite(db, table, column, action).await?;
            }
        }
    }
    Ok(())
}

/// Rebuilds a SQLite table with the `ON DELETE` action of the foreign key on `column` set
/// to `action` (SQLite keeps no constraint names).
async fn rebuild_sqlite(
    db: &impl ConnectionTrait,
    table: &str,
    column: &str,
    action: &str,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let definition = |kind: &str| {
        Statement::from_sql_and_values(
            backend,
            format!("SELECT name, sql FROM sqlite_master WHERE type = '{kind}' AND tbl_name = ?"),
            [table.into()],
        )
    };
    let create: String = db
        .query_one_raw(definition("table"))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("table `{table}` not found")))?
        .try_get("", "sql")?;
    let indexes: Vec<String> = db
        .query_all_raw(definition("index"))
        .await?
        .iter()
        .filter_map(|row| row.try_get::<Option<String>>("", "sql").ok().flatten())
        .collect();
    let changed = with_action(&create, column, action)
        .ok_or_else(|| DbErr::Migration(format!("no foreign key on `{table}.{column}`")))?;
    // Rows wait in a copy while the table is made again under its own name.
    let kept = format!("{table}_kept");
    db.execute_unprepared(&format!(
        "CREATE TEMP TABLE \"{kept}\" AS SELECT * FROM \"{table}\""
    ))
    .await?;
    db.execute_unprepared(&format!("DROP TABLE \"{table}\""))
        .await?;
    db.execute_unprepared(&changed).await?;
    db.execute_unprepared(&format!("INSERT INTO \"{table}\" SELECT * FROM \"{kept}\""))
        .await?;
    db.execute_unprepared(&format!("DROP TABLE \"{kept}\""))
        .await?;
    for index in indexes {
        db.execute_unprepared(&index).await?;
    }
    Ok(())
}

/// `create` with the `ON DELETE` action of the foreign key on `column` replaced.
fn with_action(create: &str, column: &str, action: &str) -> Option<String> {
    let start = create.find(&format!("FOREIGN KEY (\"{column}\")"))?;
    let rest = &create[start..];
    let clause = rest.find("ON DELETE ")? + "ON DELETE ".len();
    let old: String = rest[clause..]
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == ' ')
        .collect();
    let old = [
        "SET NULL",
        "SET DEFAULT",
        "NO ACTION",
        "CASCADE",
        "RESTRICT",
    ]
    .into_iter()
    .find(|known| old.starts_with(known))?;
    let at = start + clause;
    Some(format!(
        "{}{action}{}",
        &create[..at],
        &create[at + old.len()..]
    ))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// On every engine: the rebuild is all or nothing, and runs on one connection.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_action(manager, "RESTRICT").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_action(manager, "CASCADE").await
    }
}

#[cfg(test)]
mod tests {
    use super::with_action;

    #[test]
    fn only_the_named_constraint_changes() {
        let create = "CREATE TABLE \"incident_ci\" ( \"incident_id\" uuid_text NOT NULL, \
            \"ci_id\" uuid_text NOT NULL, PRIMARY KEY (\"incident_id\", \"ci_id\"), \
            FOREIGN KEY (\"incident_id\") REFERENCES \"incident\" (\"id\") ON DELETE CASCADE, \
            FOREIGN KEY (\"ci_id\") REFERENCES \"configuration_item\" (\"id\") ON DELETE CASCADE )";
        let changed = with_action(create, "ci_id", "RESTRICT").expect("found");
        assert!(changed.contains(
            "FOREIGN KEY (\"incident_id\") REFERENCES \"incident\" (\"id\") ON DELETE CASCADE"
        ));
        assert!(
            changed.ends_with("REFERENCES \"configuration_item\" (\"id\") ON DELETE RESTRICT )")
        );
        assert_eq!(
            with_action(&changed, "ci_id", "CASCADE").as_deref(),
            Some(create)
        );
        assert!(with_action(create, "missing", "RESTRICT").is_none());
    }
}
