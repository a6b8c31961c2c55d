//! The decision, by example and by property (deny always wins, no match is a
//! deny). Over 400 lines on purpose: every case reads the one fixture
//! profile at the top, which splitting would repeat.

use super::*;
use crate::policy::parse_profile;
use crate::render::{caller_vars, render};
use chrono::TimeZone;
use proptest::prelude::*;

const ORDERS: &str = r#"
profile: orders-tenant
role_arn: arn:aws:iam::111122223333:role/tvm/orders-tenant
duration: {default: 900, max: 1800}
session_policy: |
  {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],
    "Resource":"arn:aws:dynamodb:*:111122223333:table/orders",
    "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${tenant}"]}}}]}
session_tags: {tenant: "${tenant}"}
rules:
  - {name: blocked, effect: deny, session_names: [blocked-*], principals: ["*"]}
  - {name: ecs-orders, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/orders-task/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: saas, effect: allow, role_names: [saas-backend], accounts: ["111122223333"],
     attributes: {tenant: {pattern: "t-*"}}, bind: {tenant: "${attr.tenant}"}, max_duration: 900}
  - {name: humans, effect: require_approval, principals: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev*/*"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: oncall, effect: break_glass, role_names: [oncall], accounts: ["111122223333"],
     bind: {tenant: "${caller.session_name}"}}
  - {name: weekends, effect: deny, role_names: [weekend-*], time: {days: [sat, sun], timezone: Europe/Berlin}}
  - {name: weekend-allow, effect: allow, role_names: [weekend-*], accounts: ["111122223333"], bind: {tenant: "${caller.session_name}"}}
approval: {approvers: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Sec*/*"], required: 1, ttl: 3600}
break_glass: {principals: ["arn:aws:sts::111122223333:assumed-role/oncall/*"], max_duration: 1800, min_justification: 20}
"#;

fn set() -> PolicySet {
    PolicySet::new([parse_profile(ORDERS, Some("orders-tenant")).unwrap()])
}

fn caller(arn: &str) -> Principal {
    Principal::parse(arn, None).unwrap()
}

fn req(duration: Option<u32>) -> VendRequest {
    VendRequest {
        profile: "orders-tenant".into(),
        duration_seconds: duration,
        attributes: BTreeMap::new(),
    }
}

/// An approval of `who`'s request without attributes.
fn approved_for(
    who: &Principal,
    id: &str,
    duration_seconds: u32,
    valid_until: DateTime<Utc>,
) -> ApprovedRequest {
    ApprovedRequest {
        id: id.into(),
        duration_seconds,
        valid_until,
        caller_arn: who.arn.clone(),
        bindings: [(
            "tenant".to_string(),
            who.session_name.clone().unwrap_or_default(),
        )]
        .into(),
        attributes: BTreeMap::new(),
    }
}

/// Wednesday 2026-11-25 12:00 UTC.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

#[test]
fn given_an_ecs_task_when_it_asks_then_it_gets_its_tenant_and_the_default_duration() {
    let set = set();
    let g = decide(
        &set,
        &caller("arn:aws:sts::111122223333:assumed-role/orders-task/acme"),
        &req(None),
        &GateState::default(),
        wednesday(),
    )
    .unwrap();
    assert_eq!(g.rule.name, "ecs-orders");
    assert_eq!(g.via, Via::Rule);
    assert_eq!(g.duration_seconds, 900);
    assert_eq!(g.bindings.get("tenant"), Some("acme"));
}

#[test]
fn the_duration_is_capped_by_the_profile_and_the_rule() {
    let set = set();
    let task = caller("arn:aws:sts::111122223333:assumed-role/orders-task/acme");
    let g = decide(
        &set,
        &task,
        &req(Some(3600)),
        &GateState::default(),
        wednesday(),
    )
    .unwrap();
    assert_eq!(g.duration_seconds, 1800);
    for bad in [0, 899, 3601] {
        assert_eq!(
            decide(
                &set,
                &task,
                &req(Some(bad)),
                &GateState::default(),
                wednesday()
            )
            .unwrap_err(),
            Denial::BadDuration
        );
    }
}

#[test]
fn an_explicit_deny_wins_over_an_allow() {
    let set = set();
    let d = decide(
        &set,
        &caller("arn:aws:sts::111122223333:assumed-role/orders-task/blocked-1"),
        &req(None),
        &GateState::default(),
        wednesday(),
    )
    .unwrap_err();
    assert_eq!(
        d,
        Denial::Denied {
            rule: "blocked".into()
        }
    );
}

#[test]
fn time_windowed_deny_applies_only_inside_its_window() {
    let set = set();
    let c = caller("arn:aws:sts::111122223333:assumed-role/weekend-job/x1");
    assert!(decide(&set, &c, &req(None), &GateState::default(), wednesday()).is_ok());
    let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    assert_eq!(
        decide(&set, &c, &req(None), &GateState::default(), saturday).unwrap_err(),
        Denial::Denied {
            rule: "weekends".into()
        }
    );
}

#[test]
fn nothing_matching_is_a_deny_and_an_unknown_profile_is_too() {
    let set = set();
    let stranger = caller("arn:aws:sts::999999999999:assumed-role/other/x1");
    assert_eq!(
        decide(
            &set,
            &stranger,
            &req(None),
            &GateState::default(),
            wednesday()
        )
        .unwrap_err(),
        Denial::NoMatchingRule
    );
    let mut r = req(None);
    r.profile = "nope".into();
    assert_eq!(
        decide(&set, &stranger, &r, &GateState::default(), wednesday()).unwrap_err(),
        Denial::UnknownProfile
    );
}

#[test]
fn require_approval_never_vends_without_a_valid_approval() {
    let set = set();
    let dev = caller("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_1/jane");
    assert_eq!(
        decide(&set, &dev, &req(None), &GateState::default(), wednesday()).unwrap_err(),
        Denial::ApprovalRequired {
            rule: "humans".into()
        }
    );
    let expired = GateState {
        approval: Some(approved_for(&dev, "r1", 900, wednesday())),
        break_glass: None,
    };
    assert!(matches!(
        decide(&set, &dev, &req(None), &expired, wednesday()),
        Err(Denial::ApprovalRequired { .. })
    ));
    let approved = GateState {
        approval: Some(approved_for(
            &dev,
            "r1",
            1000,
            wednesday() + chrono::Duration::hours(1),
        )),
        break_glass: None,
    };
    let g = decide(&set, &dev, &req(Some(3600)), &approved, wednesday()).unwrap();
    assert_eq!(
        (g.via, g.duration_seconds),
        (Via::Approval("r1".into()), 1000)
    );
}

#[test]
fn break_glass_vends_only_while_open_and_for_the_time_left() {
    let set = set();
    let oncall = caller("arn:aws:sts::111122223333:assumed-role/oncall/sam");
    assert_eq!(
        decide(
            &set,
            &oncall,
            &req(None),
            &GateState::default(),
            wednesday()
        )
        .unwrap_err(),
        Denial::BreakGlassRequired {
            rule: "oncall".into()
        }
    );
    let open = |mins| GateState {
        approval: None,
        break_glass: Some(ActiveBreakGlass {
            id: "bg1".into(),
            ends_at: wednesday() + chrono::Duration::minutes(mins),
        }),
    };
    let g = decide(&set, &oncall, &req(Some(3600)), &open(20), wednesday()).unwrap();
    assert_eq!(
        (g.via, g.duration_seconds),
        (Via::BreakGlass("bg1".into()), 1200)
    );
    assert!(matches!(
        decide(&set, &oncall, &req(None), &open(5), wednesday()),
        Err(Denial::EndsTooSoon {
            seconds_left: 300,
            ..
        })
    ));
}

#[test]
fn attributes_must_be_declared_and_match_their_pattern() {
    let set = set();
    let saas = caller("arn:aws:sts::111122223333:assumed-role/saas-backend/worker");
    let with = |k: &str, v: &str| VendRequest {
        attributes: [(k.to_string(), v.to_string())].into(),
        ..req(None)
    };
    let g = decide(
        &set,
        &saas,
        &with("tenant", "t-acme"),
        &GateState::default(),
        wednesday(),
    )
    .unwrap();
    assert_eq!(g.bindings.get("tenant"), Some("t-acme"));
    for (k, v) in [
        ("tenant", "acme"),
        ("color", "t-x"),
        ("tenant", "t-\"x"),
        ("tenant", "t-*"),
    ] {
        assert!(
            matches!(
                decide(&set, &saas, &with(k, v), &GateState::default(), wednesday()),
                Err(Denial::BadAttribute { .. })
            ),
            "{k}={v}"
        );
    }
    let missing = decide(&set, &saas, &req(None), &GateState::default(), wednesday()).unwrap_err();
    assert_eq!(
        missing,
        Denial::BadAttribute {
            name: "tenant".into(),
            reason: "is required by this profile".into()
        }
    );
    // Attributes on a rule that declares none are refused, not dropped.
    let task = caller("arn:aws:sts::111122223333:assumed-role/orders-task/acme");
    assert!(matches!(
        decide(
            &set,
            &task,
            &with("tenant", "t-x"),
            &GateState::default(),
            wednesday()
        ),
        Err(Denial::BadAttribute { .. })
    ));
}

#[test]
fn profiles_listing_says_how_each_profile_can_be_had() {
    let set = set();
    let p = set.get("orders-tenant").unwrap();
    let at = wednesday();
    assert_eq!(
        access(
            &set,
            p,
            &caller("arn:aws:sts::111122223333:assumed-role/orders-task/a1"),
            at
        ),
        Some(Access::Allow)
    );
    assert_eq!(
        access(
            &set,
            p,
            &caller("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_1/j1"),
            at
        ),
        Some(Access::Approval)
    );
    assert_eq!(
        access(
            &set,
            p,
            &caller("arn:aws:sts::111122223333:assumed-role/oncall/s1"),
            at
        ),
        Some(Access::BreakGlass)
    );
    assert_eq!(
        access(
            &set,
            p,
            &caller("arn:aws:sts::111122223333:assumed-role/orders-task/blocked-1"),
            at
        ),
        None
    );
}

#[test]
fn a_session_named_like_a_privileged_user_is_not_that_user() {
    let doc = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules:\n  - {name: admins, effect: allow, kinds: [user], user_names: [admin], accounts: ['111122223333']}\n";
    let set = PolicySet::new([parse_profile(doc, None).unwrap()]);
    let mut r = req(None);
    r.profile = "p".into();
    let real = caller("arn:aws:iam::111122223333:user/admin");
    assert!(decide(&set, &real, &r, &GateState::default(), wednesday()).is_ok());
    // Anyone who may assume some role can call their session "admin".
    let pretender = caller("arn:aws:sts::111122223333:assumed-role/any-role/admin");
    assert_eq!(
        decide(&set, &pretender, &r, &GateState::default(), wednesday()).unwrap_err(),
        Denial::NoMatchingRule
    );
}

// ---------------------------------------------------------------- properties

fn arb_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_+=,.@-]{2,20}"
}

fn arb_caller() -> impl Strategy<Value = Principal> {
    (
        arb_name(),
        arb_name(),
        prop::sample::select(vec!["111122223333", "999988887777"]),
    )
        .prop_map(|(role, session, account)| {
            caller(&format!(
                "arn:aws:sts::{account}:assumed-role/{role}/{session}"
            ))
        })
}

/// A random profile: rules with random effects and random conditions drawn
/// from a small vocabulary, so that matches actually happen.
fn arb_profile() -> impl Strategy<Value = String> {
    let cond = prop::sample::select(vec![
        "principals: ['arn:aws:sts::111122223333:*']",
        "accounts: ['111122223333']",
        "accounts: ['999988887777']",
        "role_names: ['a*'], accounts: ['111122223333', '999988887777']",
        "role_names: ['*b*'], accounts: ['999988887777']",
        "session_names: ['*1*'], principals: ['arn:aws:sts::999988887777:*']",
    ]);
    let effect = prop::sample::select(vec!["allow", "deny", "require_approval", "break_glass"]);
    prop::collection::vec((effect, cond), 1..8).prop_map(|rules| {
        let mut doc = String::from("profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\napproval: {approvers: ['arn:aws:sts::111122223333:*']}\nbreak_glass: {principals: ['arn:aws:sts::111122223333:*']}\nrules:\n");
        for (i, (effect, cond)) in rules.iter().enumerate() {
            doc.push_str(&format!("  - {{name: r{i}, effect: {effect}, {cond}}}\n"));
        }
        doc
    })
}

proptest! {
    #[test]
    fn deny_always_wins(doc in arb_profile(), who in arb_caller()) {
        let set = PolicySet::new([parse_profile(&doc, None).unwrap()]);
        let profile = set.get("p").unwrap();
        let any_deny = profile.rules.iter().any(|r| r.effect == Effect::Deny && r.applies(&who, false, wednesday()));
        let state = GateState {
            approval: Some(approved_for(&who, "a", 3600, wednesday() + chrono::Duration::hours(1))),
            break_glass: Some(ActiveBreakGlass { id: "b".into(), ends_at: wednesday() + chrono::Duration::hours(1) }),
        };
        let mut r = req(None);
        r.profile = "p".into();
        let result = decide(&set, &who, &r, &state, wednesday());
        if any_deny {
            let denied = matches!(result, Err(Denial::Denied { .. }));
            prop_assert!(denied, "a matching deny did not win");
        }
    }

    #[test]
    fn no_match_is_a_deny(doc in arb_profile(), who in arb_caller()) {
        let set = PolicySet::new([parse_profile(&doc, None).unwrap()]);
        let profile = set.get("p").unwrap();
        let none = !profile.rules.iter().any(|r| r.applies(&who, false, wednesday()));
        let mut r = req(None);
        r.profile = "p".into();
        let result = decide(&set, &who, &r, &GateState::default(), wednesday());
        if none {
            prop_assert_eq!(result.unwrap_err(), Denial::NoMatchingRule);
        }
        // Without gate state, only an allow ever vends.
        if let Ok(g) = decide(&set, &who, &r, &GateState::default(), wednesday()) {
            prop_assert_eq!(g.rule.effect, Effect::Allow);
        }
    }

    #[test]
    fn fuzz_a_rendered_policy_is_json_with_the_template_structure(tenant in any::<String>()) {
        let set = set();
        let profile = set.get("orders-tenant").unwrap();
        let who = caller("arn:aws:sts::111122223333:assumed-role/orders-task/acme");
        let mut vars = caller_vars(&who);
        if vars.insert("tenant", &tenant).is_err() {
            // Refused, never escaped: every refused value breaks the whitelist.
            prop_assert!(tenant.is_empty() || tenant.len() > 128 || !tenant.chars().all(crate::template::is_value_char));
            return Ok(());
        }
        let rendered = render(profile, &vars).unwrap();
        let out: serde_json::Value = serde_json::from_str(rendered.policy.as_deref().unwrap()).unwrap();
        let template: serde_json::Value = serde_json::from_str(ORDERS_POLICY).unwrap();
        prop_assert_eq!(shape(&out), shape(&template));
        prop_assert_eq!(&out["Statement"][0]["Action"], &template["Statement"][0]["Action"]);
        prop_assert_eq!(&out["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"][0], &serde_json::Value::String(tenant));
    }

    #[test]
    fn fuzz_principal_parsing_never_panics(s in any::<String>()) {
        let _ = Principal::parse(&s, None);
    }

    #[test]
    fn fuzz_policy_parsing_never_panics(s in any::<String>()) {
        let _ = parse_profile(&s, None);
    }
}

const ORDERS_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],
    "Resource":"arn:aws:dynamodb:*:111122223333:table/orders",
    "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["${tenant}"]}}}]}"#;

/// The structure of a JSON value: keys, array lengths and value kinds.
fn shape(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", shape(v))).collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_json::Value::Array(a) => {
            format!("[{}]", a.iter().map(shape).collect::<Vec<_>>().join(","))
        }
        serde_json::Value::String(_) => "s".into(),
        other => other.to_string(),
    }
}

#[test]
fn a_grant_ends_with_the_window_of_the_rule_that_granted_it() {
    // A windowed admin grant is not carried on by an always-on read grant.
    let doc = r#"
profile: p
role_arn: arn:aws:iam::111122223333:role/r
session_tags: {access: "${access}"}
rules:
  - {name: office-admin, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"],
     time: {hours: "09:00-17:00"}, bind: {access: admin}}
  - {name: anytime-read, effect: allow, principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"],
     bind: {access: read}}
"#;
    let set = PolicySet::new([parse_profile(doc, None).unwrap()]);
    let who = caller("arn:aws:sts::111122223333:assumed-role/ops/ann");
    let mut r = req(Some(3600));
    r.profile = "p".into();
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 16, 40, 0).unwrap();
    let g = decide(&set, &who, &r, &GateState::default(), at).unwrap();
    assert_eq!(
        (g.rule.name.as_str(), g.duration_seconds),
        ("office-admin", 1200)
    );
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 16, 50, 0).unwrap();
    assert!(matches!(
        decide(&set, &who, &r, &GateState::default(), at),
        Err(Denial::EndsTooSoon {
            seconds_left: 600,
            ..
        })
    ));
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 17, 0, 0).unwrap();
    let g = decide(&set, &who, &r, &GateState::default(), at).unwrap();
    assert_eq!(
        (g.rule.name.as_str(), g.duration_seconds),
        ("anytime-read", 3600)
    );
}

#[test]
fn federated_names_grant_nothing_unless_a_rule_says_kinds_federated_user() {
    let doc = r#"
profile: p
role_arn: arn:aws:iam::111122223333:role/r
rules:
  - {name: partners, effect: allow, principals: ["arn:aws:sts::111122223333:federated-user/partner-*"]}
  - {name: opted, effect: allow, kinds: [federated-user], principals: ["arn:aws:sts::111122223333:federated-user/vendor-*"]}
  - {name: no-evil, effect: deny, principals: ["arn:aws:sts::*:federated-user/*-evil"]}
approval: {approvers: ["arn:aws:sts::111122223333:federated-user/sec-*"]}
"#;
    let set = PolicySet::new([parse_profile(doc, None).unwrap()]);
    let p = set.get("p").unwrap();
    let mut r = req(None);
    r.profile = "p".into();
    let fed = |n: &str| caller(&format!("arn:aws:sts::111122223333:federated-user/{n}"));
    let none = GateState::default();
    assert_eq!(
        decide(&set, &fed("partner-1"), &r, &none, wednesday()).unwrap_err(),
        Denial::NoMatchingRule
    );
    assert!(decide(&set, &fed("vendor-1"), &r, &none, wednesday()).is_ok());
    // A deny applies to federated users as written.
    assert!(matches!(
        decide(&set, &fed("vendor-evil"), &r, &none, wednesday()),
        Err(Denial::Denied { .. })
    ));
    // Authority globs never name a federated user.
    assert!(!crate::approval::is_approver(p, &fed("sec-alice")));
}

#[test]
fn a_vending_rule_on_session_names_needs_a_role_or_principal_beside_them() {
    let doc = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules:\n  - {name: a, effect: allow, accounts: ['111122223333'], session_names: [alice@example.com]}\n";
    let e = parse_profile(doc, None).unwrap_err();
    assert!(e.to_string().contains("rules[0].session_names"), "{e}");
    let ok = "profile: p\nrole_arn: arn:aws:iam::111122223333:role/r\nrules:\n  - {name: a, effect: allow, accounts: ['111122223333'], role_names: [dev], session_names: [alice@example.com]}\n";
    assert!(parse_profile(ok, None).is_ok());
}
