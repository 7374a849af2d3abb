//! A baseline: a named, immutable reference point (an instant and a scope) that later
//! states are compared with. The data is not copied: the history answers as of its instant.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "baseline")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub at: DateTimeUtc,
    /// `{ "ci_ids": [...] }` or `{ "service_id": ... }`, or `{}` for the whole CMDB.
    #[sea_orm(column_type = "JsonBinary")]
    pub scope: Json,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
