//! The inputs that narrow and order CI lists.

use async_graphql::{Enum, ID, InputObject, Json, OneofObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::super::context::{parse_id, parse_ids};
use super::{Criticality, LifecycleStatus};
use crate::domain::{TextMatch, ci};
use crate::error::Error;

/// Matches a text; give exactly one of the fields.
#[derive(OneofObject)]
pub enum TextFilter {
    /// Exactly this text, ignoring case.
    Equals(String),
    /// Texts starting with this, ignoring case.
    StartsWith(String),
    /// Texts containing this, ignoring case.
    Contains(String),
}

impl From<TextFilter> for TextMatch {
    fn from(filter: TextFilter) -> Self {
        match filter {
            TextFilter::Equals(text) => TextMatch::Equals(text),
            TextFilter::StartsWith(text) => TextMatch::StartsWith(text),
            TextFilter::Contains(text) => TextMatch::Contains(text),
        }
    }
}

/// An attribute that must equal a value.
#[derive(InputObject)]
pub struct AttributeFilter {
    /// Attribute name.
    pub name: String,
    /// The JSON value it must equal (a string, number, boolean...).
    pub equals: Json<Value>,
}

/// Which CIs to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct ConfigurationItemFilter {
    /// Only these CIs.
    pub ids: Option<Vec<ID>>,
    /// Class name; includes CIs of its subclasses.
    pub class: Option<String>,
    /// Any of these statuses.
    pub status: Option<Vec<LifecycleStatus>>,
    /// Exact environment.
    pub environment: Option<String>,
    /// Exact owner.
    pub owner: Option<String>,
    /// Exact criticality.
    pub criticality: Option<Criticality>,
    /// Name match.
    pub name: Option<TextFilter>,
    /// Attributes that must equal given values.
    pub attributes: Option<Vec<AttributeFilter>>,
    /// Changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Members of this service.
    pub service_id: Option<ID>,
}

impl ConfigurationItemFilter {
    pub(crate) fn into_domain(self) -> Result<ci::CiFilter, Error> {
        Ok(ci::CiFilter {
            ids: self
                .ids
                .map(|ids| parse_ids("filter.ids", &ids))
                .transpose()?,
            class: self.class,
            statuses: self.status.map(|s| s.into_iter().map(Into::into).collect()),
            environment: self.environment,
            owner: self.owner,
            criticality: self.criticality.map(Into::into),
            name: self.name.map(Into::into),
            attributes: self
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.name, a.equals.0))
                .collect(),
            updated_since: self.updated_since,
            service_id: self
                .service_id
                .map(|id| parse_id("filter.serviceId", &id))
                .transpose()?,
            as_of: None,
        })
    }
}

/// Fields a CI list can be sorted by (ties are broken by id).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum ConfigurationItemOrderField {
    /// By name.
    #[default]
    Name,
    /// By creation time.
    CreatedAt,
    /// By time of last change.
    UpdatedAt,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum SortDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The order of a CI list.
#[derive(InputObject)]
pub struct ConfigurationItemOrder {
    /// Sort field.
    #[graphql(default)]
    pub field: ConfigurationItemOrderField,
    /// Sort direction.
    #[graphql(default)]
    pub direction: SortDirection,
}

impl From<ConfigurationItemOrder> for ci::CiOrder {
    fn from(order: ConfigurationItemOrder) -> Self {
        ci::CiOrder {
            field: match order.field {
                ConfigurationItemOrderField::Name => ci::CiSortField::Name,
                ConfigurationItemOrderField::CreatedAt => ci::CiSortField::CreatedAt,
                ConfigurationItemOrderField::UpdatedAt => ci::CiSortField::UpdatedAt,
            },
            descending: order.direction == SortDirection::Desc,
        }
    }
}
