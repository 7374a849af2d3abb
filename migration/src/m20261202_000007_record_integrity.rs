//! Record integrity: relationship types say whether they mean membership (only members
//! count toward a group's redundancy); audit events keep the source a discovery write
//! claims beside the token that sent it; and incidents keep every period they spent
//! resolved, so that time between a resolution and a reopening is not counted as an outage.
//!
//! The resolved periods of incidents recorded before this migration are rebuilt from the
//! audit trail: each transition to `RESOLVED` opens one at its `resolved_at`, and the next
//! transition from `RESOLVED` back to `IN_PROGRESS` closes it when that event was recorded.

use std::collections::HashMap;

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RelationshipType {
    Table,
    Name,
    Membership,
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Source,
}

#[derive(DeriveIden)]
enum Incident {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IncidentResolution {
    Table,
    IncidentId,
    ResolvedAt,
    ReopenedAt,
}

/// One resolved period rebuilt from the trail.
struct Period {
    incident: String,
    resolved_at: chrono::DateTime<chrono::Utc>,
    reopened_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_time(value: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&chrono::Utc))
}

/// The resolved periods the audit trail tells of, in the order they happened.
async fn periods_from_trail(db: &impl ConnectionTrait) -> Result<Vec<Period>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT entity_id, occurred_at, before, after FROM audit_event \
             WHERE entity_type = 'INCIDENT' AND action = 'TRANSITION' ORDER BY id",
        ))
        .await?;
    let mut periods: Vec<Period> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let incident: String = row.try_get("", "entity_id")?;
        let occurred_at: chrono::DateTime<chrono::Utc> = row.try_get("", "occurred_at")?;
        let before: Option<serde_json::Value> = row.try_get("", "before")?;
        let after: Option<serde_json::Value> = row.try_get("", "after")?;
        let state = |snapshot: &Option<serde_json::Value>| {
            snapshot
                .as_ref()
                .and_then(|s| s.get("state"))
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        };
        let (from, to) = (state(&before), state(&after));
        if to.as_deref() == Some("RESOLVED") {
            let resolved_at = after
                .as_ref()
                .and_then(|s| s.get("resolved_at"))
                .and_then(parse_time)
                .unwrap_or(occurred_at);
            open.insert(incident.clone(), periods.len());
            periods.push(Period {
                incident,
                resolved_at,
                reopened_at: None,
            });
        } else if from.as_deref() == Some("RESOLVED")
            && to.as_deref() == Some("IN_PROGRESS")
            && let Some(index) = open.remove(&incident)
        {
            periods[index].reopened_at = Some(Ord::max(occurred_at, periods[index].resolved_at));
        }
    }
    Ok(periods)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RelationshipType::Table)
                    .add_column(boolean(RelationshipType::Membership).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(RelationshipType::Table)
                    .value(RelationshipType::Membership, true)
                    .and_where(Expr::col(RelationshipType::Name).eq("member_of"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvent::Table)
                    .add_column(string_len_null(AuditEvent::Source, 255))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentResolution::Table)
                    .col(uuid(IncidentResolution::IncidentId))
                    .col(timestamp_with_time_zone(IncidentResolution::ResolvedAt))
                    .col(timestamp_with_time_zone_null(
                        IncidentResolution::ReopenedAt,
                    ))
                    .primary_key(
                        Index::create()
                            .col(IncidentResolution::IncidentId)
                            .col(IncidentResolution::ResolvedAt),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_incident_resolution_incident")
                            .from(IncidentResolution::Table, IncidentResolution::IncidentId)
                            .to(Incident::Table, Incident::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for period in periods_from_trail(db).await? {
            let Ok(incident) = period
                .incident
                .parse::<sea_orm_migration::sea_orm::prelude::Uuid>()
            else {
                continue;
            };
            let mut insert = Query::insert();
            insert
                .into_table(IncidentResolution::Table)
                .columns([
                    IncidentResolution::IncidentId,
                    IncidentResolution::ResolvedAt,
                    IncidentResolution::ReopenedAt,
                ])
                .values_panic([
                    incident.into(),
                    period.resolved_at.into(),
                    period.reopened_at.into(),
                ])
                .on_conflict(
                    OnConflict::columns([
                        IncidentResolution::IncidentId,
                        IncidentResolution::ResolvedAt,
                    ])
                    .do_nothing()
                    .to_owned(),
                );
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IncidentResolution::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvent::Table)
                    .drop_column(AuditEvent::Source)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RelationshipType::Table)
                    .drop_column(RelationshipType::Membership)
                    .to_owned(),
            )
            .await
    }
}
