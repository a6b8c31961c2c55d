//! The presigned GetCallerIdentity identity mode, and every attack on it the
//! brief lists. moto enforces signatures, so a wrong secret really is refused.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use serde_json::{json, Value};
use tvm_client::presign::identity_header;
use tvm_devstack::stack::{REGION, SERVER_ID};

use crate::harness::*;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A vend event with no IAM context and the given `X-Tvm-Identity`.
fn presigned_event(header: &str) -> Value {
    presigned_vend(header, "orders-tenant")
}

fn sign(creds: &Credentials, server_id: &str, at: SystemTime) -> String {
    identity_header(creds, REGION, &shared().stack.proxy.url(), server_id, at).unwrap()
}

/// Decode, change, re-encode an envelope.
fn tamper(header: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut env: Value = serde_json::from_slice(&b64().decode(header).unwrap()).unwrap();
    f(&mut env);
    b64().encode(env.to_string())
}

fn headers_mut(env: &mut Value) -> &mut Vec<Value> {
    env["headers"].as_array_mut().unwrap()
}

#[test]
fn a_presigned_identity_vends_for_the_signer() {
    run(async {
        let sh = shared();
        let creds = sh.stack.task_credentials("initech").await.unwrap();
        let header = sign(&creds, SERVER_ID, SystemTime::now());
        let a = call(&sh.lambda, presigned_event(&header)).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let d = decisions(&sh.lambda)
            .into_iter()
            .rev()
            .find(|d| d["session_id"] == a.body["SessionId"])
            .unwrap();
        assert_eq!(d["caller"], format!("{TASK}initech"));
        assert_eq!(d["identity_source"], "sts");
        // The presigned request's own secrets never reach the log.
        let env: Value = serde_json::from_slice(&b64().decode(&header).unwrap()).unwrap();
        let logs = sh.lambda.logs().join("\n");
        for h in env["headers"].as_array().unwrap() {
            if matches!(
                h[0].as_str(),
                Some("authorization" | "x-amz-security-token")
            ) {
                assert!(
                    !logs.contains(h[1].as_str().unwrap()),
                    "{} was logged",
                    h[0]
                );
            }
        }
        assert!(!logs.contains(creds.session_token().unwrap()));
        assert!(
            !logs.contains(&header),
            "the X-Tvm-Identity value was logged"
        );
    });
}

#[test]
fn an_api_gateway_identity_wins_over_a_presigned_header() {
    run(async {
        let sh = shared();
        let globex = sh.stack.task_credentials("globex").await.unwrap();
        let mut e = vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"}));
        e["headers"]["x-tvm-identity"] = json!(sign(&globex, SERVER_ID, SystemTime::now()));
        let a = call(&sh.lambda, e).await;
        assert_eq!(a.status, 200);
        let d = decisions(&sh.lambda)
            .into_iter()
            .rev()
            .find(|d| d["session_id"] == a.body["SessionId"])
            .unwrap();
        assert_eq!(
            (d["caller"].as_str(), d["identity_source"].as_str()),
            (Some(&*format!("{TASK}acme")), Some("apigw"))
        );
    });
}

#[test]
fn every_presigned_identity_attack_is_refused() {
    run(async {
        let sh = shared();
        // A tenant no other test uses, so any AssumeRole for it would be this test's.
        let creds = sh.stack.task_credentials("mallory").await.unwrap();
        let now = SystemTime::now();
        let good = sign(&creds, SERVER_ID, now);
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let wrong_secret = Credentials::new(
            creds.access_key_id(),
            "not-the-secret",
            creds.session_token().map(str::to_string),
            None,
            "t",
        );

        let attacks: Vec<(&str, String)> = vec![
            (
                "another action in the body",
                tamper(&good, |e| {
                    e["body"] = json!("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/tvm/orders-tenant")
                }),
            ),
            (
                "extra body parameters",
                tamper(&good, |e| {
                    e["body"] = json!("Action=GetCallerIdentity&Version=2011-06-15&Extra=1")
                }),
            ),
            ("a GET", tamper(&good, |e| e["method"] = json!("GET"))),
            (
                "a host other than STS (SSRF)",
                tamper(&good, |e| {
                    for h in headers_mut(e) {
                        if h[0] == "host" {
                            h[1] = json!("169.254.169.254");
                        }
                    }
                }),
            ),
            (
                "no x-tvm-server-id",
                tamper(&good, |e| {
                    headers_mut(e).retain(|h| h[0] != "x-tvm-server-id")
                }),
            ),
            (
                "a wrong x-tvm-server-id",
                sign(&creds, "another-deployment", now),
            ),
            (
                "an unsigned x-tvm-server-id",
                tamper(&good, |e| {
                    for h in headers_mut(e) {
                        if h[0] == "authorization" {
                            h[1] = json!(h[1].as_str().unwrap().replace(";x-tvm-server-id", ""));
                        }
                    }
                }),
            ),
            (
                "a date 20 minutes old",
                sign(&creds, SERVER_ID, now - minutes(20)),
            ),
            (
                "a date 20 minutes ahead",
                sign(&creds, SERVER_ID, now + minutes(20)),
            ),
            (
                "an X-Amz header outside the SigV4 set",
                tamper(&good, |e| {
                    headers_mut(e).push(json!([
                        "x-amz-target",
                        "AWSSecurityTokenServiceV20110615.AssumeRole"
                    ]))
                }),
            ),
            (
                "query-string presigning",
                tamper(&good, |e| {
                    headers_mut(e).push(json!(["x-amz-signature", "00"]))
                }),
            ),
            (
                "a duplicate header",
                tamper(&good, |e| {
                    headers_mut(e).push(json!(["host", "sts.amazonaws.com"]))
                }),
            ),
            (
                "a case-variant header",
                tamper(&good, |e| {
                    headers_mut(e).push(json!(["Host", "sts.amazonaws.com"]))
                }),
            ),
            (
                "an unknown envelope field",
                tamper(&good, |e| e["url"] = json!("http://169.254.169.254/")),
            ),
            (
                "an oversized header",
                tamper(&good, |e| {
                    headers_mut(e).push(json!(["content-type", "x".repeat(9000)]))
                }),
            ),
            ("not base64", "%%%".to_string()),
            ("not JSON", b64().encode("hello")),
            (
                "a wrong secret (STS refuses the signature)",
                sign(&wrong_secret, SERVER_ID, now),
            ),
        ];
        for (name, header) in attacks {
            let mark = sh.stack.proxy.mark();
            let a = call(&sh.lambda, presigned_event(&header)).await;
            assert_eq!(
                (a.status, a.code()),
                (401, "Unauthenticated"),
                "{name}: {:?}",
                a.body
            );
            assert!(a.body.get("AccessKeyId").is_none(), "{name}");
            let minted = sh.stack.proxy.calls_since(mark).iter().any(|c| {
                c.action == "AssumeRole"
                    && c.param("RoleSessionName")
                        .is_some_and(|n| n.starts_with("mallory."))
            });
            assert!(!minted, "{name}: credentials were minted");
        }
    });
}

#[test]
fn the_identity_header_is_ignored_unless_the_sts_mode_is_on() {
    run(async {
        let lambda = own_lambda(&[("TVM_IDENTITY_MODES", "apigw")]).await;
        let creds = shared().stack.task_credentials("acme").await.unwrap();
        let a = call(
            &lambda,
            presigned_event(&sign(&creds, SERVER_ID, SystemTime::now())),
        )
        .await;
        assert_eq!((a.status, a.code()), (401, "Unauthenticated"));
        lambda.stop().await;
    });
}
