//! From a grant to what the function does with it: the AssumeRole call (role,
//! rendered session policy, tags, SourceIdentity, RoleSessionName, duration)
//! and the session record written before it. The function and
//! `tvm policy test` both plan with this, so what the test prints is what a
//! vend would send.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::decision::{Grant, Via};
use crate::principal::Principal;
use crate::render::{
    caller_vars, render, role_session_name, source_identity, RenderError, Rendered,
};
use crate::revocation::{own_tags, via_tag};
use crate::template::{caller_chosen, ValueError, Vars};

/// Everything one vend does, decided before any call is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendPlan {
    pub assume: AssumeRole,
    pub session: SessionRecord,
}

/// What STS AssumeRole is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub role_session_name: String,
    pub source_identity: String,
    pub duration_seconds: u32,
    /// The rendered inline session policy, within STS's size limit.
    pub policy: Option<String>,
    /// The profile's tags, then tvm's own (`revocation::own_tags`).
    pub tags: Vec<(String, String)>,
    /// tvm's own tags: role chaining carries them to every later session.
    pub transitive_tag_keys: Vec<String>,
}

/// The record of one vend, written before AssumeRole is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    /// The API request (API Gateway's or Lambda's id) that vended it.
    pub request_id: String,
    pub caller_arn: String,
    /// The caller's stable principal: the role or user, not the session name.
    pub caller: String,
    pub account: String,
    pub profile: String,
    pub role_arn: String,
    pub rule: String,
    pub via: Via,
    pub duration_seconds: u32,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub source_identity: String,
    /// The RoleSessionName: CloudTrail's user name for the session's calls.
    pub role_session_name: String,
    /// When the record may be deleted (DynamoDB TTL).
    pub delete_after: DateTime<Utc>,
    /// See [`VendContext::lineage`].
    pub lineage: Option<Lineage>,
}

/// What a vend for a session tvm vended inherits from the first vend of the
/// chain, so that revoking that vend, its caller or its grant reaches every
/// later one: the first vend's caller (`tvm-caller`), its SourceIdentity
/// (as STS keeps it down a role chain) and its `tvm-via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The caller the first vend was for (its stable principal).
    pub caller: String,
    pub source_identity: String,
    /// The first vend's `tvm-via` tag.
    pub via: String,
}

impl Lineage {
    /// What a vend passes on to the vends made with its credentials (chains
    /// through tvm are one step: a vend with a lineage passes on nothing).
    pub fn of(record: &SessionRecordView<'_>) -> Self {
        Self {
            caller: record.caller.to_string(),
            source_identity: record.source_identity.to_string(),
            via: via_tag(record.via_kind, record.via_id),
        }
    }
}

/// The fields of a stored session record a [`Lineage`] is made from.
#[derive(Debug, Clone, Copy)]
pub struct SessionRecordView<'a> {
    pub caller: &'a str,
    pub source_identity: &'a str,
    pub via_kind: &'a str,
    pub via_id: Option<&'a str>,
}

/// The facts of one vend that do not come from the policy.
#[derive(Debug, Clone, Copy)]
pub struct VendContext<'a> {
    /// 32 lowercase hex characters, fresh for this vend.
    pub session_id: &'a str,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
    /// How long a record is kept after its credentials expire.
    pub retention: chrono::Duration,
    /// When the caller is a session tvm vended: what the first vend of the
    /// chain passes on (its caller, SourceIdentity and grant tag).
    pub lineage: Option<&'a Lineage>,
}

/// A grant that cannot be planned: the profile renders something STS would
/// refuse, for this caller. A policy problem, except where the caller's
/// values are the cause (see [`PlanError::from_caller`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Variable(#[from] ValueError),
    #[error("{0}")]
    Render(#[from] RenderError),
    /// The session policy or a tag is too long with this caller's values
    /// (its names, subject, claims, attributes) and fits with the shortest:
    /// the values, not the template, are the cause.
    #[error("{0} with the values of your identity and request (session name, subject, claims, attributes); with shorter ones it fits")]
    ValuesTooLong(RenderError),
    #[error("could not build a SourceIdentity")]
    SourceIdentity,
}

impl PlanError {
    /// Is the cause something the caller brought: a subject or claim of an
    /// oidc caller that may not be rendered (the token's, not the policy's),
    /// or values that make the rendering too long for STS?
    pub fn from_caller(&self) -> bool {
        match self {
            Self::Variable(v) | Self::Render(RenderError::Value(v)) => v.from_caller(),
            Self::ValuesTooLong(_) => true,
            _ => false,
        }
    }
}

/// Render the grant's profile with `vars`; a size error the caller's values
/// caused (it fits with each value the caller chose one character long:
/// [`caller_chosen`] variables, and binds made of them) is the caller's.
fn render_for_caller(grant: &Grant<'_>, vars: &Vars) -> Result<Rendered, PlanError> {
    let chosen = |name: &str| {
        caller_chosen(name)
            || grant
                .rule
                .bind
                .get(name)
                .is_some_and(|t| t.variables().any(caller_chosen))
    };
    match render(grant.profile, vars) {
        Err(e @ (RenderError::PolicyTooLarge(_) | RenderError::TagTooLong(_)))
            if render(grant.profile, &vars.shortest(chosen)).is_ok() =>
        {
            Err(PlanError::ValuesTooLong(e))
        }
        other => Ok(other?),
    }
}

/// Plan the vend a grant allows.
pub fn plan(
    grant: &Grant<'_>,
    caller: &Principal,
    ctx: VendContext<'_>,
) -> Result<VendPlan, PlanError> {
    let mut vars = caller_vars(caller);
    vars.extend(&grant.bindings);
    vars.insert("profile", &grant.profile.name)?;
    vars.insert("session_id", ctx.session_id)?;
    let rendered = render_for_caller(grant, &vars)?;
    let source_identity = match ctx.lineage {
        Some(l) => l.source_identity.clone(),
        None => source_identity(ctx.session_id)
            .ok_or(PlanError::SourceIdentity)?
            .as_str()
            .to_string(),
    };
    let expires_at = ctx.now + chrono::Duration::seconds(i64::from(grant.duration_seconds));
    let role_arn = grant.profile.role_arn.to_string();
    let caller_id = caller.stable_id();
    let own = match ctx.lineage {
        Some(l) => own_tags(&l.caller, ctx.session_id, &l.via, Some(&caller_id)),
        None => own_tags(
            &caller_id,
            ctx.session_id,
            &via_tag(grant.via.kind(), grant.via.id()),
            None,
        ),
    };
    let transitive_tag_keys = own.iter().map(|(k, _)| k.clone()).collect();
    let mut tags = rendered.tags;
    tags.extend(own);
    let session_name = role_session_name(caller, ctx.session_id)
        .as_str()
        .to_string();
    Ok(VendPlan {
        assume: AssumeRole {
            role_arn: role_arn.clone(),
            role_session_name: session_name.clone(),
            source_identity: source_identity.clone(),
            duration_seconds: grant.duration_seconds,
            policy: rendered.policy,
            tags,
            transitive_tag_keys,
        },
        session: SessionRecord {
            session_id: ctx.session_id.to_string(),
            request_id: ctx.request_id.to_string(),
            caller_arn: caller.arn.clone(),
            caller: caller_id,
            account: caller.account.clone(),
            profile: grant.profile.name.clone(),
            role_arn,
            rule: grant.rule.name.clone(),
            via: grant.via.clone(),
            duration_seconds: grant.duration_seconds,
            issued_at: ctx.now,
            expires_at,
            source_identity,
            role_session_name: session_name,
            delete_after: expires_at + ctx.retention,
            lineage: ctx.lineage.cloned(),
        },
    })
}

impl fmt::Display for AssumeRole {
    /// What `tvm policy test` prints: the call, readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "role:     {}", self.role_arn)?;
        writeln!(f, "duration: {}s", self.duration_seconds)?;
        for (k, v) in &self.tags {
            writeln!(f, "tag:      {k}={v}")?;
        }
        if let Some(policy) = &self.policy {
            let pretty = serde_json::from_str::<serde_json::Value>(policy)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| policy.clone());
            writeln!(f, "session policy:\n{pretty}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{decide, Denial, GateState, VendRequest};
    use crate::policy::{parse_profile, PolicySet};

    const DOC: &str = r#"
profile: orders-tenant
role_arn: arn:aws:iam::111122223333:role/tvm/orders-tenant
session_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${tenant}/${session_id}"}]}'
session_tags: {tenant: "${tenant}", profile: "${profile}"}
rules:
  - {name: ecs, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"],
     bind: {tenant: "${caller.session_name}"}}
"#;

    /// Plan `doc`'s one profile for an `orders-task` session named `name`.
    fn plan_for(doc: &str, name: &str) -> Result<VendPlan, PlanError> {
        let set = PolicySet::new([parse_profile(doc, None).unwrap()]);
        let arn = format!("arn:aws:sts::111122223333:assumed-role/orders-task/{name}");
        let caller = Principal::parse(&arn, None).unwrap();
        let request = VendRequest {
            profile: "orders-tenant".into(),
            duration_seconds: None,
            attributes: Default::default(),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let grant = decide(&set, &caller, &request, &GateState::default(), now).unwrap();
        let ctx = VendContext {
            session_id: "0123456789abcdef0123456789abcdef",
            request_id: "req-1",
            now,
            retention: chrono::Duration::days(90),
            lineage: None,
        };
        plan(&grant, &caller, ctx)
    }

    #[test]
    fn a_rendering_too_long_for_sts_is_the_callers_when_its_values_make_it_so() {
        // Five session names in one tag: a 64-character name renders 324
        // characters (STS: 256), a short one fits. The caller chose the name:
        // a 403 that says so, not a broken policy.
        let names = "${caller.session_name}-".repeat(4) + "${caller.session_name}";
        let doc = DOC.replace(
            "session_tags: {tenant: \"${tenant}\", profile: \"${profile}\"}",
            &format!("session_tags: {{who: \"{names}\"}}"),
        );
        assert!(plan_for(&doc, "acme").is_ok());
        let e = plan_for(&doc, &"a".repeat(64)).unwrap_err();
        assert!(
            matches!(e, PlanError::ValuesTooLong(RenderError::TagTooLong(_))),
            "{e:?}"
        );
        assert!(e.from_caller());
        // Too long whoever asks cannot load: the parser bounds a template's
        // own text by the limit, and no value is shorter than its `${...}`.
        let doc = DOC.replace("${profile}", &("p".repeat(200) + &"${tenant}".repeat(60)));
        assert!(parse_profile(&doc, None).is_err());
        // Too long with values the caller does not choose (tvm's session id,
        // nine times): the policy's, whoever asks.
        let doc = DOC.replace("${profile}", &"${session_id}".repeat(9));
        let e = plan_for(&doc, "acme").unwrap_err();
        assert_eq!(
            e,
            PlanError::Render(RenderError::TagTooLong("profile".into()))
        );
        assert!(!e.from_caller());
    }

    #[test]
    fn a_bind_too_long_with_the_callers_values_is_the_callers() {
        let three = "${caller.session_name}".repeat(3);
        let doc = DOC.replace(
            "bind: {tenant: \"${caller.session_name}\"}",
            &format!("bind: {{tenant: \"{three}\"}}"),
        );
        let set = PolicySet::new([parse_profile(&doc, None).unwrap()]);
        let request = VendRequest {
            profile: "orders-tenant".into(),
            duration_seconds: None,
            attributes: Default::default(),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let decide_for = |name: &str| {
            let arn = format!("arn:aws:sts::111122223333:assumed-role/orders-task/{name}");
            let caller = Principal::parse(&arn, None).unwrap();
            decide(&set, &caller, &request, &GateState::default(), now).map(|_| ())
        };
        assert_eq!(decide_for("acme"), Ok(()));
        // 3 x 64 characters: over the 128 a bound value may have.
        let e = decide_for(&"a".repeat(64)).unwrap_err();
        assert!(matches!(e, Denial::ValuesTooLong { .. }), "{e:?}");
    }

    #[test]
    fn a_grant_plans_the_call_and_the_record_from_the_same_facts() {
        let set = PolicySet::new([parse_profile(DOC, None).unwrap()]);
        let caller = Principal::parse(
            "arn:aws:sts::111122223333:assumed-role/orders-task/acme",
            None,
        )
        .unwrap();
        let request = VendRequest {
            profile: "orders-tenant".into(),
            duration_seconds: Some(1200),
            attributes: Default::default(),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let grant = decide(&set, &caller, &request, &GateState::default(), now).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let ctx = VendContext {
            session_id: id,
            request_id: "req-1",
            now,
            retention: chrono::Duration::days(90),
            lineage: None,
        };
        let p = plan(&grant, &caller, ctx).unwrap();
        assert_eq!(p.assume.source_identity, format!("tvm-{id}"));
        assert_eq!(p.assume.role_session_name, format!("acme.{id}"));
        let vended = Principal::parse(
            &format!(
                "arn:aws:sts::111122223333:assumed-role/orders-tenant/{}",
                p.assume.role_session_name
            ),
            None,
        )
        .unwrap();
        assert_eq!(crate::render::vended_session_id(&vended), Some(id));
        // A vend for a vended session carries the first vend's caller,
        // SourceIdentity and grant, and passes them on.
        let first = Lineage::of(&SessionRecordView {
            caller: "arn:aws:iam::111122223333:role/first-caller",
            source_identity: "tvm-ffffffffffffffffffffffffffffffff",
            via_kind: "break_glass",
            via_id: Some("e1"),
        });
        let again = plan(
            &grant,
            &caller,
            VendContext {
                lineage: Some(&first),
                ..ctx
            },
        )
        .unwrap();
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(again
            .assume
            .tags
            .contains(&tag("tvm-caller", &first.caller)));
        assert!(again
            .assume
            .tags
            .contains(&tag("tvm-via", "break_glass:e1")));
        assert!(again.assume.tags.contains(&tag("tvm-session", id)));
        assert!(again.assume.tags.contains(&tag(
            "tvm-vended-by",
            "arn:aws:iam::111122223333:role/orders-task"
        )));
        assert_eq!(again.assume.source_identity, first.source_identity);
        assert_eq!(again.session.source_identity, first.source_identity);
        assert_eq!(again.session.lineage.as_ref(), Some(&first));
        assert_eq!(p.assume.duration_seconds, 1200);
        assert!(p
            .assume
            .policy
            .as_deref()
            .unwrap()
            .contains(&format!("b/acme/{id}")));
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            p.assume.tags,
            [
                tag("profile", "orders-tenant"),
                tag("tenant", "acme"),
                tag("tvm-caller", "arn:aws:iam::111122223333:role/orders-task"),
                tag("tvm-session", id),
                tag("tvm-via", "rule"),
            ]
        );
        assert_eq!(
            p.assume.transitive_tag_keys,
            ["tvm-caller", "tvm-session", "tvm-via"]
        );
        assert_eq!(
            p.session.caller,
            "arn:aws:iam::111122223333:role/orders-task"
        );
        assert_eq!(p.session.source_identity, p.assume.source_identity);
        assert_eq!(p.session.role_arn, p.assume.role_arn);
        assert_eq!((p.session.expires_at - now).num_seconds(), 1200);
        assert_eq!(
            (p.session.delete_after - p.session.expires_at).num_days(),
            90
        );
        let shown = p.assume.to_string();
        assert!(shown.contains("tag:      tenant=acme") && shown.contains("session policy:"));
    }
}
