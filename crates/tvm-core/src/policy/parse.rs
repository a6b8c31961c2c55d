//! From a document to the validated model: every problem is collected with
//! the field it is in, and a document with any problem is refused whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::document::{PolicyDoc, RuleDoc};
use super::model::{Approval, BreakGlass, Conditions, Effect, Profile, Rule};
use super::session_policy::PolicyTemplate;
use super::time::parse_time;
use super::{builtin_var, BUILTIN_VARS};
use crate::glob::Glob;
use crate::limits::{MAX_DURATION, MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE, MIN_DURATION};
use crate::oidc::valid_issuer;
use crate::principal::{is_iam_name_char, pins_account, valid_org_id, PrincipalKind, RoleArn};
use crate::revocation::{OWN_TAGS, TAG_CALLER, TAG_PREFIX, TAG_SESSION, TAG_VENDED_BY, TAG_VIA};
use crate::template::{Template, MAX_VALUE_LEN};

/// One problem in a document: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Why a document was refused. It lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&list.join("; "))
    }
}

pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }
}

/// Profile names: what a caller types and what names an SSM parameter.
pub fn valid_profile_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('.')
}

/// Parse and validate one policy document (YAML, or JSON when it starts with
/// `{`). `expected_name`, when given, is the profile name the document must
/// declare (the last segment of its SSM parameter name).
pub fn parse_profile(text: &str, expected_name: Option<&str>) -> Result<Profile, PolicyError> {
    let doc: PolicyDoc = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| single("document", format!("invalid JSON: {e}")))?
    } else {
        serde_yaml::from_str(text).map_err(|e| single("document", format!("invalid YAML: {e}")))?
    };
    let mut p = Problems(Vec::new());

    if !valid_profile_name(&doc.profile) {
        p.add("profile", "must be 1-64 letters, digits, '-', '_' or '.'");
    }
    if let Some(expected) = expected_name {
        if doc.profile != expected {
            p.add(
                "profile",
                format!(
                    "is {:?} but the parameter is named {expected:?}",
                    doc.profile
                ),
            );
        }
    }
    let role_arn = RoleArn::parse(&doc.role_arn)
        .map_err(|e| p.add("role_arn", e))
        .ok();

    let (default_duration, max_duration) = match doc.duration {
        None => (MIN_DURATION, MAX_DURATION),
        Some(d) => {
            for (field, v) in [("duration.default", d.default), ("duration.max", d.max)] {
                if !(MIN_DURATION..=MAX_DURATION).contains(&v) {
                    p.add(
                        field,
                        format!("must be between {MIN_DURATION} and {MAX_DURATION} seconds"),
                    );
                }
            }
            if d.default > d.max {
                p.add("duration.default", "must not exceed duration.max");
            }
            (d.default, d.max)
        }
    };

    let session_policy = doc.session_policy.as_deref().and_then(|s| {
        PolicyTemplate::parse(s)
            .map_err(|e| p.add("session_policy", e.to_string()))
            .ok()
    });

    // tvm stamps its own tags on every vend (see `revocation::own_tags`).
    let room = MAX_TAGS - OWN_TAGS;
    if doc.session_tags.len() > room {
        p.add(
            "session_tags",
            format!(
                "has more than {room} tags (STS takes {MAX_TAGS}, {OWN_TAGS} of them tvm's own)"
            ),
        );
    }
    let mut session_tags = Vec::new();
    for (key, value) in &doc.session_tags {
        let field = format!("session_tags.{key}");
        if !valid_tag_key(key) {
            p.add(&field, format!("tag keys are 1-{MAX_TAG_KEY} characters of letters, digits and _.:/=+-@, not starting with aws:"));
        }
        if key.to_ascii_lowercase().starts_with(TAG_PREFIX) {
            p.add(&field, format!("keys starting with {TAG_PREFIX} are tvm's own ({TAG_CALLER}, {TAG_SESSION}, {TAG_VIA}, {TAG_VENDED_BY}: what revocation relies on)"));
        }
        if value.len() > MAX_TAG_VALUE {
            p.add(&field, format!("is longer than {MAX_TAG_VALUE} characters"));
        }
        match Template::parse(value) {
            Ok(t) => session_tags.push((key.clone(), t)),
            Err(e) => p.add(&field, e.to_string()),
        }
    }

    let approval = doc.approval.map(|a| Approval {
        approvers: pinned_globs(&mut p, "approval.approvers", &a.approvers),
        required: a.required,
        ttl: a.ttl,
    });
    if let Some(a) = &approval {
        if a.approvers.is_empty() {
            p.add("approval.approvers", "must list at least one approver");
        }
        if !(1..=10).contains(&a.required) {
            p.add("approval.required", "must be between 1 and 10");
        }
        // A grant ends with its approval: a shorter ttl could never vend.
        if !(MIN_DURATION..=86_400).contains(&a.ttl) {
            p.add(
                "approval.ttl",
                format!("must be between {MIN_DURATION} (STS's shortest session: a grant ends with its approval) and 86400 seconds"),
            );
        }
    }
    let break_glass = doc.break_glass.map(|b| BreakGlass {
        principals: pinned_globs(&mut p, "break_glass.principals", &b.principals),
        max_duration: b.max_duration,
        min_justification: b.min_justification,
    });
    if let Some(b) = &break_glass {
        if b.principals.is_empty() {
            p.add("break_glass.principals", "must list at least one principal");
        }
        if !(MIN_DURATION..=MAX_DURATION).contains(&b.max_duration) {
            p.add(
                "break_glass.max_duration",
                format!("must be between {MIN_DURATION} and {MAX_DURATION} seconds"),
            );
        }
        if !(1..=1000).contains(&b.min_justification) {
            p.add(
                "break_glass.min_justification",
                "must be between 1 and 1000 characters",
            );
        }
    }

    if let Some(Err(e)) = doc.rate_limit.map(|r| r.check()) {
        p.add("rate_limit", e);
    }
    if doc.rules.is_empty() {
        p.add("rules", "must contain at least one rule");
    }
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for (i, r) in doc.rules.iter().enumerate() {
        if let Some(rule) = parse_rule(&mut p, i, r) {
            if !names.insert(rule.name.clone()) {
                p.add(
                    format!("rules[{i}].name"),
                    format!("{:?} is used by another rule", rule.name),
                );
            }
            if rule.effect == Effect::RequireApproval && approval.is_none() {
                p.add(
                    format!("rules[{i}].effect"),
                    "require_approval needs an approval block",
                );
            }
            if rule.effect == Effect::BreakGlass && break_glass.is_none() {
                p.add(
                    format!("rules[{i}].effect"),
                    "break_glass needs a break_glass block",
                );
            }
            rules.push(rule);
        }
    }

    // Every variable a rendering uses must be available for every rule that
    // can vend. A claim goes through a bind: what a bind gives is recorded
    // with an approval request and must be the same at its vend.
    let used: BTreeSet<&str> = session_policy
        .iter()
        .flat_map(|t| t.variables())
        .chain(session_tags.iter().flat_map(|(_, t)| t.variables()))
        .collect();
    for var in &used {
        if BUILTIN_VARS.contains(var) {
            continue;
        }
        for (i, rule) in rules.iter().enumerate() {
            if rule.effect != Effect::Deny && !rule.bind.contains_key(*var) {
                p.add(
                    format!("rules[{i}].bind"),
                    format!(
                        "rule {:?} does not bind ${{{var}}}, which the session policy or tags use",
                        rule.name
                    ),
                );
            }
        }
    }

    if !p.0.is_empty() {
        return Err(PolicyError { errors: p.0 });
    }
    let timed = rules.iter().any(|r| r.time.is_some());
    Ok(Profile {
        timed,
        name: doc.profile,
        description: doc.description,
        role_arn: role_arn.expect("checked above"),
        default_duration,
        max_duration,
        session_policy,
        session_tags,
        rules,
        approval,
        break_glass,
        rate_limit: doc.rate_limit,
    })
}

fn single(field: &str, problem: String) -> PolicyError {
    PolicyError {
        errors: vec![FieldError {
            field: field.into(),
            problem,
        }],
    }
}

fn valid_tag_key(k: &str) -> bool {
    (1..=MAX_TAG_KEY).contains(&k.len())
        && !k.to_ascii_lowercase().starts_with("aws:")
        && k.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        })
}

fn globs(p: &mut Problems, field: &str, patterns: &[String]) -> Vec<Glob> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            Glob::parse(s)
                .map_err(|e| p.add(format!("{field}[{i}]"), format!("{s:?} {e}")))
                .ok()
        })
        .collect()
}

/// Globs that grant authority on their own (approvers, break-glass
/// principals): each must name one account.
fn pinned_globs(p: &mut Problems, field: &str, patterns: &[String]) -> Vec<Glob> {
    for (i, s) in patterns.iter().enumerate() {
        if !pins_account(s) {
            p.add(format!("{field}[{i}]"), format!("{s:?} {UNPINNED}"));
        }
    }
    globs(p, field, patterns)
}

/// Why an ARN pattern with a wildcard account is refused where it grants.
pub const UNPINNED: &str = "must pin the account: its account field must be a literal 12-digit id (a wildcard there matches every AWS account in the world)";

fn parse_rule(p: &mut Problems, i: usize, r: &RuleDoc) -> Option<Rule> {
    let at = |f: &str| format!("rules[{i}].{f}");
    let before = p.0.len();
    if r.name.is_empty() || r.name.len() > 64 || !r.name.chars().all(is_iam_name_char) {
        p.add(
            at("name"),
            "must be 1-64 characters of letters, digits and _+=,.@-",
        );
    }
    let effect = Effect::parse(&r.effect);
    if effect.is_none() {
        p.add(
            at("effect"),
            format!(
                "unknown effect {:?}; use allow, deny, require_approval or break_glass",
                r.effect
            ),
        );
    }
    for (j, a) in r.accounts.iter().enumerate() {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            p.add(
                format!("{}[{j}]", at("accounts")),
                "must be a 12-digit account id",
            );
        }
    }
    for (j, o) in r.org_ids.iter().enumerate() {
        if !valid_org_id(o) {
            p.add(
                format!("{}[{j}]", at("org_ids")),
                "must be an organization id, o-xxxxxxxxxx",
            );
        }
    }
    let mut kinds = Vec::new();
    for (j, k) in r.kinds.iter().enumerate() {
        match k.as_str() {
            "user" => kinds.push(PrincipalKind::User),
            "assumed-role" => kinds.push(PrincipalKind::AssumedRole),
            "federated-user" => kinds.push(PrincipalKind::FederatedUser),
            "root" => kinds.push(PrincipalKind::Root),
            "oidc" => kinds.push(PrincipalKind::Oidc),
            other => p.add(
                format!("{}[{j}]", at("kinds")),
                format!(
                    "unknown kind {other:?}; use user, assumed-role, federated-user, root or oidc"
                ),
            ),
        }
    }
    let conditions = Conditions {
        principals: globs(p, &at("principals"), &r.principals),
        accounts: r.accounts.clone(),
        org_ids: r.org_ids.clone(),
        kinds,
        role_names: globs(p, &at("role_names"), &r.role_names),
        user_names: globs(p, &at("user_names"), &r.user_names),
        session_names: globs(p, &at("session_names"), &r.session_names),
        issuers: r.issuers.clone(),
        subjects: globs(p, &at("subjects"), &r.subjects),
        claims: r
            .claims
            .iter()
            .filter_map(|(name, pattern)| {
                let field = format!("{}.{name}", at("claims"));
                if name.is_empty()
                    || name.len() > 128
                    || !name.bytes().all(|b| (0x21..=0x7e).contains(&b))
                {
                    p.add(&field, "claim names are 1-128 printable ASCII characters");
                }
                Glob::parse(pattern)
                    .map_err(|e| p.add(&field, format!("{pattern:?} {e}")))
                    .ok()
                    .map(|g| (name.clone(), g))
            })
            .collect(),
    };
    for (j, issuer) in r.issuers.iter().enumerate() {
        if let Err(e) = valid_issuer(issuer) {
            p.add(format!("{}[{j}]", at("issuers")), format!("{issuer:?} {e}"));
        }
    }
    let aws_fields = !(r.principals.is_empty()
        && r.accounts.is_empty()
        && r.org_ids.is_empty()
        && r.role_names.is_empty()
        && r.user_names.is_empty()
        && r.session_names.is_empty());
    let oidc = conditions.names_oidc();
    if oidc && aws_fields {
        p.add(
            at("issuers"),
            "a rule is for AWS callers (principals, accounts, org_ids, role_names, user_names, session_names) or for oidc callers (issuers, subjects, claims), not both: no caller has both",
        );
    }
    if oidc && conditions.kinds.iter().any(|k| *k != PrincipalKind::Oidc) {
        p.add(at("kinds"), "a rule on issuers, subjects or claims applies to oidc callers only: kinds may only be [oidc]");
    }
    if effect.is_some_and(|e| e != Effect::Deny) && oidc {
        if r.issuers.is_empty() {
            p.add(
                at("issuers"),
                "a rule that can vend for an oidc caller must pin its issuer: list issuers: (subjects and claims are only as good as the issuer that signed them)",
            );
        }
        // At GitHub Actions, GitLab, Kubernetes or Google whoever asks for a
        // token picks its audience: the issuer alone admits the world.
        let literal = |g: &str| !g.chars().all(|c| c == '*' || c == '?');
        if !(r.subjects.iter().any(|g| literal(g)) || r.claims.values().any(|g| literal(g))) {
            p.add(
                at("subjects"),
                "a rule that can vend for an oidc caller must also name whose tokens: subjects or claims with more than wildcards (at CI issuers anyone may mint a token for your audience)",
            );
        }
    } else if effect.is_some_and(|e| e != Effect::Deny) {
        if !conditions.names_a_principal() {
            p.add(
                at("principals"),
                "a rule that can vend must name who it applies to (principals, accounts, org_ids, role_names or user_names; issuers for oidc callers)",
            );
        } else if !r.session_names.is_empty() && r.principals.is_empty() && r.role_names.is_empty()
        {
            p.add(
                at("session_names"),
                "a rule that can vend needs role_names or principals beside session_names: a session name is chosen by whoever assumes a role",
            );
        } else if r.accounts.is_empty() {
            // Without accounts:, the principals are what keeps every other
            // AWS account out.
            if r.principals.is_empty() {
                p.add(
                    at("accounts"),
                    "a rule that can vend must pin the account: list accounts: or give principals with a literal account",
                );
            }
            for (j, g) in r.principals.iter().enumerate() {
                if !pins_account(g) {
                    p.add(
                        format!("{}[{j}]", at("principals")),
                        format!("{g:?} {UNPINNED}, or the rule must list accounts:"),
                    );
                }
            }
        }
    }
    let time = r.time.as_ref().and_then(|t| parse_time(p, &at("time"), t));

    let attributes: BTreeMap<String, Glob> = r
        .attributes
        .iter()
        .filter_map(|(name, a)| {
            let field = format!("{}.{name}", at("attributes"));
            if !valid_bind_name(name) {
                p.add(&field, "attribute names are 1-64 letters, digits or '_'");
            }
            Glob::parse(&a.pattern)
                .map_err(|e| p.add(format!("{field}.pattern"), e.to_string()))
                .ok()
                .map(|g| (name.clone(), g))
        })
        .collect();

    let mut bind = BTreeMap::new();
    for (name, value) in &r.bind {
        let field = format!("{}.{name}", at("bind"));
        if !valid_bind_name(name) {
            p.add(&field, "bound names are 1-64 letters, digits or '_' (no dots: caller.* and attr.* are reserved)");
            continue;
        }
        if value.len() > MAX_VALUE_LEN * 4 {
            p.add(&field, "is too long");
            continue;
        }
        match Template::parse(value) {
            Ok(t) => {
                for v in t.variables() {
                    let ok = (v.starts_with("caller.") || v.starts_with("claim."))
                        && builtin_var(v)
                        || v.strip_prefix("attr.")
                            .is_some_and(|a| attributes.contains_key(a));
                    if !ok {
                        p.add(
                            &field,
                            format!("uses ${{{v}}}; binds may use caller.* and claim.* variables and attr.NAME for attributes this rule declares"),
                        );
                    }
                }
                bind.insert(name.clone(), t);
            }
            Err(e) => p.add(&field, e.to_string()),
        }
    }
    if let Some(m) = r.max_duration {
        if !(MIN_DURATION..=MAX_DURATION).contains(&m) {
            p.add(
                at("max_duration"),
                format!("must be between {MIN_DURATION} and {MAX_DURATION} seconds"),
            );
        }
    }
    if p.0.len() != before {
        return None;
    }
    Some(Rule {
        name: r.name.clone(),
        effect: effect?,
        conditions,
        time,
        bind,
        attributes,
        max_duration: r.max_duration,
        allow_vended_sessions: r.allow_vended_sessions,
    })
}

fn valid_bind_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
