//! The core tables: CI classes, configuration items, relationship types, relationships,
//! services with their members, and the audit trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CiClass {
    Table,
    Id,
    Name,
    Label,
    Description,
    ParentId,
    Attributes,
    IdentifierAttributes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConfigurationItem {
    Table,
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
}

#[derive(DeriveIden)]
enum RelationshipType {
    Table,
    Id,
    Name,
    InverseLabel,
    Propagation,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Relationship {
    Table,
    Id,
    SourceId,
    TargetId,
    TypeId,
    Attributes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
    Name,
    Kind,
    Description,
    Owner,
    Criticality,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ServiceMember {
    Table,
    ServiceId,
    CiId,
    AddedAt,
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    OccurredAt,
    Actor,
    EntityType,
    EntityId,
    Action,
    Before,
    After,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Names sort byte-wise on both engines, so that lists and their cursors come out in
        // the same order on SQLite (BINARY collation) and on PostgreSQL.
        let name_column = |column: DynIden, length: u32| {
            let mut column = string_len(column, length);
            if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
                column.extra("COLLATE \"C\"");
            }
            column
        };
        manager
            .create_table(
                Table::create()
                    .table(CiClass::Table)
                    .col(pk_auto(CiClass::Id))
                    .col(string_len_uniq(CiClass::Name, 100))
                    .col(string_len(CiClass::Label, 200))
                    .col(text_null(CiClass::Description))
                    .col(integer_null(CiClass::ParentId))
                    .col(json_binary(CiClass::Attributes))
                    .col(json_binary(CiClass::IdentifierAttributes))
                    .col(timestamp_with_time_zone(CiClass::CreatedAt))
                    .col(timestamp_with_time_zone(CiClass::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ci_class_parent")
                            .from(CiClass::Table, CiClass::ParentId)
                            .to(CiClass::Table, CiClass::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConfigurationItem::Table)
                    .col(pk_uuid(ConfigurationItem::Id))
                    .col(integer(ConfigurationItem::ClassId))
                    .col(name_column(ConfigurationItem::Name.into_iden(), 255))
                    .col(text_null(ConfigurationItem::Description))
                    .col(string_len(ConfigurationItem::Status, 32))
                    .col(string_len_null(ConfigurationItem::Environment, 64))
                    .col(string_len_null(ConfigurationItem::Criticality, 16))
                    .col(string_len_null(ConfigurationItem::Owner, 255))
                    .col(json_binary(ConfigurationItem::Attributes))
                    .col(integer(ConfigurationItem::Version))
                    .col(timestamp_with_time_zone(ConfigurationItem::CreatedAt))
                    .col(timestamp_with_time_zone(ConfigurationItem::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_configuration_item_class")
                            .from(ConfigurationItem::Table, ConfigurationItem::ClassId)
                            .to(CiClass::Table, CiClass::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Keyset pagination walks (sort column, id); filters hit class, status and owner.
        for (name, columns) in [
            (
                "ix_configuration_item_name",
                vec![ConfigurationItem::Name, ConfigurationItem::Id],
            ),
            (
                "ix_configuration_item_created",
                vec![ConfigurationItem::CreatedAt, ConfigurationItem::Id],
            ),
            (
                "ix_configuration_item_updated",
                vec![ConfigurationItem::UpdatedAt, ConfigurationItem::Id],
            ),
            (
                "ix_configuration_item_class",
                vec![ConfigurationItem::ClassId, ConfigurationItem::Name],
            ),
            (
                "ix_configuration_item_status",
                vec![ConfigurationItem::Status],
            ),
            (
                "ix_configuration_item_owner",
                vec![ConfigurationItem::Owner],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(ConfigurationItem::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(RelationshipType::Table)
                    .col(pk_auto(RelationshipType::Id))
                    .col(string_len_uniq(RelationshipType::Name, 100))
                    .col(string_len(RelationshipType::InverseLabel, 100))
                    .col(string_len(RelationshipType::Propagation, 32))
                    .col(text_null(RelationshipType::Description))
                    .col(timestamp_with_time_zone(RelationshipType::CreatedAt))
                    .col(timestamp_with_time_zone(RelationshipType::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Relationship::Table)
                    .col(pk_uuid(Relationship::Id))
                    .col(uuid(Relationship::SourceId))
                    .col(uuid(Relationship::TargetId))
                    .col(integer(Relationship::TypeId))
                    .col(json_binary(Relationship::Attributes))
                    .col(timestamp_with_time_zone(Relationship::CreatedAt))
                    .check(Expr::col(Relationship::SourceId).ne(Expr::col(Relationship::TargetId)))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_relationship_source")
                            .from(Relationship::Table, Relationship::SourceId)
                            .to(ConfigurationItem::Table, ConfigurationItem::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_relationship_target")
                            .from(Relationship::Table, Relationship::TargetId)
                            .to(ConfigurationItem::Table, ConfigurationItem::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_relationship_type")
                            .from(Relationship::Table, Relationship::TypeId)
                            .to(RelationshipType::Table, RelationshipType::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_relationship_source_target_type")
                    .table(Relationship::Table)
                    .col(Relationship::SourceId)
                    .col(Relationship::TargetId)
                    .col(Relationship::TypeId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_relationship_target")
                    .table(Relationship::Table)
                    .col(Relationship::TargetId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_relationship_type")
                    .table(Relationship::Table)
                    .col(Relationship::TypeId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Service::Table)
                    .col(pk_uuid(Service::Id))
                    .col(name_column(Service::Name.into_iden(), 255).unique_key())
                    .col(string_len(Service::Kind, 16))
                    .col(text_null(Service::Description))
                    .col(string_len_null(Service::Owner, 255))
                    .col(string_len_null(Service::Criticality, 16))
                    .col(integer(Service::Version))
                    .col(timestamp_with_time_zone(Service::CreatedAt))
                    .col(timestamp_with_time_zone(Service::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceMember::Table)
                    .col(uuid(ServiceMember::ServiceId))
                    .col(uuid(ServiceMember::CiId))
                    .col(timestamp_with_time_zone(ServiceMember::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(ServiceMember::ServiceId)
                            .col(ServiceMember::CiId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_member_service")
                            .from(ServiceMember::Table, ServiceMember::ServiceId)
                            .to(Service::Table, Service::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_member_ci")
                            .from(ServiceMember::Table, ServiceMember::CiId)
                            .to(ConfigurationItem::Table, ConfigurationItem::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_service_member_ci")
                    .table(ServiceMember::Table)
                    .col(ServiceMember::CiId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(big_pk_auto(AuditEvent::Id))
                    .col(timestamp_with_time_zone(AuditEvent::OccurredAt))
                    .col(string_len(AuditEvent::Actor, 255))
                    .col(string_len(AuditEvent::EntityType, 32))
                    .col(string_len(AuditEvent::EntityId, 64))
                    .col(string_len(AuditEvent::Action, 32))
                    .col(json_binary_null(AuditEvent::Before))
                    .col(json_binary_null(AuditEvent::After))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_event_entity")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::EntityType)
                    .col(AuditEvent::EntityId)
                    .col(AuditEvent::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_event_occurred")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::OccurredAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvent::Table.into_iden(),
            ServiceMember::Table.into_iden(),
            Service::Table.into_iden(),
            Relationship::Table.into_iden(),
            RelationshipType::Table.into_iden(),
            ConfigurationItem::Table.into_iden(),
            CiClass::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
