//! Mutations of configuration items: create, update (compare-and-swap on the version),
//! retire and delete.

use super::*;

/// A configuration item to record.
#[derive(InputObject)]
pub struct CreateConfigurationItemInput {
    /// Class name, such as `server`.
    pub class: String,
    /// Name of the CI.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Lifecycle status; `IN_SERVICE` when not given.
    pub status: Option<LifecycleStatus>,
    /// Environment, such as `production`.
    pub environment: Option<String>,
    /// Business criticality.
    pub criticality: Option<Criticality>,
    /// Responsible team.
    pub owner: Option<String>,
    /// Attributes, checked against the class.
    pub attributes: Option<Json<Value>>,
}

/// Changes to a CI. Omitted fields stay as they are; optional fields set to null are cleared.
#[derive(InputObject, Default)]
pub struct UpdateConfigurationItemInput {
    /// New name.
    pub name: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New lifecycle status.
    pub status: Option<LifecycleStatus>,
    /// New environment; null clears it.
    pub environment: MaybeUndefined<String>,
    /// New criticality; null clears it.
    pub criticality: MaybeUndefined<Criticality>,
    /// New owner; null clears it.
    pub owner: MaybeUndefined<String>,
    /// Replaces all attributes.
    pub attributes: Option<Json<Value>>,
    /// Merged into the attributes: keys set to null are removed, others set.
    pub attribute_patch: Option<Json<Value>>,
}

/// Mutations of configuration items.
#[derive(Default)]
pub struct CiMutation;

/// Mutations of configuration items.
#[Object]
impl CiMutation {
    /// Records a new CI. Its attributes must satisfy its class.
    async fn create_configuration_item(
        &self,
        ctx: &Context<'_>,
        input: CreateConfigurationItemInput,
    ) -> Result<ConfigurationItem> {
        let new = ci::NewCi {
            class: input.class,
            name: input.name,
            description: input.description,
            status: input.status.map(Into::into),
            environment: input.environment,
            criticality: input.criticality.map(Into::into),
            owner: input.owner,
            attributes: input.attributes.map(|a| a.0),
        };
        Ok(ConfigurationItem::new(
            ci::create(db(ctx)?, &actor(ctx), new).await?,
        ))
    }

    /// Changes a CI. With `expectedVersion`, the change applies only if the CI is still at
    /// that version (otherwise `VERSION_MISMATCH` and nothing changes).
    async fn update_configuration_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateConfigurationItemInput,
    ) -> Result<ConfigurationItem> {
        let id = parse_id("id", &id)?;
        let changes = ci::CiChanges {
            name: input.name,
            description: patch(input.description),
            status: input.status.map(Into::into),
            environment: patch(input.environment),
            criticality: patch(input.criticality),
            owner: patch(input.owner),
            attributes: input.attributes.map(|a| a.0),
            attribute_patch: input.attribute_patch.map(|a| a.0),
        };
        let updated = ci::update(db(ctx)?, &actor(ctx), id, expected_version, changes).await?;
        Ok(ConfigurationItem::new(updated))
    }

    /// Marks a CI retired: kept on record with its relationships, out of impact analysis.
    async fn retire_configuration_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<ConfigurationItem> {
        let id = parse_id("id", &id)?;
        Ok(ConfigurationItem::new(
            ci::retire(db(ctx)?, &actor(ctx), id, expected_version).await?,
        ))
    }

    /// Deletes a CI with its relationships and service memberships; returns its id.
    /// Retire CIs that existed; delete only mistakes.
    async fn delete_configuration_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<ID> {
        let id = parse_id("id", &id)?;
        let deleted =
            crate::domain::ci_deletion::delete(db(ctx)?, &actor(ctx), id, expected_version).await?;
        Ok(ID(deleted.id.to_string()))
    }
}
