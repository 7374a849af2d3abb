//! The lists a service and a CI read of each other, for nested fields: a CI's services,
//! a service's members, now or as of an instant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::configuration_item;
use entity::service::{self, Column, Entity};
use entity::service_member;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::super::Result;

/// The services each of the CIs belongs to, by name: one statement per 500 CIs.
pub async fn services_of(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<service::Model>>> {
    services_of_at(db, ci_ids, &None).await
}

/// [`services_of`], as they were at an instant when one is given (the services and their
/// memberships then).
pub async fn services_of_at(
    db: &impl ConnectionTrait,
    ci_ids: &[Uuid],
    at: &Option<DateTime<Utc>>,
) -> Result<HashMap<Uuid, Vec<service::Model>>> {
    use sea_orm::sea_query::{Expr, Order};
    super::super::nested::linked::<Entity, service_member::Entity>(
        db,
        ci_ids,
        service_member::Column::CiId,
        service_member::Column::ServiceId,
        Column::Id,
        sea_orm::Condition::all(),
        vec![
            (Expr::col((Entity, Column::Name)), Order::Asc),
            (Expr::col((Entity, Column::Id)), Order::Asc),
        ],
        None,
        *at,
    )
    .await
}

/// How a nested field lists members: at most `first` each, as of an instant when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberListing {
    pub first: u64,
    pub as_of: Option<DateTime<Utc>>,
}

/// The member CIs of each of the services, in the order they were added, at most `first`
/// each: one statement per 500 services, the cut made in the database.
pub async fn members_of(
    db: &impl ConnectionTrait,
    service_ids: &[Uuid],
    listing: &MemberListing,
) -> Result<HashMap<Uuid, Vec<configuration_item::Model>>> {
    use sea_orm::sea_query::{Expr, Order};
    super::super::nested::linked::<configuration_item::Entity, service_member::Entity>(
        db,
        service_ids,
        service_member::Column::ServiceId,
        service_member::Column::CiId,
        configuration_item::Column::Id,
        sea_orm::Condition::all(),
        vec![
            (
                Expr::col((service_member::Entity, service_member::Column::AddedAt)),
                Order::Asc,
            ),
            (
                Expr::col((service_member::Entity, service_member::Column::CiId)),
                Order::Asc,
            ),
        ],
        Some(listing.first),
        listing.as_of,
    )
    .await
}
