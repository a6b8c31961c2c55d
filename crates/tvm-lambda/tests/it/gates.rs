//! Revocation that bites, rate limits, and session listings, through the
//! real bootstrap. The tests use a profile of their own (`gates`) and callers
//! no other test uses, so revoking them blocks nothing else. Over 400 lines
//! on purpose: the gates share that profile and its callers.

use std::time::Duration;

use serde_json::{json, Value};
use tvm_devstack::runtime::Lambda;

use crate::harness::*;

pub const GATES: &str = r#"
profile: gates
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 1800}
rate_limit: {requests: 3, per_seconds: 5}
rules:
  - name: gate-roles
    effect: allow
    principals: ["arn:aws:sts::123456789012:assumed-role/gate-*/*"]
  - name: humans
    effect: require_approval
    principals: ["arn:aws:sts::123456789012:assumed-role/appr-*/*"]
  - name: oncall
    effect: break_glass
    principals: ["arn:aws:sts::123456789012:assumed-role/oncall-*/*"]
approval:
  approvers: ["arn:aws:sts::123456789012:assumed-role/gate-approver/*", "arn:aws:sts::123456789012:assumed-role/second-approver/*"]
  required: 2
  ttl: 3600
break_glass:
  principals: ["arn:aws:sts::123456789012:assumed-role/oncall-*/*"]
  max_duration: 1800
  min_justification: 20
"#;

pub const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_SecAdmin_1a2b/alice";
pub const APPROVER: &str = "arn:aws:sts::123456789012:assumed-role/gate-approver/bob";

pub fn gate(role: &str, session: &str) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}")
}

/// Put the `gates` profile into SSM.
pub async fn put_gates_policy() {
    aws_sdk_ssm::Client::new(&sdk())
        .put_parameter()
        .name("/tvm/policies/gates")
        .value(GATES)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// A function instance that has loaded the `gates` profile.
pub async fn gates_lambda() -> Lambda {
    put_gates_policy().await;
    own_lambda(&[]).await
}

pub async fn vend(lambda: &Lambda, caller: &str) -> Answer {
    call(lambda, vend_event(caller, json!({"profile": "gates"}))).await
}

pub async fn post(lambda: &Lambda, caller: &str, path: &str, body: Value) -> Answer {
    call(lambda, v2("POST", path, Some(caller), Some(&body))).await
}

pub async fn get(lambda: &Lambda, caller: &str, path_and_query: &str) -> Answer {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut e = v2("GET", path, Some(caller), None);
    e["rawQueryString"] = json!(query);
    call(lambda, e).await
}

/// Wait (bounded, 6 s) for the first 300 ms of a 5 s rate window, so that
/// the next few vends fall in one window.
pub async fn at_window_start() {
    for _ in 0..60 {
        if chrono::Utc::now().timestamp_millis() % 5000 < 300 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The revocation policy of the function's own account.
pub async fn revocation_policy() -> String {
    revocation_policy_in(tvm_devstack::stack::ACCOUNT)
        .await
        .to_string()
}

#[test]
fn revoking_a_session_stops_new_vends_and_denies_its_source_identity_on_the_role() {
    run(async {
        let lambda = gates_lambda().await;
        let first = vend(&lambda, &gate("gate-rev", "x1")).await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let sid = first.body["SessionId"].as_str().unwrap().to_string();
        let path = format!("/v1/sessions/{sid}/revoke");

        // Someone who may not manage the profile learns nothing.
        let a = post(
            &lambda,
            &gate("gate-other", "x1"),
            &path,
            json!({"reason": "compromised"}),
        )
        .await;
        assert_eq!((a.status, a.code()), (404, "NotFound"));

        let a = post(
            &lambda,
            APPROVER,
            &path,
            json!({"reason": "compromised task", "duration_seconds": 600}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["sessions_revoked"], json!([sid]));
        assert_eq!(a.body["caller"], "arn:aws:iam::123456789012:role/gate-rev");

        // New vends for that caller and profile stop at once, whatever the session name.
        let again = vend(&lambda, &gate("gate-rev", "another-name")).await;
        assert_eq!((again.status, again.code()), (403, "SessionRevoked"));
        assert!(again.body.get("AccessKeyId").is_none());
        // Other callers are not affected.
        assert_eq!(vend(&lambda, &gate("gate-other", "x1")).await.status, 200);
        // Credentials already issued stop working: the role denies that SourceIdentity.
        let policy = revocation_policy().await;
        assert!(policy.contains(&format!("tvm-{sid}")), "{policy}");
        assert!(
            policy.contains("\"Effect\":\"Deny\"") || policy.contains("\"Effect\": \"Deny\""),
            "{policy}"
        );
        let listed = get(&lambda, APPROVER, "/v1/sessions?profile=gates").await;
        let status = listed.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == sid.as_str())
            .unwrap()["status"]
            .clone();
        assert_eq!(status, "revoked");
        lambda.stop().await;
    });
}

#[test]
fn revoking_a_caller_stops_its_vends_and_denies_its_live_sessions() {
    run(async {
        let lambda = gates_lambda().await;
        let live = vend(&lambda, &gate("gate-bad", "x1")).await;
        assert_eq!(live.status, 200);
        let sid = live.body["SessionId"].as_str().unwrap().to_string();
        let body = json!({"principal": "arn:aws:iam::123456789012:role/gate-bad", "reason": "incident 42", "duration_seconds": 900});

        let a = post(&lambda, APPROVER, "/v1/callers/revoke", body.clone()).await;
        assert_eq!(
            (a.status, a.code()),
            (403, "AccessDenied"),
            "only the security team revokes callers"
        );

        let a = post(&lambda, ADMIN, "/v1/callers/revoke", body).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert!(a.body["sessions_revoked"]
            .as_array()
            .unwrap()
            .contains(&json!(sid)));
        let again = vend(&lambda, &gate("gate-bad", "x2")).await;
        assert_eq!((again.status, again.code()), (403, "SessionRevoked"));
        // One statement on the caller tag covers every session of it.
        let policy = revocation_policy_in(tvm_devstack::stack::ACCOUNT).await;
        let denies = policy["Statement"].as_array().unwrap().iter().any(|st| {
            st["Condition"]["StringEquals"]["aws:PrincipalTag/tvm-caller"]
                == "arn:aws:iam::123456789012:role/gate-bad"
        });
        assert!(denies, "{policy}");
        lambda.stop().await;
    });
}

#[test]
fn the_rate_limit_answers_429_with_retry_after_then_the_next_window_vends() {
    run(async {
        let lambda = gates_lambda().await;
        let caller = gate("gate-rate", "x1");
        // Start at the beginning of a 5 s window, so that four vends fall in one.
        at_window_start().await;
        for i in 0..3 {
            assert_eq!(
                vend(&lambda, &caller).await.status,
                200,
                "vend {i} within the limit"
            );
        }
        let limited = vend(&lambda, &caller).await;
        assert_eq!(
            (limited.status, limited.code()),
            (429, "RateLimited"),
            "{:?}",
            limited.body
        );
        let retry: u64 = limited.headers["retry-after"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&retry), "Retry-After {retry}");
        // Another caller has its own budget.
        assert_eq!(vend(&lambda, &gate("gate-rate-2", "x1")).await.status, 200);
        tokio::time::sleep(Duration::from_millis(retry * 1000 + 200)).await;
        assert_eq!(
            vend(&lambda, &caller).await.status,
            200,
            "the next window vends again"
        );
        lambda.stop().await;
    });
}

#[test]
fn sessions_are_listed_for_their_caller_and_for_whoever_manages_the_profile() {
    run(async {
        let lambda = gates_lambda().await;
        for s in ["a1", "a2"] {
            assert_eq!(vend(&lambda, &gate("gate-list", s)).await.status, 200);
        }
        let own = get(&lambda, &gate("gate-list", "a1"), "/v1/sessions").await;
        assert_eq!(own.status, 200, "{:?}", own.body);
        let mine = own.body["sessions"].as_array().unwrap();
        assert!(
            !mine.is_empty()
                && mine
                    .iter()
                    .all(|s| s["caller_arn"] == gate("gate-list", "a1").as_str())
        );
        // Another person of the same role lists its own: none of a1's or a2's.
        let theirs = get(&lambda, &gate("gate-list", "a3"), "/v1/sessions").await;
        assert_eq!(theirs.body["sessions"], serde_json::json!([]));
        assert!(mine
            .iter()
            .all(|s| s.get("AccessKeyId").is_none() && s.get("SecretAccessKey").is_none()));

        let other = get(
            &lambda,
            &gate("gate-list", "a3"),
            "/v1/sessions?caller=arn:aws:iam::123456789012:role/gate-rev",
        )
        .await;
        assert_eq!((other.status, other.code()), (403, "AccessDenied"));
        let managed = get(&lambda, APPROVER, "/v1/sessions?profile=gates&active=true").await;
        assert_eq!(managed.status, 200);
        assert!(managed.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["caller"] == "arn:aws:iam::123456789012:role/gate-list"));
        let not_theirs = get(&lambda, APPROVER, "/v1/sessions?profile=orders-tenant").await;
        assert_eq!(
            (not_theirs.status, not_theirs.code()),
            (403, "AccessDenied")
        );
        let admin = get(
            &lambda,
            ADMIN,
            "/v1/sessions?caller=arn:aws:sts::123456789012:assumed-role/gate-list/zz",
        )
        .await;
        assert_eq!(
            admin.status, 200,
            "a caller ARN is read as the role behind it"
        );
        assert!(!admin.body["sessions"].as_array().unwrap().is_empty());
        lambda.stop().await;
    });
}

#[test]
fn revocation_requests_are_checked() {
    run(async {
        let lambda = gates_lambda().await;
        let unknown = "/v1/sessions/0123456789abcdef0123456789abcdef/revoke";
        let a = post(&lambda, ADMIN, unknown, json!({"reason": "x"})).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "BadRequest"),
            "reason too short"
        );
        let a = post(
            &lambda,
            ADMIN,
            unknown,
            json!({"reason": "valid reason", "duration_seconds": 10}),
        )
        .await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        let a = post(
            &lambda,
            ADMIN,
            unknown,
            json!({"reason": "valid reason", "extra": 1}),
        )
        .await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        let a = post(&lambda, ADMIN, unknown, json!({"reason": "valid reason"})).await;
        assert_eq!((a.status, a.code()), (404, "NotFound"));
        let a = post(
            &lambda,
            ADMIN,
            "/v1/sessions/%23revoked%23x/revoke",
            json!({"reason": "valid reason"}),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (404, "NotFound"),
            "gate items are not sessions"
        );
        let a = post(
            &lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": "nobody", "reason": "valid reason"}),
        )
        .await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        lambda.stop().await;
    });
}

#[test]
fn a_burst_of_50_concurrent_vends_lets_exactly_the_limit_through() {
    run(async {
        const BURST: &str = "profile: burst\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrate_limit: {requests: 7, per_seconds: 3600}\nrules:\n  - {name: b, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/burst-*/*']}\n";
        aws_sdk_ssm::Client::new(&sdk())
            .put_parameter()
            .name("/tvm/policies/burst")
            .value(BURST)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        // Not across the end of an hour window.
        while chrono::Utc::now().timestamp() % 3600 > 3590 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Ten function instances, five vends each, all at once: the limit is shared.
        let mut instances = Vec::new();
        for _ in 0..10 {
            instances.push(own_lambda(&[]).await);
        }
        let runs = instances.iter().map(|lambda| async move {
            let mut statuses = Vec::new();
            for i in 0..5 {
                let e = vend_event(
                    &gate("burst-role", &format!("s{i}")),
                    json!({"profile": "burst"}),
                );
                statuses.push(call(lambda, e).await.status);
            }
            statuses
        });
        let statuses: Vec<u16> = futures_join_all(runs).await.into_iter().flatten().collect();
        assert_eq!(statuses.len(), 50);
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            7,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            43,
            "{statuses:?}"
        );
        for lambda in instances {
            lambda.stop().await;
        }
    });
}

/// Run futures concurrently and collect their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}
