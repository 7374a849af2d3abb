//! The one place where access is decided: every root field of every operation is checked
//! here against the caller's role, before anything runs. A root field missing from the
//! tables below needs `admin`, whether it reads or writes (tests keep the tables complete):
//! a new field is closed until someone decides who may use it.
//!
//! The same pass over the document counts aliases, which multiply work at no cost to the
//! client.

use std::borrow::Cow;
use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{
    Context, ContextSelectionSet, Name, ObjectType, OutputType, Positioned, ServerResult, Value,
};

use crate::domain::audit::EntityType;
use crate::domain::auth::{Permission, Principal};
use crate::error::Error;
use crate::limits::Limits;

/// Mutations a discovery token may run.
pub const DISCOVER: &[&str] = &["upsertConfigurationItems"];

/// Mutations an editor may run.
pub const EDIT: &[&str] = &[
    "createConfigurationItem",
    "updateConfigurationItem",
    "retireConfigurationItem",
    "deleteConfigurationItem",
    "createRelationships",
    "deleteRelationships",
    "createService",
    "updateService",
    "addServiceMembers",
    "removeServiceMembers",
    "deleteService",
    "createIncident",
    "updateIncident",
    "transitionIncident",
    "createChange",
    "updateChange",
    "submitChange",
    "scheduleChange",
    "startChange",
    "completeChange",
    "createCustomer",
    "updateCustomer",
    "deleteCustomer",
    "addCustomerService",
    "removeCustomerService",
    "revertConfigurationItem",
    "createBaseline",
];

/// Mutations only a change manager (or an admin) may run.
pub const MANAGE_CHANGES: &[&str] = &[
    "assessChange",
    "approveChange",
    "rejectChange",
    "closeChange",
];

/// Mutations only an admin may run.
pub const ADMINISTER: &[&str] = &[
    "createCiClass",
    "updateCiClass",
    "deleteCiClass",
    "createRelationshipType",
    "updateRelationshipType",
    "deleteRelationshipType",
    "setReconciliationRule",
    "deleteReconciliationRule",
    "createApiToken",
    "revokeApiToken",
    "setPriorityRule",
    "setServiceLevel",
    "createWebhook",
    "updateWebhook",
    "deleteWebhook",
];

/// The mutation tables with the permission each needs.
const MUTATIONS: [(Permission, &[&str]); 4] = [
    (Permission::Discover, DISCOVER),
    (Permission::Edit, EDIT),
    (Permission::ManageChanges, MANAGE_CHANGES),
    (Permission::Administer, ADMINISTER),
];

/// Queries any reader may run.
pub const READ: &[&str] = &[
    "configurationItem",
    "configurationItems",
    "relationship",
    "relationships",
    "service",
    "services",
    "ciClasses",
    "ciClass",
    "relationshipTypes",
    "relationshipType",
    "auditEvents",
    "impactAnalysis",
    "rootCauseCandidates",
    "reconciliationRules",
    "incident",
    "incidentByNumber",
    "incidents",
    "priorityMatrix",
    "change",
    "changeByNumber",
    "changes",
    "changeCollisions",
    "customer",
    "customers",
    "serviceReport",
    "cmdbHealth",
    "node",
    "nodes",
    "configurationItemVersion",
    "changesBetween",
    "baselines",
    "baseline",
    "baselineDiff",
    "relationshipDrift",
];

/// Subscriptions any reader may hold.
pub const SUBSCRIBE: &[&str] = &[
    "configurationItemChanged",
    "relationshipChanged",
    "incidentChanged",
    "changeChanged",
    "serviceImpactChanged",
];

/// The subscription tables with the permission each needs.
const SUBSCRIPTIONS: [(Permission, &[&str]); 1] = [(Permission::Read, SUBSCRIBE)];

/// Queries only an admin may run.
pub const ADMIN_QUERIES: &[&str] = &["apiTokens", "webhooks", "webhookDeliveries"];

/// The query tables with the permission each needs.
const QUERIES: [(Permission, &[&str]); 2] = [
    (Permission::Read, READ),
    (Permission::Administer, ADMIN_QUERIES),
];

/// The permission a root field needs.
pub fn permission(operation: OperationType, field: &str) -> Permission {
    let tables: &[(Permission, &[&str])] = match operation {
        OperationType::Query => &QUERIES,
        OperationType::Mutation => &MUTATIONS,
        OperationType::Subscription => &SUBSCRIPTIONS,
    };
    tables
        .iter()
        .find(|(_, fields)| fields.contains(&field))
        .map(|(permission, _)| *permission)
        // Not listed: admins only, until someone decides otherwise.
        .unwrap_or(Permission::Administer)
}

/// Whether `field` is a root field the tables list for `operation`: a name the schema
/// has, not one a client made up.
pub fn is_listed(operation: OperationType, field: &str) -> bool {
    let tables: &[(Permission, &[&str])] = match operation {
        OperationType::Query => &QUERIES,
        OperationType::Mutation => &MUTATIONS,
        OperationType::Subscription => &SUBSCRIPTIONS,
    };
    field == "__schema"
        || field == "__type"
        || tables.iter().any(|(_, fields)| fields.contains(&field))
}

/// What a request did, for metrics: the operation type and its first root field, when the
/// schema has it (`query:configurationItems`, with `+` when it selects more); `other`
/// otherwise. The values come from the schema, so there are few of them whatever clients
/// send.
pub fn metric_label(inspection: Option<&Inspection>) -> String {
    let Some(inspection) = inspection else {
        return "other".into();
    };
    let operation = match inspection.operation {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    match inspection.root_fields.first() {
        Some(field) if is_listed(inspection.operation, field) => {
            let more = if inspection.root_fields.len() > 1 {
                "+"
            } else {
                ""
            };
            format!("{operation}:{field}{more}")
        }
        _ => "other".into(),
    }
}

/// What access control needs to know of a request's document.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub operation: OperationType,
    /// The root fields selected, each name once.
    pub root_fields: Vec<String>,
    /// How many root field selections there are, repeats included (a subscription may
    /// have only one: each would be a stream of its own).
    pub root_selections: usize,
    pub aliases: usize,
}

/// The root fields `set` selects, through inline fragments and fragment spreads at any
/// depth: an explicit stack rather than recursion, and each fragment walked once, so the
/// walk always ends and never stops short (a decision that stops short fails open).
fn root_fields(document: &ExecutableDocument, set: &SelectionSet) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    let mut selections = 0;
    let mut walked: HashSet<&str> = HashSet::new();
    let mut stack = vec![set];
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    selections += 1;
                    let name = field.node.name.node.as_str();
                    if !fields.iter().any(|f| f == name) {
                        fields.push(name.to_owned());
                    }
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if walked.insert(name)
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        stack.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    (fields, selections)
}

/// Aliased fields in `set` and everything nested in it (fragments are counted where they
/// are defined).
fn count_aliases(set: &SelectionSet) -> usize {
    let mut count = 0;
    let mut stack = vec![set];
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    count += usize::from(field.node.alias.is_some());
                    stack.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    count
}

/// Inspects a parsed document for the operation that will run; `None` when the document
/// does not say which operation that is (execution then refuses it with its own message,
/// and the root guard still checks every field that could run).
pub fn inspect(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<Inspection> {
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) => match operation_name {
            Some(name) => operations.get(&Name::new(name))?,
            None if operations.len() == 1 => operations.values().next()?,
            None => return None,
        },
    };
    let (fields, root_selections) = root_fields(document, &operation.node.selection_set.node);
    let aliases = document
        .operations
        .iter()
        .map(|(_, o)| count_aliases(&o.node.selection_set.node))
        .sum::<usize>()
        + document
            .fragments
            .values()
            .map(|f| count_aliases(&f.node.selection_set.node))
            .sum::<usize>();
    Some(Inspection {
        operation: operation.node.ty,
        root_fields: fields,
        root_selections,
        aliases,
    })
}

/// Whether `principal` may run the root field `field` of an `operation`: the one decision,
/// used both for the whole document before it runs and by the root guard as each root
/// field resolves.
pub fn check_field(
    principal: Option<&Principal>,
    allow_anonymous_read: bool,
    operation: OperationType,
    field: &str,
) -> Result<(), Error> {
    if field.starts_with("__") {
        return check_read(principal, allow_anonymous_read);
    }
    let needed = permission(operation, field);
    match principal {
        Some(principal) if principal.role.allows(needed) => Ok(()),
        Some(principal) => Err(Error::Forbidden(format!(
            "`{field}` is not allowed for the role `{}` of token `{}`",
            principal.role.as_str(),
            principal.name
        ))),
        None if needed == Permission::Read && allow_anonymous_read => Ok(()),
        None => Err(Error::Unauthenticated(format!(
            "`{field}` needs an API token: send `Authorization: Bearer <token>`"
        ))),
    }
}

/// Whether the caller may read at all: any token, or none when anonymous reads are on.
pub fn check_read(principal: Option<&Principal>, allow_anonymous_read: bool) -> Result<(), Error> {
    if principal.is_none() && !allow_anonymous_read {
        return Err(Error::Unauthenticated(
            "this server needs an API token: send `Authorization: Bearer <token>`".into(),
        ));
    }
    Ok(())
}

/// Whether the caller may run the inspected operation, within the limits.
pub fn authorize(
    principal: Option<&Principal>,
    allow_anonymous_read: bool,
    inspection: &Inspection,
    limits: &Limits,
) -> Result<(), Error> {
    if inspection.aliases > limits.max_query_aliases {
        return Err(Error::LimitExceeded(format!(
            "the document has {} aliases, over the limit of {} (limit `max_query_aliases`)",
            inspection.aliases, limits.max_query_aliases
        )));
    }
    for field in &inspection.root_fields {
        check_field(principal, allow_anonymous_read, inspection.operation, field)?;
    }
    check_read(principal, allow_anonymous_read)
}

/// The kinds of record whose audit events the caller may not read: the API tokens' (names,
/// roles, who made and revoked them) and the webhooks' (where events go) are for admins, as
/// `apiTokens` and `webhooks` are.
pub fn hidden_audit_types(principal: Option<&Principal>) -> Vec<EntityType> {
    match principal {
        Some(principal) if principal.role.allows(Permission::Administer) => Vec::new(),
        _ => vec![EntityType::ApiToken, EntityType::Webhook],
    }
}

/// Whether the caller may read a record of `kind` fetched by id (`node`, `nodes`): API
/// tokens and webhooks are for admins, as `apiTokens` and `webhooks` are.
pub fn check_node_kind(
    principal: Option<&Principal>,
    kind: crate::domain::node::UuidKind,
) -> Result<(), Error> {
    let admin = principal.is_some_and(|p| p.role.allows(Permission::Administer));
    use crate::domain::node::UuidKind;
    if matches!(kind, UuidKind::ApiToken | UuidKind::Webhook) && !admin {
        return Err(Error::Forbidden(
            "API tokens and webhooks are for admins".into(),
        ));
    }
    Ok(())
}

/// Whether requests without a token may read.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessPolicy {
    pub allow_anonymous_read: bool,
}

/// A root operation type whose every field is checked by [`Guarded`].
pub trait Root: ContainerType {
    /// The operation this type is the root of.
    const OPERATION: OperationType;
}

/// A root type that asks [`check_field`] before resolving each of its fields, so that no
/// way of writing a document (fragments at any depth, spreads, directives) reaches a field
/// that was not allowed: the check sits where the field executes, not in a walk that could
/// be fooled. The whole document was also checked before it ran (all or nothing).
#[derive(Default)]
pub struct Guarded<T>(pub T);

impl<T: Root> ContainerType for Guarded<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        let policy = ctx.data_opt::<AccessPolicy>().copied().unwrap_or_default();
        check_field(
            ctx.data_opt::<Principal>(),
            policy.allow_anonymous_read,
            T::OPERATION,
            ctx.item.node.name.node.as_str(),
        )
        .map_err(|err| async_graphql::Error::from(err).into_server_error(ctx.item.pos))?;
        self.0.resolve_field(ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        self.0.find_entity(ctx, params).await
    }
}

impl<T: Root> OutputType for Guarded<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl<T: Root + ObjectType> ObjectType for Guarded<T> {}

#[cfg(test)]
mod tests;
