//! Mutations of customers and service levels.

use super::*;

/// A customer to record.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// Unique name.
    pub name: String,
    /// The person to talk to.
    pub contact_name: Option<String>,
    /// Their email address.
    pub contact_email: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Changes to a customer. Omitted fields stay; optional fields set to null are cleared.
#[derive(InputObject, Default)]
pub struct UpdateCustomerInput {
    /// New name.
    pub name: Option<String>,
    /// New contact; null clears it.
    pub contact_name: MaybeUndefined<String>,
    /// New email address; null clears it.
    pub contact_email: MaybeUndefined<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
}

/// The targets of a service.
#[derive(InputObject)]
pub struct ServiceLevelInput {
    /// Percent of the time the service must not be down, e.g. 99.9.
    pub availability_target: Option<f64>,
    /// Response and resolution targets, at most one per priority.
    #[graphql(default)]
    pub targets: Vec<PriorityTarget>,
}

/// Mutations of customers and service levels.
#[derive(Default)]
pub struct CustomerMutation;

/// Mutations of customers and service levels.
#[Object]
impl CustomerMutation {
    /// Records a customer.
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> Result<Customer> {
        let new = customers::NewCustomer {
            name: input.name,
            contact_name: input.contact_name,
            contact_email: input.contact_email,
            description: input.description,
        };
        Ok(Customer(
            customers::create(db(ctx)?, &actor(ctx), new).await?,
        ))
    }

    /// Changes a customer. With `expectedVersion`, only if it is still at that version.
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateCustomerInput,
    ) -> Result<Customer> {
        let id = parse_id("id", &id)?;
        let changes = customers::CustomerChanges {
            name: input.name,
            contact_name: patch(input.contact_name),
            contact_email: patch(input.contact_email),
            description: patch(input.description),
        };
        Ok(Customer(
            customers::update(db(ctx)?, &actor(ctx), id, expected_version, changes).await?,
        ))
    }

    /// Deletes a customer (the services stay); returns its id.
    async fn delete_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<ID> {
        let id = parse_id("id", &id)?;
        let deleted = customers::delete(db(ctx)?, &actor(ctx), id, expected_version).await?;
        Ok(ID(deleted.id.to_string()))
    }

    /// Records that a customer consumes a service under an agreement (or changes the
    /// agreement when it already does).
    async fn add_customer_service(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        service_id: ID,
        agreement: Option<String>,
    ) -> Result<Customer> {
        let customer_id = parse_id("customerId", &customer_id)?;
        let service_id = parse_id("serviceId", &service_id)?;
        Ok(Customer(
            customers::subscribe(db(ctx)?, &actor(ctx), customer_id, service_id, agreement).await?,
        ))
    }

    /// Records that a customer no longer consumes a service.
    async fn remove_customer_service(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        service_id: ID,
    ) -> Result<Customer> {
        let customer_id = parse_id("customerId", &customer_id)?;
        let service_id = parse_id("serviceId", &service_id)?;
        Ok(Customer(
            customers::unsubscribe(db(ctx)?, &actor(ctx), customer_id, service_id).await?,
        ))
    }

    /// Sets the targets of a service, replacing the ones it had.
    async fn set_service_level(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        input: ServiceLevelInput,
    ) -> Result<ServiceLevel> {
        let service_id = parse_id("serviceId", &service_id)?;
        let targets = input
            .targets
            .into_iter()
            .map(|t| StoredTarget {
                priority: t.priority,
                response_minutes: t.response_minutes,
                resolution_minutes: t.resolution_minutes,
            })
            .collect();
        Ok(ServiceLevel(
            service_levels::set(
                db(ctx)?,
                &actor(ctx),
                service_id,
                input.availability_target,
                targets,
            )
            .await?,
        ))
    }
}
