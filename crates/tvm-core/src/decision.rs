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
use crate::policy::{Effect, PolicySet, Profile, Rule};
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
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    pub id: String,
    pub duration_seconds: u32,
    pub valid_until: DateTime<Utc>,
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
}

impl Denial {
    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Self::Denied { rule }
            | Self::ApprovalRequired { rule }
            | Self::BreakGlassRequired { rule } => Some(rule),
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
    profile: &'p Profile,
    caller: &Principal,
    now: DateTime<Utc>,
) -> Matched<'p> {
    let mut m = Matched::default();
    for rule in profile.rules.iter().filter(|r| r.applies(caller, now)) {
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

pub fn access(profile: &Profile, caller: &Principal, now: DateTime<Utc>) -> Option<Access> {
    let m = match_rules(profile, caller, now);
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

/// Decide a vend.
pub fn decide<'p>(
    set: &'p PolicySet,
    caller: &Principal,
    request: &VendRequest,
    state: &GateState,
    now: DateTime<Utc>,
) -> Result<Grant<'p>, Denial> {
    let profile = set.get(&request.profile).ok_or(Denial::UnknownProfile)?;
    let requested = request.duration_seconds.unwrap_or(profile.default_duration);
    if !(MIN_DURATION..=MAX_DURATION).contains(&requested) {
        return Err(Denial::BadDuration);
    }
    let m = match_rules(profile, caller, now);
    if let Some(rule) = m.deny {
        return Err(Denial::Denied {
            rule: rule.name.clone(),
        });
    }
    let mut cap = profile.max_duration;
    let (rule, via) = if let Some(rule) = m.allow {
        (rule, Via::Rule)
    } else if let (Some(rule), Some(a)) = (
        m.approval,
        state.approval.as_ref().filter(|a| a.valid_until > now),
    ) {
        cap = cap.min(a.duration_seconds);
        (rule, Via::Approval(a.id.clone()))
    } else if let (Some(rule), Some(b)) = (
        m.break_glass,
        state.break_glass.as_ref().filter(|b| b.ends_at > now),
    ) {
        let left = (b.ends_at - now)
            .num_seconds()
            .clamp(0, i64::from(MAX_DURATION)) as u32;
        if let Some(bg) = &profile.break_glass {
            cap = cap.min(bg.max_duration);
        }
        cap = cap.min(left);
        (rule, Via::BreakGlass(b.id.clone()))
    } else if let Some(rule) = m.approval {
        return Err(Denial::ApprovalRequired {
            rule: rule.name.clone(),
        });
    } else if let Some(rule) = m.break_glass {
        return Err(Denial::BreakGlassRequired {
            rule: rule.name.clone(),
        });
    } else {
        return Err(Denial::NoMatchingRule);
    };
    if let Some(max) = rule.max_duration {
        cap = cap.min(max);
    }
    // STS will not vend under its minimum: a break-glass event about to end
    // cannot be stretched, so it no longer vends.
    if cap < MIN_DURATION {
        return Err(Denial::BreakGlassRequired {
            rule: rule.name.clone(),
        });
    }
    let bindings = bind(rule, caller, &request.attributes)?;
    Ok(Grant {
        profile,
        rule,
        via,
        duration_seconds: requested.min(cap),
        bindings,
    })
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
            other => Denial::Unbindable {
                name: name.clone(),
                reason: other.to_string(),
            },
        })?;
        out.insert(name, &value).map_err(|e| Denial::Unbindable {
            name: name.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
