//! Relay's global object identification: the `Node` interface, which every object with an
//! id implements, and `node(id)` / `nodes(ids)` to fetch any of them again by id alone (a
//! client cache refreshes an object without knowing which query found it).
//!
//! Ids of records keyed by UUIDs are global already and stay what they were; catalogue
//! entries and audit events carry their kind (`CiClass:3`), see
//! [`GlobalId`](crate::domain::node::GlobalId). Reading by id obeys the same rules as the
//! lists: API tokens are for admins, token audit events too.

use async_graphql::{Context, ID, Interface, Object, Result};

use crate::domain::audit::{self as audits, AuditFilter};
use crate::domain::auth::{self, Principal};
use crate::domain::node::{self, GlobalId, UuidKind};
use crate::domain::{change, ci, customer, incident, relationship, service};
use crate::error::Error;

use super::audit::AuditEvent;
use super::baseline::Baseline;
use super::catalog::{CiClass, RelationshipType};
use super::change::Change;
use super::ci::ConfigurationItem;
use super::context::{classes, db, relationship_types};
use super::customer::Customer;
use super::incident::Incident;
use super::relationship::Relationship;
use super::service::Service;
use super::tokens::ApiToken;
use super::webhook::Webhook;
use crate::limits::Limits;

/// An object that can be fetched again by its id alone, with `node(id)`.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Globally unique: no two objects of any type share it. Fetch the object again \
            with `node(id)`."
))]
pub enum Node {
    ConfigurationItem(ConfigurationItem),
    Relationship(Relationship),
    Service(Service),
    Incident(Incident),
    Change(Change),
    Customer(Customer),
    CiClass(CiClass),
    RelationshipType(RelationshipType),
    AuditEvent(AuditEvent),
    ApiToken(ApiToken),
    Webhook(Webhook),
    Baseline(Baseline),
}

/// Fetching any object by its global id.
#[derive(Default)]
pub struct NodeQuery;

/// Fetching any object by its global id.
#[Object]
impl NodeQuery {
    /// The object with this id, whatever its type; null when there is none.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        fetch(ctx, "id", &id).await
    }

    /// The objects with these ids, in the same order; null for an id that names nothing.
    /// At most the server's page size of ids.
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Node>>> {
        let max = ctx.data::<Limits>()?.max_page_size;
        if ids.len() > max {
            return Err(Error::LimitExceeded(format!(
                "at most {max} ids at once (limit `max_page_size`)"
            ))
            .into());
        }
        let mut found = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            found.push(fetch(ctx, &format!("ids[{i}]"), id).await?);
        }
        Ok(found)
    }
}

async fn fetch(ctx: &Context<'_>, field: &str, id: &ID) -> Result<Option<Node>> {
    let db = db(ctx)?;
    let principal = ctx.data_opt::<Principal>();
    Ok(match GlobalId::parse(field, id.as_str())? {
        GlobalId::Uuid(id) => {
            let Some(kind) = node::kind_of(db, id).await? else {
                return Ok(None);
            };
            super::access::check_node_kind(principal, kind)?;
            Some(match kind {
                UuidKind::ConfigurationItem => {
                    Node::ConfigurationItem(ConfigurationItem::new(ci::get(db, id).await?))
                }
                UuidKind::Relationship => {
                    Node::Relationship(Relationship::new(relationship::get(db, id).await?))
                }
                UuidKind::Service => Node::Service(Service(service::get(db, id).await?, None)),
                UuidKind::Incident => Node::Incident(Incident(incident::get(db, id).await?)),
                UuidKind::Change => Node::Change(Change(change::get(db, id).await?)),
                UuidKind::Customer => Node::Customer(Customer(customer::get(db, id).await?)),
                UuidKind::ApiToken => match auth::find(db, id).await? {
                    Some(info) => Node::ApiToken(ApiToken(info)),
                    None => return Ok(None),
                },
                UuidKind::Webhook => {
                    Node::Webhook(Webhook(crate::domain::webhook::get(db, id).await?))
                }
                UuidKind::Baseline => Node::Baseline(Baseline(
                    crate::domain::history::baseline::get_by_id(db, id).await?,
                )),
            })
        }
        GlobalId::CiClass(id) => {
            let catalog = classes(ctx).await?;
            catalog
                .shared(id)
                .map(|model| Node::CiClass(CiClass::new(model, catalog.clone())))
        }
        GlobalId::RelationshipType(id) => {
            let catalog = relationship_types(ctx).await?;
            catalog
                .shared(id)
                .map(|model| Node::RelationshipType(RelationshipType(model)))
        }
        GlobalId::AuditEvent(id) => {
            let filter = AuditFilter {
                hidden: super::access::hidden_audit_types(principal),
                ..AuditFilter::default()
            };
            audits::find(db, id, &filter)
                .await?
                .map(|event| Node::AuditEvent(AuditEvent(event)))
        }
    })
}
