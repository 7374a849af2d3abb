//! A change's assessment as the API shows it: the risk and every rule that fired, the
//! services, customers and open incidents hit, and the changes it collides with.

use super::*;

/// One rule of the risk judgement that fired.
#[derive(SimpleObject)]
pub struct RiskReason {
    /// Stable name of the rule: `BLAST_RADIUS`, `CRITICAL_SERVICE_DOWN`,
    /// `CRITICAL_SERVICE_DEGRADED`, `HIGH_SERVICE_DOWN`, `OPEN_INCIDENT`,
    /// `OPEN_MAJOR_INCIDENT`, `COLLISION`, `NO_WINDOW`, `COMBINED_HIGH_RISKS` or `EMERGENCY`.
    pub rule: String,
    /// The risk this rule alone gives.
    pub level: RiskLevel,
    /// What was found.
    pub message: String,
}

/// A service in a change's blast radius.
pub struct AssessedService(changes::AssessedService);

/// A service in a change's blast radius.
#[Object]
impl AssessedService {
    /// The service.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        service_by_id(ctx, self.0.service_id).await
    }

    /// How badly the change would hit it if it went wrong.
    async fn state(&self) -> ServiceImpact {
        self.0.state.into()
    }

    /// Its criticality when assessed.
    async fn criticality(&self) -> Option<Criticality> {
        self.0.criticality.map(Into::into)
    }
}

/// Another change overlapping a change in time and in blast radius.
pub struct AssessmentCollision(changes::Collision);

/// Another change overlapping a change in time and in blast radius.
#[Object]
impl AssessmentCollision {
    /// The other change.
    async fn change(&self, ctx: &Context<'_>) -> Result<Change> {
        change_by_id(ctx, self.0.change_id).await
    }

    /// Start of the shared time.
    async fn overlap_start(&self) -> DateTime<Utc> {
        self.0.overlap_start
    }

    /// End of the shared time.
    async fn overlap_end(&self) -> DateTime<Utc> {
        self.0.overlap_end
    }

    /// How many CIs both blast radii hold.
    async fn shared_ci_count(&self) -> usize {
        self.0.shared_ci_count
    }

    /// The first of them (at most 200).
    async fn shared_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.shared_ci_ids).await
    }
}

/// What a change would hit and how risky it is, each finding with its reason.
pub struct ChangeAssessment(pub changes::Assessment);

/// What a change would hit and how risky it is.
#[Object]
impl ChangeAssessment {
    /// When it was computed.
    async fn assessed_at(&self) -> DateTime<Utc> {
        self.0.assessed_at
    }

    /// The risk: the highest level any rule gives, critical for several high findings,
    /// one level up for an emergency.
    async fn risk(&self) -> RiskLevel {
        self.0.risk.into()
    }

    /// Every rule that fired.
    async fn reasons(&self) -> Vec<RiskReason> {
        self.0
            .reasons
            .iter()
            .map(|r| RiskReason {
                rule: r.rule.clone(),
                level: r.level.into(),
                message: r.message.clone(),
            })
            .collect()
    }

    /// How many CIs the change's CIs hit downstream, themselves included.
    async fn blast_radius(&self) -> usize {
        self.0.blast_radius
    }

    /// The first CIs of the blast radius (at most 200), nearest first.
    async fn blast_radius_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.blast_radius_ci_ids).await
    }

    /// The services hit, worst first.
    async fn affected_services(&self) -> Vec<AssessedService> {
        self.0
            .affected_services
            .iter()
            .cloned()
            .map(AssessedService)
            .collect()
    }

    /// The customers of those services, with their agreements.
    async fn affected_customers(&self, ctx: &Context<'_>) -> Result<Vec<AffectedCustomer>> {
        let ids: Vec<Uuid> = self
            .0
            .affected_services
            .iter()
            .map(|s| s.service_id)
            .collect();
        crate::graphql::customer::affected_customers(ctx, &ids, None).await
    }

    /// Incidents open on CIs of the blast radius when assessed.
    async fn open_incidents(&self, ctx: &Context<'_>) -> Result<Vec<Incident>> {
        incidents_by_ids(ctx, &self.0.open_incident_ids).await
    }

    /// Approved, scheduled or running changes overlapping this one in time and in blast
    /// radius.
    async fn collisions(&self) -> Vec<AssessmentCollision> {
        self.0
            .collisions
            .iter()
            .cloned()
            .map(AssessmentCollision)
            .collect()
    }
}

/// Two changes on the schedule that overlap in time and in blast radius.
pub struct ChangeCollision(pub changes::ScheduledCollision);

/// Two changes on the schedule that overlap in time and in blast radius.
#[Object]
impl ChangeCollision {
    /// The change that starts first (or has the lower number).
    async fn first(&self) -> Change {
        Change(self.0.first.clone())
    }

    /// The other change.
    async fn second(&self) -> Change {
        Change(self.0.second.clone())
    }

    /// Start of the shared time within the period asked about.
    async fn overlap_start(&self) -> DateTime<Utc> {
        self.0.overlap_start
    }

    /// End of the shared time within the period asked about.
    async fn overlap_end(&self) -> DateTime<Utc> {
        self.0.overlap_end
    }

    /// How many CIs both blast radii hold.
    async fn shared_ci_count(&self) -> usize {
        self.0.shared_ci_count
    }

    /// The first of them (at most 200).
    async fn shared_cis(&self, ctx: &Context<'_>) -> Result<Vec<ConfigurationItem>> {
        cis_by_ids(ctx, &self.0.shared_ci_ids).await
    }
}
