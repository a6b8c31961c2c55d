//! The second review of revocation v2: attacks on the first review's fixes,
//! through the real bootstrap on moto; each failed before its fix
//! (docs/security.md). Each test runs in a state of its own (the pattern of
//! `revocation_attacks.rs`).

use std::time::Duration;

use serde_json::json;
use tvm_devstack::proxy::Proxy;
use tvm_devstack::runtime::Lambda;

use crate::aws_rules::denied_by;
use crate::gates::{post, ADMIN};
use crate::harness::*;
use crate::revocation_kit::*;

const FIRST: &str = r#"
profile: atk2-first
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: tasks, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/orders-task/*"]}
"#;

const SECOND: &str = r#"
profile: atk2-second
role_arn: arn:aws:iam::123456789012:role/tvm/reports-readonly
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: pipeline, effect: allow, allow_vended_sessions: true, principals: ["arn:aws:sts::123456789012:assumed-role/orders-tenant/*"]}
approval:
  approvers: ["arn:aws:sts::123456789012:assumed-role/atk2-second-approver/*"]
  required: 1
  ttl: 3600
"#;

/// F: the task vends atk2-first; O: F's credentials vend atk2-second.
async fn chain(lambda: &Lambda, proxy: &Proxy, tenant: &str) -> (Answer, Answer) {
    let task = shared().stack.task_credentials(tenant).await.unwrap();
    let first = call(
        lambda,
        presigned_vend(&signed_for(proxy, &task), "atk2-first"),
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let onward = call(
        lambda,
        presigned_vend(&signed_for(proxy, &creds_of(&first)), "atk2-second"),
    )
    .await;
    assert_eq!(onward.status, 200, "{:?}", onward.body);
    (first, onward)
}

/// Attack: the security team sees onward sessions whose caller is the
/// vended role (`tvm sessions` lists them under
/// `arn:aws:iam::123456789012:role/orders-tenant`) and revokes that caller.
/// The answer lists the onward session as revoked and its record is marked
/// `revoked`, but its credentials carry the first caller in `tvm-caller`
/// (lineage), so the one `RevokedCaller` statement does not match them.
#[test]
fn revoking_the_caller_an_onward_session_is_recorded_under_denies_it() {
    run(async {
        let env = isolated("ocaller", &[("atk2-first", FIRST), ("atk2-second", SECOND)]).await;
        let (lambda, proxy) = lambda_in(&env).await;
        let (_first, onward) = chain(&lambda, &proxy, "atk2-ocaller").await;
        let o = sid(&onward);
        let issued = chrono::Utc::now().timestamp();
        let r = post(
            &lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": "arn:aws:iam::123456789012:role/orders-tenant", "reason": "leaked vended creds", "duration_seconds": 3600}),
        )
        .await;
        eprintln!("revoke caller orders-tenant: {} {}", r.status, r.body);
        assert_eq!(r.status, 200, "{:?}", r.body);
        let reported = r.body["sessions_revoked"]
            .as_array()
            .unwrap()
            .contains(&json!(o));
        let doc = policy_of("ocaller").await;
        let ctx = vended_context(&assume_of(&proxy, &o), issued);
        eprintln!(
            "onward session {o}: reported revoked {reported}; its tags {:?}; denied by {:?}; policy {doc}",
            ctx.principal_tags,
            denied_by(&doc, &ctx)
        );
        assert!(
            !reported || denied_by(&doc, &ctx).is_some(),
            "the answer lists {o} as revoked, yet its credentials are denied by nothing in {doc}"
        );
        lambda.stop().await;
    });
}

/// Attack (over-revocation, and an approver reaching outside its profile):
/// an approver of atk2-second only revokes one onward session. The entry is
/// the SourceIdentity the onward vend inherited, the first vend's: the
/// first session (atk2-first, which that approver does not manage) and
/// every sibling onward session are denied too, and none is reported.
#[test]
fn revoking_an_onward_session_denies_only_it() {
    run(async {
        let env = isolated("oover", &[("atk2-first", FIRST), ("atk2-second", SECOND)]).await;
        let (lambda, proxy) = lambda_in(&env).await;
        let (first, onward) = chain(&lambda, &proxy, "atk2-oover").await;
        let sibling = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &creds_of(&first)), "atk2-second"),
        )
        .await;
        assert_eq!(sibling.status, 200, "{:?}", sibling.body);
        let (f, o, s) = (sid(&first), sid(&onward), sid(&sibling));
        let approver = caller("atk2-second-approver", "carol");
        // The approver of atk2-second may not revoke atk2-first's session.
        let direct = revoke_session(&lambda, &approver, &f).await;
        eprintln!(
            "approver revokes the first session directly: {}",
            direct.status
        );
        let r = revoke_session(&lambda, &approver, &o).await;
        eprintln!(
            "approver revokes the onward session: {} {}",
            r.status, r.body
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        let doc = policy_of("oover").await;
        let now = chrono::Utc::now().timestamp();
        let first_ctx = vended_context(&assume_of(&proxy, &f), now);
        let sibling_ctx = vended_context(&assume_of(&proxy, &s), now);
        eprintln!(
            "first session {f} (not managed by the approver, status {}): denied by {:?}; sibling {s}: denied by {:?}; answer lists {}",
            direct.status,
            denied_by(&doc, &first_ctx),
            denied_by(&doc, &sibling_ctx),
            r.body["sessions_revoked"]
        );
        assert_eq!(direct.status, 404);
        assert!(
            denied_by(&doc, &first_ctx).is_none(),
            "an approver of atk2-second denied the atk2-first session {f} it may not revoke"
        );
        assert!(
            denied_by(&doc, &sibling_ctx).is_none(),
            "revoking {o} denied its sibling {s} as well"
        );
        lambda.stop().await;
    });
}

/// Attack: a session revoked by id (and its caller too) mints fresh,
/// un-revoked credentials through tvm once its profile is no longer in the
/// policy set (removed in the incident, renamed, its role changed, or its
/// document failing validation): `PolicySet::vended` no longer recognises it
/// as a vended session, so no lineage is read, and any rule naming its role
/// applies to it as a plain caller.
#[test]
fn a_revoked_session_whose_profile_left_the_policy_set_mints_nothing() {
    run(async {
        let mut env = isolated("gone", &[("atk2-first", FIRST), ("atk2-second", SECOND)]).await;
        env.push(("TVM_POLICY_TTL_SECONDS".into(), "1".into()));
        let (lambda, proxy) = lambda_in(&env).await;
        let task = shared().stack.task_credentials("atk2-gone").await.unwrap();
        let first = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &task), "atk2-first"),
        )
        .await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let f = sid(&first);
        let vended = creds_of(&first);
        let r = revoke_session(&lambda, ADMIN, &f).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = post(
            &lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": "arn:aws:iam::123456789012:role/orders-task", "reason": "attack test", "duration_seconds": 3600}),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let refused = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &vended), "atk2-second"),
        )
        .await;
        eprintln!(
            "revoked, profile present: {} {}",
            refused.status,
            refused.code()
        );
        // The incident response removes the profile the session came from.
        let prefix = env
            .iter()
            .find(|(k, _)| k == "TVM_POLICY_PREFIX")
            .unwrap()
            .1
            .clone();
        aws_sdk_ssm::Client::new(&sdk())
            .delete_parameter()
            .name(format!("{prefix}atk2-first"))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let doc = policy_of("gone").await;
        let mut again = call(
            &lambda,
            presigned_vend(&signed_for(&proxy, &vended), "atk2-second"),
        )
        .await;
        for _ in 0..4 {
            if again.status == 200 {
                break;
            }
            eprintln!(
                "revoked, profile removed (policy cache may lag): {} {}",
                again.status, again.body
            );
            tokio::time::sleep(Duration::from_millis(1500)).await;
            again = call(
                &lambda,
                presigned_vend(&signed_for(&proxy, &vended), "atk2-second"),
            )
            .await;
        }
        eprintln!(
            "revoked, profile removed: {} {}",
            again.status,
            again.body.get("SessionId").unwrap_or(&again.body)
        );
        if again.status == 200 {
            let ctx = vended_context(
                &assume_of(&proxy, &sid(&again)),
                chrono::Utc::now().timestamp(),
            );
            eprintln!(
                "fresh credentials: SourceIdentity {:?}, tags {:?}; denied by the stored policy: {:?}",
                ctx.source_identity,
                ctx.principal_tags,
                denied_by(&doc, &ctx)
            );
        }
        assert_ne!(refused.status, 200);
        assert_ne!(
            again.status, 200,
            "a session revoked by id (and by caller) minted fresh credentials once its profile left the set"
        );
        lambda.stop().await;
    });
}

const STALE: &str = r#"
profile: atk2-stale
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: workloads, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/atk2stale-*/*"]}
"#;

const BGFLOOD: &str = r#"
profile: atk2-bgflood
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rate_limit: {requests: 1000, per_seconds: 60}
rules:
  - {name: workloads, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/atk2bg-task/*"]}
  - {name: oncall, effect: break_glass, principals: ["arn:aws:sts::123456789012:assumed-role/atk2bg-oncall/*"]}
break_glass:
  principals: ["arn:aws:sts::123456789012:assumed-role/atk2bg-oncall/*"]
  max_duration: 1800
  min_justification: 20
approval:
  approvers: ["arn:aws:sts::123456789012:assumed-role/atk2bg-approver/*"]
  required: 1
  ttl: 3600
"#;

/// Attack on fix 1: the break-glass opener vends once under each event
/// before closing it. Every close then adds a `RevokedGrants` entry, so the
/// flood is back: the non-reserved share fills, the profile's approvers can
/// no longer revoke any session, and a genuine event closed by its opener
/// leaves what it vended undenied.
#[test]
fn a_break_glass_opener_who_vends_cannot_lock_approvers_out() {
    run(async {
        let env = isolated("bgflood", &[("atk2-bgflood", BGFLOOD)]).await;
        let (lambda, _proxy) = lambda_in(&env).await;
        let victim = call(
            &lambda,
            vend_event(
                &caller("atk2bg-task", "w1"),
                json!({"profile": "atk2-bgflood"}),
            ),
        )
        .await;
        assert_eq!(victim.status, 200, "{:?}", victim.body);
        let oncall = caller("atk2bg-oncall", "mallory");
        let started = std::time::Instant::now();
        let mut closed = 0;
        let mut refused = None;
        for _ in 0..120 {
            let open = post(
                &lambda,
                &oncall,
                "/v1/breakglass",
                json!({"profile": "atk2-bgflood", "reason": "incident", "justification": "checking the pager rotation works"}),
            )
            .await;
            assert_eq!(open.status, 201, "{:?}", open.body);
            let id = open.body["id"].as_str().unwrap().to_string();
            let v = call(
                &lambda,
                vend_event(&oncall, json!({"profile": "atk2-bgflood"})),
            )
            .await;
            assert_eq!(v.status, 200, "{:?}", v.body);
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
            "{closed} open/vend/close cycles by one on-call caller in {:?}; then {:?}",
            started.elapsed(),
            refused
        );
        let approver = caller("atk2bg-approver", "dave");
        let a = revoke_session(&lambda, &approver, &sid(&victim)).await;
        eprintln!(
            "the profile's approver revokes a session: {} {}",
            a.status, a.body
        );
        assert_eq!(
            a.status, 200,
            "after {closed} break-glass cycles by one on-call caller, the approver cannot revoke: {:?}",
            a.body
        );
        lambda.stop().await;
    });
}

/// A tiny HTTP/1.1 relay in front of `upstream` (one request per upstream
/// connection): while `hold` is set, a request whose body contains
/// `needle` is forwarded `delay` later *whatever the client does meanwhile*
/// (a request IAM received but applies late, after the SDK gave up);
/// everything else is relayed at once.
async fn late_relay(
    upstream: String,
    needle: &'static str,
    delay: Duration,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let hold = hold.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                {
                    // One request: headers, then content-length bytes.
                    let mut tmp = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match conn.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let body = buf[head_end..head_end + len].to_vec();
                    let mut headers: Vec<&str> = head
                        .trim_end()
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .collect();
                    headers.push("Connection: close");
                    let mut request = format!("{}\r\n\r\n", headers.join("\r\n")).into_bytes();
                    request.extend_from_slice(&body);
                    let late = hold.load(std::sync::atomic::Ordering::SeqCst)
                        && String::from_utf8_lossy(&body).contains(needle);
                    let forward = {
                        let upstream = upstream.clone();
                        async move {
                            let mut up = tokio::net::TcpStream::connect(&upstream).await.ok()?;
                            up.write_all(&request).await.ok()?;
                            let mut answer = Vec::new();
                            up.read_to_end(&mut answer).await.ok()?;
                            Some(answer)
                        }
                    };
                    if late {
                        // Detached: it lands even though the client is gone.
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = forward.await;
                        });
                        // The client never hears back on this connection.
                        let _ = conn.read(&mut tmp).await;
                        return;
                    }
                    let Some(answer) = forward.await else { return };
                    // One answer per connection: the upstream closed; so do
                    // we (the SDK reconnects).
                    let _ = conn.write_all(&answer).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Attack on "none is sent once the lease may have passed on": A's
/// CreatePolicyVersion is sent in time, but IAM applies it late (5 s; the
/// SDK gives up at 3 s). Before the fix A released the lease at once, so B
/// took it, wrote A+B and answered 200; then A's abandoned request landed
/// over it. Now a writer whose write's outcome is unknown keeps the lease
/// until it runs out. A relay stands in
/// for IAM's lateness (the counted proxy's `Delay` drops a request whose
/// client went away, so it cannot show this).
#[test]
fn a_policy_write_applied_late_never_lands_over_a_later_revocation() {
    run(async {
        let env = isolated("late", &[("atk2-stale", STALE)]).await;
        let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relay = late_relay(
            shared()
                .stack
                .proxy
                .url()
                .trim_start_matches("http://")
                .to_string(),
            "CreatePolicyVersion",
            Duration::from_secs(5),
            hold.clone(),
        )
        .await;
        let mut env_a: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env_a.push(("AWS_ENDPOINT_URL", relay.as_str()));
        let la = own_lambda(&env_a).await;
        let (lb, _pb) = lambda_in(&env).await;
        let sa = call(
            &la,
            vend_event(
                &caller("atk2stale-a", "s2"),
                json!({"profile": "atk2-stale"}),
            ),
        )
        .await;
        let sb = call(
            &lb,
            vend_event(
                &caller("atk2stale-b", "s2"),
                json!({"profile": "atk2-stale"}),
            ),
        )
        .await;
        assert_eq!((sa.status, sb.status), (200, 200), "{:?}", sa.body);
        let (sa, sb) = (sid(&sa), sid(&sb));
        hold.store(true, std::sync::atomic::Ordering::SeqCst);
        let started = std::time::Instant::now();
        let a = revoke_session(&la, ADMIN, &sa).await;
        hold.store(false, std::sync::atomic::Ordering::SeqCst);
        eprintln!("A after {:?}: {} {}", started.elapsed(), a.status, a.body);
        let b = revoke_session(&lb, ADMIN, &sb).await;
        eprintln!("B after {:?}: {} {}", started.elapsed(), b.status, b.body);
        assert_eq!(b.status, 200, "{:?}", b.body);
        let right_after = policy_of("late").await;
        eprintln!(
            "right after B: A denied {:?}, B denied {:?}",
            denied_by(&right_after, &by_source_identity(&sa)),
            denied_by(&right_after, &by_source_identity(&sb))
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        for (id, default, doc) in versions_of("late").await {
            eprintln!("version {id} default={default}: {doc}");
        }
        // No one retries B (it was answered 200); A's operator has not yet.
        let landed = policy_of("late").await;
        let b_after_landing = denied_by(&landed, &by_source_identity(&sb));
        eprintln!("once A's late write landed: B denied {b_after_landing:?}");
        let a2 = revoke_session(&la, ADMIN, &sa).await;
        let b2 = revoke_session(&lb, ADMIN, &sb).await;
        eprintln!(
            "retries: A {} {} / B {} {}",
            a2.status, a2.body, b2.status, b2.body
        );
        let doc = policy_of("late").await;
        eprintln!(
            "finally: A denied {:?}, B denied {:?}; default {doc}",
            denied_by(&doc, &by_source_identity(&sa)),
            denied_by(&doc, &by_source_identity(&sb))
        );
        assert_eq!(
            b_after_landing.as_deref(),
            Some("RevokedSessions"),
            "B was answered 200 but, once A's abandoned write landed, its session is not denied in the account (until someone revokes again)"
        );
        la.stop().await;
        lb.stop().await;
    });
}
