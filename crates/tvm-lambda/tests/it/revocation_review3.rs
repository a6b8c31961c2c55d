//! The third review of revocation v2: attacks on the second review's
//! fixes, through the real bootstrap on moto; each failed before its fix
//! (docs/security.md). Each test runs in a state of its own.

use std::collections::HashMap;

use serde_json::{json, Value};
use tvm_devstack::proxy::{Call, Proxy};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::ACCOUNT;

use crate::aws_rules::{denied_by, Context};
use crate::gates::{post, ADMIN};
use crate::harness::*;

async fn put_profile(prefix: &str, name: &str, text: &str) {
    aws_sdk_ssm::Client::new(&sdk())
        .put_parameter()
        .name(format!("{prefix}{name}"))
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

async fn isolated(tag: &str, profiles: &[(&str, &str)]) -> Vec<(String, String)> {
    let table = format!("tvm-sessions-a3{tag}");
    let out = std::process::Command::new(tvm_devstack::stack::venv().join("bin/python"))
        .arg(tvm_devstack::stack::repo_root().join("scripts/bootstrap.py"))
        .arg("tables")
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        .env(
            "AWS_ACCESS_KEY_ID",
            &shared().stack.ids.function.access_key_id,
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            &shared().stack.ids.function.secret_access_key,
        )
        .env("AWS_REGION", "us-east-1")
        .env("TVM_SESSIONS_TABLE", &table)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "ChainOnlyIntoRevocableRoles", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:ResourceTag/tvm-revocable": "true"}}}]});
    let _ = aws_sdk_iam::Client::new(&sdk())
        .create_policy()
        .policy_name(format!("tvm-revocations-a3{tag}"))
        .path("/tvm/")
        .policy_document(empty.to_string())
        .send()
        .await;
    let prefix = format!("/tvm/atk3-{tag}/");
    for (name, text) in profiles {
        put_profile(&prefix, name, text).await;
    }
    vec![
        ("TVM_SESSIONS_TABLE".into(), table),
        (
            "TVM_REVOCATION_POLICY".into(),
            format!("/tvm/tvm-revocations-a3{tag}"),
        ),
        ("TVM_POLICY_PREFIX".into(), prefix),
    ]
}

async fn lambda_in(env: &[(String, String)]) -> (Lambda, Proxy) {
    let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    counted_lambda(&e).await
}

async fn versions_of(tag: &str) -> Vec<(String, bool, Value)> {
    let iam = aws_sdk_iam::Client::new(&sdk());
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/tvm/tvm-revocations-a3{tag}");
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for v in versions.versions() {
        let id = v.version_id().unwrap().to_string();
        let text = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&id)
            .send()
            .await
            .unwrap()
            .policy_version()
            .and_then(|v| v.document())
            .unwrap()
            .to_string();
        out.push((
            id,
            v.is_default_version(),
            serde_json::from_str(&percent_decode(&text)).unwrap(),
        ));
    }
    out
}

async fn policy_of(tag: &str) -> Value {
    versions_of(tag)
        .await
        .into_iter()
        .find(|(_, d, _)| *d)
        .unwrap()
        .2
}

fn signed_for(proxy: &Proxy, creds: &aws_credential_types::Credentials) -> String {
    tvm_client::presign::identity_header(
        creds,
        tvm_devstack::stack::REGION,
        &proxy.url(),
        tvm_devstack::stack::SERVER_ID,
        std::time::SystemTime::now(),
    )
    .expect("a presigned identity")
}

fn sid(a: &Answer) -> String {
    a.body["SessionId"].as_str().unwrap().to_string()
}

fn creds_of(a: &Answer) -> aws_credential_types::Credentials {
    let b = &a.body;
    aws_credential_types::Credentials::new(
        b["AccessKeyId"].as_str().unwrap(),
        b["SecretAccessKey"].as_str().unwrap(),
        b["SessionToken"].as_str().map(str::to_string),
        None,
        "vended",
    )
}

async fn revoke_session(lambda: &Lambda, who: &str, id: &str) -> Answer {
    post(
        lambda,
        who,
        &format!("/v1/sessions/{id}/revoke"),
        json!({"reason": "attack test"}),
    )
    .await
}

fn vended_context(assume: &Call, issued_at: i64) -> Context {
    let mut tags = HashMap::new();
    for i in 1.. {
        let Some(k) = assume.param(&format!("Tags.member.{i}.Key")) else {
            break;
        };
        tags.insert(k, assume.param(&format!("Tags.member.{i}.Value")).unwrap());
    }
    Context {
        action: "dynamodb:GetItem".into(),
        source_identity: assume.param("SourceIdentity"),
        principal_tags: tags,
        token_issue_time: issued_at,
        resource_tags: HashMap::new(),
        resource_account: None,
        userid: None,
    }
}

/// The recorded AssumeRole of the vend whose session tag is `id`.
fn assume_of(proxy: &Proxy, id: &str) -> Call {
    assume_role_calls(&proxy.calls())
        .into_iter()
        .find(|c| {
            (1..60).any(|i| {
                c.param(&format!("Tags.member.{i}.Key")).as_deref() == Some("tvm-session")
                    && c.param(&format!("Tags.member.{i}.Value")).as_deref() == Some(id)
            })
        })
        .unwrap_or_else(|| panic!("no AssumeRole recorded for {id}"))
}

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
        let env = isolated("hop", &[("atk3-first", FIRST), ("atk3-hop", HOP)]).await;
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
        let doc = policy_of("hop").await;
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
        let env = isolated("flood", &[("atk3-first", FIRST), ("atk3-second", SECOND)]).await;
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
        let mut env = isolated("lease", &[("atk3-first", FIRST)]).await;
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
