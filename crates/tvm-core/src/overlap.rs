//! What a container remembers between vends to take them in one round trip:
//! the callers it must not mint for before their gates answer, and the
//! approvals and break-glass events it may grant from without reading them
//! again.
//!
//! A warm vend sends STS AssumeRole while its gate transaction (record,
//! revocation checks, rate counter) is in flight, and answers only once both
//! are back and the transaction committed. When the gates refuse, the minted
//! credentials are discarded and recorded as such. [`Refusals`] keeps that to
//! once per caller per window: a caller the gates refused goes sequential
//! (gates first, AssumeRole only once they passed) in this container until
//! its refusal's window ends, so a flood of over-limit or revoked requests
//! does not drive AssumeRole. When the gates fail rather than refuse, every
//! caller goes sequential in that container for a while.
//!
//! [`OpenGates`] keeps the approval or break-glass state a vend was granted
//! from, until it ends. Using it again is safe because the gate transaction
//! checks, in the same step as the record, that the pointer still links to
//! that approval or event, unexpired (and still approved): a close, a deny or
//! an expiry meanwhile refuses the vend, and the entry is forgotten. An
//! approval's grant (bindings, attributes, duration) never changes once it is
//! approved.
//!
//! Both are bounded: when full of live entries, `Refusals` sends every
//! caller sequential and `OpenGates` remembers nothing more, the slower and
//! always correct choices.

use std::collections::HashMap;

use crate::decision::GateState;

/// Entries each map holds at most (a few hundred kB at the longest ARNs).
pub const MAX_ENTRIES: usize = 4096;

/// How long a full map of live refusals sends every caller sequential:
/// short, as filling it takes only many callers, not a window's end.
pub const FULL_SECONDS: i64 = 60;

/// The callers (stable principals) refused by the gates, with when their
/// refusal stops counting (epoch seconds).
#[derive(Debug, Default)]
pub struct Refusals {
    until: HashMap<String, i64>,
    /// Every caller is sequential before this (the map was full).
    everyone_until: i64,
}

impl Refusals {
    /// May a vend for `caller` mint while its gates are checked?
    pub fn may_overlap(&self, caller: &str, now: i64) -> bool {
        now >= self.everyone_until && self.until.get(caller).is_none_or(|u| now >= *u)
    }

    /// The gates refused `caller`; its vends are sequential until `until`.
    pub fn refused(&mut self, caller: &str, until: i64, now: i64) {
        if until <= now {
            return;
        }
        if self.until.len() >= MAX_ENTRIES && !self.until.contains_key(caller) {
            self.until.retain(|_, u| *u > now);
            if self.until.len() >= MAX_ENTRIES {
                let until = until.min(now + FULL_SECONDS);
                self.everyone_until = self.everyone_until.max(until);
                return;
            }
        }
        let u = self.until.entry(caller.to_string()).or_insert(until);
        *u = (*u).max(until);
    }

    /// The gates failed (DynamoDB unavailable, slow or throttling): every
    /// vend is sequential until `until`, so an outage does not turn each
    /// request into credentials minted for nothing.
    pub fn failed(&mut self, until: i64) {
        self.everyone_until = self.everyone_until.max(until);
    }
}

/// Approval and break-glass states a vend was granted from, by caller ARN
/// and profile (what one person opened), until the first of them ends.
#[derive(Debug, Default)]
pub struct OpenGates {
    states: HashMap<(String, String), (GateState, i64)>,
}

impl OpenGates {
    /// The remembered state, while every gate in it is still open.
    pub fn get(&self, caller_arn: &str, profile: &str, now: i64) -> Option<GateState> {
        let (state, until) = self
            .states
            .get(&(caller_arn.to_string(), profile.to_string()))?;
        (now < *until).then(|| state.clone())
    }

    /// Remember a state a vend was granted from (one with an open gate).
    pub fn granted(&mut self, caller_arn: &str, profile: &str, state: &GateState, now: i64) {
        let ends = [
            state.approval.as_ref().map(|a| a.valid_until.timestamp()),
            state.break_glass.as_ref().map(|b| b.ends_at.timestamp()),
        ];
        let Some(until) = ends.into_iter().flatten().min() else {
            return;
        };
        if until <= now {
            return;
        }
        let key = (caller_arn.to_string(), profile.to_string());
        if self.states.len() >= MAX_ENTRIES && !self.states.contains_key(&key) {
            self.states.retain(|_, (_, u)| *u > now);
            if self.states.len() >= MAX_ENTRIES {
                return;
            }
        }
        self.states.insert(key, (state.clone(), until));
    }

    /// Forget a state the gates no longer hold (they refused a vend from it).
    pub fn forget(&mut self, caller_arn: &str, profile: &str) {
        self.states
            .remove(&(caller_arn.to_string(), profile.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{ActiveBreakGlass, ApprovedRequest};

    #[test]
    fn a_refused_caller_is_sequential_until_its_window_ends_and_only_that_caller() {
        let mut r = Refusals::default();
        assert!(r.may_overlap("a", 100));
        r.refused("a", 160, 100);
        assert!(!r.may_overlap("a", 100));
        assert!(!r.may_overlap("a", 159));
        assert!(r.may_overlap("a", 160));
        assert!(r.may_overlap("b", 100));
        // A shorter refusal later does not shorten a longer one.
        r.refused("a", 130, 120);
        assert!(!r.may_overlap("a", 150));
        // A refusal already over is no refusal.
        r.refused("c", 90, 100);
        assert!(r.may_overlap("c", 100));
    }

    #[test]
    fn failed_gates_send_every_caller_sequential_until_then() {
        let mut r = Refusals::default();
        r.failed(130);
        assert!(!r.may_overlap("b", 129));
        r.failed(110);
        assert!(
            !r.may_overlap("b", 129),
            "a shorter failure does not shorten it"
        );
        assert!(r.may_overlap("b", 130));
    }

    #[test]
    fn full_of_live_refusals_every_caller_goes_sequential_until_they_end() {
        let mut r = Refusals::default();
        for i in 0..MAX_ENTRIES {
            r.refused(&format!("caller-{i}"), 200, 100);
        }
        // A refusal for a day, when the map is full, sends everyone
        // sequential for a minute only.
        r.refused("one-more", 86_500, 100);
        assert!(!r.may_overlap("one-more", 150));
        assert!(!r.may_overlap("never-refused", 150), "the map was full");
        assert!(r.may_overlap("never-refused", 100 + FULL_SECONDS));
        // Once the old entries are over they make room again.
        r.refused("later", 500, 400);
        assert!(!r.may_overlap("later", 450));
        assert!(r.may_overlap("never-refused", 450));
    }

    fn approved(until: i64) -> GateState {
        GateState {
            approval: Some(ApprovedRequest {
                id: "req-1".into(),
                duration_seconds: 900,
                valid_until: chrono::DateTime::from_timestamp(until, 0).unwrap(),
                caller_arn: "arn:aws:sts::1:assumed-role/r/alice".into(),
                bindings: Default::default(),
                attributes: Default::default(),
            }),
            break_glass: None,
        }
    }

    #[test]
    fn an_open_gate_is_remembered_until_its_first_gate_ends_then_forgotten() {
        let mut g = OpenGates::default();
        let mut state = approved(500);
        state.break_glass = Some(ActiveBreakGlass {
            id: "ev-1".into(),
            ends_at: chrono::DateTime::from_timestamp(300, 0).unwrap(),
        });
        g.granted("arn-a", "p", &state, 100);
        assert!(g.get("arn-a", "p", 299).is_some());
        assert!(g.get("arn-a", "p", 300).is_none(), "the break-glass ended");
        assert!(g.get("arn-a", "other", 200).is_none());
        assert!(g.get("arn-b", "p", 200).is_none());
        g.forget("arn-a", "p");
        assert!(g.get("arn-a", "p", 200).is_none());
    }

    #[test]
    fn nothing_open_or_already_over_is_not_remembered_and_the_map_is_bounded() {
        let mut g = OpenGates::default();
        g.granted("arn-a", "p", &GateState::default(), 100);
        g.granted("arn-b", "p", &approved(100), 100);
        assert!(g.get("arn-a", "p", 100).is_none());
        assert!(g.get("arn-b", "p", 50).is_none());
        for i in 0..MAX_ENTRIES {
            g.granted(&format!("arn-{i}"), "p", &approved(1000), 100);
        }
        g.granted("arn-new", "p", &approved(1000), 100);
        assert!(g.get("arn-new", "p", 200).is_none(), "full: not remembered");
        assert_eq!(g.states.len(), MAX_ENTRIES);
    }
}
