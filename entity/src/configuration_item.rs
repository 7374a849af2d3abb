//! `configuration_item`: one managed component (server, VM, database, application...).
//! `version` starts at 1 and grows by one with every change; writers compare and swap on it.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::{Criticality, LifecycleStatus};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "configuration_item")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub class_id: i32,
    pub name: String,
    pub description: Option<String>,
    pub status: LifecycleStatus,
    pub environment: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub attributes: Json,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Which source set each field, and when: `{"stamps": [["vcenter", "<time>"]], "fields":
    /// {"name": 0, "attributes.cpu_count": 0}}`. Edits made by people have the source
    /// `manual`.
    #[sea_orm(column_type = "JsonBinary")]
    pub provenance: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
