//! `reconciliation_rule`: for a class and a field (an attribute, a core field such as `name`,
//! or `*` for all), the discovery sources in order of authority.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::AttributeNames;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "reconciliation_rule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub class_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub attribute: String,
    /// Source names, most authoritative first.
    #[sea_orm(column_type = "JsonBinary")]
    pub sources: AttributeNames,
    /// After how long without a report from the owning source another source may take over.
    pub stale_after_seconds: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
