//! Moving a change along its lifecycle: submission (which assesses it, and approves a
//! standard change), decisions, scheduling, delivery and review, each audited.

use super::*;

/// What comes with a transition: the approver's comment, the outcome's notes, the review.
#[derive(Debug, Clone, Default)]
pub struct TransitionDetails {
    pub comment: Option<String>,
    pub review_notes: Option<String>,
}

/// The stored form of a state, for messages.
pub fn state_name(state: ChangeState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Moves a change along its lifecycle. Submitting assesses it (and approves a standard
/// change); approving or rejecting records the decision; scheduling needs a window;
/// finishing records the outcome; closing needs review notes.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    db: &DatabaseConnection,
    cache: &GraphCache,
    limits: &Limits,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    to: ChangeState,
    details: TransitionDetails,
) -> Result<change_request::Model> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let out = transition_in(&uow, cache, limits, id, expected_version, to, details).await?;
    uow.commit().await?;
    Ok(out)
}

/// The same, as part of a larger write.
pub async fn transition_in(
    uow: &UnitOfWork,
    cache: &GraphCache,
    limits: &Limits,
    id: Uuid,
    expected_version: Option<i32>,
    to: ChangeState,
    details: TransitionDetails,
) -> Result<change_request::Model> {
    let comment = optional_trimmed("comment", details.comment, text_limits::DESCRIPTION)?;
    let review_notes = optional_trimmed(
        "reviewNotes",
        details.review_notes,
        text_limits::DESCRIPTION,
    )?;
    let txn = uow.txn();
    let before = get_for_update(txn, id).await?;
    check_version(expected_version, before.version)?;
    // Submitting a standard change approves it: it is pre-approved.
    let to = if before.change_type == ChangeType::Standard
        && before.state == ChangeState::Draft
        && to == ChangeState::Submitted
    {
        ChangeState::Approved
    } else {
        to
    };
    if !can_transition(before.change_type, before.state, to) {
        return Err(Error::InvalidTransition(format!(
            "{} change {} cannot go from {} to {}",
            type_name(before.change_type),
            before.number,
            state_name(before.state),
            state_name(to)
        )));
    }
    let ci_ids = ci_ids_of(txn, &[id]).await?.remove(&id).unwrap_or_default();
    let mut after = before.clone();
    let mut decision: Option<change_approval::Model> = None;
    after.state = to;
    match to {
        ChangeState::Submitted | ChangeState::Assessed => {
            if ci_ids.is_empty() {
                return Err(Error::invalid(
                    "ciIds",
                    format!("change {} names no CI: say what it touches", before.number),
                ));
            }
            let assessment = compute_assessment(txn, cache, limits, &after, &ci_ids).await?;
            store_assessment(txn, &mut after, &assessment).await?;
        }
        ChangeState::Approved if before.state == ChangeState::Draft => {
            let assessment = compute_assessment(txn, cache, limits, &after, &ci_ids).await?;
            store_assessment(txn, &mut after, &assessment).await?;
            // The approval is the standard change model's, given in advance: record it as
            // such, with who submitted the change under it.
            decision = Some(change_approval::Model {
                id: Uuid::now_v7(),
                change_id: id,
                decision: Decision::Approved,
                approver: STANDARD_CHANGE_MODEL.to_owned(),
                comment: Some(format!(
                    "pre-approved: a standard change follows an approved change model; submitted \
                     by {}",
                    uow.actor().name()
                )),
                decided_at: now(),
            }
            .into_active_model()
            .insert(txn)
            .await?);
        }
        ChangeState::Approved | ChangeState::Rejected => {
            let verdict = if to == ChangeState::Approved {
                Decision::Approved
            } else {
                Decision::Rejected
            };
            decision = Some(
                change_approval::Model {
                    id: Uuid::now_v7(),
                    change_id: id,
                    decision: verdict,
                    approver: uow.actor().name().to_owned(),
                    comment: comment.clone(),
                    decided_at: now(),
                }
                .into_active_model()
                .insert(txn)
                .await?,
            );
        }
        ChangeState::Scheduled => {
            if window_of(&after).is_none() {
                return Err(Error::invalid(
                    "plannedStart",
                    format!(
                        "change {} has no planned window: set plannedStart and plannedEnd first",
                        before.number
                    ),
                ));
            }
        }
        ChangeState::Completed | ChangeState::Failed | ChangeState::RolledBack => {
            after.outcome = Some(to);
            if let Some(comment) = &comment {
                after.review_notes = Some(comment.clone());
            }
        }
        ChangeState::Closed => {
            let notes = review_notes.or(after.review_notes.clone());
            if notes.is_none() {
                return Err(Error::invalid(
                    "reviewNotes",
                    "closing a change needs `reviewNotes` from its review",
                ));
            }
            after.review_notes = notes;
        }
        ChangeState::Draft | ChangeState::InProgress => {}
    }
    after.version = before.version + 1;
    after.updated_at = now();
    save(txn, &before, &after).await?;
    let action = match to {
        ChangeState::Approved if before.state != ChangeState::Draft => Action::Approve,
        ChangeState::Rejected => Action::Reject,
        _ => Action::Transition,
    };
    uow.record(Event::new(
        EntityType::Change,
        id,
        action,
        Some(&snapshot(&before, &ci_ids)),
        // The decision recorded by this move (who, when, why) is part of what changed.
        Some(&snapshot(&after, &ci_ids).deciding(decision.as_ref())),
    )?);
    Ok(after)
}

/// The approver recorded for the pre-approval of a standard change.
pub const STANDARD_CHANGE_MODEL: &str = "standard change model";
