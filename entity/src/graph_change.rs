//! `graph_change`: which entities each committed graph version touched. Rows written by a
//! transaction carry no version until the transaction seals them just before committing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "graph_change")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: Option<i64>,
    pub entity_type: String,
    /// JSON array of the ids changed.
    pub entity_ids: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
