use std::collections::HashMap;

use super::*;
use crate::status::SessionStatus;

const FIXTURE: &str = include_str!("../../../../fixtures/cloudtrail/lookup-events.json");
const SID: &str = "0123456789abcdef0123456789abcdef";
const ROLE: &str = "arn:aws:iam::111122223333:role/tvm/orders-tenant";

fn fixture() -> Vec<Event> {
    let v: Value = serde_json::from_str(FIXTURE).unwrap();
    v["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Event::parse(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect()
}

fn at(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t).unwrap().timestamp()
}

fn record() -> SessionView {
    SessionView {
        session_id: SID.into(),
        caller: "arn:aws:iam::111122223333:role/orders-task".into(),
        caller_arn: "arn:aws:sts::111122223333:assumed-role/orders-task/acme".into(),
        profile: "orders-tenant".into(),
        role_arn: ROLE.into(),
        rule: "tenants".into(),
        via: "policy".into(),
        via_id: None,
        origin: None,
        origin_via: None,
        duration_seconds: 900,
        issued_at: at("2026-12-02T09:00:01Z"),
        expires_at: at("2026-12-02T09:15:01Z"),
        source_identity: format!("tvm-{SID}"),
        role_session_name: Some(format!("acme.{SID}")),
        status: SessionStatus::Issued,
        revoked_at: None,
    }
}

fn protected() -> Protected {
    Protected::new([ROLE.to_string()])
}

fn audit(events: &[Event], records: &[SessionView]) -> Vec<Finding> {
    let by_id: HashMap<&str, &SessionView> =
        records.iter().map(|r| (r.session_id.as_str(), r)).collect();
    assumptions(events, &protected(), |id| by_id.get(id).copied())
}

fn whys(findings: &[Finding]) -> Vec<(String, Bypass)> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::AssumedWithoutTvm { event_id, why, .. } => {
                Some((event_id.chars().take(8).collect(), why.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_documented_record_format_parses() {
    let events = fixture();
    assert_eq!(events.len(), 4);
    let tvm = events.iter().find(|e| e.id.starts_with("1111")).unwrap();
    assert_eq!(tvm.name, "AssumeRole");
    assert_eq!(tvm.role_arn.as_deref(), Some(ROLE));
    assert_eq!(
        tvm.source_identity.as_deref(),
        Some(format!("tvm-{SID}").as_str())
    );
    assert_eq!(tvm.time, at("2026-12-02T09:00:01Z"));
    let denied = events.iter().find(|e| e.id.starts_with("4444")).unwrap();
    assert_eq!(denied.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(
        denied.caller_source_identity.as_deref(),
        Some(format!("tvm-{SID}").as_str())
    );
    assert!(Event::parse("{}").is_err());
    assert!(Event::parse("not json").is_err());
}

#[test]
fn tvm_vends_pass_and_every_other_assumption_of_a_protected_role_is_found() {
    let findings = audit(&fixture(), &[record()]);
    // The developer's AssumeRole (no SourceIdentity), and the vended session
    // chaining into another /tvm/ role (it inherits tvm's SourceIdentity, but
    // its session name names no vend).
    assert_eq!(
        whys(&findings),
        [
            ("22222222".into(), Bypass::NoTvmSourceIdentity),
            ("33333333".into(), Bypass::NoRecord),
        ]
    );
    // Without the record, tvm's own vend is no longer accounted for.
    assert_eq!(whys(&audit(&fixture(), &[]))[0].1, Bypass::NoRecord);
}

fn assume(id: &str, time: i64, role: &str, name: &str, si: Option<&str>) -> Event {
    Event {
        id: id.into(),
        time,
        source: "sts.amazonaws.com".into(),
        name: "AssumeRole".into(),
        caller_arn: Some("arn:aws:iam::111122223333:user/mallory".into()),
        caller_source_identity: None,
        error_code: None,
        role_arn: Some(role.into()),
        role_session_name: Some(name.into()),
        source_identity: si.map(str::to_string),
    }
}

#[test]
fn names_copied_from_cloudtrail_do_not_pass_for_a_vend() {
    let r = record();
    let si = r.source_identity.clone();
    let name = r.role_session_name.clone().unwrap();
    let t = r.issued_at;
    let events = [
        // tvm's vend, then the same names replayed at once and an hour later.
        assume("a-vend", t, ROLE, &name, Some(&si)),
        assume("b-replay-now", t + 1, ROLE, &name, Some(&si)),
        assume("c-replay-late", t + 3600, ROLE, &name, Some(&si)),
        // Into another protected role, under another name, another SourceIdentity.
        assume(
            "d-other-role",
            t,
            "arn:aws:iam::111122223333:role/tvm/payments",
            &name,
            Some(&si),
        ),
        assume("e-other-name", t, ROLE, &format!("x.{SID}"), Some(&si)),
        assume(
            "f-other-si",
            t,
            ROLE,
            &name,
            Some("tvm-ffffffffffffffffffffffffffffffff"),
        ),
        // A made-up tvm- SourceIdentity, a case-changed role ARN.
        assume(
            "g-made-up",
            t,
            ROLE,
            "x.ffffffffffffffffffffffffffffffff",
            Some("tvm-ffffffffffffffffffffffffffffffff"),
        ),
        assume(
            "h-case",
            t,
            "arn:aws:iam::111122223333:role/TVM/Orders-Tenant",
            "h",
            None,
        ),
    ];
    let got = whys(&audit(&events, &[r]));
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(id, why)| {
            let kind = match why {
                Bypass::NoTvmSourceIdentity => "no-si",
                Bypass::NoRecord => "no-record",
                Bypass::Mismatch(_) => "mismatch",
                Bypass::Duplicate => "duplicate",
            };
            (&id[..1], kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("d", "mismatch"),
            ("e", "mismatch"),
            ("f", "mismatch"),
            ("g", "no-record"),
            ("h", "no-si"),
            ("b", "duplicate"),
            ("c", "mismatch"),
        ]
    );
}

#[test]
fn a_refused_retry_does_not_use_the_vend_up() {
    let r = record();
    let si = r.source_identity.clone();
    let name = r.role_session_name.clone().unwrap();
    let mut throttled = assume("a", r.issued_at, ROLE, &name, Some(&si));
    throttled.error_code = Some("Throttling".into());
    let retried = assume("b", r.issued_at + 1, ROLE, &name, Some(&si));
    assert!(audit(
        &[throttled.clone(), retried.clone()],
        std::slice::from_ref(&r)
    )
    .is_empty());
    // A vend that failed at STS assumed nothing: a success under its names
    // is someone else's.
    let mut failed = r;
    failed.status = SessionStatus::Failed;
    let found = whys(&audit(&[throttled, retried], &[failed]));
    assert!(
        matches!(&found[..], [(id, Bypass::Mismatch(_))] if id == "b"),
        "{found:?}"
    );
}

#[test]
fn only_protected_roles_and_only_assume_calls_are_audited() {
    let mut other = assume("a", 0, "arn:aws:iam::111122223333:role/ci", "x", None);
    assert!(audit(std::slice::from_ref(&other), &[]).is_empty());
    other.role_arn = Some("arn:aws:iam::111122223333:role/tvm/nested/deep".into());
    assert_eq!(audit(std::slice::from_ref(&other), &[]).len(), 1);
    other.name = "GetRoleCredentials".into();
    assert!(audit(&[other], &[]).is_empty());
    // Known by account and name: an ARN without the path, or with another
    // path or case, is the same role to STS.
    let ci = Protected::new(["arn:aws:iam::111122223333:role/ci/deploy".to_string()]);
    for same in [
        "arn:aws:iam::111122223333:role/deploy",
        "arn:aws:iam::111122223333:role/other/path/DEPLOY",
    ] {
        assert!(ci.covers(same), "{same}");
    }
    assert!(!ci.covers("arn:aws:iam::444455556666:role/ci/deploy"));
    assert!(!ci.covers("arn:aws:iam::111122223333:role/ci/deployer"));
    let mut web = assume("w", 0, ROLE, "x", None);
    web.name = "AssumeRoleWithWebIdentity".into();
    assert_eq!(whys(&audit(&[web], &[]))[0].1, Bypass::NoTvmSourceIdentity);
}

#[test]
fn calls_after_a_revocation_are_found_with_what_aws_answered() {
    let mut r = record();
    let revoked_at = at("2026-12-02T09:08:00Z");
    r.revoked_at = Some(revoked_at);
    let events = fixture();
    let found = after_revocation(&r, &events);
    assert_eq!(found.len(), 1, "{found:?}");
    let Finding::UsedAfterRevocation {
        event_name,
        outcome,
        session_id,
        ..
    } = &found[0]
    else {
        panic!("{found:?}")
    };
    assert_eq!(
        (event_name.as_str(), outcome, session_id.as_str()),
        (
            "DescribeTable",
            &Outcome::Refused("AccessDenied".into()),
            SID
        )
    );
    // The chained AssumeRole at 09:06 came before the revocation.
    r.revoked_at = Some(at("2026-12-02T09:05:00Z"));
    let names: Vec<String> = after_revocation(&r, &events)
        .iter()
        .map(|f| match f {
            Finding::UsedAfterRevocation {
                event_name,
                outcome,
                ..
            } => {
                format!("{event_name} {outcome:?}")
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "AssumeRole Succeeded",
            "DescribeTable Refused(\"AccessDenied\")"
        ]
    );
    // Another role's session of the same name is not this session.
    r.role_arn = "arn:aws:iam::111122223333:role/tvm/other".into();
    assert!(after_revocation(&r, &events).is_empty());
    // A session never revoked has nothing after its revocation.
    let fresh = record();
    assert!(after_revocation(&fresh, &events).is_empty());
}

#[test]
fn a_discarded_session_accounts_for_its_assume_role() {
    // Minted beside a gate transaction that refused, dropped unsent: its
    // AssumeRole leads back to its record, like any vend's.
    let mut r = record();
    r.status = SessionStatus::Discarded;
    let events = fixture();
    let tvm = events.iter().find(|e| e.id.starts_with("1111")).unwrap();
    assert!(
        audit(std::slice::from_ref(tvm), &[r.clone()]).is_empty(),
        "its AssumeRole is tvm's"
    );
    let mut failed = r.clone();
    failed.status = SessionStatus::Failed;
    assert_eq!(
        whys(&audit(std::slice::from_ref(tvm), &[failed])).len(),
        1,
        "unlike a vend STS refused"
    );
}
