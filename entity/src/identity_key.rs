//! `identity_key`: the normalised values of each CI's identifier attributes, so that discovery
//! finds an existing CI by serial number or FQDN with an index lookup.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "identity_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub class_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub attribute: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ci_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
