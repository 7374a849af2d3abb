//! `service_level`: the targets a service promises: availability over a period, and
//! response and resolution times per incident priority.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::PriorityTargets;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "service_level")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub service_id: Uuid,
    /// Percent of the period, e.g. 99.9.
    pub availability_target: Option<f64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub targets: PriorityTargets,
    pub version: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
