//! Mutations of changes: drafting, editing, and every step of the lifecycle.

use super::*;

/// A change to record (as a draft).
#[derive(InputObject)]
pub struct CreateChangeInput {
    /// One line saying what changes.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Standard, normal or emergency; normal when not given.
    #[graphql(name = "type", default_with = "ChangeType::Normal")]
    pub change_type: ChangeType,
    /// Start of the planned window.
    pub planned_start: Option<DateTime<Utc>>,
    /// End of the planned window.
    pub planned_end: Option<DateTime<Utc>>,
    /// How it will be carried out.
    pub implementation_plan: Option<String>,
    /// How it will be undone.
    pub backout_plan: Option<String>,
    /// The CIs it touches.
    #[graphql(default)]
    pub ci_ids: Vec<ID>,
}

/// Changes to a change, while it is a draft, submitted or assessed. Omitted fields stay;
/// optional fields set to null are cleared.
#[derive(InputObject, Default)]
pub struct UpdateChangeInput {
    /// New title.
    pub title: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New type (drafts only).
    #[graphql(name = "type")]
    pub change_type: Option<ChangeType>,
    /// New start of the window; null clears it.
    pub planned_start: MaybeUndefined<DateTime<Utc>>,
    /// New end of the window; null clears it.
    pub planned_end: MaybeUndefined<DateTime<Utc>>,
    /// New implementation plan; null clears it.
    pub implementation_plan: MaybeUndefined<String>,
    /// New back-out plan; null clears it.
    pub backout_plan: MaybeUndefined<String>,
    /// The CIs it touches (replaces the list).
    pub ci_ids: Option<Vec<ID>>,
}

/// Moves a change to `to`, with the approver's comment or the outcome's notes, and the
/// review notes.
async fn move_change(
    ctx: &Context<'_>,
    id: &ID,
    expected_version: Option<i32>,
    to: values::ChangeState,
    comment: Option<String>,
    review_notes: Option<String>,
) -> Result<Change> {
    let details = changes::TransitionDetails {
        comment,
        review_notes,
    };
    let id = parse_id("id", id)?;
    Ok(Change(
        changes::transition(
            db(ctx)?,
            graph_cache(ctx)?,
            limits(ctx)?,
            &actor(ctx),
            id,
            expected_version,
            to,
            details,
        )
        .await?,
    ))
}

/// Mutations of changes. A move the lifecycle does not allow is an `INVALID_TRANSITION`
/// error that changes nothing.
#[derive(Default)]
pub struct ChangeMutation;

/// Mutations of changes.
#[Object]
impl ChangeMutation {
    /// Records a change as a draft.
    async fn create_change(&self, ctx: &Context<'_>, input: CreateChangeInput) -> Result<Change> {
        let new = changes::NewChange {
            title: input.title,
            description: input.description,
            change_type: input.change_type.into(),
            planned_start: input.planned_start,
            planned_end: input.planned_end,
            implementation_plan: input.implementation_plan,
            backout_plan: input.backout_plan,
            ci_ids: parse_ids("input.ciIds", &input.ci_ids)?,
        };
        Ok(Change(
            changes::create(db(ctx)?, limits(ctx)?, &actor(ctx), new).await?,
        ))
    }

    /// Changes a draft, submitted or assessed change; a submitted or assessed one is
    /// reassessed when its CIs or window change.
    async fn update_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
        input: UpdateChangeInput,
    ) -> Result<Change> {
        let id = parse_id("id", &id)?;
        let update = changes::ChangeChanges {
            title: input.title,
            description: patch(input.description),
            change_type: input.change_type.map(Into::into),
            planned_start: patch(input.planned_start),
            planned_end: patch(input.planned_end),
            implementation_plan: patch(input.implementation_plan),
            backout_plan: patch(input.backout_plan),
            ci_ids: input
                .ci_ids
                .map(|ids| parse_ids("input.ciIds", &ids))
                .transpose()?,
        };
        Ok(Change(
            changes::update(
                db(ctx)?,
                graph_cache(ctx)?,
                limits(ctx)?,
                &actor(ctx),
                id,
                expected_version,
                update,
            )
            .await?,
        ))
    }

    /// Submits a draft: it is assessed at once. A standard change is pre-approved and goes
    /// straight to `APPROVED`.
    async fn submit_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Submitted,
            None,
            None,
        )
        .await
    }

    /// Recomputes the assessment as things stand now; a submitted change becomes
    /// `ASSESSED`.
    async fn assess_change(&self, ctx: &Context<'_>, id: ID) -> Result<Change> {
        let id = parse_id("id", &id)?;
        Ok(Change(
            changes::assess(db(ctx)?, graph_cache(ctx)?, limits(ctx)?, &actor(ctx), id).await?,
        ))
    }

    /// Approves an assessed change (an emergency change also when only submitted),
    /// recording who, when and why.
    async fn approve_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Approved,
            comment,
            None,
        )
        .await
    }

    /// Rejects an assessed change (an emergency change also when only submitted),
    /// recording who, when and why.
    async fn reject_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Rejected,
            comment,
            None,
        )
        .await
    }

    /// Schedules an approved change in its planned window.
    async fn schedule_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Scheduled,
            None,
            None,
        )
        .await
    }

    /// Starts carrying out a scheduled change.
    async fn start_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::InProgress,
            None,
            None,
        )
        .await
    }

    /// Records how a change in progress ended.
    async fn complete_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        outcome: ChangeOutcome,
        notes: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(ctx, &id, expected_version, outcome.into(), notes, None).await
    }

    /// Closes a finished change after its review.
    async fn close_change(
        &self,
        ctx: &Context<'_>,
        id: ID,
        review_notes: Option<String>,
        expected_version: Option<i32>,
    ) -> Result<Change> {
        move_change(
            ctx,
            &id,
            expected_version,
            values::ChangeState::Closed,
            None,
            review_notes,
        )
        .await
    }
}
