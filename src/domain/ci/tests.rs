//! Unit tests of the CI rules that need no database.

use super::*;
use serde_json::json;

#[test]
fn an_attribute_patch_merges_and_removes() {
    let merged = merge_attributes(&json!({"a": 1, "b": 2}), json!({"b": null, "c": 3})).unwrap();
    assert_eq!(merged, json!({"a": 1, "c": 3}));
    assert!(merge_attributes(&json!({}), json!([1])).is_err());
}

#[test]
fn json_paths_quote_any_key() {
    assert_eq!(sqlite_json_path("os"), "$.\"os\"");
    assert_eq!(sqlite_json_path("a\"b"), "$.\"a\\\"b\"");
}
