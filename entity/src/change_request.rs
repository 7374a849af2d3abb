//! `change_request`: a request for change, its plans, its window and its last assessment.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{ChangeState, ChangeType, RiskLevel};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "change_request")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    pub change_type: ChangeType,
    pub state: ChangeState,
    pub risk: Option<RiskLevel>,
    pub planned_start: Option<DateTimeUtc>,
    pub planned_end: Option<DateTimeUtc>,
    pub implementation_plan: Option<String>,
    pub backout_plan: Option<String>,
    pub outcome: Option<ChangeState>,
    pub review_notes: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub assessment: Option<Json>,
    pub assessed_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
