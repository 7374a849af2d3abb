//! `service`: a business or technical service, made of member CIs (`service_member`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{Criticality, ServiceKind};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "service")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    pub kind: ServiceKind,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub criticality: Option<Criticality>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
