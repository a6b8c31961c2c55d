//! Policy documents: one per profile, YAML or JSON, parsed and validated as a
//! whole. A document with any error is refused entirely; the errors name the
//! field and the problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde::Deserialize;

use crate::glob::Glob;
use crate::limits::RateLimit;
use crate::principal::{is_iam_name_char, valid_org_id, Partition, Principal, PrincipalKind};
use crate::render::PolicyTemplate;
use crate::template::{Template, MAX_VALUE_LEN};

/// STS bounds for a chained AssumeRole (tvm's role assumes the profile role).
pub const MIN_DURATION: u32 = 900;
pub const MAX_DURATION: u32 = 3600;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;

/// Variables every rendering can use, filled from the caller and the vend.
pub const BUILTIN_VARS: &[&str] = &[
    "caller.account",
    "caller.partition",
    "caller.kind",
    "caller.name",
    "caller.role_name",
    "caller.user_name",
    "caller.session_name",
    "caller.org_id",
    "profile",
    "session_id",
];

// ---------------------------------------------------------------- documents

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    profile: String,
    #[serde(default)]
    description: Option<String>,
    role_arn: String,
    #[serde(default)]
    duration: Option<DurationDoc>,
    #[serde(default)]
    session_policy: Option<String>,
    #[serde(default)]
    session_tags: BTreeMap<String, String>,
    rules: Vec<RuleDoc>,
    #[serde(default)]
    approval: Option<ApprovalDoc>,
    #[serde(default)]
    break_glass: Option<BreakGlassDoc>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationDoc {
    default: u32,
    max: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: String,
    effect: String,
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    org_ids: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    role_names: Vec<String>,
    #[serde(default)]
    user_names: Vec<String>,
    #[serde(default)]
    session_names: Vec<String>,
    #[serde(default)]
    time: Option<TimeDoc>,
    #[serde(default)]
    bind: BTreeMap<String, String>,
    #[serde(default)]
    attributes: BTreeMap<String, AttributeDoc>,
    #[serde(default)]
    max_duration: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeDoc {
    #[serde(default)]
    days: Vec<String>,
    #[serde(default)]
    hours: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeDoc {
    pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalDoc {
    approvers: Vec<String>,
    #[serde(default = "one")]
    required: u32,
    #[serde(default = "hour")]
    ttl: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakGlassDoc {
    principals: Vec<String>,
    #[serde(default = "hour")]
    max_duration: u32,
    #[serde(default = "twenty")]
    min_justification: u32,
}

fn one() -> u32 {
    1
}
fn hour() -> u32 {
    3600
}
fn twenty() -> u32 {
    20
}

// ---------------------------------------------------------------- validated model

/// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn(String);

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let ok = match parts[..] {
            ["arn", partition, "iam", "", account, resource] => {
                Partition::parse(partition).is_some()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("role/").is_some_and(|r| {
                        !r.is_empty()
                            && r.split('/').all(|seg| {
                                (1..=64).contains(&seg.len()) && seg.chars().all(is_iam_name_char)
                            })
                    })
            }
            _ => false,
        };
        if ok && s.len() <= 2048 {
            Ok(Self(s.to_string()))
        } else {
            Err("must be an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn account(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    RequireApproval,
    BreakGlass,
}

impl Effect {
    fn parse(s: &str) -> Option<Self> {
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

/// A weekly time window in a timezone. Overnight hours (`22:00-06:00`) belong
/// to the day they start on.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    days: Vec<Weekday>,
    /// Minutes after midnight, `[start, end)`; `end` may be below `start`.
    hours: Option<(u32, u32)>,
    timezone: chrono_tz::Tz,
}

impl TimeWindow {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.timezone);
        let day = local.weekday();
        let minute = local.hour() * 60 + local.minute();
        let on = |d: Weekday| self.days.is_empty() || self.days.contains(&d);
        match self.hours {
            None => on(day),
            Some((start, end)) if start < end => on(day) && (start..end).contains(&minute),
            Some((start, end)) => (minute >= start && on(day)) || (minute < end && on(day.pred())),
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
}

impl Conditions {
    fn names_a_principal(&self) -> bool {
        !(self.principals.is_empty()
            && self.accounts.is_empty()
            && self.org_ids.is_empty()
            && self.role_names.is_empty()
            && self.user_names.is_empty())
    }

    pub fn matches(&self, caller: &Principal) -> bool {
        fn any_glob(globs: &[Glob], value: Option<&str>) -> bool {
            globs.is_empty() || value.is_some_and(|v| globs.iter().any(|g| g.matches(v)))
        }
        any_glob(&self.principals, Some(&caller.arn))
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
}

impl Rule {
    pub fn applies(&self, caller: &Principal, now: DateTime<Utc>) -> bool {
        self.conditions.matches(caller) && self.time.as_ref().is_none_or(|t| t.contains(now))
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
}

/// Every valid profile, by name.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    profiles: BTreeMap<String, Profile>,
}

impl PolicySet {
    pub fn new(profiles: impl IntoIterator<Item = Profile>) -> Self {
        Self {
            profiles: profiles.into_iter().map(|p| (p.name.clone(), p)).collect(),
        }
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

// ---------------------------------------------------------------- errors

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

struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
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

// ---------------------------------------------------------------- parsing

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

    if doc.session_tags.len() > MAX_TAGS {
        p.add("session_tags", format!("has more than {MAX_TAGS} tags"));
    }
    let mut session_tags = Vec::new();
    for (key, value) in &doc.session_tags {
        let field = format!("session_tags.{key}");
        if !valid_tag_key(key) {
            p.add(&field, format!("tag keys are 1-{MAX_TAG_KEY} characters of letters, digits and _.:/=+-@, not starting with aws:"));
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
        approvers: globs(&mut p, "approval.approvers", &a.approvers),
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
        if !(60..=86_400).contains(&a.ttl) {
            p.add("approval.ttl", "must be between 60 and 86400 seconds");
        }
    }
    let break_glass = doc.break_glass.map(|b| BreakGlass {
        principals: globs(&mut p, "break_glass.principals", &b.principals),
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

    // Every variable a rendering uses must be available for every rule that can vend.
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
    Ok(Profile {
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
            other => p.add(
                format!("{}[{j}]", at("kinds")),
                format!("unknown kind {other:?}; use user, assumed-role, federated-user or root"),
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
    };
    if effect.is_some_and(|e| e != Effect::Deny) && !conditions.names_a_principal() {
        p.add(
            at("principals"),
            "a rule that can vend must name who it applies to (principals, accounts, org_ids, role_names or user_names)",
        );
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
                    let ok = v.starts_with("caller.") && BUILTIN_VARS.contains(&v)
                        || v.strip_prefix("attr.")
                            .is_some_and(|a| attributes.contains_key(a));
                    if !ok {
                        p.add(
                            &field,
                            format!("uses ${{{v}}}; binds may use caller.* variables and attr.NAME for attributes this rule declares"),
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
    })
}

fn valid_bind_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_time(p: &mut Problems, field: &str, t: &TimeDoc) -> Option<TimeWindow> {
    let before = p.0.len();
    let mut days = Vec::new();
    for (j, d) in t.days.iter().enumerate() {
        match Weekday::from_str(d) {
            Ok(w) if d.len() == 3 => days.push(w),
            _ => p.add(
                format!("{field}.days[{j}]"),
                format!("{d:?} is not a day; use mon, tue, wed, thu, fri, sat or sun"),
            ),
        }
    }
    let hours = t.hours.as_deref().and_then(|h| {
        let parsed = h.split_once('-').and_then(|(a, b)| Some((minutes(a, false)?, minutes(b, true)?)));
        match parsed {
            Some((a, b)) if a != b => Some((a, b)),
            _ => {
                p.add(format!("{field}.hours"), format!("{h:?} must be HH:MM-HH:MM with different ends, e.g. 09:00-17:00 or 22:00-06:00"));
                None
            }
        }
    });
    let timezone = match t
        .timezone
        .as_deref()
        .unwrap_or("UTC")
        .parse::<chrono_tz::Tz>()
    {
        Ok(tz) => Some(tz),
        Err(_) => {
            p.add(
                format!("{field}.timezone"),
                format!(
                    "{:?} is not an IANA timezone such as Europe/Berlin",
                    t.timezone.as_deref().unwrap_or_default()
                ),
            );
            None
        }
    };
    if days.is_empty() && hours.is_none() && p.0.len() == before {
        p.add(field, "needs days, hours or both");
    }
    (p.0.len() == before).then(|| TimeWindow {
        days,
        hours,
        timezone: timezone.expect("checked above"),
    })
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn minutes(s: &str, end: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub const ORDERS: &str = r#"
profile: orders-tenant
role_arn: arn:aws:iam::111122223333:role/tvm/orders-tenant
duration: {default: 900, max: 3600}
session_policy: |
  {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],
    "Resource":"arn:aws:dynamodb:*:111122223333:table/orders",
    "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${tenant}"]}}}]}
session_tags: {tenant: "${tenant}"}
rules:
  - {name: ecs-orders, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: humans, effect: require_approval, principals: ["arn:aws:sts::*:assumed-role/AWSReservedSSO_Dev*/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: nights, effect: deny, time: {days: [sat, sun], timezone: Europe/Berlin}}
approval: {approvers: ["arn:aws:sts::*:assumed-role/AWSReservedSSO_Sec*/*"], required: 1, ttl: 3600}
"#;

    #[test]
    fn parses_the_brief_example() {
        let p = parse_profile(ORDERS, Some("orders-tenant")).unwrap();
        assert_eq!(p.name, "orders-tenant");
        assert_eq!(p.role_arn.account(), "111122223333");
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[2].effect, Effect::Deny);
        assert_eq!((p.default_duration, p.max_duration), (900, 3600));
    }

    #[test]
    fn json_documents_parse_too() {
        let json = r#"{"profile":"p","role_arn":"arn:aws:iam::111122223333:role/r",
            "rules":[{"name":"a","effect":"allow","accounts":["111122223333"]}]}"#;
        assert!(parse_profile(json, None).is_ok());
    }

    fn errors(text: &str) -> Vec<String> {
        parse_profile(text, None)
            .unwrap_err()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const BASE: &str = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\n";

    #[test]
    fn unknown_keys_and_unknown_effects_refuse_the_document() {
        let e = errors(&format!(
            "{BASE}rules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\nextra: 1\n"
        ));
        assert!(e[0].contains("unknown field `extra`"), "{e:?}");
        let e = errors(&format!(
            "{BASE}rules: [{{name: a, effect: permit, accounts: ['111122223333']}}]\n"
        ));
        assert!(
            e.iter()
                .any(|m| m.starts_with("rules[0].effect: unknown effect \"permit\"")),
            "{e:?}"
        );
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let doc = r#"
profile: "bad name"
role_arn: arn:aws:iam::1:user/x
duration: {default: 3600, max: 900}
session_policy: '{"Version":"2012-10-17","Statement":[{"Resource":"${tenant"}]}'
rules:
  - {name: a, effect: allow, principals: ["bad glob"], time: {days: [funday], timezone: Mars/Base}}
  - {name: a, effect: allow, accounts: ['111122223333'], bind: {tenant: "${request.body}"}}
  - {name: c, effect: require_approval, accounts: ['111122223333']}
"#;
        let e = errors(doc).join("\n");
        for needle in [
            "profile: must be",
            "role_arn: must be an IAM role ARN",
            "duration.default: must not exceed duration.max",
            "session_policy:",
            "rules[0].principals[0]: \"bad glob\"",
            "rules[0].time.days[0]",
            "rules[0].time.timezone: \"Mars/Base\"",
            "rules[1].bind.tenant: uses ${request.body}",
            "rules[2].effect: require_approval needs an approval block",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in\n{e}");
        }
    }

    #[test]
    fn an_empty_rule_list_and_a_vending_rule_for_everyone_are_refused() {
        assert!(errors(&format!("{BASE}rules: []\n"))[0].contains("at least one rule"));
        let e = errors(&format!("{BASE}rules: [{{name: all, effect: allow}}]\n"));
        assert!(e[0].contains("must name who it applies to"), "{e:?}");
        // A deny may apply to everyone.
        assert!(parse_profile(&format!("{BASE}rules: [{{name: all, effect: deny}}, {{name: a, effect: allow, accounts: ['111122223333']}}]\n"), None).is_ok());
    }

    #[test]
    fn a_template_variable_must_be_bound_by_every_rule_that_can_vend() {
        let doc = format!("{BASE}session_tags: {{tenant: '${{tenant}}'}}\nrules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\n");
        assert!(errors(&doc)[0].contains("does not bind ${tenant}"));
    }

    #[test]
    fn the_profile_must_match_its_parameter_name() {
        let doc =
            format!("{BASE}rules: [{{name: a, effect: allow, accounts: ['111122223333']}}]\n");
        let e = parse_profile(&doc, Some("other")).unwrap_err();
        assert!(e.to_string().contains("parameter is named \"other\""));
    }

    fn window(days: &str, hours: &str, tz: &str) -> TimeWindow {
        let doc = format!("{BASE}rules: [{{name: a, effect: deny, time: {{days: [{days}], hours: '{hours}', timezone: {tz}}}}}, {{name: b, effect: allow, accounts: ['111122223333']}}]\n");
        parse_profile(&doc, None).unwrap().rules[0]
            .time
            .clone()
            .unwrap()
    }

    #[test]
    fn time_windows_respect_the_timezone_and_overnight_ranges() {
        // 2026-11-20 is a Friday.
        let w = window("fri", "22:00-06:00", "Europe/Berlin");
        let utc = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert!(w.contains(utc(20, 21, 30))); // Fri 22:30 Berlin
        assert!(w.contains(utc(21, 4, 59))); // Sat 05:59 Berlin, still Friday's night
        assert!(!w.contains(utc(21, 5, 0))); // Sat 06:00 Berlin
        assert!(!w.contains(utc(20, 20, 59))); // Fri 21:59 Berlin
        assert!(!w.contains(utc(19, 22, 0))); // Thu 23:00 Berlin
        let day = window("mon", "09:00-17:00", "America/New_York");
        assert!(day.contains(utc(23, 14, 0))); // Mon 09:00 New York
        assert!(!day.contains(utc(23, 22, 0))); // Mon 17:00 New York
    }
}
