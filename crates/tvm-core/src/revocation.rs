//! Revocation: the terms a revocation is made on, the session tags every vend
//! stamps so that a revocation can find its credentials, and the revocation
//! policy: one customer-managed policy per account, attached to every
//! protected role, that denies everything to what tvm revoked.
//!
//! Three kinds of entry, each one statement or one list item whatever the
//! number of sessions behind it:
//! - a **session**, by `aws:SourceIdentity` (STS carries it down every role
//!   chain and nobody can change it);
//! - a **caller**, by the transitive `tvm-caller` session tag and
//!   `aws:TokenIssueTime`: every session of that caller issued before the
//!   cut-off, however many, in one constant-size statement;
//! - a **grant** (a closed break-glass event), by the transitive `tvm-via` tag.
//!
//! A fixed statement keeps chained sessions inside the policy's reach: a tvm
//! session may assume only roles tagged `tvm-revocable=true`, which carry
//! this policy too. Entries are pruned once nothing they match can still be
//! valid; what does not fit is refused, never dropped (see [`Full`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The customer-managed policy's name in every account.
pub const POLICY_NAME: &str = "tvm-revocations";
/// IAM's limit for a customer-managed policy, in characters without
/// whitespace (tvm renders compact JSON, so every character counts).
pub const MAX_POLICY_CHARS: usize = 6_144;
/// Every SourceIdentity tvm stamps (`render::SOURCE_IDENTITY_PREFIX`, then
/// the session id).
pub const TVM_SOURCE_IDENTITIES: &str = "tvm-*";
/// Room only the security team (`TVM_ADMIN_PRINCIPALS`) may take: when
/// approvers' session revocations and break-glass closes have filled the
/// rest, the security team can still revoke (7 callers with the longest
/// role names, or 52 sessions).
pub const ADMIN_RESERVE: usize = 2_000;
/// Room break-glass closes by their openers share (18 events), apart
/// from approvers': an opener closing events in a loop locks nobody else out.
pub const OPENER_SHARE: usize = 1_000;

/// Who adds to the revocation policy, for the room they may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adder {
    /// `TVM_ADMIN_PRINCIPALS`: all of it.
    SecurityTeam,
    /// A profile's approvers revoking its sessions: all but the security
    /// team's reserve and the openers' share.
    Approver,
    /// A break-glass opener closing its event: the openers' share.
    Opener,
}

/// Session tags tvm stamps on every vend, transitive so that role chaining
/// carries them. Profiles may not set keys with this prefix.
pub const TAG_PREFIX: &str = "tvm-";
pub const TAG_CALLER: &str = "tvm-caller";
pub const TAG_SESSION: &str = "tvm-session";
pub const TAG_VIA: &str = "tvm-via";
/// On a vend made by a session tvm vended: that session's role (the caller
/// of the vend), so that revoking the role as a caller reaches it.
pub const TAG_VENDED_BY: &str = "tvm-vended-by";
/// How many of a vend's 50 session tags tvm may stamp.
pub const OWN_TAGS: usize = 4;
/// The role tag that says "this role carries the revocation policy": the only
/// roles a tvm session may chain into.
pub const REVOCABLE_TAG: &str = "tvm-revocable";

/// The longest any credential derived from a vended session can live after
/// it was issued: role chaining caps every hop at one hour.
pub const CHAIN_SECONDS: i64 = 3600;
/// How long after a revocation a credential may still be issued and carry
/// what it revoked: a vend whose gate check committed just before (its
/// AssumeRole lands within `TVM_AWS_TIMEOUT_MS`), and a chain made while IAM
/// propagates the new policy version (seconds, per AWS).
pub const MARGIN_SECONDS: i64 = 300;

/// How long new vends stay refused when a revocation does not say.
pub const DEFAULT_SECONDS: u32 = 3600;
pub const MIN_SECONDS: u32 = 60;
pub const MAX_SECONDS: u32 = 30 * 86_400;

/// Why a session or caller is revoked, and for how long new vends for it
/// are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Trimmed, 3-500 characters, no control characters.
    pub reason: String,
    pub seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("reason must be 3-500 characters without control characters")]
    Reason,
    #[error("duration_seconds must be between {MIN_SECONDS} and {MAX_SECONDS}")]
    Duration,
}

impl Terms {
    pub fn parse(reason: &str, seconds: Option<u32>) -> Result<Self, TermsError> {
        let reason = reason.trim();
        if !(3..=500).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
            return Err(TermsError::Reason);
        }
        let seconds = seconds.unwrap_or(DEFAULT_SECONDS);
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
            return Err(TermsError::Duration);
        }
        Ok(Self {
            reason: reason.to_string(),
            seconds,
        })
    }

    /// Epoch seconds until which new vends are refused.
    pub fn until(&self, now: i64) -> i64 {
        now + i64::from(self.seconds)
    }
}

/// A tag value for any string, within STS's tag charset
/// (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`, ASCII here): every other character, and
/// `=` itself, is written `=XX` (hex), so that two different strings never
/// give one value. A caller's stable principal (an ARN of at most ~100
/// characters) stays well within the 256 a value may have.
pub fn tag_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'+' | b'-' | b'@')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The `tvm-caller` tag of a caller's stable principal: its tag value, or,
/// when that is longer than a tag value may be (an oidc caller's issuer and
/// subject can be 512 characters), `sha256:` and the id's SHA-256 in hex.
/// No tag value of a stable principal starts so (they start `arn:` or
/// `oidc:`), so the two forms never meet.
pub fn caller_tag(stable_id: &str) -> String {
    use sha2::Digest;
    let v = tag_value(stable_id);
    if v.len() <= crate::limits::MAX_TAG_VALUE {
        return v;
    }
    let digest = sha2::Sha256::digest(stable_id.as_bytes());
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The `tvm-via` tag of a grant (`Via::kind` and `Via::id`): `rule`,
/// `approval:<id>` or `break_glass:<id>`.
pub fn via_tag(kind: &str, id: Option<&str>) -> String {
    match id {
        None => tag_value(kind),
        Some(id) => tag_value(&format!("{kind}:{id}")),
    }
}

/// The tags tvm stamps on a vend, all transitive; `vended_by` for a vend
/// made by a session tvm vended (that session's stable principal).
pub fn own_tags(
    caller_stable_id: &str,
    session_id: &str,
    via: &str,
    vended_by: Option<&str>,
) -> Vec<(String, String)> {
    let mut tags = vec![
        (TAG_CALLER.into(), caller_tag(caller_stable_id)),
        (TAG_SESSION.into(), tag_value(session_id)),
        (TAG_VIA.into(), via.to_string()),
    ];
    if let Some(by) = vended_by {
        tags.push((TAG_VENDED_BY.into(), caller_tag(by)));
    }
    tags
}

/// What one entry of the revocation policy matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A session, by its SourceIdentity (`tvm-<session id>`).
    Session(String),
    /// Every session of a caller issued before a cut-off, by its `tvm-caller` tag.
    Caller(String),
    /// Every session vended under a grant, by its `tvm-via` tag.
    Grant(String),
    /// A vend made by a session tvm vended (it shares the first vend's
    /// SourceIdentity), by its own `tvm-session` tag.
    Onward(String),
    /// Every vend made by sessions of a role tvm vends, issued before a
    /// cut-off, by its `tvm-vended-by` tag: revoking such a role as a caller.
    VendedBy(String),
}

impl Target {
    /// The name it is stored under (one attribute of the revocation item).
    pub fn key(&self) -> String {
        match self {
            Self::Session(v) => format!("s:{v}"),
            Self::Caller(v) => format!("c:{v}"),
            Self::Grant(v) => format!("g:{v}"),
            Self::Onward(v) => format!("o:{v}"),
            Self::VendedBy(v) => format!("v:{v}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, value) = key.split_once(':')?;
        if value.is_empty() {
            return None;
        }
        match kind {
            "s" => Some(Self::Session(value.into())),
            "c" => Some(Self::Caller(value.into())),
            "g" => Some(Self::Grant(value.into())),
            "o" => Some(Self::Onward(value.into())),
            "v" => Some(Self::VendedBy(value.into())),
            _ => None,
        }
    }
}

/// When an entry applies and when it can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// Only credentials issued before this (epoch seconds) are denied; `None`:
    /// every credential that matches.
    pub issued_before: Option<i64>,
    /// After this nothing the entry matches can still be valid.
    pub prune_at: i64,
}

/// One revocation, as the policy holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub term: Term,
}

impl Entry {
    /// A session revoked at `now`. Whatever carries its SourceIdentity was
    /// issued before the deny took effect (`now` + the margin) and lives at
    /// most an hour after it was issued.
    pub fn session(source_identity: &str, now: i64) -> Self {
        Self {
            target: Target::Session(source_identity.into()),
            term: Term {
                issued_before: None,
                prune_at: now + MARGIN_SECONDS + CHAIN_SECONDS,
            },
        }
    }

    /// A caller revoked at `now` whose new vends are refused until `until`:
    /// its credentials issued before `now` + the margin (or `until`, when
    /// sooner: none are vended before it) are denied.
    pub fn caller(stable_id: &str, now: i64, until: i64) -> Self {
        let cutoff = (now + MARGIN_SECONDS).min(until.max(now + 1));
        Self {
            target: Target::Caller(caller_tag(stable_id)),
            term: Term {
                issued_before: Some(cutoff),
                prune_at: cutoff + CHAIN_SECONDS,
            },
        }
    }

    /// The vends made by sessions of `stable_id` (a role tvm vends),
    /// revoked as a caller: like [`Entry::caller`], on `tvm-vended-by`.
    pub fn vended_by(stable_id: &str, now: i64, until: i64) -> Self {
        let caller = Self::caller(stable_id, now, until);
        Self {
            target: Target::VendedBy(caller_tag(stable_id)),
            term: caller.term,
        }
    }

    /// A vend made by a vended session, revoked at `now`: by its own
    /// `tvm-session` tag, so that the chain's other vends (which share its
    /// SourceIdentity) are not revoked with it.
    pub fn onward(session_id: &str, now: i64) -> Self {
        Self {
            target: Target::Onward(tag_value(session_id)),
            term: Term {
                issued_before: None,
                prune_at: now + MARGIN_SECONDS + CHAIN_SECONDS,
            },
        }
    }

    /// A grant (its `via_tag`) closed at `now`: nothing is vended under it
    /// afterwards.
    pub fn grant(via_tag: &str, now: i64) -> Self {
        Self {
            target: Target::Grant(via_tag.to_string()),
            term: Term {
                issued_before: None,
                prune_at: now + MARGIN_SECONDS + CHAIN_SECONDS,
            },
        }
    }
}

/// The revocation would not fit the room its adder may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the revocation policy would be {chars} characters, more than the {limit} this revocation may use (IAM allows {MAX_POLICY_CHARS}; {ADMIN_RESERVE} are kept for the security team, {OPENER_SHARE} for break-glass closes), with {sessions} sessions, {callers} callers and {grants} grants revoked; ask the security team to revoke the caller instead (one statement covers all its sessions), or wait for entries to expire (each leaves at most {} minutes after its revocation)", (MARGIN_SECONDS + CHAIN_SECONDS) / 60)]
pub struct Full {
    pub chars: usize,
    /// What this revocation's adder may use.
    pub limit: usize,
    pub sessions: usize,
    pub callers: usize,
    pub grants: usize,
}

/// Everything revoked: the one state every account's policy is rendered from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    entries: BTreeMap<Target, Term>,
}

impl Revocations {
    pub fn new(entries: impl IntoIterator<Item = Entry>) -> Self {
        let mut r = Self::default();
        for e in entries {
            r.add(e);
        }
        r
    }

    /// Add an entry; one already there keeps the wider of the two. Whether
    /// anything changed.
    pub fn add(&mut self, e: Entry) -> bool {
        let merged = match self.entries.get(&e.target) {
            None => e.term,
            Some(old) => Term {
                issued_before: match (old.issued_before, e.term.issued_before) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                },
                prune_at: old.prune_at.max(e.term.prune_at),
            },
        };
        self.entries.insert(e.target, merged) != Some(merged)
    }

    pub fn get(&self, target: &Target) -> Option<Term> {
        self.entries.get(target).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries that can no longer matter at `now`.
    pub fn expired(&self, now: i64) -> Vec<Target> {
        self.entries
            .iter()
            .filter(|(_, t)| t.prune_at <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Drop the expired entries.
    pub fn prune(&mut self, now: i64) {
        self.entries.retain(|_, t| t.prune_at > now);
    }

    /// Whether the policy is within the room `by` may use (see [`Adder`]).
    /// Approvers' room does not depend on how much of theirs openers used,
    /// nor openers' on approvers': neither can lock the other out, and the
    /// security team keeps its reserve from both.
    pub fn admit(&self, by: Adder, accounts: &[String], now: i64) -> Result<(), Full> {
        let shared = MAX_POLICY_CHARS - ADMIN_RESERVE;
        let mut without_grants = self.clone();
        without_grants
            .entries
            .retain(|t, _| !matches!(t, Target::Grant(_)));
        match by {
            Adder::SecurityTeam => self
                .render_within(accounts, now, MAX_POLICY_CHARS)
                .map(drop),
            // Counted as if openers had used all of their share.
            Adder::Approver => without_grants
                .render_within(accounts, now, shared - OPENER_SHARE)
                .map(drop),
            Adder::Opener => {
                let total = self.render_within(accounts, now, shared)?.len();
                let others = without_grants
                    .render_within(accounts, now, usize::MAX)?
                    .len();
                if total - others > OPENER_SHARE {
                    return Err(self.full(total - others, OPENER_SHARE, now));
                }
                Ok(())
            }
        }
    }

    fn full(&self, chars: usize, limit: usize, now: i64) -> Full {
        let live = || self.entries.iter().filter(|(_, t)| t.prune_at > now);
        let count = |f: fn(&Target) -> bool| live().filter(|(t, _)| f(t)).count();
        Full {
            chars,
            limit,
            sessions: count(|t| matches!(t, Target::Session(_) | Target::Onward(_))),
            callers: count(|t| matches!(t, Target::Caller(_) | Target::VendedBy(_))),
            grants: count(|t| matches!(t, Target::Grant(_))),
        }
    }

    /// The policy document for the entries live at `now`, for a policy in
    /// one of `accounts` (those tvm writes it to), or [`Full`].
    pub fn render(&self, accounts: &[String], now: i64) -> Result<String, Full> {
        self.render_within(accounts, now, MAX_POLICY_CHARS)
    }

    fn render_within(&self, accounts: &[String], now: i64, limit: usize) -> Result<String, Full> {
        let live = || self.entries.iter().filter(|(_, t)| t.prune_at > now);
        let mut sessions = Vec::new();
        let mut grants = Vec::new();
        let mut onward = Vec::new();
        let mut callers = Vec::new();
        for (target, term) in live() {
            match target {
                Target::Session(v) => sessions.push(v.as_str()),
                Target::Grant(v) => grants.push(v.as_str()),
                Target::Onward(v) => onward.push(v.as_str()),
                Target::Caller(v) => callers.push((TAG_CALLER, v.as_str(), term.issued_before)),
                Target::VendedBy(v) => {
                    callers.push((TAG_VENDED_BY, v.as_str(), term.issued_before))
                }
            }
        }
        let mut statements = vec![json!({
            "Sid": "ChainOnlyIntoRevocableRoles",
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Resource": "*",
            "Condition": {"StringNotEquals": {format!("aws:ResourceTag/{REVOCABLE_TAG}"): "true"}},
        })];
        // A session chained from a tvm session (SourceIdentity tvm-*) whose
        // name does not end with its own tvm-session id (a vend tvm made
        // names it so) is a hop: it calls no IAM-authorized API (tvm's among
        // them), so that it cannot vend credentials that carry nothing of
        // its chain.
        statements.push(json!({
            "Sid": "NoApiCallsFromChains",
            "Effect": "Deny",
            "Action": "execute-api:Invoke",
            "Resource": "*",
            "Condition": {
                "StringLike": {"aws:SourceIdentity": TVM_SOURCE_IDENTITIES},
                "StringNotLike": {"aws:userid": format!("*.${{aws:PrincipalTag/{TAG_SESSION}}}")},
            },
        }));
        // ...and only in accounts whose policy holds these revocations: a
        // role tagged in an account tvm does not write would be out of reach.
        if !accounts.is_empty() {
            statements.push(json!({
                "Sid": "ChainOnlyWithinRevokedAccounts",
                "Effect": "Deny",
                "Action": "sts:AssumeRole",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:ResourceAccount": accounts}},
            }));
        }
        if !sessions.is_empty() {
            statements.push(deny(
                "RevokedSessions",
                json!({"StringEquals": {"aws:SourceIdentity": sessions}}),
            ));
        }
        if !onward.is_empty() {
            statements.push(deny(
                "RevokedOnwardSessions",
                json!({"StringEquals": {format!("aws:PrincipalTag/{TAG_SESSION}"): onward}}),
            ));
        }
        if !grants.is_empty() {
            statements.push(deny(
                "RevokedGrants",
                json!({"StringEquals": {format!("aws:PrincipalTag/{TAG_VIA}"): grants}}),
            ));
        }
        for (i, (key, tag, before)) in callers.iter().enumerate() {
            let mut condition = json!({"StringEquals": {format!("aws:PrincipalTag/{key}"): tag}});
            if let Some(before) = before {
                condition["DateLessThan"] = json!({"aws:TokenIssueTime": iso(*before)});
            }
            statements.push(deny(&format!("RevokedCaller{i}"), condition));
        }
        let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        let chars = doc.chars().filter(|c| !c.is_whitespace()).count();
        if chars > limit {
            return Err(self.full(chars, limit, now));
        }
        Ok(doc)
    }
}

fn deny(sid: &str, condition: Value) -> Value {
    json!({"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition})
}

/// ISO 8601 in UTC, as `aws:TokenIssueTime` compares.
fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests;
