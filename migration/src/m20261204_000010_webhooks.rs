//! Webhooks: endpoints told of committed events, and each delivery to them.
//!
//! The events themselves are the audit trail (written in the transaction of each change);
//! a webhook keeps a cursor into it (`cursor`: the id of the last event it has taken on),
//! and a delivery row is the outbox entry for one event and one endpoint, kept with its
//! attempts until it is delivered or given up on. `lease_owner`/`lease_until` let one server
//! instance at a time deliver to an endpoint, so deliveries to it stay in order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhook {
    Table,
    Id,
    Name,
    Url,
    Events,
    Filter,
    Secret,
    Enabled,
    Cursor,
    LeaseOwner,
    LeaseUntil,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    WebhookId,
    EventId,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    ResponseStatus,
    CreatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhook::Table)
                    .col(pk_uuid(Webhook::Id))
                    .col(string_len_uniq(Webhook::Name, 100))
                    .col(string_len(Webhook::Url, 2048))
                    .col(json_binary(Webhook::Events))
                    .col(json_binary(Webhook::Filter))
                    .col(string_len(Webhook::Secret, 256))
                    .col(boolean(Webhook::Enabled))
                    .col(big_integer(Webhook::Cursor))
                    .col(string_len_null(Webhook::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(Webhook::LeaseUntil))
                    .col(integer(Webhook::Version))
                    .col(timestamp_with_time_zone(Webhook::CreatedAt))
                    .col(timestamp_with_time_zone(Webhook::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDelivery::Table)
                    .col(pk_auto(WebhookDelivery::Id).big_integer())
                    .col(uuid(WebhookDelivery::WebhookId))
                    .col(big_integer(WebhookDelivery::EventId))
                    .col(string_len(WebhookDelivery::Status, 16))
                    .col(integer(WebhookDelivery::Attempts))
                    .col(timestamp_with_time_zone(WebhookDelivery::NextAttemptAt))
                    .col(string_len_null(WebhookDelivery::LastError, 500))
                    .col(integer_null(WebhookDelivery::ResponseStatus))
                    .col(timestamp_with_time_zone(WebhookDelivery::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookDelivery::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDelivery::Table, WebhookDelivery::WebhookId)
                            .to(Webhook::Table, Webhook::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_delivery_event")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::WebhookId)
                    .col(WebhookDelivery::EventId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDelivery::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhook::Table).to_owned())
            .await
    }
}
