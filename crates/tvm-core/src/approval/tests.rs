//! Who may act on requests and break-glass events, and the one-way states.

use super::*;
use crate::policy::parse_profile;

const DOC: &str = r#"
profile: p
role_arn: arn:aws:iam::111122223333:role/r
rules:
  - {name: humans, effect: require_approval, role_names: [dev], accounts: ["111122223333"]}
  - {name: oncall, effect: break_glass, role_names: [oncall], accounts: ["111122223333"]}
approval: {approvers: ["arn:aws:sts::111122223333:assumed-role/sec/*"], required: 2, ttl: 900}
break_glass: {principals: ["arn:aws:sts::111122223333:assumed-role/oncall/*"], max_duration: 1800, min_justification: 20}
"#;

fn profile() -> Profile {
    parse_profile(DOC, None).unwrap()
}

fn who(arn: &str) -> Principal {
    Principal::parse(arn, None).unwrap()
}

const DEV: &str = "arn:aws:sts::111122223333:assumed-role/dev/jane";
const SEC: &str = "arn:aws:sts::111122223333:assumed-role/sec/bob";

fn request() -> RequestView {
    new_request(
        "r1".into(),
        &who(DEV),
        &profile(),
        Some(3600),
        "",
        Asked::default(),
        1000,
    )
    .unwrap()
}

#[test]
fn states_move_one_way_and_expire_by_time() {
    use RequestStatus::*;
    for next in [Approved, Denied, Cancelled] {
        assert!(Pending.may_become(next));
        for done in [Approved, Denied, Cancelled, Expired] {
            assert!(!done.may_become(next), "{done} -> {next}");
        }
    }
    assert!(!Pending.may_become(Pending) && !Pending.may_become(Expired));
    assert_eq!(Pending.at(100, 100), Expired);
    assert_eq!(Approved.at(100, 99), Approved);
    assert_eq!(Denied.at(100, 1000), Denied);
    assert_eq!(Expired.stored(), Pending);
    assert_eq!(BreakGlassStatus::Open.at(10, 10), BreakGlassStatus::Expired);
    for s in RequestStatus::ALL {
        assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
}

#[test]
fn a_request_is_pending_for_a_day_for_the_callers_principal_within_the_profile_cap() {
    let r = request();
    assert_eq!(r.status, RequestStatus::Pending);
    assert_eq!(r.expires_at, 1000 + PENDING_SECONDS);
    assert_eq!(r.caller, "arn:aws:iam::111122223333:role/dev");
    assert_eq!((r.required, r.duration_seconds), (2, 3600));
    assert_eq!(r.justification, VEND_JUSTIFICATION);
}

#[test]
fn only_the_requester_cancels_and_only_other_approvers_decide() {
    let r = request();
    let p = profile();
    // Another session of the requester's role (another person in the same
    // permission set) may not approve, nor withdraw the request: only the
    // exact caller that asked cancels.
    let me_again = who("arn:aws:sts::111122223333:assumed-role/dev/sec");
    assert_eq!(
        may_act(RequestAction::Cancel, &r, Some(&p), &me_again),
        Err(Refusal::NotRequester)
    );
    assert_eq!(
        may_act(RequestAction::Cancel, &r, Some(&p), &who(DEV)),
        Ok(())
    );
    assert_eq!(
        may_act(RequestAction::Approve, &r, Some(&p), &me_again),
        Err(Refusal::OwnRequest)
    );
    // The requester's session name under an approver role (another
    // permission set, or another account) is the same person.
    for same_person in [
        "arn:aws:sts::111122223333:assumed-role/sec/jane",
        "arn:aws:sts::111122223333:assumed-role/sec/JANE",
        "arn:aws:sts::444455556666:assumed-role/sec/jane",
        "arn:aws:iam::111122223333:user/jane",
        "arn:aws:sts::111122223333:assumed-role/sec/Jane@Example.com",
    ] {
        assert_eq!(
            may_act(RequestAction::Approve, &r, Some(&p), &who(same_person)),
            Err(Refusal::OwnRequest),
            "{same_person}"
        );
    }
    assert_eq!(
        may_act(RequestAction::Cancel, &r, Some(&p), &who(SEC)),
        Err(Refusal::NotRequester)
    );
    assert_eq!(
        may_act(RequestAction::Approve, &r, Some(&p), &who(SEC)),
        Ok(())
    );
    assert_eq!(
        may_act(RequestAction::Deny, &r, Some(&p), &who(SEC)),
        Ok(())
    );
    let stranger = who("arn:aws:sts::111122223333:assumed-role/other/x1");
    assert_eq!(
        may_act(RequestAction::Approve, &r, Some(&p), &stranger),
        Err(Refusal::NotApprover)
    );
    assert_eq!(
        may_act(RequestAction::Approve, &r, None, &who(SEC)),
        Err(Refusal::NotApprover),
        "a profile that is gone has no approvers"
    );
    assert!(may_see_request(&r, Some(&p), &who(SEC)) && !may_see_request(&r, Some(&p), &stranger));
    assert!(!quorum_reached(1, 2) && quorum_reached(2, 2));
    assert_eq!(approval_ttl(Some(&p)), 900);
    assert_eq!(approval_ttl(None), DEFAULT_APPROVAL_TTL);
}

#[test]
fn request_justifications_and_durations_are_bounded() {
    let ask = |j: &str, d: Option<u32>| CreateRequest {
        profile: "p".into(),
        justification: j.into(),
        duration_seconds: d,
        attributes: Default::default(),
    };
    assert_eq!(
        check_request(&ask("  deploy hotfix  ", None)),
        Ok("deploy hotfix")
    );
    for bad in [
        ask("short", None),
        ask("line\nbreak here", None),
        ask(&"x".repeat(1001), None),
    ] {
        assert!(check_request(&bad).is_err());
    }
    assert!(check_request(&ask("deploy hotfix", Some(899))).is_err());
    assert!(check_request(&ask("deploy hotfix", Some(3601))).is_err());
}

#[test]
fn break_glass_needs_a_listed_principal_a_known_reason_and_a_long_enough_justification() {
    let p = profile();
    let ask = |reason: &str, j: &str, d: Option<u32>| OpenBreakGlass {
        profile: "p".into(),
        reason: reason.into(),
        justification: j.into(),
        duration_seconds: d,
    };
    let oncall = who("arn:aws:sts::111122223333:assumed-role/oncall/ann");
    let good = ask("incident", "the orders table is on fire", None);
    let e = open_break_glass("e1".into(), &oncall, &p, &good, 50).unwrap();
    assert_eq!((e.status, e.ends_at), (BreakGlassStatus::Open, 50 + 1800));
    assert_eq!(
        open_break_glass("e1".into(), &who(DEV), &p, &good, 50),
        Err(BreakGlassError::Refused(Refusal::NotBreakGlassPrincipal))
    );
    for bad in [
        ask("boredom", "the orders table is on fire", None),
        ask("incident", "too short", None),
        ask("incident", "the orders table is on fire", Some(3600)),
        ask("incident", "the orders table is on fire", Some(60)),
    ] {
        assert!(matches!(
            open_break_glass("e1".into(), &oncall, &p, &bad, 50),
            Err(BreakGlassError::Bad(_))
        ));
    }
    assert!(may_manage_break_glass(&e, &[], &oncall));
    assert!(!may_manage_break_glass(&e, &[], &who(SEC)));
    let admins = [Glob::parse("arn:aws:sts::111122223333:assumed-role/sec/*").unwrap()];
    assert!(may_manage_break_glass(&e, &admins, &who(SEC)));
}

#[test]
fn an_oidc_requesters_own_aws_session_cannot_approve_its_request() {
    let claims = serde_json::json!({"iss": "https://id.example.com", "sub": "00u1abc", "aud": "a",
        "exp": 2000, "email": "Jane.Doe@example.com", "preferred_username": "jdoe"});
    let issuers = ["https://id.example.com".to_string()];
    let jane = Principal::from(
        crate::oidc::caller(
            claims.as_object().unwrap(),
            crate::oidc::Trust {
                issuers: &issuers,
                audiences: &[],
            },
            1000,
        )
        .unwrap(),
    );
    let r = new_request(
        "r2".into(),
        &jane,
        &profile(),
        None,
        "",
        Asked::default(),
        1000,
    )
    .unwrap();
    assert_eq!(r.persons, ["00u1abc", "jane.doe", "jdoe"]);
    let p = profile();
    for own in ["jane.doe@example.com", "JDoe", "00u1abc"] {
        let approver = who(&format!("arn:aws:sts::111122223333:assumed-role/sec/{own}"));
        assert_eq!(
            may_act(RequestAction::Approve, &r, Some(&p), &approver),
            Err(Refusal::OwnRequest),
            "{own}"
        );
    }
    assert_eq!(
        may_act(RequestAction::Approve, &r, Some(&p), &who(SEC)),
        Ok(())
    );
}
