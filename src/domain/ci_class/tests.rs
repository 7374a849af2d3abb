//! Unit tests of `ci_class`.

use super::*;
use serde_json::json;

fn definition(name: &str, kind: AttributeType, required: bool) -> AttributeDefinition {
    AttributeDefinition {
        name: name.into(),
        kind,
        required,
        recommended: false,
        description: None,
    }
}

fn class(
    id: i32,
    name: &str,
    parent: Option<i32>,
    attributes: Vec<AttributeDefinition>,
    identifiers: &[&str],
) -> ci_class::Model {
    let at = now();
    ci_class::Model {
        id,
        name: name.into(),
        label: name.into(),
        description: None,
        parent_id: parent,
        attributes: AttributeDefinitions(attributes),
        identifier_attributes: AttributeNames(identifiers.iter().map(|s| s.to_string()).collect()),
        created_at: at,
        updated_at: at,
        discovery_overrides_manual: false,
    }
}

fn catalog() -> ClassCatalog {
    ClassCatalog::new(vec![
        class(
            1,
            "computer",
            None,
            vec![definition("fqdn", AttributeType::String, false)],
            &["fqdn"],
        ),
        class(
            2,
            "server",
            Some(1),
            vec![
                definition("serial_number", AttributeType::String, true),
                definition("fqdn", AttributeType::String, true),
            ],
            &[],
        ),
        class(3, "blade", Some(2), vec![], &[]),
        class(4, "database", None, vec![], &[]),
    ])
}

#[test]
fn a_class_filter_covers_all_descendants() {
    let mut ids = catalog().with_descendants(1);
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(catalog().with_descendants(4), vec![4]);
}

#[test]
fn subclasses_inherit_and_may_tighten_attributes() {
    let effective = catalog().effective_attributes(3);
    let names: Vec<_> = effective.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["fqdn", "serial_number"]);
    assert!(
        effective.iter().all(|d| d.required),
        "server made fqdn required"
    );
    assert_eq!(catalog().effective_identifiers(3), vec!["fqdn".to_string()]);
}

#[test]
fn a_missing_required_attribute_is_named() {
    let definitions = catalog().effective_attributes(2);
    let err =
        validate_attributes("server", &definitions, json!({"fqdn": "a.example"})).unwrap_err();
    assert_eq!(err.code(), "VALIDATION");
    assert!(err.to_string().contains("serial_number"), "{err}");
    match err {
        Error::Validation { field, .. } => {
            assert_eq!(field.as_deref(), Some("attributes.serial_number"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn each_attribute_type_is_checked() {
    let cases = [
        (AttributeType::String, json!("x"), json!(1)),
        (AttributeType::Integer, json!(3), json!(3.5)),
        (AttributeType::Float, json!(3.5), json!("3.5")),
        (AttributeType::Boolean, json!(true), json!("true")),
        (
            AttributeType::Datetime,
            json!("2026-01-31T12:00:00Z"),
            json!("yesterday"),
        ),
    ];
    for (kind, good, bad) in cases {
        let definitions = vec![definition("a", kind, false)];
        assert!(
            validate_attributes("c", &definitions, json!({ "a": good })).is_ok(),
            "{kind:?} good"
        );
        let err = validate_attributes("c", &definitions, json!({ "a": bad })).unwrap_err();
        assert!(err.to_string().contains("`a`"), "{kind:?}: {err}");
    }
    let definitions = vec![definition("a", AttributeType::Json, false)];
    assert!(validate_attributes("c", &definitions, json!({ "a": {"deep": [1, 2]} })).is_ok());
}

#[test]
fn attributes_are_normalised() {
    let definitions = vec![definition("cpus", AttributeType::Integer, false)];
    let normalised = validate_attributes(
        "c",
        &definitions,
        json!({"cpus": 4.0, "gone": null, "extra": "kept"}),
    )
    .unwrap();
    assert_eq!(normalised, json!({"cpus": 4, "extra": "kept"}));
    assert_eq!(
        validate_attributes("c", &[], Json::Null).unwrap(),
        json!({})
    );
    assert_eq!(
        validate_attributes("c", &[], json!([1]))
            .unwrap_err()
            .code(),
        "VALIDATION"
    );
}

#[test]
fn oversized_attributes_are_refused() {
    let big = "x".repeat(MAX_ATTRIBUTES_BYTES);
    let err = validate_attributes("c", &[], json!({ "blob": big })).unwrap_err();
    assert_eq!(err.code(), "LIMIT_EXCEEDED");
}

#[test]
fn definitions_must_have_unique_valid_names() {
    let twice = vec![
        definition("a", AttributeType::String, false),
        definition("a", AttributeType::Integer, false),
    ];
    assert!(check_definitions(&twice).is_err());
    assert!(check_definitions(&[definition("has space", AttributeType::String, false)]).is_err());
}

#[test]
fn labels_default_to_the_name_in_words() {
    assert_eq!(default_label("virtual_machine"), "Virtual machine");
}
