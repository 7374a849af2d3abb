//! sea-orm entities: one module per table of the cmdb database, plus the value types
//! stored in their columns.
//!
//! This crate knows nothing of GraphQL or HTTP. Nothing here is API: the GraphQL layer wraps
//! these models in its own types, so a new column never silently becomes part of the schema.

pub mod api_token;
pub mod audit_event;
pub mod baseline;
pub mod change_approval;
pub mod change_ci;
pub mod change_request;
pub mod change_service;
pub mod ci_class;
pub mod ci_identifier;
pub mod configuration_item;
pub mod customer;
pub mod customer_service;
pub mod discovery_run;
pub mod graph_change;
pub mod identity_key;
pub mod incident;
pub mod incident_ci;
pub mod incident_resolution;
pub mod incident_service;
pub mod number_sequence;
pub mod priority_rule;
pub mod reconciliation_rule;
pub mod relationship;
pub mod relationship_sighting;
pub mod relationship_type;
pub mod service;
pub mod service_level;
pub mod service_member;
pub mod values;
pub mod webhook;
pub mod webhook_delivery;
