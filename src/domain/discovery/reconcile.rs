//! Reconciliation: may this source write this field of this CI?
//!
//! The rules, in order:
//! 1. A field nobody set yet is filled by whoever reports it.
//! 2. The source that set a field may change it.
//! 3. A field set by hand (`manual`) is left alone, unless the CI's class lets discovery
//!    override people.
//! 4. Between sources, the field's rule ranks them (most authoritative first; sources the
//!    rule does not list rank last, equally). A source may overwrite a value set by a source
//!    of the same or lower rank, never one set by a higher-ranked source...
//! 5. ...unless that source has not reported the CI for longer than the rule's staleness
//!    period: then the value is handed over.

use chrono::{DateTime, Duration, Utc};

use super::provenance::{Entry, MANUAL};

/// The ranking of sources for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    /// Most authoritative first.
    pub sources: Vec<String>,
    /// After how long without a report the owning source's values are handed over.
    pub stale_after: Duration,
}

impl Ranking {
    fn rank(&self, source: &str) -> usize {
        self.sources
            .iter()
            .position(|s| s == source)
            .unwrap_or(self.sources.len())
    }
}

/// Why a reported value was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// Set by hand, and the class does not let discovery override people.
    SetByHand,
    /// Owned by a source that ranks higher and still reports the CI.
    HigherPrioritySource,
}

impl KeepReason {
    /// The stable name of the reason, as clients see it.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeepReason::SetByHand => "SET_BY_HAND",
            KeepReason::HigherPrioritySource => "HIGHER_PRIORITY_SOURCE",
        }
    }
}

/// The outcome for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write,
    Keep { owner: String, reason: KeepReason },
}

/// What is known about the field and its owner.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// Who set the current value, if anyone.
    pub owner: Option<&'a Entry>,
    /// When the owning source last reported the CI (none: never, or not a source).
    pub owner_last_seen: Option<DateTime<Utc>>,
    /// The ranking of the field, if a rule exists.
    pub ranking: Option<&'a Ranking>,
    /// Whether the class lets discovery overwrite values set by hand.
    pub overrides_manual: bool,
    pub now: DateTime<Utc>,
}

/// Whether `writer` may write the field.
pub fn decide(writer: &str, situation: &Situation) -> Decision {
    let Some(owner) = situation.owner else {
        return Decision::Write;
    };
    if owner.source == writer {
        return Decision::Write;
    }
    if owner.source == MANUAL {
        return if situation.overrides_manual {
            Decision::Write
        } else {
            Decision::Keep {
                owner: owner.source.clone(),
                reason: KeepReason::SetByHand,
            }
        };
    }
    let Some(ranking) = situation.ranking else {
        // No rule: sources are peers, the latest report wins.
        return Decision::Write;
    };
    if ranking.rank(writer) <= ranking.rank(&owner.source) {
        return Decision::Write;
    }
    let stale_after = ranking.stale_after;
    let owner_silent_since = situation.owner_last_seen.unwrap_or(owner.at);
    if situation.now - owner_silent_since > stale_after {
        return Decision::Write;
    }
    Decision::Keep {
        owner: owner.source.clone(),
        reason: KeepReason::HigherPrioritySource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &str, at: DateTime<Utc>) -> Entry {
        Entry {
            source: source.into(),
            at,
        }
    }

    fn situation<'a>(owner: Option<&'a Entry>, ranking: Option<&'a Ranking>) -> Situation<'a> {
        Situation {
            owner,
            owner_last_seen: owner.map(|o| o.at),
            ranking,
            overrides_manual: false,
            now: owner.map(|o| o.at).unwrap_or_else(Utc::now) + Duration::hours(1),
        }
    }

    fn ranking() -> Ranking {
        Ranking {
            sources: vec!["cmdb-agent".into(), "vcenter".into()],
            stale_after: Duration::days(3),
        }
    }

    #[test]
    fn an_unowned_field_is_filled_and_the_owner_may_change_its_value() {
        assert_eq!(decide("vcenter", &situation(None, None)), Decision::Write);
        let owned = entry("vcenter", Utc::now());
        assert_eq!(
            decide("vcenter", &situation(Some(&owned), Some(&ranking()))),
            Decision::Write
        );
    }

    #[test]
    fn a_lower_ranked_source_cannot_overwrite_a_higher_ranked_one() {
        let rules = ranking();
        let by_agent = entry("cmdb-agent", Utc::now());
        assert_eq!(
            decide("vcenter", &situation(Some(&by_agent), Some(&rules))),
            Decision::Keep {
                owner: "cmdb-agent".into(),
                reason: KeepReason::HigherPrioritySource
            }
        );
        let by_vcenter = entry("vcenter", Utc::now());
        assert_eq!(
            decide("cmdb-agent", &situation(Some(&by_vcenter), Some(&rules))),
            Decision::Write
        );
        // A source the rule does not list ranks below all listed ones.
        assert!(matches!(
            decide("spreadsheet", &situation(Some(&by_vcenter), Some(&rules))),
            Decision::Keep { .. }
        ));
    }

    #[test]
    fn a_silent_owner_hands_its_values_over() {
        let rules = ranking();
        let long_ago = Utc::now() - Duration::days(10);
        let by_agent = entry("cmdb-agent", long_ago);
        let mut silent = situation(Some(&by_agent), Some(&rules));
        silent.now = Utc::now();
        assert_eq!(decide("vcenter", &silent), Decision::Write);
        // Still reporting the CI: it keeps its value however old the value is.
        silent.owner_last_seen = Some(Utc::now() - Duration::hours(1));
        assert!(matches!(decide("vcenter", &silent), Decision::Keep { .. }));
    }

    #[test]
    fn people_win_unless_the_class_says_otherwise() {
        let by_hand = entry(MANUAL, Utc::now());
        let mut s = situation(Some(&by_hand), None);
        assert_eq!(
            decide("vcenter", &s),
            Decision::Keep {
                owner: MANUAL.into(),
                reason: KeepReason::SetByHand
            }
        );
        s.overrides_manual = true;
        assert_eq!(decide("vcenter", &s), Decision::Write);
    }

    #[test]
    fn without_a_rule_sources_are_peers_and_the_latest_report_wins() {
        let by_agent = entry("cmdb-agent", Utc::now());
        assert_eq!(
            decide("vcenter", &situation(Some(&by_agent), None)),
            Decision::Write
        );
    }
}
