//! `incident_service`: a service affected by an incident, derived by impact analysis or
//! added by hand, and how badly it is hit.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{Origin, ServiceState};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "incident_service")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub service_id: Uuid,
    pub origin: Origin,
    pub state: ServiceState,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
