//! The graph change log: lets every server instance keep an in-memory copy of the
//! relationship graph current without reloading it.
//!
//! `graph_state.version` grows by one for each committed transaction that changed the graph
//! (CIs, relationships, relationship types, services). Because every such transaction
//! updates that one row just before it commits, versions are handed out in commit order,
//! and `graph_change` says which entities each version touched (one row per version and
//! entity kind, with the ids as a JSON array).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GraphState {
    Table,
    Id,
    Version,
    PrunedBelow,
}

#[derive(DeriveIden)]
enum GraphChange {
    Table,
    Id,
    Version,
    EntityType,
    EntityIds,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GraphState::Table)
                    .col(integer(GraphState::Id).primary_key())
                    .col(big_integer(GraphState::Version))
                    .col(big_integer(GraphState::PrunedBelow))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute(
                &Query::insert()
                    .into_table(GraphState::Table)
                    .columns([GraphState::Id, GraphState::Version, GraphState::PrunedBelow])
                    .values_panic([1.into(), 0i64.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GraphChange::Table)
                    .col(big_pk_auto(GraphChange::Id))
                    .col(big_integer_null(GraphChange::Version))
                    .col(string_len(GraphChange::EntityType, 32))
                    .col(text(GraphChange::EntityIds))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_graph_change_version")
                    .table(GraphChange::Table)
                    .col(GraphChange::Version)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GraphChange::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(GraphState::Table).to_owned())
            .await
    }
}
