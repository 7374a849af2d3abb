//! `relationship_type`: the kinds of relationship between CIs, as data, with the rule that
//! says which way impact travels along them.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::values::Propagation;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "relationship_type")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub inverse_label: String,
    pub propagation: Propagation,
    /// The source is a member of the target (a node of a cluster): only members count toward
    /// a redundancy group's healthy members.
    pub membership: bool,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
