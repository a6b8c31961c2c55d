//! The decision: may this caller have credentials for this profile, now?
//!
//! Pure and synchronous; time is passed in. An explicit deny wins; then an
//! allow; then require_approval or break_glass, which vend only when the gate
//! state carries a valid approval or an active break-glass event. Nothing
//! matching is a deny.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::limits::{MAX_DURATION, MIN_DURATION};
use crate::policy::{Effect, PolicySet, Profile, Rule, TimeWindow};
use crate::principal::Principal;
use crate::template::{check_value, Vars};

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct VendRequest {
    pub profile: String,
    pub duration_seconds: Option<u32>,
    pub attributes: BTreeMap<String, String>,
}

/// An approved request for this caller and profile, as read from the store.
/// It approves one person's one request: the exact caller ARN (session name
/// included) and the bindings and attributes the approvers saw.
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    pub id: String,
    pub duration_seconds: u32,
    pub valid_until: DateTime<Utc>,
    pub caller_arn: String,
    pub bindings: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
}

/// An open break-glass event for this caller and profile.
#[derive(Debug, Clone)]
pub struct ActiveBreakGlass {
    pub id: String,
    pub ends_at: DateTime<Utc>,
}

/// What the gates know about this caller and profile. Empty until the
/// approval and break-glass stores are consulted.
#[derive(Debug, Clone, Default)]
pub struct GateState {
    pub approval: Option<ApprovedRequest>,
    pub break_glass: Option<ActiveBreakGlass>,
}

/// How a grant was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", content = "id", rename_all = "snake_case")]
pub enum Via {
    Rule,
    Approval(String),
    BreakGlass(String),
}

impl Via {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Approval(_) => "approval",
            Self::BreakGlass(_) => "break_glass",
        }
    }

    /// The approval request or break-glass event id, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Rule => None,
            Self::Approval(id) | Self::BreakGlass(id) => Some(id),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Grant<'p> {
    pub profile: &'p Profile,
    pub rule: &'p Rule,
    pub via: Via,
    pub duration_seconds: u32,
    /// The rule's binds, resolved for this caller and request.
    pub bindings: Vars,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no profile of that name")]
    UnknownProfile,
    #[error("rule {rule} denies this caller")]
    Denied { rule: String },
    #[error("no rule allows this caller")]
    NoMatchingRule,
    #[error("rule {rule} requires an approved request")]
    ApprovalRequired { rule: String },
    #[error("rule {rule} requires an open break-glass event")]
    BreakGlassRequired { rule: String },
    #[error("duration_seconds must be between {MIN_DURATION} and {MAX_DURATION}")]
    BadDuration,
    #[error("attribute {name}: {reason}")]
    BadAttribute { name: String, reason: String },
    /// The profile binds a variable this caller cannot fill: a policy problem.
    #[error("the profile cannot bind {name} for this caller: {reason}")]
    Unbindable { name: String, reason: String },
    /// The caller's token lacks a claim the profile uses, or has one (or a
    /// subject) that may not be rendered: the caller's problem, not the
    /// policy's.
    #[error("{reason}: this profile renders it into your credentials' policy, and only [A-Za-z0-9_+=,.@-] may be rendered; no credentials were issued")]
    CallerValue { reason: String },
    /// The caller's values make the session policy or a tag longer than
    /// STS accepts (the template fits with shorter ones).
    #[error("{reason}; no credentials were issued")]
    ValuesTooLong { reason: String },
    /// What allowed the vend ends sooner than STS's shortest session.
    #[error("what allows this vend ({reason}) ends in {seconds_left} s, at {ends_at}; STS vends at least {MIN_DURATION} s, so nothing is vended until it allows a whole session")]
    EndsTooSoon {
        rule: String,
        reason: &'static str,
        seconds_left: i64,
        ends_at: DateTime<Utc>,
    },
    /// An approved request exists for this caller, for other attributes.
    #[error("request {id} was approved for other attributes or bindings than this vend's; vend with the approved ones or ask again")]
    ApprovedForOther { rule: String, id: String },
    /// A session of a profile's role, and no rule lets such sessions vend.
    #[error("the caller is a session of a role tvm vends (role {role}); no rule of this profile allows vended sessions")]
    VendedSession { role: String },
}

impl Denial {
    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Self::Denied { rule }
            | Self::ApprovalRequired { rule }
            | Self::BreakGlassRequired { rule }
            | Self::EndsTooSoon { rule, .. }
            | Self::ApprovedForOther { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// Which rules of a profile apply to a caller at a time, by effect: the
/// first of each kind, in document order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Matched<'p> {
    pub deny: Option<&'p Rule>,
    pub allow: Option<&'p Rule>,
    pub approval: Option<&'p Rule>,
    pub break_glass: Option<&'p Rule>,
}

pub fn match_rules<'p>(
    set: &PolicySet,
    profile: &'p Profile,
    caller: &Principal,
    now: DateTime<Utc>,
) -> Matched<'p> {
    let vended = set.vended(caller);
    let mut m = Matched::default();
    for rule in profile
        .rules
        .iter()
        .filter(|r| r.applies(caller, vended, now))
    {
        let slot = match rule.effect {
            Effect::Deny => &mut m.deny,
            Effect::Allow => &mut m.allow,
            Effect::RequireApproval => &mut m.approval,
            Effect::BreakGlass => &mut m.break_glass,
        };
        slot.get_or_insert(rule);
    }
    m
}

/// How a caller could get a profile, for `GET /v1/profiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Allow,
    Approval,
    BreakGlass,
}

pub fn access(
    set: &PolicySet,
    profile: &Profile,
    caller: &Principal,
    now: DateTime<Utc>,
) -> Option<Access> {
    let m = match_rules(set, profile, caller, now);
    if m.deny.is_some() {
        None
    } else if m.allow.is_some() {
        Some(Access::Allow)
    } else if m.approval.is_some() {
        Some(Access::Approval)
    } else if m.break_glass.is_some() {
        Some(Access::BreakGlass)
    } else {
        None
    }
}

/// Decide a vend. The request's shape is checked before the profile is
/// looked up, so that an unknown profile and a forbidden one answer alike.
pub fn decide<'p>(
    set: &'p PolicySet,
    caller: &Principal,
    request: &VendRequest,
    state: &GateState,
    now: DateTime<Utc>,
) -> Result<Grant<'p>, Denial> {
    if request
        .duration_seconds
        .is_some_and(|d| !(MIN_DURATION..=MAX_DURATION).contains(&d))
    {
        return Err(Denial::BadDuration);
    }
    let profile = set.get(&request.profile).ok_or(Denial::UnknownProfile)?;
    let requested = request.duration_seconds.unwrap_or(profile.default_duration);
    let m = match_rules(set, profile, caller, now);
    if let Some(rule) = m.deny {
        return Err(Denial::Denied {
            rule: rule.name.clone(),
        });
    }
    let mut cap = profile.max_duration;
    // What else ends the grant, besides the rule's own window: an approval's
    // validity, a break-glass event's end.
    let mut ends: Option<(DateTime<Utc>, &'static str)> = None;
    let approval = state
        .approval
        .as_ref()
        .filter(|a| a.valid_until > now && a.caller_arn == caller.arn);
    let (rule, via) = if let Some(rule) = m.allow {
        (rule, Via::Rule)
    } else if let (Some(rule), Some(a)) = (m.approval, approval) {
        cap = cap.min(a.duration_seconds);
        ends = Some((a.valid_until, "the approval's valid_until"));
        (rule, Via::Approval(a.id.clone()))
    } else if let (Some(rule), Some(b)) = (
        m.break_glass,
        state.break_glass.as_ref().filter(|b| b.ends_at > now),
    ) {
        if let Some(bg) = &profile.break_glass {
            cap = cap.min(bg.max_duration);
        }
        ends = Some((b.ends_at, "the break-glass event's end"));
        (rule, Via::BreakGlass(b.id.clone()))
    } else if let Some(rule) = m.approval {
        return Err(Denial::ApprovalRequired {
            rule: rule.name.clone(),
        });
    } else if let Some(rule) = m.break_glass {
        return Err(Denial::BreakGlassRequired {
            rule: rule.name.clone(),
        });
    } else if set.vended(caller) {
        return Err(Denial::VendedSession {
            role: caller.name.clone(),
        });
    } else {
        return Err(Denial::NoMatchingRule);
    };
    if let Some(max) = rule.max_duration {
        cap = cap.min(max);
    }
    let horizon = now + chrono::Duration::seconds(i64::from(cap));
    if let Some(end) = rule_end(profile, caller, rule, now, horizon) {
        if ends.is_none_or(|(at, _)| end < at) {
            ends = Some((end, "the rule's time window, or a deny window that starts"));
        }
    }
    if let Some((at, reason)) = ends {
        let left = (at - now).num_seconds();
        if left < i64::from(MIN_DURATION) {
            return Err(Denial::EndsTooSoon {
                rule: rule.name.clone(),
                reason,
                seconds_left: left,
                ends_at: at,
            });
        }
        cap = cap.min(left.min(i64::from(MAX_DURATION)) as u32);
    }
    let bindings = bind(rule, caller, &request.attributes)?;
    if let Via::Approval(id) = &via {
        let a = approval.expect("chosen above");
        if a.attributes != request.attributes || a.bindings != *bindings.as_map() {
            return Err(Denial::ApprovedForOther {
                rule: rule.name.clone(),
                id: id.clone(),
            });
        }
    }
    Ok(Grant {
        profile,
        rule,
        via,
        duration_seconds: requested.min(cap),
        bindings,
    })
}

/// The first minute boundary in `(now, horizon]` at which the grant's basis
/// is gone: a deny rule applies, or the rule that granted no longer does
/// (another rule of the same effect is another grant: it may bind other
/// values or cap otherwise). `None` when it holds throughout. Windows are
/// whole minutes in their timezones, so minute boundaries are where they
/// open and close; the scan is bounded by the longest session (60 steps).
fn rule_end(
    profile: &Profile,
    caller: &Principal,
    rule: &Rule,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !profile.timed {
        return None;
    }
    // Only time windows change with time: the granting rule's own, and those
    // of the deny rules whose conditions match this caller (a matching deny
    // without a window would have denied already).
    let denies: Vec<&TimeWindow> = profile
        .rules
        .iter()
        .filter(|r| r.effect == Effect::Deny && r.conditions.matches(caller))
        .filter_map(|r| r.time.as_ref())
        .collect();
    let own = rule.time.as_ref();
    if own.is_none() && denies.is_empty() {
        return None;
    }
    let first = now.timestamp().div_euclid(60) * 60 + 60;
    (first..=horizon.timestamp())
        .step_by(60)
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        .find(|&t| own.is_some_and(|w| !w.contains(t)) || denies.iter().any(|w| w.contains(t)))
}

/// The bindings a require_approval rule gives `caller` with `attributes`:
/// what a request records and its approvers see, and what a vend under the
/// approval must reproduce.
pub fn request_bindings(
    set: &PolicySet,
    profile: &Profile,
    caller: &Principal,
    attributes: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, Denial> {
    let m = match_rules(set, profile, caller, now);
    if let Some(rule) = m.deny {
        return Err(Denial::Denied {
            rule: rule.name.clone(),
        });
    }
    let rule = m.approval.ok_or(Denial::NoMatchingRule)?;
    Ok(bind(rule, caller, attributes)?.as_map().clone())
}

/// Check request attributes against the rule's declarations and resolve its
/// binds. An undeclared or non-matching attribute is refused, never dropped.
fn bind(
    rule: &Rule,
    caller: &Principal,
    attributes: &BTreeMap<String, String>,
) -> Result<Vars, Denial> {
    let bad = |name: &str, reason: &str| Denial::BadAttribute {
        name: name.chars().take(64).collect(),
        reason: reason.into(),
    };
    let mut scope = crate::render::caller_vars(caller);
    for (name, value) in attributes {
        let pattern = rule
            .attributes
            .get(name)
            .ok_or_else(|| bad(name, "is not accepted for this profile"))?;
        check_value(name, value).map_err(|e| bad(name, &e.to_string()))?;
        if !pattern.matches(value) {
            return Err(bad(
                name,
                &format!("does not match the allowed pattern {}", pattern.as_str()),
            ));
        }
        scope
            .insert(&format!("attr.{name}"), value)
            .map_err(|e| bad(name, &e.to_string()))?;
    }
    let mut out = Vars::new();
    for (name, template) in &rule.bind {
        let value = template.render(&scope).map_err(|e| match e {
            crate::template::ValueError::Missing { name: var } if var.starts_with("attr.") => {
                bad(&var[5..], "is required by this profile")
            }
            other if other.from_caller() => Denial::CallerValue {
                reason: other.to_string(),
            },
            other => Denial::Unbindable {
                name: name.clone(),
                reason: other.to_string(),
            },
        })?;
        out.insert(name, &value).map_err(|e| {
            // Too long with values the caller chose: the caller's (403).
            if template.variables().any(crate::template::caller_chosen) {
                Denial::ValuesTooLong {
                    reason: format!(
                        "bind {name}: {e}, with the values of your identity and request"
                    ),
                }
            } else {
                Denial::Unbindable {
                    name: name.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_oidc;
