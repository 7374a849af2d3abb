//! The priority of an incident: the impact its services suggest, and the impact x urgency
//! matrix (data, changed through `setPriorityRule`, audited).

use super::*;

/// The impact an incident deserves from the services it hits: a critical service hit
/// makes it high; a high-criticality service down makes it high and degraded medium; a
/// medium one down makes it medium. `None` when it hits no service.
pub fn suggested_impact(services: &[(Option<Criticality>, ServiceState)]) -> Option<Level> {
    services
        .iter()
        .map(|(criticality, state)| match (criticality, state) {
            (Some(Criticality::Critical), _) => Level::High,
            (Some(Criticality::High), ServiceState::Down) => Level::High,
            (Some(Criticality::High), ServiceState::Degraded) => Level::Medium,
            (Some(Criticality::Medium), ServiceState::Down) => Level::Medium,
            _ => Level::Low,
        })
        .max()
}

/// The impact x urgency matrix, row by row.
pub async fn priority_matrix(db: &impl ConnectionTrait) -> Result<Vec<priority_rule::Model>> {
    let mut rules = priority_rule::Entity::find().all(db).await?;
    rules.sort_by(|a, b| b.impact.cmp(&a.impact).then(b.urgency.cmp(&a.urgency)));
    Ok(rules)
}

/// The priority the matrix gives to `impact` and `urgency`.
pub async fn priority_of(db: &impl ConnectionTrait, impact: Level, urgency: Level) -> Result<i32> {
    priority_rule::Entity::find_by_id((impact, urgency))
        .one(db)
        .await?
        .map(|rule| rule.priority)
        .ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "the priority matrix has no cell for {impact:?} x {urgency:?}"
            ))
        })
}

/// Sets one cell of the priority matrix. Existing incidents keep their priority until
/// their impact or urgency changes.
pub async fn set_priority_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    impact: Level,
    urgency: Level,
    priority: i32,
) -> Result<priority_rule::Model> {
    if !(1..=5).contains(&priority) {
        return Err(Error::invalid(
            "priority",
            format!("priority {priority} is not between 1 (most urgent) and 5"),
        ));
    }
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let before =
        crate::domain::lock_row(txn, priority_rule::Entity::find_by_id((impact, urgency))).await?;
    let after = priority_rule::Model {
        impact,
        urgency,
        priority,
    };
    if before.as_ref() == Some(&after) {
        return Ok(after);
    }
    priority_rule::Entity::delete_many()
        .filter(priority_rule::Column::Impact.eq(impact))
        .filter(priority_rule::Column::Urgency.eq(urgency))
        .exec(txn)
        .await?;
    after.clone().into_active_model().insert(txn).await?;
    uow.record(Event::new(
        EntityType::PriorityRule,
        format!("{}:{}", level_name(impact), level_name(urgency)),
        Action::Update,
        before.as_ref(),
        Some(&after),
    )?);
    uow.commit().await?;
    Ok(after)
}

pub(super) fn level_name(level: Level) -> &'static str {
    match level {
        Level::High => "HIGH",
        Level::Medium => "MEDIUM",
        Level::Low => "LOW",
    }
}
