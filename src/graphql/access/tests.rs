//! Unit tests of `access`.

use super::*;
use crate::domain::auth::Role;

fn inspect(query: &str, operation_name: Option<&str>) -> Option<Inspection> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    super::inspect(&document, operation_name)
}

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

/// The root fields of a root type of the schema.
async fn fields_of(root: &str) -> Vec<String> {
    let schema = crate::graphql::schema_builder().finish();
    let response = schema
        .execute(format!(
            "{{ __type(name: \"{root}\") {{ fields {{ name }} }} }}"
        ))
        .await
        .into_result()
        .expect("introspection answers");
    let json = response.data.into_json().expect("JSON");
    json["__type"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_mutation_is_listed_in_exactly_one_table() {
    let fields = fields_of("Mutation").await;
    assert!(!fields.is_empty());
    for name in fields {
        let listed = MUTATIONS
            .iter()
            .filter(|(_, t)| t.contains(&name.as_str()))
            .count();
        assert_eq!(
            listed, 1,
            "mutation `{name}` must be listed in exactly one table"
        );
    }
}

#[tokio::test]
async fn every_subscription_is_listed_and_an_unlisted_one_needs_admin() {
    let fields = fields_of("Subscription").await;
    assert!(!fields.is_empty());
    for name in &fields {
        assert!(
            SUBSCRIBE.contains(&name.as_str()),
            "subscription `{name}` is not listed"
        );
    }
    for name in SUBSCRIBE {
        assert!(
            fields.iter().any(|f| f == name),
            "`{name}` is listed but is not a subscription"
        );
    }
    assert_eq!(
        permission(OperationType::Subscription, "somethingNew"),
        Permission::Administer
    );
    assert_eq!(
        permission(OperationType::Subscription, "configurationItemChanged"),
        Permission::Read
    );
}

#[tokio::test]
async fn every_query_is_listed_in_exactly_one_table_and_an_unlisted_one_needs_admin() {
    let fields = fields_of("Query").await;
    assert!(!fields.is_empty());
    for name in &fields {
        let listed = QUERIES
            .iter()
            .filter(|(_, t)| t.contains(&name.as_str()))
            .count();
        assert_eq!(
            listed, 1,
            "query `{name}` must be listed in exactly one table"
        );
    }
    for (_, table) in QUERIES {
        for name in table {
            assert!(
                fields.iter().any(|f| f == name),
                "`{name}` is listed but is not a query"
            );
        }
    }
    assert_eq!(
        permission(OperationType::Query, "somethingNew"),
        Permission::Administer
    );
    let limits = Limits::default();
    let unlisted = inspect("{ somethingNew }", None).expect("parses");
    assert_eq!(
        authorize(Some(&caller(Role::Editor)), false, &unlisted, &limits).map_err(|e| e.code()),
        Err("FORBIDDEN")
    );
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

/// A root with one field no table lists, to run the guard alone, without the walk
/// over the document that normally refuses first.
#[derive(Default)]
struct Probe;

#[async_graphql::Object]
impl Probe {
    async fn something_new(&self) -> bool {
        true
    }
}

impl Root for Probe {
    const OPERATION: OperationType = OperationType::Mutation;
}

#[derive(Default)]
struct ProbeQuery;

#[async_graphql::Object]
impl ProbeQuery {
    async fn api_tokens(&self) -> bool {
        true
    }
    async fn services(&self) -> bool {
        true
    }
}

impl Root for ProbeQuery {
    const OPERATION: OperationType = OperationType::Query;
}

#[tokio::test]
async fn the_root_guard_refuses_each_field_the_caller_may_not_run() {
    let schema = async_graphql::Schema::build(
        Guarded(ProbeQuery),
        Guarded(Probe),
        async_graphql::EmptySubscription,
    )
    .finish();
    let run = |query: &'static str, role: Role| {
        let schema = schema.clone();
        async move {
            let request = async_graphql::Request::new(query).data(caller(role));
            schema.execute(request).await
        }
    };
    let response = run("mutation { somethingNew }", Role::Editor).await;
    assert_eq!(response.errors.len(), 1, "{response:?}");
    let code = response.errors[0]
        .extensions
        .as_ref()
        .and_then(|e| e.get("code").cloned());
    assert_eq!(code, Some(Value::from("FORBIDDEN")));
    let nested = "mutation { ... on Probe { ... on Probe { somethingNew } } }";
    let nested_response = run(nested, Role::Viewer).await;
    assert_eq!(
        nested_response.errors.len(),
        1,
        "{:?}",
        nested_response.errors
    );
    assert!(run(nested, Role::Admin).await.errors.is_empty());
    let read = run("{ services apiTokens }", Role::Viewer).await;
    assert_eq!(read.errors.len(), 1, "only apiTokens is refused");
    let anonymous = schema.execute("{ services }").await;
    assert_eq!(
        anonymous.errors.len(),
        1,
        "no principal, no anonymous reads"
    );
}
