//! Unit tests of the pure rules of changes.

use super::*;
use ChangeState::*;

const ALL: [ChangeState; 11] = [
    Draft, Submitted, Assessed, Approved, Rejected, Scheduled, InProgress, Completed, Failed,
    RolledBack, Closed,
];

fn allowed(change_type: ChangeType) -> Vec<(ChangeState, ChangeState)> {
    ALL.iter()
        .flat_map(|from| ALL.iter().map(move |to| (*from, *to)))
        .filter(|(from, to)| can_transition(change_type, *from, *to))
        .collect()
}

const DELIVERY: [(ChangeState, ChangeState); 7] = [
    (Approved, Scheduled),
    (Scheduled, InProgress),
    (InProgress, Completed),
    (InProgress, Failed),
    (InProgress, RolledBack),
    (Completed, Closed),
    (Failed, Closed),
];

#[test]
fn a_normal_change_is_submitted_assessed_then_decided() {
    let mut expected = vec![
        (Draft, Submitted),
        (Submitted, Assessed),
        (Assessed, Approved),
        (Assessed, Rejected),
        (RolledBack, Closed),
    ];
    expected.extend(DELIVERY);
    let mut got = allowed(ChangeType::Normal);
    expected.sort_by_key(|p| format!("{p:?}"));
    got.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(got, expected);
}

#[test]
fn a_standard_change_skips_assessment_and_approval() {
    assert!(can_transition(ChangeType::Standard, Draft, Approved));
    assert!(!can_transition(ChangeType::Standard, Draft, Submitted));
    assert!(!can_transition(ChangeType::Standard, Assessed, Approved));
    assert!(!can_transition(ChangeType::Normal, Draft, Approved));
}

#[test]
fn an_emergency_change_may_be_decided_before_assessment() {
    assert!(can_transition(ChangeType::Emergency, Submitted, Approved));
    assert!(can_transition(ChangeType::Emergency, Submitted, Rejected));
    assert!(!can_transition(ChangeType::Normal, Submitted, Approved));
}
