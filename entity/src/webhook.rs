//! `webhook`: an endpoint told of committed events. `secret` signs each delivery and is
//! never sent back to clients; `cursor` is the id of the last event it has taken on.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub url: String,
    /// JSON array of the event kinds it wants.
    #[sea_orm(column_type = "JsonBinary")]
    pub events: Json,
    /// JSON object narrowing the configuration item events it wants.
    #[sea_orm(column_type = "JsonBinary")]
    pub filter: Json,
    #[serde(skip_serializing)]
    pub secret: String,
    pub enabled: bool,
    pub cursor: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    /// Everything but the secret, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("webhook::Model")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("cursor", &self.cursor)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
