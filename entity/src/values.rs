//! Enumerations and JSON documents stored in columns, shared by several tables.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a configuration item is in its life. Only `Retired` CIs are out of the impact graph.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleStatus {
    /// Ordered or designed, not yet running.
    #[sea_orm(string_value = "PLANNED")]
    Planned,
    /// Running and supporting what depends on it.
    #[sea_orm(string_value = "IN_SERVICE")]
    InService,
    /// Temporarily out of normal operation for maintenance.
    #[sea_orm(string_value = "UNDER_MAINTENANCE")]
    UnderMaintenance,
    /// Decommissioned; kept for the record.
    #[sea_orm(string_value = "RETIRED")]
    Retired,
}

/// How much the business suffers when a CI or a service fails.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Criticality {
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "MEDIUM")]
    Medium,
    #[sea_orm(string_value = "HIGH")]
    High,
    #[sea_orm(string_value = "CRITICAL")]
    Critical,
}

/// Which way the failure of one end of a relationship hits the other end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Propagation {
    /// A failing target hits its source (`app depends_on db`: the db failing hits the app).
    #[sea_orm(string_value = "TARGET_TO_SOURCE")]
    TargetToSource,
    /// A failing source hits its target (`rack contains server`).
    #[sea_orm(string_value = "SOURCE_TO_TARGET")]
    SourceToTarget,
    /// Either end failing hits the other.
    #[sea_orm(string_value = "BOTH")]
    Both,
    /// Impact does not travel along this relationship.
    #[sea_orm(string_value = "NONE")]
    None,
}

/// Whether a service is offered to the business or only to other IT services.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceKind {
    #[sea_orm(string_value = "BUSINESS")]
    Business,
    #[sea_orm(string_value = "TECHNICAL")]
    Technical,
}

/// The value type an attribute of a CI class must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttributeType {
    String,
    Integer,
    Float,
    Boolean,
    /// An RFC 3339 timestamp held as a JSON string.
    Datetime,
    /// Any JSON value.
    Json,
}

/// One attribute a CI class declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDefinition {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The attribute definitions a class declares itself (not those it inherits).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct AttributeDefinitions(pub Vec<AttributeDefinition>);

/// Attribute names that identify a CI of a class, in the order discovery tries them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct AttributeNames(pub Vec<String>);
