//! The incident list's filter, as clients give it.

use async_graphql::{ID, InputObject};
use chrono::{DateTime, Utc};

use super::IncidentState;
use crate::domain::incident as incidents;
use crate::graphql::context::parse_id;

/// Which incidents to list; all given criteria must hold.
#[derive(InputObject, Default)]
pub struct IncidentFilter {
    /// Any of these states.
    pub states: Option<Vec<IncidentState>>,
    /// Only open ones (not resolved or closed), or only the others.
    pub open: Option<bool>,
    /// Exact priority, 1 to 5.
    pub priority: Option<i32>,
    /// Only major incidents, or only the others.
    pub major: Option<bool>,
    /// Only those affecting this CI.
    pub ci_id: Option<ID>,
    /// Only those affecting this service.
    pub service_id: Option<ID>,
    /// Opened at or after this moment.
    pub opened_after: Option<DateTime<Utc>>,
    /// Opened before this moment.
    pub opened_before: Option<DateTime<Utc>>,
}

impl IncidentFilter {
    pub(crate) fn into_domain(self) -> Result<incidents::IncidentFilter, crate::error::Error> {
        Ok(incidents::IncidentFilter {
            states: self
                .states
                .map(|states| states.into_iter().map(Into::into).collect()),
            open: self.open,
            priority: self.priority,
            major: self.major,
            ci_id: self
                .ci_id
                .map(|id| parse_id("filter.ciId", &id))
                .transpose()?,
            service_id: self
                .service_id
                .map(|id| parse_id("filter.serviceId", &id))
                .transpose()?,
            opened_after: self.opened_after,
            opened_before: self.opened_before,
        })
    }
}
