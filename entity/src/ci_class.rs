//! `ci_class`: the kinds of configuration item, as data. Classes form a tree through
//! `parent_id`; a class inherits the attribute definitions of its ancestors.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{AttributeDefinitions, AttributeNames};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "ci_class")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    pub parent_id: Option<i32>,
    #[sea_orm(column_type = "JsonBinary")]
    pub attributes: AttributeDefinitions,
    #[sea_orm(column_type = "JsonBinary")]
    pub identifier_attributes: AttributeNames,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Whether discovery may overwrite values people set by hand on CIs of this class.
    pub discovery_overrides_manual: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
