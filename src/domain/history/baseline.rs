//! Baselines: named, immutable reference points. A baseline records an instant and a scope,
//! never a copy of the data (the history answers as of its instant), so taking one is cheap
//! and comparing two is the list of what changed between their instants, in their scope.

use chrono::{DateTime, Utc};
use entity::baseline::{self, Column, Entity};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, prelude::Json,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::audit::{Action, Actor, EntityType, Event};
use super::super::pagination::{KeyKind, KeyValue, Page, PageWindow, SortKey, fetch_page};
use super::super::unit_of_work::UnitOfWork;
use super::super::{Error, Result, ci, optional_text, required_text, service, text_limits};

/// What a baseline covers: the whole CMDB, a service's dependency closure, or CIs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_ids: Option<Vec<Uuid>>,
}

impl BaselineScope {
    /// The scope a baseline record keeps (an empty one when unreadable).
    pub fn of(baseline: &baseline::Model) -> Self {
        serde_json::from_value(baseline.scope.clone()).unwrap_or_default()
    }
}

/// A baseline to take.
#[derive(Debug, Clone)]
pub struct NewBaseline {
    pub name: String,
    pub description: Option<String>,
    pub scope: BaselineScope,
}

/// The baseline named `name`, or `NOT_FOUND`.
pub async fn get(db: &impl ConnectionTrait, name: &str) -> Result<baseline::Model> {
    Entity::find()
        .filter(Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("baseline", name))
}

/// The baseline with that id, or `NOT_FOUND`.
pub async fn get_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<baseline::Model> {
    Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("baseline", id))
}

/// Takes a baseline now: its instant is that of the write recording it. Names are unique
/// (`CONFLICT`); the scope's service and CIs must exist (`NOT_FOUND`).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewBaseline,
) -> Result<baseline::Model> {
    let name = required_text("name", &new.name, 100)?;
    let description = new
        .description
        .map(|d| optional_text("description", &d, text_limits::DESCRIPTION))
        .transpose()?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    if let Some(service_id) = new.scope.service_id {
        service::get(txn, service_id)
            .await
            .map_err(|e| e.within("scope.serviceId"))?;
    }
    if let Some(ci_ids) = &new.scope.ci_ids {
        ci::ensure_exist(txn, "scope.ciIds", ci_ids).await?;
    }
    if Entity::find()
        .filter(Column::Name.eq(name.as_str()))
        .count(txn)
        .await?
        > 0
    {
        return Err(Error::Conflict(format!(
            "a baseline named `{name}` already exists (baselines are immutable)"
        )));
    }
    let model = baseline::Model {
        id: Uuid::now_v7(),
        name,
        description,
        at: uow.at(),
        scope: serde_json::to_value(&new.scope)?,
        created_by: actor.name().to_owned(),
    };
    let model = sea_orm::IntoActiveModel::into_active_model(model)
        .insert(txn)
        .await?;
    uow.record(Event::new(
        EntityType::Baseline,
        model.id,
        Action::Create,
        None,
        Some(&model),
    )?);
    uow.commit().await?;
    Ok(model)
}

/// One page of baselines, by instant (oldest first).
pub async fn list(db: &impl ConnectionTrait, window: &PageWindow) -> Result<Page<baseline::Model>> {
    let key = SortKey::by(
        Column::At,
        KeyKind::Time,
        Column::Id,
        false,
        "baseline:at:asc",
    );
    fetch_page(db, Entity::find(), &key, window, |b| {
        (Some(KeyValue::Time(b.at)), KeyValue::Uuid(b.id))
    })
    .await
}

/// How many baselines there are.
pub async fn count(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(Entity::find().count(db).await?)
}

/// The instants and scope two baselines compare: from `from`'s instant to `to`'s (now when
/// `to` is not given), in `from`'s scope. `to` before `from` is `VALIDATION`.
pub async fn interval(
    db: &impl ConnectionTrait,
    from: &str,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, BaselineScope)> {
    let start = get(db, from).await.map_err(|e| e.within("from"))?;
    let end = match to {
        Some(to) => get(db, to).await.map_err(|e| e.within("to"))?.at,
        None => now,
    };
    if end < start.at {
        return Err(Error::invalid(
            "to",
            "the `to` baseline is older than `from`",
        ));
    }
    Ok((start.at, end, BaselineScope::of(&start)))
}

/// The JSON form of a scope, for the API.
pub fn scope_json(scope: &BaselineScope) -> Json {
    serde_json::to_value(scope).unwrap_or_default()
}
