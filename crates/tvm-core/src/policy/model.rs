//! The validated policy model: what a document means once it has been
//! checked. Every value here is valid by construction (see `parse`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::session_policy::PolicyTemplate;
use super::time::TimeWindow;
use crate::glob::Glob;
use crate::principal::{Principal, PrincipalKind, RoleArn};
use crate::rate::RateLimit;
use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    RequireApproval,
    BreakGlass,
}

impl Effect {
    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "require_approval" => Some(Self::RequireApproval),
            "break_glass" => Some(Self::BreakGlass),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RequireApproval => "require_approval",
            Self::BreakGlass => "break_glass",
        }
    }
}

/// Who a rule applies to. Every field that is set must match (AND); within a
/// field any entry may match (OR). An empty field does not constrain.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub principals: Vec<Glob>,
    pub accounts: Vec<String>,
    pub org_ids: Vec<String>,
    pub kinds: Vec<PrincipalKind>,
    pub role_names: Vec<Glob>,
    pub user_names: Vec<Glob>,
    pub session_names: Vec<Glob>,
    /// Issuers of oidc callers, exactly.
    pub issuers: Vec<String>,
    /// Subjects of oidc callers.
    pub subjects: Vec<Glob>,
    /// Claims of oidc callers, each by name: the value (or a value of a list)
    /// must match.
    pub claims: Vec<(String, Glob)>,
}

impl Conditions {
    pub(super) fn names_a_principal(&self) -> bool {
        !(self.principals.is_empty()
            && self.accounts.is_empty()
            && self.org_ids.is_empty()
            && self.role_names.is_empty()
            && self.user_names.is_empty()
            && self.issuers.is_empty())
    }

    /// Does the rule say anything only an oidc caller has?
    pub(super) fn names_oidc(&self) -> bool {
        !(self.issuers.is_empty() && self.subjects.is_empty() && self.claims.is_empty())
    }

    /// `principals` match the caller's ARN as AWS wrote it or without its
    /// IAM path (both name one principal); the second form is tried only for
    /// a caller that has a path.
    fn principal_matches(&self, caller: &Principal) -> bool {
        if self.principals.is_empty() {
            return true;
        }
        for g in &self.principals {
            if g.matches(&caller.arn) {
                return true;
            }
        }
        match caller.unpathed_arn() {
            None => false,
            Some(u) => self.principals.iter().any(|g| g.matches(u)),
        }
    }

    pub fn matches(&self, caller: &Principal) -> bool {
        fn any_glob(globs: &[Glob], value: Option<&str>) -> bool {
            globs.is_empty() || value.is_some_and(|v| globs.iter().any(|g| g.matches(v)))
        }
        self.principal_matches(caller)
            && (self.accounts.is_empty() || self.accounts.contains(&caller.account))
            && (self.org_ids.is_empty()
                || caller
                    .org_id
                    .as_ref()
                    .is_some_and(|o| self.org_ids.contains(o)))
            && (self.kinds.is_empty() || self.kinds.contains(&caller.kind))
            && any_glob(&self.role_names, caller.role_name())
            && any_glob(&self.user_names, caller.user_name())
            && any_glob(&self.session_names, caller.session_name.as_deref())
            && (self.issuers.is_empty()
                || caller
                    .issuer()
                    .is_some_and(|i| self.issuers.iter().any(|t| t == i)))
            && (self.subjects.is_empty()
                || caller.oidc.is_some() && self.subjects.iter().any(|g| g.matches(&caller.name)))
            && self.claims.iter().all(|(name, g)| {
                caller
                    .oidc
                    .as_deref()
                    .is_some_and(|o| o.claims.matches(name, g))
            })
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub effect: Effect,
    pub conditions: Conditions,
    pub time: Option<TimeWindow>,
    /// Variables this rule binds for rendering, as templates over
    /// `caller.*` and `attr.*`.
    pub bind: BTreeMap<String, Template>,
    /// Request attributes this rule accepts, each with its allowed pattern.
    pub attributes: BTreeMap<String, Glob>,
    pub max_duration: Option<u32>,
    /// `allow_vended_sessions: true`: this rule may vend to a session tvm
    /// itself vended (a caller whose role is a profile's role). Off by
    /// default: such a chain would outlive the first session's revocation.
    pub allow_vended_sessions: bool,
}

impl Rule {
    /// Does this rule apply to `caller` at `now`? `vended` says the caller is
    /// a session of a profile's role (see [`PolicySet::vended`]): only deny
    /// rules and rules that opt in apply to it.
    ///
    /// A federated user's name is whoever called GetFederationToken's choice:
    /// a rule that can vend applies to federated users only when it says
    /// `kinds: [federated-user]` (a deny applies to them as written).
    pub fn applies(&self, caller: &Principal, vended: bool, now: DateTime<Utc>) -> bool {
        let deny = self.effect == Effect::Deny;
        (deny
            || caller.kind != PrincipalKind::FederatedUser
            || self
                .conditions
                .kinds
                .contains(&PrincipalKind::FederatedUser))
            && (!vended || deny || self.allow_vended_sessions)
            && self.conditions.matches(caller)
            && self.time.as_ref().is_none_or(|t| t.contains(now))
    }
}

#[derive(Debug, Clone)]
pub struct Approval {
    pub approvers: Vec<Glob>,
    pub required: u32,
    pub ttl: u32,
}

#[derive(Debug, Clone)]
pub struct BreakGlass {
    pub principals: Vec<Glob>,
    pub max_duration: u32,
    pub min_justification: u32,
}

/// A validated profile: what a caller may get, and how.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub role_arn: RoleArn,
    pub default_duration: u32,
    pub max_duration: u32,
    pub session_policy: Option<PolicyTemplate>,
    pub session_tags: Vec<(String, Template)>,
    pub rules: Vec<Rule>,
    pub approval: Option<Approval>,
    pub break_glass: Option<BreakGlass>,
    /// Vends per caller principal and window; the deployment default when absent.
    pub rate_limit: Option<RateLimit>,
    /// Some rule has a time window: only then can a grant end before its
    /// duration (the vend path skips the scan otherwise).
    pub timed: bool,
}

/// Every valid profile, by name.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    profiles: BTreeMap<String, Profile>,
    /// (account, role name) of every profile's role.
    roles: Vec<(String, String)>,
}

impl PolicySet {
    pub fn new(profiles: impl IntoIterator<Item = Profile>) -> Self {
        let profiles: BTreeMap<String, Profile> =
            profiles.into_iter().map(|p| (p.name.clone(), p)).collect();
        let roles = profiles
            .values()
            .map(|p| {
                let arn = p.role_arn.as_str();
                let name = arn.rsplit('/').next().unwrap_or(arn);
                (p.role_arn.account().to_string(), name.to_string())
            })
            .collect();
        Self { profiles, roles }
    }

    /// Is `caller` a session of a role some profile vends (a session tvm
    /// vended, or one that looks like it: assumed-role ARNs carry no path,
    /// and role names are unique per account without case)?
    pub fn vended(&self, caller: &Principal) -> bool {
        caller.kind == PrincipalKind::AssumedRole
            && self.roles.iter().any(|(account, name)| {
                *account == caller.account && name.eq_ignore_ascii_case(&caller.name)
            })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}
