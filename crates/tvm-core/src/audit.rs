//! The bypass audit (`tvm audit`): which CloudTrail events show a protected
//! role assumed other than through tvm, or a revoked session's credentials
//! used after its revocation. Events (CloudTrail records, as documented in
//! the CloudTrail user guide's "record contents") and tvm's session records
//! in; findings out. No I/O: the CLI looks the events and records up.

use std::collections::HashSet;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::SessionView;
use crate::principal::{Principal, PrincipalKind, RoleArn};
use crate::render::{session_id_in, SOURCE_IDENTITY_PREFIX};
use crate::status::SessionStatus;

/// The STS calls that start a session of a role.
pub const ASSUME_EVENTS: [&str; 3] = [
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
];

/// How far a vend's AssumeRole event may be from its record's `issued_at`
/// (the record is written just before AssumeRole; the rest is clock skew
/// and retries).
pub const ISSUE_SKEW_SECONDS: i64 = 300;

/// The path tvm's protected roles are created under (infra modules).
pub const PROTECTED_PATH: &str = "/tvm/";

/// One CloudTrail event, the fields the audit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    /// Epoch seconds.
    pub time: i64,
    pub source: String,
    pub name: String,
    /// The caller: `userIdentity.arn` (absent for some service callers).
    pub caller_arn: Option<String>,
    /// The caller session's SourceIdentity (`userIdentity.sessionContext`).
    pub caller_source_identity: Option<String>,
    pub error_code: Option<String>,
    /// `requestParameters` of an assume event.
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub source_identity: Option<String>,
}

/// A record that is not a CloudTrail event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CloudTrail event record: {0}")]
pub struct EventError(&'static str);

impl Event {
    /// Parse one record (LookupEvents' `CloudTrailEvent` string).
    pub fn parse(record: &str) -> Result<Self, EventError> {
        let v: Value = serde_json::from_str(record).map_err(|_| EventError("not JSON"))?;
        let text = |path: &[&str]| -> Option<String> {
            path.iter()
                .try_fold(&v, |v, k| v.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let time = text(&["eventTime"])
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .ok_or(EventError("no eventTime"))?
            .timestamp();
        let request = |k: &str| text(&["requestParameters", k]);
        Ok(Self {
            id: text(&["eventID"]).ok_or(EventError("no eventID"))?,
            time,
            source: text(&["eventSource"]).ok_or(EventError("no eventSource"))?,
            name: text(&["eventName"]).ok_or(EventError("no eventName"))?,
            caller_arn: text(&["userIdentity", "arn"]),
            caller_source_identity: text(&["userIdentity", "sessionContext", "sourceIdentity"]),
            error_code: text(&["errorCode"]),
            role_arn: request("roleArn"),
            role_session_name: request("roleSessionName"),
            source_identity: request("sourceIdentity"),
        })
    }

    pub fn is_assume(&self) -> bool {
        self.source == "sts.amazonaws.com" && ASSUME_EVENTS.contains(&self.name.as_str())
    }

    /// The SourceIdentity the new session carries: the one asked for, else
    /// the one a role chain passes on.
    fn effective_source_identity(&self) -> Option<&str> {
        self.source_identity
            .as_deref()
            .or(self.caller_source_identity.as_deref())
    }

    fn outcome(&self) -> Outcome {
        match &self.error_code {
            None => Outcome::Succeeded,
            Some(code) => Outcome::Refused(code.clone()),
        }
    }
}

/// What AWS answered the call an event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// AWS refused it, with this error code: an attempt.
    Refused(String),
}

/// The roles whose assumption must come from tvm: the profiles' roles, any
/// role under the `/tvm/` path, and any the auditor names. A role is known
/// by its account and name, without case and without its path: IAM role
/// names are unique in an account regardless of case, and STS finds a role
/// by its name (an ARN that leaves the path out, or gets it wrong, assumes
/// the same role).
#[derive(Debug, Clone, Default)]
pub struct Protected {
    roles: HashSet<(String, String)>,
}

/// A role ARN's account and name, lowercase; `tvm/...` when under the
/// protected path. None for what is not a role ARN (STS refuses those).
fn role_key(role_arn: &str) -> Option<(String, String, bool)> {
    let arn = RoleArn::parse(&role_arn.to_ascii_lowercase()).ok()?;
    let protected_path = arn
        .as_str()
        .split_once(":role/")
        .is_some_and(|(_, path)| path.starts_with(&PROTECTED_PATH[1..]));
    Some((
        arn.account().to_string(),
        arn.name().to_string(),
        protected_path,
    ))
}

impl Protected {
    pub fn new(roles: impl IntoIterator<Item = String>) -> Self {
        Self {
            roles: roles
                .into_iter()
                .filter_map(|r| role_key(&r))
                .map(|(account, name, _)| (account, name))
                .collect(),
        }
    }

    pub fn covers(&self, role_arn: &str) -> bool {
        role_key(role_arn).is_some_and(|(account, name, protected_path)| {
            protected_path || self.roles.contains(&(account, name))
        })
    }
}

/// Why an assumption of a protected role is not a vend tvm recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bypass {
    /// No SourceIdentity, or one that is not tvm's.
    NoTvmSourceIdentity,
    /// A `tvm-` SourceIdentity, but the session name names no session tvm
    /// recorded.
    NoRecord,
    /// A record exists but does not match: another role, SourceIdentity,
    /// session name, or a time far from its vend (a replay of names copied
    /// from CloudTrail).
    Mismatch(String),
    /// A second successful assumption under a session tvm vended once.
    Duplicate,
}

/// One finding of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// A protected role was assumed (or an assumption tried) other than
    /// through tvm.
    AssumedWithoutTvm {
        event_id: String,
        time: i64,
        event_name: String,
        role_arn: String,
        caller_arn: Option<String>,
        source_identity: Option<String>,
        role_session_name: Option<String>,
        why: Bypass,
        outcome: Outcome,
    },
    /// A revoked session's credentials were used after its revocation.
    UsedAfterRevocation {
        event_id: String,
        time: i64,
        session_id: String,
        role_arn: String,
        revoked_at: i64,
        event_source: String,
        event_name: String,
        outcome: Outcome,
    },
}

impl Finding {
    pub fn time(&self) -> i64 {
        match self {
            Self::AssumedWithoutTvm { time, .. } | Self::UsedAfterRevocation { time, .. } => *time,
        }
    }
}

/// The assume events into protected roles whose session names name a tvm
/// session: the ids to look up before [`assumptions`].
pub fn named_sessions<'a>(events: &'a [Event], protected: &Protected) -> Vec<&'a str> {
    let mut ids: Vec<&str> = events
        .iter()
        .filter(|e| e.is_assume() && e.role_arn.as_deref().is_some_and(|r| protected.covers(r)))
        .filter(|e| {
            e.effective_source_identity()
                .is_some_and(|s| s.starts_with(SOURCE_IDENTITY_PREFIX))
        })
        .filter_map(|e| e.role_session_name.as_deref().and_then(session_id_in))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The assumptions of protected roles that tvm did not make: every assume
/// event into a protected role must carry a `tvm-` SourceIdentity and name,
/// by its session name, the one record of a vend of that role, at about the
/// time of the vend. `record` finds a session by id.
pub fn assumptions<'a>(
    events: &[Event],
    protected: &Protected,
    record: impl Fn(&str) -> Option<&'a SessionView>,
) -> Vec<Finding> {
    let mut sorted: Vec<&Event> = events
        .iter()
        .filter(|e| e.is_assume())
        .filter(|e| e.role_arn.as_deref().is_some_and(|r| protected.covers(r)))
        .collect();
    sorted.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    let mut used = HashSet::new();
    let mut findings = Vec::new();
    for e in sorted {
        let role = e.role_arn.as_deref().unwrap_or_default();
        let why = match e.effective_source_identity() {
            Some(si) if si.starts_with(SOURCE_IDENTITY_PREFIX) => {
                let session = e.role_session_name.as_deref().and_then(session_id_in);
                match session.and_then(&record) {
                    None => Some(Bypass::NoRecord),
                    Some(r) => match mismatch(e, r, si, role) {
                        Some(m) => Some(Bypass::Mismatch(m)),
                        // Retries that failed do not use the session up.
                        None if e.error_code.is_none() && !used.insert(r.session_id.clone()) => {
                            Some(Bypass::Duplicate)
                        }
                        None => None,
                    },
                }
            }
            _ => Some(Bypass::NoTvmSourceIdentity),
        };
        if let Some(why) = why {
            findings.push(Finding::AssumedWithoutTvm {
                event_id: e.id.clone(),
                time: e.time,
                event_name: e.name.clone(),
                role_arn: role.to_string(),
                caller_arn: e.caller_arn.clone(),
                source_identity: e.effective_source_identity().map(str::to_string),
                role_session_name: e.role_session_name.clone(),
                why,
                outcome: e.outcome(),
            });
        }
    }
    findings
}

/// What does not match between an assume event and the record its session
/// name names; none when everything does.
fn mismatch(e: &Event, r: &SessionView, source_identity: &str, role: &str) -> Option<String> {
    if r.status == SessionStatus::Failed && e.error_code.is_none() {
        return Some("the vend failed at STS: nothing should have been assumed under it".into());
    }
    if e.name != "AssumeRole" {
        return Some(format!("tvm vends with AssumeRole, not {}", e.name));
    }
    if !r.role_arn.eq_ignore_ascii_case(role) {
        return Some(format!("the record is for {}", r.role_arn));
    }
    if r.source_identity != source_identity {
        return Some(format!(
            "the record's SourceIdentity is {}",
            r.source_identity
        ));
    }
    if let Some(name) = &r.role_session_name {
        if e.role_session_name.as_deref() != Some(name.as_str()) {
            return Some(format!("the record's session name is {name}"));
        }
    }
    let off = (e.time - r.issued_at).abs();
    if off > ISSUE_SKEW_SECONDS {
        return Some(format!(
            "{off} s from the vend (at most {ISSUE_SKEW_SECONDS} s)"
        ));
    }
    None
}

/// The calls a revoked session made after its revocation, among `events`
/// (its session name's events, as LookupEvents finds them by user name).
pub fn after_revocation(session: &SessionView, events: &[Event]) -> Vec<Finding> {
    let (Some(revoked_at), Some(name)) = (session.revoked_at, session.role_session_name.as_deref())
    else {
        return Vec::new();
    };
    let Ok(role) = RoleArn::parse(&session.role_arn) else {
        return Vec::new();
    };
    // The session's own calls: its role (in its account) and its name.
    let by_session = |arn: &str| {
        Principal::parse(arn, None).is_ok_and(|p| {
            p.kind == PrincipalKind::AssumedRole
                && p.account == role.account()
                && p.name.eq_ignore_ascii_case(role.name())
                && p.session_name.as_deref() == Some(name)
        })
    };
    let mut findings: Vec<Finding> = events
        .iter()
        .filter(|e| e.time >= revoked_at)
        .filter(|e| e.caller_arn.as_deref().is_some_and(by_session))
        .map(|e| Finding::UsedAfterRevocation {
            event_id: e.id.clone(),
            time: e.time,
            session_id: session.session_id.clone(),
            role_arn: session.role_arn.clone(),
            revoked_at,
            event_source: e.source.clone(),
            event_name: e.name.clone(),
            outcome: e.outcome(),
        })
        .collect();
    findings.sort_by_key(Finding::time);
    findings
}

#[cfg(test)]
mod tests;
