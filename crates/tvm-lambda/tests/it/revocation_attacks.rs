//! Attacks on revocation v2 from its review, through the real bootstrap on
//! moto; each failed before its fix (docs/security.md). Every test runs in a
//! state of its own (its own sessions table, its own
//! revocation policy, its own policy prefix with profiles in tvm's account
//! only), so that it neither disturbs nor is disturbed by other tests'
//! revocations.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tvm_devstack::proxy::Fault;

use crate::aws_rules::{denied_by, Context};
use crate::gates::{post, ADMIN};
use crate::harness::*;
use crate::revocation_kit::*;

const FLOOD: &str = r#"
profile: atk-flood
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: workloads, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/atkflood-task/*"]}
  - {name: oncall, effect: break_glass, principals: ["arn:aws:sts::123456789012:assumed-role/atkflood-oncall/*"]}
break_glass:
  principals: ["arn:aws:sts::123456789012:assumed-role/atkflood-oncall/*"]
  max_duration: 1800
  min_justification: 20
"#;

/// Attack: any break-glass principal of any profile (no approver, no
/// security team) opens and closes events in a loop. Every close adds a
/// `RevokedGrants` entry (whether or not the event vended anything) to the
/// one policy every account shares, with no limit per caller, until the
/// policy's non-reserved share is full. For the next 65 minutes the security
/// team cannot revoke any session (409), and the next real break-glass close
/// cannot revoke what its event vended.
#[test]
fn a_break_glass_opener_cannot_lock_the_security_team_out_of_session_revocation() {
    run(async {
        let env = isolated("flood", &[("atk-flood", FLOOD)]).await;
        let (lambda, _proxy) = lambda_in(&env).await;
        // The victim: a workload session the security team will want to revoke.
        let victim = call(
            &lambda,
            vend_event(
                &caller("atkflood-task", "w1"),
                json!({"profile": "atk-flood"}),
            ),
        )
        .await;
        assert_eq!(victim.status, 200, "{:?}", victim.body);

        let oncall = caller("atkflood-oncall", "mallory");
        let started = std::time::Instant::now();
        let mut closed = 0;
        let mut refused = None;
        for _ in 0..110 {
            let open = post(
                &lambda,
                &oncall,
                "/v1/breakglass",
                json!({"profile": "atk-flood", "reason": "incident", "justification": "checking the pager rotation works"}),
            )
            .await;
            assert_eq!(open.status, 201, "{:?}", open.body);
            let id = open.body["id"].as_str().unwrap().to_string();
            let close = post(
                &lambda,
                &oncall,
                &format!("/v1/breakglass/{id}/close"),
                json!({}),
            )
            .await;
            if close.status != 200 {
                refused = Some((close.status, close.body.clone()));
                break;
            }
            closed += 1;
        }
        eprintln!(
            "attack: {closed} break-glass open/close pairs by one on-call caller in {:?}; then {:?}",
            started.elapsed(),
            refused
        );
        let a = revoke_session(&lambda, ADMIN, &sid(&victim)).await;
        eprintln!(
            "the security team revokes the victim session: {} {}",
            a.status, a.body
        );
        // A genuine break-glass event, vended under, closed by the security
        // team: what it vended should be denied.
        let bob = caller("atkflood-oncall", "bob");
        let open = post(
            &lambda,
            &bob,
            "/v1/breakglass",
            json!({"profile": "atk-flood", "reason": "outage", "justification": "database failover needs manual steps"}),
        )
        .await;
        assert_eq!(open.status, 201, "{:?}", open.body);
        let event = open.body["id"].as_str().unwrap().to_string();
        let bg = call(&lambda, vend_event(&bob, json!({"profile": "atk-flood"}))).await;
        eprintln!("bob vends under break-glass: {}", bg.status);
        let close = post(
            &lambda,
            ADMIN,
            &format!("/v1/breakglass/{event}/close"),
            json!({}),
        )
        .await;
        eprintln!(
            "the security team closes bob's event: {} {}",
            close.status, close.body
        );
        let doc = policy_of("flood").await;
        let grant = Context {
            principal_tags: HashMap::from([(
                "tvm-via".to_string(),
                format!("break_glass:{event}"),
            )]),
            action: "s3:GetObject".into(),
            ..Default::default()
        };
        eprintln!(
            "what bob's closed event vended is denied by: {:?}",
            denied_by(&doc, &grant)
        );
        // How many callers the security team can still revoke (64-char roles).
        let mut callers = 0;
        for i in 0..8 {
            let role = format!("atkflood-incident-{i}-{}", "x".repeat(64))[..64].to_string();
            let r = post(
                &lambda,
                ADMIN,
                "/v1/callers/revoke",
                json!({"principal": format!("arn:aws:iam::123456789012:role/{role}"), "reason": "incident 42", "duration_seconds": 60}),
            )
            .await;
            if r.status != 200 {
                eprintln!(
                    "caller revocation {} refused: {} {}",
                    i + 1,
                    r.status,
                    r.body
                );
                break;
            }
            callers += 1;
        }
        eprintln!("the security team could revoke {callers} callers after the flood");
        assert_eq!(
            a.status, 200,
            "after {closed} break-glass closes by one caller, the security team cannot revoke a session: {:?}",
            a.body
        );
        assert_eq!(
            (closed, refused),
            (110, None),
            "closes that vended nothing take no room"
        );
        assert_eq!((bg.status, close.status), (200, 200), "{:?}", close.body);
        assert!(
            denied_by(&doc, &grant).is_some(),
            "what the closed event vended is denied"
        );
        assert_eq!(callers, 8, "the security team's room is all there");
        lambda.stop().await;
    });
}

const RACE: &str = r#"
profile: atk-race
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: workloads, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/atkrace-*/*"]}
"#;

/// Attack on the "the last version in every account holds both" claim: two
/// concurrent revocations, A and B. A stores its entry, renders, and its
/// CreatePolicyVersion is slow to land (IAM latency); B stores after A,
/// writes the full state, re-reads an unchanged version and answers 200.
/// A's stale document then lands last and becomes the default; A's
/// re-read fails (a DynamoDB hiccup, or the function timing out: nothing
/// rewrites). B's revocation, answered 200, is not in the account's policy.
#[test]
fn a_revocation_answered_200_is_never_undone_by_a_concurrent_stale_write() {
    run(async {
        let env = isolated("race", &[("atk-race", RACE)]).await;
        // A's calls may take longer than the 1.5 s attempt timeout.
        let mut env_a = env.clone();
        env_a.push(("TVM_AWS_TIMEOUT_MS".into(), "10000".into()));
        let (la, pa) = lambda_in(&env_a).await;
        let (lb, _pb) = lambda_in(&env).await;
        let sa = call(
            &la,
            vend_event(&caller("atkrace-a", "s1"), json!({"profile": "atk-race"})),
        )
        .await;
        let sb = call(
            &lb,
            vend_event(&caller("atkrace-b", "s1"), json!({"profile": "atk-race"})),
        )
        .await;
        assert_eq!((sa.status, sb.status), (200, 200));
        let (sa, sb) = (sid(&sa), sid(&sb));

        // A's IAM write is slow to land.
        pa.set_fault_when(
            "iam",
            "CreatePolicyVersion",
            Some(Fault::Delay(Duration::from_secs(2))),
        );
        let mark = pa.mark();
        let a_fut = revoke_session(&la, ADMIN, &sa);
        let b_fut = async {
            // Wait until A has stored its entry (its UpdateItem answered).
            for _ in 0..200 {
                if pa
                    .calls_since(mark)
                    .iter()
                    .any(|c| c.action == "UpdateItem" && c.body.contains("#revocations"))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            // A's re-read after its write will fail.
            pa.set_fault_when("dynamodb", "\"#revocations\"", Some(Fault::Status(500)));
            revoke_session(&lb, ADMIN, &sb).await
        };
        let (a, b) = tokio::join!(a_fut, b_fut);
        pa.set_fault_when("iam", "CreatePolicyVersion", None);
        pa.set_fault_when("dynamodb", "\"#revocations\"", None);
        eprintln!("A: {} {}", a.status, a.body);
        eprintln!("B: {} {}", b.status, b.body);
        assert_eq!(b.status, 200, "{:?}", b.body);
        let doc = policy_of("race").await;
        eprintln!("the account's default policy version now: {doc}");
        eprintln!(
            "session A denied: {:?}; session B denied: {:?}",
            denied_by(&doc, &by_source_identity(&sa)),
            denied_by(&doc, &by_source_identity(&sb))
        );
        assert_eq!(
            denied_by(&doc, &by_source_identity(&sb)).as_deref(),
            Some("RevokedSessions"),
            "B was answered 200 but its session is not denied in the account: {doc}"
        );
        // A, slow but alive, wrote under the lease before B could: both hold.
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(
            denied_by(&doc, &by_source_identity(&sa)).as_deref(),
            Some("RevokedSessions")
        );
        la.stop().await;
        lb.stop().await;
    });
}

const FIRST: &str = r#"
profile: atk-first
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: tasks, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/orders-task/*"]}
"#;

const SECOND: &str = r#"
profile: atk-second
role_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: pipeline, effect: allow, allow_vended_sessions: true, principals: ["arn:aws:sts::123456789012:assumed-role/orders-tenant/*"]}
"#;

/// Attack: in the `sts` identity mode (function URL, `TVM_IDENTITY_MODES`
/// with `sts`), a revoked credential still proves who it is:
/// GetCallerIdentity needs no permission and an explicit deny does not stop
/// it (STS API reference). A session revoked by id presents a presigned
/// GetCallerIdentity and vends a profile whose rule opts into vended
/// sessions: fresh credentials with a new SourceIdentity and a different
/// tvm-caller, which nothing revoked matches, and no gate refuses (the pair
/// gate is the original caller's). Revoking the caller behind the session
/// as well changes nothing: the fresh credentials' tvm-caller is the
/// vended role's.
#[test]
fn a_revoked_session_cannot_mint_fresh_credentials_through_tvm() {
    run(async {
        let env = isolated("revend", &[("atk-first", FIRST), ("atk-second", SECOND)]).await;
        let (lambda, proxy) = lambda_in(&env).await;
        let task = shared().stack.task_credentials("atk-revend").await.unwrap();
        let first = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk-first"),
        )
        .await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let id = sid(&first);
        let b = &first.body;
        let vended = aws_credential_types::Credentials::new(
            b["AccessKeyId"].as_str().unwrap(),
            b["SecretAccessKey"].as_str().unwrap(),
            b["SessionToken"].as_str().map(str::to_string),
            None,
            "vended",
        );
        let r = revoke_session(&lambda, ADMIN, &id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let doc = policy_of("revend").await;
        assert_eq!(
            denied_by(&doc, &by_source_identity(&id)).as_deref(),
            Some("RevokedSessions")
        );
        // Revoked by id alone, it vends nothing onward: its record says so.
        let onward = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &vended), "atk-second"),
        )
        .await;
        assert_eq!(
            (onward.status, onward.code()),
            (403, "AccessDenied"),
            "{:?}",
            onward.body
        );
        // And the caller behind it, for good measure (the security team).
        let r = post(
            &lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": "arn:aws:iam::123456789012:role/orders-task", "reason": "attack test", "duration_seconds": 3600}),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let doc = policy_of("revend").await;
        // The revoked session, after both revocations:
        let mark = proxy.mark();
        let again = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &vended), "atk-second"),
        )
        .await;
        eprintln!(
            "the revoked session vends atk-second: {} {}",
            again.status,
            again.body.get("SessionId").unwrap_or(&again.body)
        );
        if again.status == 200 {
            let assume = assume_role_calls(&proxy.calls_since(mark))
                .into_iter()
                .find(|c| {
                    c.param("SourceIdentity").as_deref() == Some(&format!("tvm-{}", sid(&again)))
                })
                .unwrap();
            let ctx = vended_context(&assume, chrono::Utc::now().timestamp());
            eprintln!(
                "fresh credentials: SourceIdentity {:?}, tags {:?}; denied by the stored policy: {:?}",
                ctx.source_identity,
                ctx.principal_tags,
                denied_by(&doc, &ctx)
            );
        }
        assert_ne!(
            again.status, 200,
            "a session revoked by id minted fresh, un-revoked credentials through tvm"
        );
        lambda.stop().await;
    });
}
