//! Reverting a CI: a new version whose state equals an earlier one. History is never
//! rewritten; the revert is a change like any other, audited as `REVERT`, with the same
//! checks as an update (the class's attribute rules as they are now, the expected version).

use entity::configuration_item;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::super::audit::{Action, Actor};
use super::super::ci::{self, CiChanges};
use super::super::{Error, Patch, Result};

/// The changes that bring a CI back to `old`'s fields (all that an update may set).
fn changes_back_to(old: &configuration_item::Model) -> CiChanges {
    let patch = |value: &Option<String>| match value {
        Some(value) => Patch::Set(value.clone()),
        None => Patch::Clear,
    };
    CiChanges {
        name: Some(old.name.clone()),
        description: patch(&old.description),
        status: Some(old.status),
        environment: patch(&old.environment),
        criticality: match old.criticality {
            Some(criticality) => Patch::Set(criticality),
            None => Patch::Clear,
        },
        owner: patch(&old.owner),
        attributes: Some(old.attributes.clone()),
        attribute_patch: None,
    }
}

/// Writes a new version of CI `id` equal to its version `to_version` (`NOT_FOUND` when it
/// never had that version). With `expected_version`, only if the CI is still at it. When
/// the CI already equals that version, nothing is written.
pub async fn revert(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    to_version: i32,
    expected_version: Option<i32>,
) -> Result<configuration_item::Model> {
    let old = super::ci_version(db, id, to_version)
        .await?
        .ok_or_else(|| {
            Error::not_found(
                "version of configuration item",
                format!("{id}@{to_version}"),
            )
        })?;
    let current = ci::get(db, id).await?;
    if old.state.class_id != current.class_id {
        return Err(Error::invalid(
            "toVersion",
            "that version is of another class; a revert keeps the class",
        ));
    }
    ci::update_as(
        db,
        actor,
        id,
        expected_version,
        changes_back_to(&old.state),
        Action::Revert,
    )
    .await
}
