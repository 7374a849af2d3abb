//! `priority_rule`: one cell of the impact x urgency matrix that gives incidents their
//! priority (1 is the most urgent).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::Level;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "priority_rule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub impact: Level,
    #[sea_orm(primary_key, auto_increment = false)]
    pub urgency: Level,
    pub priority: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
