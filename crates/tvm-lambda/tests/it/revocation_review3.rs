//! The third review of revocation v2: attacks on the second review's
//! fixes, through the real bootstrap on moto; each failed before its fix
//! (docs/security.md). Each test runs in a state of its own.

use serde_json::json;
use tvm_devstack::proxy::Proxy;

use crate::aws_rules::{denied_by, Context};
use crate::gates::{post, ADMIN};
use crate::harness::*;
use crate::revocation_kit::*;

const FIRST: &str = r#"
profile: atk3-first
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: tasks, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/orders-task/*"]}
"#;

/// A profile the chain target's sessions may vend (the chain target is a
/// workload role that also uses tvm).
const HOP: &str = r#"
profile: atk3-hop
role_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: chained, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/chain-target/*"]}
"#;

/// Attack (third review): a holder of vended credentials (atk3-first, role
/// orders-tenant) chains through STS into the chain target (tagged
/// tvm-revocable, so allowed) and vends through tvm as that role: a plain
/// caller, whose vend would carry nothing of the chain. Now: a hop (a
/// session chained from a tvm session, named otherwise than its own
/// tvm-session id) may call no IAM-authorized API, tvm's included
/// (`NoApiCallsFromChains`, evaluated here: moto evaluates no condition),
/// while the vended session itself still may; and a hop that takes its
/// parent's name to pass that check is refused by tvm, since the name then
/// names a vend of another role. (In the `sts` identity mode, which IAM
/// denies do not reach, a hop under a name of its own is the residual
/// documented in docs/revocation.md.)
#[test]
fn a_vended_session_cannot_vend_through_an_sts_hop() {
    run(async {
        let env = isolated("a3hop", &[("atk3-first", FIRST), ("atk3-hop", HOP)]).await;
        let (lambda, proxy) = lambda_in(&env).await;
        let task = shared().stack.task_credentials("atk3-hop").await.unwrap();
        let first = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk3-first"),
        )
        .await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let f = sid(&first);
        // Any revocation writes the policy with its fixed statements.
        let other = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk3-first"),
        )
        .await;
        assert_eq!(
            revoke_session(&lambda, ADMIN, &sid(&other)).await.status,
            200
        );
        let doc = policy_of("a3hop").await;
        let vend = assume_of(&proxy, &f);
        let name = vend.param("RoleSessionName").unwrap();
        let invoke = |userid: String| Context {
            action: "execute-api:Invoke".into(),
            userid: Some(userid),
            ..vended_context(&vend, chrono::Utc::now().timestamp())
        };
        assert_eq!(
            denied_by(&doc, &invoke(format!("AROAEXAMPLE:{name}"))),
            None,
            "the vended session itself may call tvm"
        );
        assert_eq!(
            denied_by(&doc, &invoke("AROAEXAMPLE:innocent".into())).as_deref(),
            Some("NoApiCallsFromChains"),
            "a hop may not: {doc}"
        );
        // The hop that takes its parent's name passes that check; tvm refuses it.
        let chain_proxy = Proxy::start(shared().stack.moto.addr).await.unwrap();
        let chained = aws_sdk_sts::Client::new(&tvm_devstack::stack::sdk_config(
            &chain_proxy.url(),
            creds_of(&first),
        ))
        .assume_role()
        .role_arn(&shared().stack.ids.chain_target)
        .role_session_name(format!("x.{f}"))
        .send()
        .await
        .expect("the vended session chains into the chain target");
        let c = chained.credentials().unwrap();
        let hop = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "chained",
        );
        let a = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &hop), "atk3-hop"),
        )
        .await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{:?}", a.body);
        lambda.stop().await;
    });
}

const SECOND: &str = r#"
profile: atk3-second
role_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: pipeline, effect: allow, allow_vended_sessions: true, principals: ["arn:aws:sts::123456789012:assumed-role/orders-tenant/*"]}
"#;

/// Attack: a holder of one vended session of orders-tenant vends 51 onward
/// sessions. The security team can no longer revoke orders-tenant as a
/// caller (nor refuse its new vends) — not even after revoking the caller
/// the chain started from, as its advice says — for up to an hour.
#[test]
fn onward_vends_make_a_caller_revocation_impossible() {
    run(async {
        let env = isolated("a3flood", &[("atk3-first", FIRST), ("atk3-second", SECOND)]).await;
        let (lambda, proxy) = lambda_in(&env).await;
        let task = shared().stack.task_credentials("atk3-flood").await.unwrap();
        let first = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk3-first"),
        )
        .await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let vended = creds_of(&first);
        for i in 0..51 {
            let o = call(
                &lambda,
                presigned_vend(&signed_for(&proxy, &vended), "atk3-second"),
            )
            .await;
            assert_eq!(o.status, 200, "onward {i}: {:?}", o.body);
        }
        let revoke_tenant = || {
            post(
                &lambda,
                ADMIN,
                "/v1/callers/revoke",
                json!({"principal": "arn:aws:iam::123456789012:role/orders-tenant", "reason": "incident", "duration_seconds": 3600}),
            )
        };
        let r = revoke_tenant().await;
        eprintln!("revoke caller orders-tenant: {} {}", r.status, r.body);
        // The advice: revoke the caller the chain started from.
        let o = post(&lambda, ADMIN, "/v1/callers/revoke",
            json!({"principal": "arn:aws:iam::123456789012:role/orders-task", "reason": "incident", "duration_seconds": 3600})).await;
        eprintln!(
            "revoke caller orders-task: {} {:?}",
            o.status,
            o.body
                .get("sessions_revoked")
                .map(|s| s.as_array().unwrap().len())
        );
        let again = revoke_tenant().await;
        eprintln!(
            "revoke caller orders-tenant again: {} {}",
            again.status, again.body
        );
        assert_eq!(
            r.status, 200,
            "the security team could not revoke caller orders-tenant: {:?}",
            r.body
        );
        assert_eq!(
            again.status, 200,
            "still refused after the advised revocation: {:?}",
            again.body
        );
        lambda.stop().await;
    });
}

/// Probe: IAM refuses a CreatePolicyVersion outright (a definite answer, not
/// an unknown outcome). Does the next revocation of another session wait
/// for the kept lease, and what does it say?
#[test]
fn a_definite_iam_refusal_keeps_the_lease() {
    run(async {
        let mut env = isolated("a3lease", &[("atk3-first", FIRST)]).await;
        env.push(("TVM_AWS_TIMEOUT_MS".into(), "1000".into()));
        let (lambda, proxy) = lambda_in(&env).await;
        let task = shared().stack.task_credentials("atk3-lease").await.unwrap();
        let a = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk3-first"),
        )
        .await;
        let b = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk3-first"),
        )
        .await;
        proxy.set_fault_when(
            "iam",
            "CreatePolicyVersion",
            Some(tvm_devstack::proxy::Fault::Refuse(
                "MalformedPolicyDocument",
            )),
        );
        let r1 = revoke_session(&lambda, ADMIN, &sid(&a)).await;
        eprintln!("first (IAM refuses): {} {}", r1.status, r1.body);
        proxy.set_fault_when("iam", "CreatePolicyVersion", None);
        let t = std::time::Instant::now();
        let r2 = revoke_session(&lambda, ADMIN, &sid(&b)).await;
        eprintln!(
            "second, right after: {} {} after {:?}",
            r2.status,
            r2.body,
            t.elapsed()
        );
        assert_eq!(r2.status, 200, "{:?}", r2.body);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "waited {:?} for a lease kept after a definite refusal",
            t.elapsed()
        );
        lambda.stop().await;
    });
}
