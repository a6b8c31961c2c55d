//! OIDC callers through the same decision, rendering and plan as AWS ones:
//! issuers pinned, subjects and claims matched, caller values whitelisted.

use super::*;
use crate::oidc::{caller as oidc_caller, Trust};
use crate::policy::parse_profile;
use crate::principal::stable_principal;
use crate::revocation::caller_tag;
use crate::vend::{plan, VendContext};
use chrono::TimeZone;
use serde_json::{json, Value};

const ISS: &str = "https://id.example.com";
const OTHER: &str = "https://other.example.com";

const NOTES: &str = r#"
profile: notes
role_arn: arn:aws:iam::111122223333:role/tvm/notes
session_policy: |
  {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],
    "Resource":"arn:aws:dynamodb:*:111122223333:table/notes",
    "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${caller.subject}"]}}}]}
session_tags: {tenant: "${tenant}", issuer: "${caller.issuer}"}
rules:
  - {name: suspended, effect: deny, claims: {status: suspended}}
  - {name: aws-deny, effect: deny, principals: ["*"], session_names: [blocked-*]}
  - {name: members, effect: allow, issuers: ["https://id.example.com"], claims: {groups: notes-users},
     bind: {tenant: "${claim.tenant}"}}
  - {name: ecs, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/notes-task/*"],
     bind: {tenant: "${caller.session_name}"}}
"#;

fn set() -> PolicySet {
    PolicySet::new([parse_profile(NOTES, Some("notes")).unwrap()])
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// A verified token's caller; a `null` in `extra` removes that claim.
fn try_token(iss: &str, sub: &str, extra: Value) -> Result<Principal, crate::oidc::TokenError> {
    let mut c = json!({"iss": iss, "sub": sub, "aud": "notes", "exp": now().timestamp() + 600,
                       "groups": ["notes-users"], "tenant": "acme"});
    let claims = c.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.remove(k);
        } else {
            claims.insert(k.clone(), v.clone());
        }
    }
    let trusted = [ISS.to_string(), OTHER.to_string()];
    let audiences = ["notes".to_string()];
    oidc_caller(
        claims,
        Trust {
            issuers: &trusted,
            audiences: &audiences,
        },
        now().timestamp(),
    )
    .map(Principal::from)
}

fn token(iss: &str, sub: &str, extra: Value) -> Principal {
    try_token(iss, sub, extra).unwrap()
}

fn req() -> VendRequest {
    VendRequest {
        profile: "notes".into(),
        duration_seconds: None,
        attributes: BTreeMap::new(),
    }
}

fn planned(who: &Principal) -> Result<crate::vend::VendPlan, String> {
    let set = set();
    let g = decide(&set, who, &req(), &GateState::default(), now()).map_err(|d| d.to_string())?;
    plan(
        &g,
        who,
        VendContext {
            session_id: "0123456789abcdef0123456789abcdef",
            request_id: "r",
            now: now(),
            retention: chrono::Duration::days(1),
            lineage: None,
        },
    )
    .map_err(|e| format!("{e} (from the caller: {})", e.from_caller()))
}

#[test]
fn an_oidc_caller_gets_a_policy_scoped_to_its_subject_and_another_differs_only_in_its_id() {
    let alice = planned(&token(ISS, "user-alice", json!({}))).unwrap();
    let bob = planned(&token(ISS, "user-bob", json!({}))).unwrap();
    let (pa, pb) = (alice.assume.policy.unwrap(), bob.assume.policy.unwrap());
    assert!(pa.contains(r#"["user-alice"]"#), "{pa}");
    assert_eq!(pa.replace("user-alice", "user-bob"), pb);
    assert!(alice
        .assume
        .tags
        .contains(&("tenant".into(), "acme".into())));
    assert!(alice.assume.tags.contains(&("issuer".into(), ISS.into())));
    assert_eq!(
        alice.session.caller,
        "oidc:https://id.example.com#user-alice"
    );
    assert_eq!(alice.session.account, "");
    assert!(alice.assume.role_session_name.starts_with("user-alice."));
}

#[test]
fn a_token_of_another_trusted_issuer_is_not_the_pinned_issuers_user() {
    let set = set();
    let d = decide(
        &set,
        &token(OTHER, "user-alice", json!({})),
        &req(),
        &GateState::default(),
        now(),
    );
    assert_eq!(d.err(), Some(Denial::NoMatchingRule));
}

#[test]
fn claims_decide_and_a_deny_on_a_claim_wins() {
    let d = |extra| {
        decide(
            &set(),
            &token(ISS, "u1", extra),
            &req(),
            &GateState::default(),
            now(),
        )
        .map(|g| g.rule.name.clone())
    };
    assert_eq!(d(json!({"groups": ["other"]})), Err(Denial::NoMatchingRule));
    assert_eq!(
        d(json!({"groups": "notes-users"})).as_deref(),
        Ok("members")
    );
    assert_eq!(
        d(json!({"status": "suspended"})),
        Err(Denial::Denied {
            rule: "suspended".into()
        })
    );
    // A claim is not another claim, nor a subject.
    assert_eq!(
        d(json!({"groups": [], "role": "notes-users"})),
        Err(Denial::NoMatchingRule)
    );
}

#[test]
fn a_subject_or_claim_that_tries_to_break_the_template_refuses_the_vend() {
    for sub in [r#"a"b"#, "a*", "${x}", "a/b", "auth0|1", "a}b"] {
        let e = planned(&token(ISS, sub, json!({}))).unwrap_err();
        assert!(
            e.contains("caller.subject") && e.ends_with("(from the caller: true)"),
            "{sub}: {e}"
        );
    }
    assert!(try_token(ISS, "é", json!({})).is_err());
    for tenant in [r#"x","Resource":"*"#, "*", "${caller.subject}", "a b", ""] {
        let p = token(ISS, "u1", json!({ "tenant": tenant }));
        let e = decide(&set(), &p, &req(), &GateState::default(), now()).unwrap_err();
        assert!(matches!(e, Denial::CallerValue { .. }), "{tenant:?}: {e:?}");
    }
    // A claim that is missing is the token's problem too.
    let p = token(ISS, "u1", json!({"tenant": null}));
    let e = decide(&set(), &p, &req(), &GateState::default(), now()).unwrap_err();
    assert!(matches!(e, Denial::CallerValue { .. }), "{e:?}");
}

#[test]
fn aws_rules_never_apply_to_oidc_callers_nor_oidc_rules_to_aws_callers() {
    let task = Principal::parse(
        "arn:aws:sts::111122223333:assumed-role/notes-task/acme",
        None,
    )
    .unwrap();
    let set = set();
    let g = decide(&set, &task, &req(), &GateState::default(), now()).unwrap();
    assert_eq!(g.rule.name, "ecs");
    // A subject that looks like an AWS caller is an oidc caller still.
    let lookalike = token(
        ISS,
        "arn:aws:sts::111122223333:assumed-role/notes-task/acme",
        json!({"groups": []}),
    );
    assert_eq!(
        decide(&set, &lookalike, &req(), &GateState::default(), now()).err(),
        Some(Denial::NoMatchingRule)
    );
}

#[test]
fn a_rule_that_can_vend_for_oidc_callers_pins_its_issuer_and_does_not_mix_kinds() {
    let doc = |rule: &str| {
        format!("profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules:\n  - {rule}\n")
    };
    for (rule, field) in [
        ("{name: a, effect: allow, subjects: ['*']}", "rules[0].issuers"),
        ("{name: a, effect: allow, claims: {tenant: acme}}", "rules[0].issuers"),
        ("{name: a, effect: require_approval, subjects: [u1]}", "rules[0].issuers"),
        ("{name: a, effect: allow, issuers: ['http://id.example.com']}", "rules[0].issuers[0]"),
        ("{name: a, effect: allow, issuers: ['https://id.example.com'], accounts: ['111122223333']}", "rules[0].issuers"),
        ("{name: a, effect: allow, issuers: ['https://id.example.com'], kinds: [user]}", "rules[0].kinds"),
        ("{name: a, effect: allow, kinds: [oidc]}", "rules[0].principals"),
        // The issuer alone admits every token it signs for this audience.
        ("{name: a, effect: allow, issuers: ['https://id.example.com']}", "rules[0].subjects"),
        ("{name: a, effect: allow, issuers: ['https://id.example.com'], subjects: ['*'], claims: {x: '?*'}}", "rules[0].subjects"),
    ] {
        let e = parse_profile(&doc(rule), Some("p")).unwrap_err().to_string();
        assert!(e.contains(field), "{rule}: {e}");
    }
    for ok in [
        "{name: a, effect: allow, issuers: ['https://id.example.com'], subjects: ['repo:acme/*'], kinds: [oidc]}",
        "{name: a, effect: deny, subjects: ['bad-*']}",
    ] {
        parse_profile(&doc(ok), Some("p")).unwrap();
    }
}

#[test]
fn the_stable_principal_is_issuer_and_subject_and_its_tag_fits_sts() {
    let p = token(ISS, "User-1", json!({}));
    assert_eq!(
        stable_principal(&p.arn).as_deref(),
        Some(p.stable_id().as_str())
    );
    assert_ne!(p.stable_id(), token(ISS, "user-1", json!({})).stable_id());
    assert_ne!(p.stable_id(), token(OTHER, "User-1", json!({})).stable_id());
    assert_eq!(stable_principal("oidc:https://id.example.com"), None);
    assert_eq!(stable_principal("oidc:ftp://x#u"), None);
    let long = token(ISS, &"s|".repeat(120), json!({}));
    let tag = caller_tag(&long.stable_id());
    assert!(
        tag.starts_with("sha256:") && tag.len() <= crate::limits::MAX_TAG_VALUE,
        "{tag}"
    );
    assert_eq!(
        caller_tag(&p.stable_id()),
        "oidc:https://id.example.com=23User-1"
    );
}
