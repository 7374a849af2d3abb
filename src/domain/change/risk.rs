//! The risk of a change, judged from the facts its assessment gathered: every rule that
//! fired is listed with its reason, and the level is the highest any rule gives (raised for
//! emergencies). Pure functions, unit-tested rule by rule.

use chrono::{DateTime, Utc};
use entity::values::{ChangeType, Criticality, RiskLevel, ServiceState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One rule of the risk judgement that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReason {
    /// A stable name of the rule, e.g. `CRITICAL_SERVICE_DOWN`.
    pub rule: String,
    /// The risk level this rule alone gives.
    pub level: RiskLevel,
    pub message: String,
}

/// A service in the blast radius, as assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessedService {
    pub service_id: Uuid,
    pub name: String,
    pub criticality: Option<Criticality>,
    pub state: ServiceState,
}

/// A customer consuming a service in the blast radius.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessedCustomer {
    pub customer_id: Uuid,
    pub service_id: Uuid,
    pub agreement: Option<String>,
}

/// Another change overlapping this one in time and in blast radius.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collision {
    pub change_id: Uuid,
    pub number: String,
    pub overlap_start: DateTime<Utc>,
    pub overlap_end: DateTime<Utc>,
    pub shared_ci_count: usize,
    /// The first shared CIs, nearest to this change's CIs first.
    pub shared_ci_ids: Vec<Uuid>,
}

/// The assessment of a change, kept with it until recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub assessed_at: DateTime<Utc>,
    pub risk: RiskLevel,
    pub reasons: Vec<RiskReason>,
    /// How many CIs the change's CIs hit, themselves included.
    pub blast_radius: usize,
    /// The first CIs of the blast radius, nearest first.
    pub blast_radius_ci_ids: Vec<Uuid>,
    pub affected_services: Vec<AssessedService>,
    pub affected_customers: Vec<AssessedCustomer>,
    pub open_incident_ids: Vec<Uuid>,
    pub collisions: Vec<Collision>,
}

/// How many CIs of a blast radius or an overlap an assessment lists (counts stay exact).
pub const LISTED_CIS: usize = 200;

/// What the risk judgement looks at.
#[derive(Debug, Clone)]
pub struct RiskFacts<'a> {
    pub change_type: ChangeType,
    pub has_window: bool,
    pub blast_radius: usize,
    pub services: &'a [AssessedService],
    /// Numbers of the open incidents, and whether each is major.
    pub open_incidents: &'a [(String, bool)],
    pub collisions: &'a [Collision],
}

/// A blast radius of more CIs than this is a medium risk in itself.
pub const LARGE_BLAST_RADIUS: usize = 100;
/// A blast radius of more CIs than this is a high risk in itself.
pub const HUGE_BLAST_RADIUS: usize = 1_000;

fn raise(level: RiskLevel) -> RiskLevel {
    match level {
        RiskLevel::Low => RiskLevel::Medium,
        RiskLevel::Medium => RiskLevel::High,
        RiskLevel::High | RiskLevel::Critical => RiskLevel::Critical,
    }
}

/// The risk of a change and every rule that fired. The level is the highest any rule
/// gives; two high-risk findings together make it critical; an emergency raises it by one.
pub fn judge(facts: &RiskFacts<'_>) -> (RiskLevel, Vec<RiskReason>) {
    let mut reasons = Vec::new();
    fn fire(reasons: &mut Vec<RiskReason>, rule: &str, level: RiskLevel, message: String) {
        reasons.push(RiskReason {
            rule: rule.into(),
            level,
            message,
        })
    }
    fire(
        &mut reasons,
        "BLAST_RADIUS",
        match facts.blast_radius {
            n if n > HUGE_BLAST_RADIUS => RiskLevel::High,
            n if n > LARGE_BLAST_RADIUS => RiskLevel::Medium,
            _ => RiskLevel::Low,
        },
        format!(
            "the change's CIs hit {} CIs and {} services downstream",
            facts.blast_radius,
            facts.services.len()
        ),
    );
    for service in facts.services {
        match (service.criticality, service.state) {
            (Some(Criticality::Critical), ServiceState::Down) => fire(
                &mut reasons,
                "CRITICAL_SERVICE_DOWN",
                RiskLevel::High,
                format!("critical service `{}` would be down", service.name),
            ),
            (Some(Criticality::Critical), ServiceState::Degraded) => fire(
                &mut reasons,
                "CRITICAL_SERVICE_DEGRADED",
                RiskLevel::Medium,
                format!("critical service `{}` would be degraded", service.name),
            ),
            (Some(Criticality::High), ServiceState::Down) => fire(
                &mut reasons,
                "HIGH_SERVICE_DOWN",
                RiskLevel::Medium,
                format!("high-criticality service `{}` would be down", service.name),
            ),
            _ => {}
        }
    }
    for (number, major) in facts.open_incidents {
        if *major {
            fire(
                &mut reasons,
                "OPEN_MAJOR_INCIDENT",
                RiskLevel::High,
                format!("major incident {number} is open on a CI in the blast radius"),
            );
        } else {
            fire(
                &mut reasons,
                "OPEN_INCIDENT",
                RiskLevel::Medium,
                format!("incident {number} is open on a CI in the blast radius"),
            );
        }
    }
    for collision in facts.collisions {
        fire(
            &mut reasons,
            "COLLISION",
            RiskLevel::High,
            format!(
                "change {} runs in an overlapping window ({} to {}) and shares {} CIs of the \
                 blast radius",
                collision.number,
                collision.overlap_start,
                collision.overlap_end,
                collision.shared_ci_count
            ),
        );
    }
    if !facts.has_window {
        fire(
            &mut reasons,
            "NO_WINDOW",
            RiskLevel::Medium,
            "no planned window: collisions with other changes cannot be checked".into(),
        );
    }
    let mut level = reasons
        .iter()
        .map(|r| r.level)
        .max()
        .unwrap_or(RiskLevel::Low);
    let high = reasons
        .iter()
        .filter(|r| r.level >= RiskLevel::High)
        .count();
    if high >= 2 {
        level = RiskLevel::Critical;
        fire(
            &mut reasons,
            "COMBINED_HIGH_RISKS",
            RiskLevel::Critical,
            format!("{high} high-risk findings together"),
        );
    }
    if facts.change_type == ChangeType::Emergency {
        level = raise(level);
        fire(
            &mut reasons,
            "EMERGENCY",
            level,
            "an emergency change has less time for preparation and testing".into(),
        );
    }
    (level, reasons)
}

/// The overlap of two windows, when they overlap (a window ending when another starts does
/// not overlap it).
pub fn overlap(
    a: (DateTime<Utc>, DateTime<Utc>),
    b: (DateTime<Utc>, DateTime<Utc>),
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = a.0.max(b.0);
    let end = a.1.min(b.1);
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
    }

    #[test]
    fn windows_overlap_only_when_they_share_time() {
        assert_eq!(
            overlap((at(1), at(3)), (at(2), at(4))),
            Some((at(2), at(3)))
        );
        assert_eq!(overlap((at(1), at(2)), (at(2), at(3))), None);
        assert_eq!(
            overlap((at(1), at(5)), (at(2), at(3))),
            Some((at(2), at(3)))
        );
    }

    fn service(criticality: Criticality, state: ServiceState) -> AssessedService {
        AssessedService {
            service_id: Uuid::nil(),
            name: "payroll".into(),
            criticality: Some(criticality),
            state,
        }
    }

    fn facts<'a>(
        services: &'a [AssessedService],
        incidents: &'a [(String, bool)],
        collisions: &'a [Collision],
    ) -> RiskFacts<'a> {
        RiskFacts {
            change_type: ChangeType::Normal,
            has_window: true,
            blast_radius: 3,
            services,
            open_incidents: incidents,
            collisions,
        }
    }

    fn rules(reasons: &[RiskReason]) -> Vec<&str> {
        reasons.iter().map(|r| r.rule.as_str()).collect()
    }

    #[test]
    fn a_small_change_hitting_nothing_important_is_low_risk_with_its_reason() {
        let (risk, reasons) = judge(&facts(&[], &[], &[]));
        assert_eq!(risk, RiskLevel::Low);
        assert_eq!(rules(&reasons), ["BLAST_RADIUS"]);
    }

    #[test]
    fn each_finding_names_the_rule_that_fired() {
        let services = [service(Criticality::Critical, ServiceState::Down)];
        let (risk, reasons) = judge(&facts(&services, &[], &[]));
        assert_eq!(risk, RiskLevel::High);
        assert_eq!(rules(&reasons), ["BLAST_RADIUS", "CRITICAL_SERVICE_DOWN"]);

        let incidents = [("INC-000001".to_owned(), false)];
        let (risk, reasons) = judge(&facts(&[], &incidents, &[]));
        assert_eq!(risk, RiskLevel::Medium);
        assert!(reasons[1].message.contains("INC-000001"));
    }

    #[test]
    fn two_high_findings_are_critical_and_emergencies_raise_the_risk() {
        let services = [service(Criticality::Critical, ServiceState::Down)];
        let collisions = [Collision {
            change_id: Uuid::nil(),
            number: "CHG-000002".into(),
            overlap_start: at(1),
            overlap_end: at(2),
            shared_ci_count: 4,
            shared_ci_ids: vec![],
        }];
        let (risk, reasons) = judge(&facts(&services, &[], &collisions));
        assert_eq!(risk, RiskLevel::Critical);
        assert!(rules(&reasons).contains(&"COMBINED_HIGH_RISKS"));

        let mut emergency = facts(&[], &[], &[]);
        emergency.change_type = ChangeType::Emergency;
        let (risk, reasons) = judge(&emergency);
        assert_eq!(risk, RiskLevel::Medium);
        assert_eq!(rules(&reasons), ["BLAST_RADIUS", "EMERGENCY"]);
    }
}
