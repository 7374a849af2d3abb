//! `relationship_sighting`: which discovery source reported a relationship, when last, and
//! whether a full sync found it missing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "relationship_sighting")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub relationship_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub scope: Option<String>,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub stale: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
