//! Unit tests of the pure rules of incidents.

use super::*;
use IncidentState::*;

#[test]
fn the_lifecycle_allows_exactly_its_transitions() {
    let all = [New, InProgress, OnHold, Resolved, Closed];
    let allowed = [
        (New, InProgress),
        (InProgress, OnHold),
        (OnHold, InProgress),
        (InProgress, Resolved),
        (Resolved, InProgress),
        (Resolved, Closed),
    ];
    for from in all {
        for to in all {
            assert_eq!(
                can_transition(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn critical_services_raise_the_suggested_impact() {
    assert_eq!(suggested_impact(&[]), None);
    assert_eq!(
        suggested_impact(&[(Some(Criticality::Low), ServiceState::Down)]),
        Some(Level::Low)
    );
    assert_eq!(
        suggested_impact(&[
            (Some(Criticality::Low), ServiceState::Down),
            (Some(Criticality::Critical), ServiceState::Degraded)
        ]),
        Some(Level::High)
    );
    assert_eq!(
        suggested_impact(&[(Some(Criticality::High), ServiceState::Degraded)]),
        Some(Level::Medium)
    );
    assert_eq!(
        suggested_impact(&[(Some(Criticality::Medium), ServiceState::Down)]),
        Some(Level::Medium)
    );
}

#[test]
fn open_incidents_are_those_not_resolved_or_closed() {
    assert!(is_open(New) && is_open(InProgress) && is_open(OnHold));
    assert!(!is_open(Resolved) && !is_open(Closed));
}
