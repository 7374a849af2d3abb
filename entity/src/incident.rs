//! `incident`: an unplanned interruption or degradation, with its lifecycle timestamps.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{IncidentState, Level};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "incident")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    pub impact: Level,
    pub urgency: Level,
    pub priority: i32,
    pub suggested_impact: Option<Level>,
    pub major: bool,
    pub assignee_group: Option<String>,
    pub state: IncidentState,
    pub resolution_notes: Option<String>,
    pub opened_at: DateTimeUtc,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
