//! History you can query: every version of a CI, a relationship, a service and a service
//! membership, with the interval it was the current one (`valid_from` inclusive, `valid_to`
//! exclusive, null while current).
//!
//! Each version table has the columns of the record it keeps (the same names), so that a
//! read of the record "as of" an instant is the read of the current one over the version
//! table, narrowed to the rows valid then. `audit_event_id` names the audit event that wrote
//! the version. `history_backfill.through` is the last audit event written before this
//! migration: the server replays the trail up to it into the version tables once, so history
//! recorded before versions were kept reads as of its times too. A `baseline` is a named
//! instant with a scope: a reference point to compare with, costing no copy of the data.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConfigurationItemVersion {
    Table,
    AuditEventId,
    Id,
    ClassId,
    Name,
    Description,
    Status,
    Environment,
    Criticality,
    Owner,
    Attributes,
    Version,
    CreatedAt,
    UpdatedAt,
    Provenance,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum RelationshipVersion {
    Table,
    AuditEventId,
    Id,
    SourceId,
    TargetId,
    TypeId,
    Attributes,
    CreatedAt,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum ServiceVersion {
    Table,
    AuditEventId,
    Id,
    Name,
    Kind,
    Description,
    Owner,
    Criticality,
    Version,
    CreatedAt,
    UpdatedAt,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum ServiceMemberVersion {
    Table,
    AuditEventId,
    ServiceId,
    CiId,
    AddedAt,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum Baseline {
    Table,
    Id,
    Name,
    Description,
    At,
    Scope,
    CreatedBy,
}

#[derive(DeriveIden)]
enum HistoryBackfill {
    Table,
    Id,
    Through,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Names sort byte-wise on both engines, as in the record tables.
        let name_column = |column: DynIden| {
            let mut column = string_len(column, 255);
            if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
                column.extra("COLLATE \"C\"");
            }
            column
        };
        manager
            .create_table(
                Table::create()
                    .table(ConfigurationItemVersion::Table)
                    .col(big_integer(ConfigurationItemVersion::AuditEventId).primary_key())
                    .col(uuid(ConfigurationItemVersion::Id))
                    .col(integer(ConfigurationItemVersion::ClassId))
                    .col(name_column(ConfigurationItemVersion::Name.into_iden()))
                    .col(text_null(ConfigurationItemVersion::Description))
                    .col(string_len(ConfigurationItemVersion::Status, 32))
                    .col(string_len_null(ConfigurationItemVersion::Environment, 64))
                    .col(string_len_null(ConfigurationItemVersion::Criticality, 16))
                    .col(string_len_null(ConfigurationItemVersion::Owner, 255))
                    .col(json_binary(ConfigurationItemVersion::Attributes))
                    .col(integer(ConfigurationItemVersion::Version))
                    .col(timestamp_with_time_zone(
                        ConfigurationItemVersion::CreatedAt,
                    ))
                    .col(timestamp_with_time_zone(
                        ConfigurationItemVersion::UpdatedAt,
                    ))
                    .col(json_binary(ConfigurationItemVersion::Provenance))
                    .col(timestamp_with_time_zone(
                        ConfigurationItemVersion::ValidFrom,
                    ))
                    .col(timestamp_with_time_zone_null(
                        ConfigurationItemVersion::ValidTo,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RelationshipVersion::Table)
                    .col(big_integer(RelationshipVersion::AuditEventId).primary_key())
                    .col(uuid(RelationshipVersion::Id))
                    .col(uuid(RelationshipVersion::SourceId))
                    .col(uuid(RelationshipVersion::TargetId))
                    .col(integer(RelationshipVersion::TypeId))
                    .col(json_binary(RelationshipVersion::Attributes))
                    .col(timestamp_with_time_zone(RelationshipVersion::CreatedAt))
                    .col(timestamp_with_time_zone(RelationshipVersion::ValidFrom))
                    .col(timestamp_with_time_zone_null(RelationshipVersion::ValidTo))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceVersion::Table)
                    .col(big_integer(ServiceVersion::AuditEventId).primary_key())
                    .col(uuid(ServiceVersion::Id))
                    .col(name_column(ServiceVersion::Name.into_iden()))
                    .col(string_len(ServiceVersion::Kind, 16))
                    .col(text_null(ServiceVersion::Description))
                    .col(string_len_null(ServiceVersion::Owner, 255))
                    .col(string_len_null(ServiceVersion::Criticality, 16))
                    .col(integer(ServiceVersion::Version))
                    .col(timestamp_with_time_zone(ServiceVersion::CreatedAt))
                    .col(timestamp_with_time_zone(ServiceVersion::UpdatedAt))
                    .col(timestamp_with_time_zone(ServiceVersion::ValidFrom))
                    .col(timestamp_with_time_zone_null(ServiceVersion::ValidTo))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceMemberVersion::Table)
                    .col(big_integer(ServiceMemberVersion::AuditEventId))
                    .col(uuid(ServiceMemberVersion::ServiceId))
                    .col(uuid(ServiceMemberVersion::CiId))
                    .col(timestamp_with_time_zone(ServiceMemberVersion::AddedAt))
                    .col(timestamp_with_time_zone(ServiceMemberVersion::ValidFrom))
                    .col(timestamp_with_time_zone_null(ServiceMemberVersion::ValidTo))
                    .primary_key(
                        Index::create()
                            .col(ServiceMemberVersion::AuditEventId)
                            .col(ServiceMemberVersion::CiId),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, DynIden, Vec<DynIden>); 10] = [
            (
                "idx_ci_version_name",
                ConfigurationItemVersion::Table.into_iden(),
                vec![
                    ConfigurationItemVersion::Name.into_iden(),
                    ConfigurationItemVersion::Id.into_iden(),
                ],
            ),
            (
                "idx_ci_version_id",
                ConfigurationItemVersion::Table.into_iden(),
                vec![
                    ConfigurationItemVersion::Id.into_iden(),
                    ConfigurationItemVersion::ValidFrom.into_iden(),
                ],
            ),
            (
                "idx_ci_version_valid_from",
                ConfigurationItemVersion::Table.into_iden(),
                vec![ConfigurationItemVersion::ValidFrom.into_iden()],
            ),
            (
                "idx_ci_version_open",
                ConfigurationItemVersion::Table.into_iden(),
                vec![
                    ConfigurationItemVersion::ValidTo.into_iden(),
                    ConfigurationItemVersion::Id.into_iden(),
                ],
            ),
            (
                "idx_relationship_version_id",
                RelationshipVersion::Table.into_iden(),
                vec![
                    RelationshipVersion::Id.into_iden(),
                    RelationshipVersion::ValidFrom.into_iden(),
                ],
            ),
            (
                "idx_relationship_version_source",
                RelationshipVersion::Table.into_iden(),
                vec![RelationshipVersion::SourceId.into_iden()],
            ),
            (
                "idx_relationship_version_target",
                RelationshipVersion::Table.into_iden(),
                vec![RelationshipVersion::TargetId.into_iden()],
            ),
            (
                "idx_service_version_id",
                ServiceVersion::Table.into_iden(),
                vec![
                    ServiceVersion::Id.into_iden(),
                    ServiceVersion::ValidFrom.into_iden(),
                ],
            ),
            (
                "idx_service_member_version_service",
                ServiceMemberVersion::Table.into_iden(),
                vec![
                    ServiceMemberVersion::ServiceId.into_iden(),
                    ServiceMemberVersion::ValidFrom.into_iden(),
                ],
            ),
            (
                "idx_service_member_version_ci",
                ServiceMemberVersion::Table.into_iden(),
                vec![ServiceMemberVersion::CiId.into_iden()],
            ),
        ];
        for (name, table, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Baseline::Table)
                    .col(pk_uuid(Baseline::Id))
                    .col(name_column(Baseline::Name.into_iden()).unique_key())
                    .col(text_null(Baseline::Description))
                    .col(timestamp_with_time_zone(Baseline::At))
                    .col(json_binary(Baseline::Scope))
                    .col(string_len(Baseline::CreatedBy, 255))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HistoryBackfill::Table)
                    .col(integer(HistoryBackfill::Id).primary_key())
                    .col(big_integer(HistoryBackfill::Through))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO history_backfill (id, through) \
                 SELECT 1, COALESCE(MAX(id), 0) FROM audit_event",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HistoryBackfill::Table.into_iden(),
            Baseline::Table.into_iden(),
            ServiceMemberVersion::Table.into_iden(),
            ServiceVersion::Table.into_iden(),
            RelationshipVersion::Table.into_iden(),
            ConfigurationItemVersion::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
