//! Discovery: identifiers of CIs per source, identity keys for identification by attributes,
//! per-field provenance, reconciliation rules, relationship sightings and full-sync runs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CiClass {
    Table,
    Id,
    DiscoveryOverridesManual,
}

#[derive(DeriveIden)]
enum ConfigurationItem {
    Table,
    Id,
    Provenance,
}

#[derive(DeriveIden)]
enum Relationship {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CiIdentifier {
    Table,
    Source,
    ExternalId,
    CiId,
    Scope,
    FirstSeenAt,
    LastSeenAt,
    Stale,
}

#[derive(DeriveIden)]
enum IdentityKey {
    Table,
    ClassId,
    Attribute,
    Value,
    CiId,
}

#[derive(DeriveIden)]
enum ReconciliationRule {
    Table,
    ClassId,
    Attribute,
    Sources,
    StaleAfterSeconds,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RelationshipSighting {
    Table,
    RelationshipId,
    Source,
    Scope,
    FirstSeenAt,
    LastSeenAt,
    Stale,
}

#[derive(DeriveIden)]
enum DiscoveryRun {
    Table,
    Id,
    Source,
    Scope,
    StartedAt,
    UpdatedAt,
    CompletedAt,
    Batches,
    StaleCis,
    StaleRelationships,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CiClass::Table)
                    .add_column(boolean(CiClass::DiscoveryOverridesManual).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ConfigurationItem::Table)
                    .add_column(json_binary(ConfigurationItem::Provenance).default("{}"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CiIdentifier::Table)
                    .col(string_len(CiIdentifier::Source, 100))
                    .col(string_len(CiIdentifier::ExternalId, 255))
                    .col(uuid(CiIdentifier::CiId))
                    .col(string_len_null(CiIdentifier::Scope, 255))
                    .col(timestamp_with_time_zone(CiIdentifier::FirstSeenAt))
                    .col(timestamp_with_time_zone(CiIdentifier::LastSeenAt))
                    .col(boolean(CiIdentifier::Stale).default(false))
                    .primary_key(
                        Index::create()
                            .col(CiIdentifier::Source)
                            .col(CiIdentifier::ExternalId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ci_identifier_ci")
                            .from(CiIdentifier::Table, CiIdentifier::CiId)
                            .to(ConfigurationItem::Table, ConfigurationItem::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ci_identifier_ci")
                    .table(CiIdentifier::Table)
                    .col(CiIdentifier::CiId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ci_identifier_scope")
                    .table(CiIdentifier::Table)
                    .col(CiIdentifier::Source)
                    .col(CiIdentifier::Scope)
                    .col(CiIdentifier::LastSeenAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdentityKey::Table)
                    .col(integer(IdentityKey::ClassId))
                    .col(string_len(IdentityKey::Attribute, 100))
                    .col(string_len(IdentityKey::Value, 512))
                    .col(uuid(IdentityKey::CiId))
                    .primary_key(
                        Index::create()
                            .col(IdentityKey::ClassId)
                            .col(IdentityKey::Attribute)
                            .col(IdentityKey::Value)
                            .col(IdentityKey::CiId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_identity_key_ci")
                            .from(IdentityKey::Table, IdentityKey::CiId)
                            .to(ConfigurationItem::Table, ConfigurationItem::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_identity_key_ci")
                    .table(IdentityKey::Table)
                    .col(IdentityKey::CiId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReconciliationRule::Table)
                    .col(integer(ReconciliationRule::ClassId))
                    .col(string_len(ReconciliationRule::Attribute, 120))
                    .col(json_binary(ReconciliationRule::Sources))
                    .col(big_integer_null(ReconciliationRule::StaleAfterSeconds))
                    .col(timestamp_with_time_zone(ReconciliationRule::CreatedAt))
                    .col(timestamp_with_time_zone(ReconciliationRule::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ReconciliationRule::ClassId)
                            .col(ReconciliationRule::Attribute),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reconciliation_rule_class")
                            .from(ReconciliationRule::Table, ReconciliationRule::ClassId)
                            .to(CiClass::Table, CiClass::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RelationshipSighting::Table)
                    .col(uuid(RelationshipSighting::RelationshipId))
                    .col(string_len(RelationshipSighting::Source, 100))
                    .col(string_len_null(RelationshipSighting::Scope, 255))
                    .col(timestamp_with_time_zone(RelationshipSighting::FirstSeenAt))
                    .col(timestamp_with_time_zone(RelationshipSighting::LastSeenAt))
                    .col(boolean(RelationshipSighting::Stale).default(false))
                    .primary_key(
                        Index::create()
                            .col(RelationshipSighting::RelationshipId)
                            .col(RelationshipSighting::Source),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_relationship_sighting_relationship")
                            .from(
                                RelationshipSighting::Table,
                                RelationshipSighting::RelationshipId,
                            )
                            .to(Relationship::Table, Relationship::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_relationship_sighting_scope")
                    .table(RelationshipSighting::Table)
                    .col(RelationshipSighting::Source)
                    .col(RelationshipSighting::Scope)
                    .col(RelationshipSighting::LastSeenAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DiscoveryRun::Table)
                    .col(string_len(DiscoveryRun::Id, 100).primary_key())
                    .col(string_len(DiscoveryRun::Source, 100))
                    .col(string_len(DiscoveryRun::Scope, 255))
                    .col(timestamp_with_time_zone(DiscoveryRun::StartedAt))
                    .col(timestamp_with_time_zone(DiscoveryRun::UpdatedAt))
                    .col(timestamp_with_time_zone_null(DiscoveryRun::CompletedAt))
                    .col(integer(DiscoveryRun::Batches))
                    .col(integer(DiscoveryRun::StaleCis))
                    .col(integer(DiscoveryRun::StaleRelationships))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DiscoveryRun::Table.into_iden(),
            RelationshipSighting::Table.into_iden(),
            ReconciliationRule::Table.into_iden(),
            IdentityKey::Table.into_iden(),
            CiIdentifier::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ConfigurationItem::Table)
                    .drop_column(ConfigurationItem::Provenance)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CiClass::Table)
                    .drop_column(CiClass::DiscoveryOverridesManual)
                    .to_owned(),
            )
            .await
    }
}
