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
    /// Not required, but a CI without it counts as incomplete in the health report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recommended: bool,
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

/// A three-step scale, for the impact and urgency of incidents.
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
pub enum Level {
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "MEDIUM")]
    Medium,
    #[sea_orm(string_value = "HIGH")]
    High,
}

/// Where an incident is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentState {
    #[sea_orm(string_value = "NEW")]
    New,
    #[sea_orm(string_value = "IN_PROGRESS")]
    InProgress,
    #[sea_orm(string_value = "ON_HOLD")]
    OnHold,
    #[sea_orm(string_value = "RESOLVED")]
    Resolved,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

/// How a service came to be listed on an incident.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Origin {
    /// Derived from the affected CIs by impact analysis.
    #[sea_orm(string_value = "ANALYSIS")]
    Analysis,
    /// Added by a person.
    #[sea_orm(string_value = "MANUAL")]
    Manual,
}

/// How badly a service is hit by an incident or a change.
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
pub enum ServiceState {
    /// Works, with less redundancy or capacity.
    #[sea_orm(string_value = "DEGRADED")]
    Degraded,
    /// Out of service: counts against availability.
    #[sea_orm(string_value = "DOWN")]
    Down,
}

/// The kind of a request for change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    /// Pre-approved and low-risk: skips assessment and approval.
    #[sea_orm(string_value = "STANDARD")]
    Standard,
    /// Assessed, then approved or rejected.
    #[sea_orm(string_value = "NORMAL")]
    Normal,
    /// Urgent: may be approved before assessment completes.
    #[sea_orm(string_value = "EMERGENCY")]
    Emergency,
}

/// Where a request for change is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeState {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "SUBMITTED")]
    Submitted,
    #[sea_orm(string_value = "ASSESSED")]
    Assessed,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "IN_PROGRESS")]
    InProgress,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "ROLLED_BACK")]
    RolledBack,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

/// How risky a change is judged by its assessment.
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
pub enum RiskLevel {
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "MEDIUM")]
    Medium,
    #[sea_orm(string_value = "HIGH")]
    High,
    #[sea_orm(string_value = "CRITICAL")]
    Critical,
}

/// A decision on a request for change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

/// Response and resolution times a service promises for incidents of one priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityTarget {
    pub priority: i32,
    pub response_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
}

/// The response and resolution targets of a service, one entry per priority at most.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct PriorityTargets(pub Vec<PriorityTarget>);
