//! Name filters ignore case (`equals` as well as `startsWith` and `contains`): an index on
//! the lower-cased name keeps `equals` a lookup rather than a scan of every CI.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_configuration_item_lower_name \
                 ON configuration_item (lower(name))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_configuration_item_lower_name")
            .await?;
        Ok(())
    }
}
