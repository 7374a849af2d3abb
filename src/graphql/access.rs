//! The one place where access is decided: every root field of every operation is checked
//! here against the caller's role, before anything runs. A mutation missing from the tables
//! below needs `admin` (a test keeps the tables complete).
//!
//! The same pass over the document counts aliases, which multiply work at no cost to the
//! client.

use async_graphql::Name;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

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
];

/// The mutation tables with the permission each needs.
const MUTATIONS: [(Permission, &[&str]); 4] = [
    (Permission::Discover, DISCOVER),
    (Permission::Edit, EDIT),
    (Permission::ManageChanges, MANAGE_CHANGES),
    (Permission::Administer, ADMINISTER),
];

/// Queries only an admin may run; every other query needs only `Read`.
pub const ADMIN_QUERIES: &[&str] = &["apiTokens"];

/// The permission a root field needs.
pub fn permission(operation: OperationType, field: &str) -> Permission {
    match operation {
        OperationType::Query | OperationType::Subscription => {
            if ADMIN_QUERIES.contains(&field) {
                Permission::Administer
            } else {
                Permission::Read
            }
        }
        OperationType::Mutation => MUTATIONS
            .iter()
            .find(|(_, fields)| fields.contains(&field))
            .map(|(permission, _)| *permission)
            // Not listed: admins only, until someone decides otherwise.
            .unwrap_or(Permission::Administer),
    }
}

/// What access control needs to know of a request's document.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub operation: OperationType,
    pub root_fields: Vec<String>,
    pub aliases: usize,
}

fn root_fields(
    document: &ExecutableDocument,
    set: &SelectionSet,
    into: &mut Vec<String>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => into.push(field.node.name.node.to_string()),
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, into, depth + 1)
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    root_fields(document, &fragment.node.selection_set.node, into, depth + 1);
                }
            }
        }
    }
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some())
                    + count_aliases(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => count_aliases(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Inspects a request's document; `None` when it does not parse or names no operation it
/// has (execution then reports the problem with its own code).
pub fn inspect(query: &str, operation_name: Option<&str>) -> Option<Inspection> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) => match operation_name {
            Some(name) => operations.get(&Name::new(name))?,
            None if operations.len() == 1 => operations.values().next()?,
            None => return None,
        },
    };
    let mut fields = Vec::new();
    root_fields(
        &document,
        &operation.node.selection_set.node,
        &mut fields,
        0,
    );
    let aliases = match &document.operations {
        DocumentOperations::Single(operation) => count_aliases(&operation.node.selection_set.node),
        DocumentOperations::Multiple(operations) => operations
            .values()
            .map(|o| count_aliases(&o.node.selection_set.node))
            .sum(),
    } + document
        .fragments
        .values()
        .map(|f| count_aliases(&f.node.selection_set.node))
        .sum::<usize>();
    Some(Inspection {
        operation: operation.node.ty,
        root_fields: fields,
        aliases,
    })
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
        if field.starts_with("__") {
            continue;
        }
        let needed = permission(inspection.operation, field);
        match principal {
            Some(principal) if principal.role.allows(needed) => {}
            Some(principal) => {
                return Err(Error::Forbidden(format!(
                    "`{field}` is not allowed for the role `{}` of token `{}`",
                    principal.role.as_str(),
                    principal.name
                )));
            }
            None if needed == Permission::Read && allow_anonymous_read => {}
            None => {
                return Err(Error::Unauthenticated(format!(
                    "`{field}` needs an API token: send `Authorization: Bearer <token>`"
                )));
            }
        }
    }
    if principal.is_none() && !allow_anonymous_read {
        return Err(Error::Unauthenticated(
            "this server needs an API token: send `Authorization: Bearer <token>`".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::Role;

    fn caller(role: Role) -> Principal {
        Principal {
            name: "t".into(),
            role,
        }
    }

    #[test]
    fn root_fields_are_found_through_fragments() {
        let inspection = inspect(
            "mutation M { ...F } fragment F on Mutation { a: createConfigurationItem(input: {}) { id } ... on Mutation { deleteService(id: 1) } }",
            None,
        )
        .expect("it parses");
        assert_eq!(
            inspection.root_fields,
            ["createConfigurationItem", "deleteService"]
        );
        assert_eq!(inspection.aliases, 1);
        assert!(inspect("{ a", None).is_none());
    }

    #[test]
    fn roles_are_checked_field_by_field() {
        let limits = Limits::default();
        let upsert = inspect(
            "mutation { upsertConfigurationItems(input: {}) { created } }",
            None,
        )
        .expect("parses");
        assert!(authorize(Some(&caller(Role::Discovery)), false, &upsert, &limits).is_ok());
        assert_eq!(
            authorize(Some(&caller(Role::Editor)), false, &upsert, &limits).map_err(|e| e.code()),
            Err("FORBIDDEN")
        );
        let read = inspect("{ services { totalCount } }", None).expect("parses");
        assert_eq!(
            authorize(None, false, &read, &limits).map_err(|e| e.code()),
            Err("UNAUTHENTICATED")
        );
        assert!(authorize(None, true, &read, &limits).is_ok());
        let write = inspect("mutation { createService(input: {}) { id } }", None).expect("parses");
        assert_eq!(
            authorize(None, true, &write, &limits).map_err(|e| e.code()),
            Err("UNAUTHENTICATED")
        );
        assert_eq!(
            permission(OperationType::Mutation, "somethingNew"),
            Permission::Administer
        );
    }

    #[tokio::test]
    async fn every_mutation_is_listed_in_exactly_one_table() {
        let schema = crate::graphql::schema_builder().finish();
        let response = schema
            .execute("{ __type(name: \"Mutation\") { fields { name } } }")
            .await
            .into_result()
            .expect("introspection answers");
        let json = response.data.into_json().expect("JSON");
        let fields = json["__type"]["fields"].as_array().expect("fields").clone();
        assert!(!fields.is_empty());
        for field in fields {
            let name = field["name"].as_str().expect("a name");
            let listed = MUTATIONS.iter().filter(|(_, t)| t.contains(&name)).count();
            assert_eq!(
                listed, 1,
                "mutation `{name}` must be listed in exactly one table"
            );
        }
    }

    #[test]
    fn too_many_aliases_are_refused() {
        let limits = Limits {
            max_query_aliases: 2,
            ..Limits::default()
        };
        let query = inspect(
            "{ a: services { totalCount } b: services { totalCount } c: services { totalCount } }",
            None,
        )
        .expect("parses");
        let err = authorize(Some(&caller(Role::Admin)), false, &query, &limits).unwrap_err();
        assert_eq!(err.code(), "LIMIT_EXCEEDED");
        assert!(err.to_string().contains("max_query_aliases"));
    }
}
