//! One round trip per warm vend, and what it must not cost: the gate
//! transaction and AssumeRole go out together; credentials come back only
//! once the transaction committed; when it refuses or fails, what STS minted
//! is dropped unsent and on record (`discarded`), and that container mints
//! for the refused caller (or, after a failure, for anyone) only after its
//! gates passed, until the refusal's window ends. On the real bootstrap,
//! behind a proxy that counts and delays every AWS call (the warm vend's
//! overlap: `vend::a_warm_vend_makes_two_aws_calls_sent_together`).

use std::time::Duration;

use serde_json::json;
use tvm_devstack::proxy::{Call, Fault, Proxy, ANY};
use tvm_devstack::runtime::Lambda;

use crate::gates::{at_window_start, gate, post, put_gates_policy, vend, ADMIN};
use crate::harness::*;

/// Long enough that two calls sent together overlap at the proxy, however
/// slow moto is to answer.
const DELAY: Duration = Duration::from_millis(80);

async fn counted_gates_lambda() -> (Lambda, Proxy) {
    put_gates_policy().await;
    counted_lambda(&[]).await
}

fn only(calls: &[Call], action: &str) -> Call {
    let found: Vec<&Call> = calls.iter().filter(|c| c.action == action).collect();
    assert_eq!(found.len(), 1, "one {action} in {:?}", actions(calls));
    found[0].clone()
}

fn actions(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.action.as_str()).collect()
}

fn overlapped(a: &Call, b: &Call) -> bool {
    a.started < b.finished && b.started < a.finished
}

/// The vend `caller` makes now: its answer and the AWS calls it made.
async fn vend_counted(lambda: &Lambda, proxy: &Proxy, caller: &str) -> (Answer, Vec<Call>) {
    let mark = proxy.mark();
    let a = vend(lambda, caller).await;
    (a, proxy.calls_since(mark))
}

/// A vend with every AWS call delayed, so that two sent together overlap at
/// the proxy: it vends in one round trip (its transaction and AssumeRole
/// overlapped), and these were its calls.
async fn in_one_round_trip(lambda: &Lambda, proxy: &Proxy, caller: &str) -> Vec<Call> {
    proxy.set_fault(ANY, Some(Fault::Delay(DELAY)));
    let (a, calls) = vend_counted(lambda, proxy, caller).await;
    proxy.set_fault(ANY, None);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(
        overlapped(
            &only(&calls, "TransactWriteItems"),
            &only(&calls, "AssumeRole")
        ),
        "{caller}: one round trip"
    );
    calls
}

/// The decision line of `caller`'s last request.
fn last_decision(lambda: &Lambda, caller: &str) -> serde_json::Value {
    decisions(lambda)
        .into_iter()
        .rev()
        .find(|d| d["caller"] == caller)
        .expect("a decision line")
}

/// What was minted beside a refusal: the decision names it discarded, and
/// its record says `discarded` with the SourceIdentity STS was sent.
async fn minted_and_discarded(lambda: &Lambda, caller: &str, assumed: &Call) {
    let d = last_decision(lambda, caller);
    assert_eq!(d["discarded"], true, "{d}");
    let sid = d["session_id"].as_str().expect("the session's id");
    let item = session_item(sid).await;
    assert_eq!(s(&item, "status"), "discarded", "{item:?}");
    assert_eq!(
        Some(s(&item, "source_identity")),
        assumed.param("SourceIdentity"),
        "the record leads to the AssumeRole CloudTrail shows"
    );
    assert!(item.contains_key("discarded_at"));
    assert!(
        !item.contains_key("revoked_on"),
        "callers' discards stay out of the revocation index the audit reads"
    );
}

#[test]
fn a_revoked_caller_gets_nothing_what_was_minted_is_dead_and_on_record_then_nothing_is_minted() {
    run(async {
        let (lambda, proxy) = counted_gates_lambda().await;
        let role = "arn:aws:iam::123456789012:role/gate-ovl-revoked";
        assert_eq!(
            vend(&lambda, &gate("gate-ovl-revoked", "x1")).await.status,
            200
        );
        let body = json!({"principal": role, "reason": "incident 43", "duration_seconds": 900});
        let revoked = post(&lambda, ADMIN, "/v1/callers/revoke", body).await;
        assert_eq!(revoked.status, 200, "{:?}", revoked.body);

        // Under another session name, as an attacker would try.
        let caller = gate("gate-ovl-revoked", "x2");
        let (a, calls) = vend_counted(&lambda, &proxy, &caller).await;
        assert_eq!(
            (a.status, a.code()),
            (403, "SessionRevoked"),
            "{:?}",
            a.body
        );
        assert!(a.body.get("AccessKeyId").is_none());
        let assumed = only(&calls, "AssumeRole");
        minted_and_discarded(&lambda, &caller, &assumed).await;
        // Dead on arrival besides: the caller's deny covers every session of
        // it issued before its cutoff, which is after this one was.
        let policy = revocation_policy_in(tvm_devstack::stack::ACCOUNT).await;
        let cutoff = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["Condition"]["StringEquals"]["aws:PrincipalTag/tvm-caller"] == role)
            .and_then(|st| st["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str())
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
            .unwrap_or_else(|| panic!("no deny with a cutoff for {role}: {policy}"));
        assert!(
            cutoff > assumed.at,
            "cutoff {cutoff} before the mint at {}",
            assumed.at
        );

        // Refused once: this container checks the gates before minting for
        // that caller again, however it names its session.
        for name in ["x3", "x4"] {
            let (a, calls) = vend_counted(&lambda, &proxy, &gate("gate-ovl-revoked", name)).await;
            assert_eq!(a.code(), "SessionRevoked");
            assert_eq!(actions(&calls), ["TransactWriteItems"], "{name}");
        }
        lambda.stop().await;
    });
}

#[test]
fn over_the_rate_limit_one_mint_is_discarded_then_none_until_the_window_ends() {
    run(async {
        let (lambda, proxy) = counted_gates_lambda().await;
        let caller = gate("gate-ovl-rate", "x1");
        // The start of a 5 s window (the profile allows 3 vends in one).
        at_window_start().await;
        for i in 0..3 {
            assert_eq!(vend(&lambda, &caller).await.status, 200, "vend {i}");
        }
        let (limited, calls) = vend_counted(&lambda, &proxy, &caller).await;
        assert_eq!((limited.status, limited.code()), (429, "RateLimited"));
        assert!(limited.body.get("AccessKeyId").is_none());
        minted_and_discarded(&lambda, &caller, &only(&calls, "AssumeRole")).await;
        // A flood of over-limit requests does not drive AssumeRole.
        for i in 0..5 {
            let (a, calls) = vend_counted(&lambda, &proxy, &caller).await;
            assert_eq!(a.status, 429, "flood {i}");
            assert_eq!(actions(&calls), ["TransactWriteItems"], "flood {i}");
        }
        // Another caller still takes one round trip.
        in_one_round_trip(&lambda, &proxy, &gate("gate-ovl-rate-2", "x1")).await;
        // The next window: the caller vends, and overlaps again.
        let retry: u64 = limited.headers["retry-after"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(retry * 1000 + 200)).await;
        in_one_round_trip(&lambda, &proxy, &caller).await;
        lambda.stop().await;
    });
}

#[test]
fn an_approved_caller_vends_again_in_one_round_trip() {
    run(async {
        let (lambda, proxy) = counted_gates_lambda().await;
        let jane = gate("appr-ovl", "jane");
        let asked = vend(&lambda, &jane).await;
        assert_eq!(asked.code(), "ApprovalRequired");
        let id = asked.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        for approver in [
            crate::gates::APPROVER,
            "arn:aws:sts::123456789012:assumed-role/second-approver/carol",
        ] {
            let path = format!("/v1/requests/{id}/approve");
            assert_eq!(post(&lambda, approver, &path, json!({})).await.status, 200);
        }
        assert_eq!(
            vend(&lambda, &jane).await.status,
            200,
            "granted, state read"
        );
        let calls = in_one_round_trip(&lambda, &proxy, &jane).await;
        assert_eq!(calls.len(), 2, "no gate state read: {:?}", actions(&calls));
        lambda.stop().await;
    });
}

#[test]
fn a_break_glass_event_closed_and_reopened_on_another_instance_vends_from_the_new_one() {
    run(async {
        let (lambda, proxy) = counted_gates_lambda().await;
        let other = own_lambda(&[]).await;
        let sam = gate("oncall-ovl", "sam");
        let open = json!({"profile": "gates", "reason": "incident", "justification": "overlap: payments outage INC-4712", "duration_seconds": 1800});
        let first = post(&lambda, &sam, "/v1/breakglass", open.clone()).await;
        assert_eq!(first.status, 201, "{:?}", first.body);
        let first = first.body["id"].as_str().unwrap().to_string();
        for _ in 0..2 {
            assert_eq!(vend(&lambda, &sam).await.status, 200);
        }
        // Closed and opened again where this instance cannot see it.
        let closed = post(
            &other,
            &sam,
            &format!("/v1/breakglass/{first}/close"),
            json!({}),
        )
        .await;
        assert_eq!(closed.body["status"], "closed", "{:?}", closed.body);
        let second = post(&other, &sam, "/v1/breakglass", open).await;
        assert_eq!(second.status, 201, "{:?}", second.body);
        let second = second.body["id"].as_str().unwrap().to_string();

        let (a, calls) = vend_counted(&lambda, &proxy, &sam).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let d = last_decision(&lambda, &sam);
        assert_eq!(d["via_id"], second.as_str(), "{d}");
        // The attempt from the closed event minted beside its refused
        // transaction: that session is on record as discarded.
        let assumed: Vec<&Call> = calls.iter().filter(|c| c.action == "AssumeRole").collect();
        assert_eq!(assumed.len(), 2, "{:?}", actions(&calls));
        let returned = session_item(a.body["SessionId"].as_str().unwrap()).await;
        let stale = assumed
            .iter()
            .find(|c| c.param("SourceIdentity") != Some(s(&returned, "source_identity")))
            .expect("the stale attempt's mint");
        let si = stale.param("SourceIdentity").unwrap();
        let line = logged(&lambda, |l| l.contains(&si) && l.contains("discarded"))
            .await
            .expect("the discard is logged");
        let sid: serde_json::Value = serde_json::from_str(&line).unwrap();
        let item = session_item(sid["session_id"].as_str().unwrap()).await;
        assert_eq!(s(&item, "status"), "discarded");
        other.stop().await;
        lambda.stop().await;
    });
}

#[test]
fn a_vend_cut_off_by_its_deadline_between_the_two_answers_names_its_session() {
    run(async {
        put_gates_policy().await;
        let (lambda, proxy) = counted_lambda(&[("TVM_AWS_TIMEOUT_MS", "5000")]).await;
        let caller = gate("gate-ovl-deadline", "x1");
        assert_eq!(vend(&lambda, &caller).await.status, 200, "warm");
        // The transaction waits at the proxy past the invocation's deadline;
        // AssumeRole, sent beside it, is answered.
        proxy.set_fault_when(
            "dynamodb",
            "TransactItems",
            Some(Fault::Delay(Duration::from_secs(3))),
        );
        let mark = proxy.mark();
        let event = vend_event(&caller, json!({"profile": "gates"}));
        let out = lambda
            .invoke_within(event, Duration::from_millis(1500))
            .await
            .expect("an answer before the deadline");
        proxy.set_fault_when("dynamodb", "TransactItems", None);
        let tvm_devstack::runtime::Outcome::Response(out) = out else {
            panic!("the function failed the invocation")
        };
        assert_eq!(out["statusCode"], 503, "{out}");
        assert!(!out["body"].as_str().unwrap().contains("AccessKeyId"));
        let assumed = only(&proxy.calls_since(mark), "AssumeRole");
        let si = assumed.param("SourceIdentity").unwrap();
        let line = logged(&lambda, |l| {
            l.contains(&si) && l.contains("nothing was sent")
        })
        .await
        .unwrap_or_else(|| panic!("no line names {si}: {:?}", lambda.logs()));
        assert!(
            !line.contains("ASIA") && !line.contains("SecretAccessKey"),
            "{line}"
        );
        lambda.stop().await;
    });
}
