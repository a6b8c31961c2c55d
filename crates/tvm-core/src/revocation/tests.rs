use super::*;

fn doc(r: &Revocations, now: i64) -> Value {
    serde_json::from_str(&r.render(&[], now).unwrap()).unwrap()
}

fn sid(i: usize) -> String {
    format!("tvm-{i:032x}")
}

#[test]
fn terms_bound_the_reason_and_the_duration() {
    let t = Terms::parse("  leaked in a log  ", None).unwrap();
    assert_eq!((t.reason.as_str(), t.seconds), ("leaked in a log", 3600));
    assert_eq!(t.until(10), 3610);
    assert_eq!(Terms::parse("no", None), Err(TermsError::Reason));
    assert_eq!(Terms::parse("a\nb c", None), Err(TermsError::Reason));
    assert_eq!(Terms::parse("leaked", Some(59)), Err(TermsError::Duration));
    assert_eq!(
        Terms::parse("leaked", Some(MAX_SECONDS + 1)),
        Err(TermsError::Duration)
    );
    assert!(Terms::parse("leaked", Some(MAX_SECONDS)).is_ok());
}

#[test]
fn tag_values_stay_in_the_sts_charset_and_never_collide() {
    let role = "arn:aws:iam::111122223333:role/a,b";
    assert_eq!(caller_tag(role), "arn:aws:iam::111122223333:role/a=2Cb");
    // `=` is escaped too, so a name that spells an escape is another value.
    assert_ne!(
        caller_tag("arn:aws:iam::1:role/a=2Cb"),
        caller_tag("arn:aws:iam::1:role/a,b")
    );
    assert_eq!(
        caller_tag("arn:aws:sts::111122223333:federated-user/*"),
        "arn:aws:sts::111122223333:federated-user/=2A"
    );
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(c);
    for s in ["arn:aws:iam::1:user/x+y=z,w@v", "a b\"c*d${e}", "ü"] {
        assert!(tag_value(s).chars().all(allowed), "{s}");
    }
    // The longest stable principal AWS can produce fits a tag value.
    let longest = format!("arn:aws-us-gov:iam::111122223333:role/{}", ",".repeat(64));
    assert!(caller_tag(&longest).len() <= crate::limits::MAX_TAG_VALUE);
}

#[test]
fn every_vend_carries_its_caller_session_and_grant() {
    let tags = own_tags(
        "arn:aws:iam::111122223333:role/orders-task",
        "0123456789abcdef0123456789abcdef",
        &via_tag("break_glass", Some("e1")),
        None,
    );
    assert_eq!(
        tags,
        [
            (
                TAG_CALLER.to_string(),
                "arn:aws:iam::111122223333:role/orders-task".to_string()
            ),
            (
                TAG_SESSION.to_string(),
                "0123456789abcdef0123456789abcdef".to_string()
            ),
            (TAG_VIA.to_string(), "break_glass:e1".to_string()),
        ]
    );
    assert_eq!(
        tags.len(),
        OWN_TAGS - 1,
        "tvm-vended-by only on vends by vended sessions"
    );
    assert_eq!(via_tag("rule", None), "rule");
}

#[test]
fn a_caller_is_one_statement_on_its_tag_and_issue_time() {
    let now = 1_800_000_000;
    let r = Revocations::new([Entry::caller(
        "arn:aws:iam::111122223333:role/orders-task",
        now,
        now + 3600,
    )]);
    let d = doc(&r, now);
    let s = &d["Statement"][2];
    assert_eq!(s["Effect"], "Deny");
    assert_eq!(s["Action"], "*");
    assert_eq!(
        s["Condition"]["StringEquals"]["aws:PrincipalTag/tvm-caller"],
        "arn:aws:iam::111122223333:role/orders-task"
    );
    // In-flight vends and chains made while IAM propagates are covered.
    assert_eq!(
        s["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        iso(now + MARGIN_SECONDS)
    );
    // A short revocation never reaches past the refusal of new vends.
    let short = Entry::caller("arn:aws:iam::1:role/r", now, now + 60);
    assert_eq!(short.term.issued_before, Some(now + 60));
}

#[test]
fn the_chain_guard_is_always_there() {
    let d = doc(&Revocations::default(), 0);
    let s = &d["Statement"];
    assert_eq!(s.as_array().unwrap().len(), 2);
    assert_eq!(s[0]["Action"], "sts:AssumeRole");
    assert_eq!(
        s[0]["Condition"]["StringNotEquals"]["aws:ResourceTag/tvm-revocable"],
        "true"
    );
    // A hop (a session chained from a tvm session under a name of its own)
    // calls no IAM-authorized API: it cannot vend through tvm.
    let hop = &s[1];
    assert_eq!(hop["Sid"], "NoApiCallsFromChains");
    assert_eq!(hop["Action"], "execute-api:Invoke");
    assert_eq!(
        hop["Condition"]["StringLike"]["aws:SourceIdentity"],
        "tvm-*"
    );
    assert_eq!(
        hop["Condition"]["StringNotLike"]["aws:userid"],
        "*.${aws:PrincipalTag/tvm-session}"
    );
    // Written to accounts, it keeps chains within them too.
    let accounts = ["111122223333".to_string(), "444455556666".to_string()];
    let d: Value =
        serde_json::from_str(&Revocations::default().render(&accounts, 0).unwrap()).unwrap();
    let pin = &d["Statement"][2];
    assert_eq!(pin["Sid"], "ChainOnlyWithinRevokedAccounts");
    assert_eq!(pin["Action"], "sts:AssumeRole");
    assert_eq!(
        pin["Condition"]["StringNotEquals"]["aws:ResourceAccount"],
        json!(accounts)
    );
}

#[test]
fn sessions_share_one_statement_and_leave_once_they_cannot_matter() {
    let now = 1_000_000;
    let mut r = Revocations::new([Entry::session("tvm-b", now), Entry::session("tvm-a", now)]);
    r.add(Entry::session("tvm-c", now - 4000));
    let d = doc(&r, now);
    assert_eq!(
        d["Statement"][2]["Condition"]["StringEquals"]["aws:SourceIdentity"],
        json!(["tvm-a", "tvm-b"]),
        "tvm-c was revoked more than an hour and the margin ago"
    );
    assert_eq!(r.expired(now), [Target::Session("tvm-c".into())]);
    r.prune(now);
    assert_eq!(r.len(), 2);
}

#[test]
fn revoking_again_widens_never_narrows() {
    let mut r = Revocations::default();
    assert!(r.add(Entry::caller("c", 1000, 100_000)));
    assert!(
        !r.add(Entry::caller("c", 1000, 100_000)),
        "a retry changes nothing"
    );
    assert!(!r.add(Entry::caller("c", 900, 100_000)));
    assert_eq!(
        r.get(&Target::Caller("c".into())).unwrap().issued_before,
        Some(1300)
    );
    assert!(r.add(Entry::caller("c", 2000, 100_000)));
    assert_eq!(
        r.get(&Target::Caller("c".into())).unwrap().issued_before,
        Some(2300)
    );
}

#[test]
fn targets_round_trip_through_their_stored_names() {
    for t in [
        Target::Session("tvm-x".into()),
        Target::Caller("arn:aws:iam::1:role/a=2Cb".into()),
        Target::Grant("break_glass:e1".into()),
        Target::Onward("0123".into()),
    ] {
        assert_eq!(Target::from_key(&t.key()), Some(t));
    }
    assert_eq!(Target::from_key("x:y"), None);
    assert_eq!(Target::from_key("s:"), None);
}

/// The bound docs/revocation.md states: how many fit, and that one more is
/// refused with the counts, never dropped.
#[test]
fn the_policy_holds_a_stated_number_of_entries_and_refuses_the_next() {
    let now = 1_800_000_000;
    let accounts = ["111122223333".to_string()];
    // Add entries as `by` until one is refused: how many fit.
    // (Every other account tvm writes to costs 15 characters.)
    let fill_from = |start: &Revocations, by: Adder, make: &dyn Fn(usize) -> Entry| {
        let mut r = start.clone();
        let mut n = 0;
        loop {
            let mut next = r.clone();
            next.add(make(n));
            match next.admit(by, &accounts, now) {
                Ok(_) => (r, n) = (next, n + 1),
                Err(full) => return (n, full, r),
            }
        }
    };
    let session = |i: usize| Entry::session(&sid(i), now);
    let grant = |i: usize| Entry::grant(&via_tag("break_glass", Some(&format!("{i:032x}"))), now);
    let role = |i: usize| format!("arn:aws:iam::111122223333:role/{}{i:03}", "r".repeat(61));
    let long_caller = |i: usize| Entry::caller(&role(i), now, now + 3600);
    let empty = Revocations::default();
    // Approvers fill their share...
    let (approvers, full, by_approvers) = fill_from(&empty, Adder::Approver, &session);
    assert_eq!(approvers, 62, "{full}");
    assert!(
        full.to_string().contains("revoke the caller instead"),
        "{full}"
    );
    // ...and openers still close theirs, in their own share...
    let (openers, full, both) = fill_from(&by_approvers, Adder::Opener, &grant);
    assert_eq!(openers, 18, "{full}");
    // ...as approvers still revoke when openers filled theirs first.
    let (by_openers_first, _, by_openers) = fill_from(&empty, Adder::Opener, &grant);
    assert_eq!(by_openers_first, 18);
    let (approvers_after, _, _) = fill_from(&by_openers, Adder::Approver, &session);
    assert_eq!(approvers_after, 62);
    // With both full, the security team still revokes, in its reserve.
    let (admin_sessions, _, _) = fill_from(&both, Adder::SecurityTeam, &|i| session(1000 + i));
    assert_eq!(admin_sessions, 52);
    let (admin_callers, _, _) = fill_from(&both, Adder::SecurityTeam, &long_caller);
    assert_eq!(admin_callers, 7);
    // The whole policy, for the security team alone.
    let (sessions, _, _) = fill_from(&empty, Adder::SecurityTeam, &session);
    assert_eq!(sessions, 139);
    let (callers, _, _) = fill_from(&empty, Adder::SecurityTeam, &long_caller);
    assert_eq!(callers, 19, "callers with 64-character role names");
    let (short, _, _) = fill_from(&empty, Adder::SecurityTeam, &|i| {
        Entry::caller(
            &format!("arn:aws:iam::111122223333:role/task-{i}"),
            now,
            now + 3600,
        )
    });
    assert_eq!(short, 23, "callers with short role names");
}
