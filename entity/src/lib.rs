//! sea-orm entities: one module per table of the cmdb database, plus the value types
//! stored in their columns.
//!
//! This crate knows nothing of GraphQL or HTTP. Nothing here is API: the GraphQL layer wraps
//! these models in its own types, so a new column never silently becomes part of the schema.

pub mod audit_event;
pub mod ci_class;
pub mod configuration_item;
pub mod graph_change;
pub mod relationship;
pub mod relationship_type;
pub mod service;
pub mod service_member;
pub mod values;
