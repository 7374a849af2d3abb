//! `change_approval`: who approved or rejected a change, when, and why.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::Decision;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "change_approval")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub change_id: Uuid,
    pub decision: Decision,
    pub approver: String,
    pub comment: Option<String>,
    pub decided_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
