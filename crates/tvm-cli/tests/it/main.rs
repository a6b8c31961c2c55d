//! The `tvm` binary and the AWS CLI against the local stack: moto with IAM
//! auth enforced, the real `bootstrap` behind a function-URL style front
//! (no IAM auth there, so identity is the presigned GetCallerIdentity).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use aws_credential_types::Credentials;
use serde_json::Value;
use tvm_devstack::gateway::{Auth, Gateway};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::{repo_root, venv, workspace_bin, Stack, REGION, SERVER_ID};
use tvm_devstack::testing::block_on_spawned;

mod audit;
mod delivery;
mod lifecycle;
mod localstack;
mod people;

struct Shared {
    stack: Stack,
    lambda: Lambda,
    /// SigV4 checked in front, identity in the request context (apigw mode).
    gateway: Gateway,
    /// No auth in front: identity from the presigned header (sts mode).
    open: Gateway,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        block_on_spawned(async {
            let stack = Stack::start().await.expect("local stack");
            let lambda = Lambda::start(&workspace_bin("bootstrap"), &stack.function_env())
                .await
                .expect("bootstrap");
            // Like API Gateway with AWS_IAM, and like a function URL without auth.
            let iam = Auth::Iam {
                moto: stack.moto.addr,
            };
            let gateway = Gateway::start(lambda.runtime.clone(), iam)
                .await
                .expect("gateway");
            let open = Gateway::start(lambda.runtime.clone(), Auth::None)
                .await
                .expect("gateway");
            Shared {
                stack,
                lambda,
                gateway,
                open,
            }
        })
    })
}

/// A deployment of its own (function instance and IAM-checking front), for
/// tests that take it down or change what it has loaded.
fn own_deployment() -> (Lambda, Gateway) {
    own_deployment_with(&[])
}

/// A deployment of its own with `extra` environment.
fn own_deployment_with(extra: &[(&str, &str)]) -> (Lambda, Gateway) {
    let sh = shared();
    let mut env = sh.stack.function_env();
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    block_on_spawned(async move {
        let lambda = Lambda::start(&workspace_bin("bootstrap"), &env)
            .await
            .expect("bootstrap");
        let iam = Auth::Iam {
            moto: sh.stack.moto.addr,
        };
        let gateway = Gateway::start(lambda.runtime.clone(), iam)
            .await
            .expect("gateway");
        (lambda, gateway)
    })
}

fn tvm() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tvm"))
}

fn task(tenant: &'static str) -> Credentials {
    let sh = shared();
    block_on_spawned(async move {
        sh.stack
            .task_credentials(tenant)
            .await
            .expect("task credentials")
    })
}

/// A clean environment: nothing from the developer's AWS setup.
fn clean(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

fn with_creds<'a>(cmd: &'a mut Command, c: &Credentials) -> &'a mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", c.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key())
        .env("AWS_SESSION_TOKEN", c.session_token().unwrap_or_default())
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
}

/// The front with IAM auth, as an API Gateway deployment.
fn endpoint_args() -> Vec<String> {
    vec!["--endpoint".into(), shared().gateway.url()]
}

/// The front without auth: the client adds a presigned GetCallerIdentity.
fn presigned_args() -> Vec<String> {
    let sh = shared();
    vec![
        "--endpoint".into(),
        sh.open.url(),
        "--server-id".into(),
        SERVER_ID.into(),
        "--sts-endpoint".into(),
        sh.stack.proxy.url(),
    ]
}

fn credential_process(creds: &Credentials, profile: &str, extra: &[&str]) -> Output {
    credential_process_via(&endpoint_args(), creds, profile, extra)
}

fn credential_process_via(
    front: &[String],
    creds: &Credentials,
    profile: &str,
    extra: &[&str],
) -> Output {
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    with_creds(&mut cmd, creds)
        .args(["credential-process", "--profile", profile])
        .args(front)
        .args(extra)
        .output()
        .expect("run tvm")
}

/// What a run printed, stdout then stderr.
fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_secret(text: &str, creds: &Credentials) {
    assert!(
        !text.contains(creds.secret_access_key()),
        "the caller's secret leaked"
    );
    assert!(
        !text.contains(creds.session_token().unwrap_or("\u{0}")),
        "the caller's token leaked"
    );
}

#[test]
fn credential_process_prints_exactly_the_process_credentials_json() {
    let creds = task("acme");
    let out = credential_process(&creds, "orders-tenant", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr on success: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert_eq!(v["Version"], 1);
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));
    // The function logged its decision before answering; none of this is in its log.
    let logs = shared().lambda.logs().join("\n");
    for field in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(
            !logs.contains(v[field].as_str().unwrap()),
            "{field} was logged"
        );
    }
    assert_no_secret(&logs, &creds);
}

#[test]
fn the_aws_cli_calls_dynamodb_with_credentials_from_credential_process() {
    let sh = shared();
    let creds = task("umbrella");
    let dir = std::env::temp_dir().join(format!("tvm-cli-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    let process = format!(
        "{} credential-process --profile orders-tenant {}",
        tvm().display(),
        endpoint_args().join(" ")
    );
    std::fs::write(
        &config,
        format!("[profile tvm-umbrella]\nregion = {REGION}\ncredential_process = {process}\n"),
    )
    .unwrap();
    let aws = |args: &[&str]| -> Value {
        let mut cmd = Command::new(venv().join("bin/aws"));
        clean(&mut cmd);
        // The environment holds the task's own credentials, which tvm signs
        // with; `--profile` makes the AWS CLI use credential_process instead.
        let out = with_creds(&mut cmd, &creds)
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_ENDPOINT_URL", sh.stack.moto.url())
            .args(["--profile", "tvm-umbrella", "--output", "json"])
            .args(args)
            .output()
            .expect("run aws");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "aws {args:?}: {stderr}");
        assert_no_secret(&stderr, &creds);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let who = aws(&["sts", "get-caller-identity"]);
    let arn = who["Arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/orders-tenant/umbrella."),
        "{arn}"
    );
    aws(&[
        "dynamodb",
        "put-item",
        "--table-name",
        "orders",
        "--item",
        r#"{"tenant":{"S":"umbrella"},"order_id":{"S":"42"}}"#,
    ]);
    let got = aws(&[
        "dynamodb",
        "get-item",
        "--table-name",
        "orders",
        "--key",
        r#"{"tenant":{"S":"umbrella"},"order_id":{"S":"42"}}"#,
    ]);
    assert_eq!(got["Item"]["order_id"]["S"], "42");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn refusals_exit_non_zero_with_the_code_on_stderr_and_no_secret() {
    let creds = task("acme");
    let out = credential_process(&creds, "payroll", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("AccessDenied") && stderr.contains("request id"),
        "{stderr}"
    );
    assert_no_secret(&stderr, &creds);

    let out = credential_process(&creds, "orders-tenant", &["--duration", "100"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("BadRequest: duration_seconds must be between 900 and 3600"));

    // A wrong secret: the IAM front refuses the signature, as API Gateway does...
    let wrong = Credentials::new(
        creds.access_key_id(),
        "wrong-secret",
        creds.session_token().map(str::to_string),
        None,
        "t",
    );
    let out = credential_process(&wrong, "orders-tenant", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 403") && stderr.contains("signature we calculated does not match"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret"));
    // ...and without a front, STS refuses the presigned identity.
    let out = credential_process_via(&presigned_args(), &wrong, "orders-tenant", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    assert!(!stderr.contains("wrong-secret"));
}

#[test]
fn credential_process_proves_identity_with_a_presigned_request_where_nothing_checks_sigv4() {
    let creds = task("hooli");
    let out = credential_process_via(&presigned_args(), &creds, "orders-tenant", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
}

#[test]
fn credential_process_refuses_to_call_itself() {
    let creds = task("acme");
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    let out = with_creds(&mut cmd, &creds)
        .env("TVM_CREDENTIAL_PROCESS_ACTIVE", "1")
        .args(["credential-process", "--profile", "orders-tenant"])
        .args(endpoint_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invoked by itself"));
}

fn examples() -> PathBuf {
    repo_root().join("examples/policies")
}

#[test]
fn policy_validate_accepts_the_examples_and_names_every_problem() {
    let out = Command::new(tvm())
        .args(["policy", "validate"])
        .arg(examples().join("orders-tenant.yaml"))
        .arg(examples().join("reports-readonly.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bad = std::env::temp_dir().join(format!("tvm-bad-{}.yaml", std::process::id()));
    std::fs::write(
        &bad,
        "profile: x\nrole_arn: nope\nrules:\n  - {name: a, effect: permit}\n",
    )
    .unwrap();
    let out = Command::new(tvm())
        .args(["policy", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("role_arn: must be an IAM role ARN"), "{text}");
    assert!(
        text.contains("rules[0].effect: unknown effect \"permit\""),
        "{text}"
    );
    std::fs::remove_file(bad).ok();
}

#[test]
fn policy_test_shows_the_decision_and_the_rendered_policy() {
    let file = examples().join("orders-tenant.yaml");
    let out = Command::new(tvm())
        .args(["policy", "test"])
        .arg(&file)
        .args([
            "--caller",
            "arn:aws:sts::123456789012:assumed-role/orders-task/acme",
            "--duration",
            "3600",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("decision: allow") && text.contains("rule:     ecs-orders"),
        "{text}"
    );
    assert!(text.contains("duration: 1800s"), "capped: {text}");
    assert!(text.contains("tag:      tenant=acme"));
    assert!(text.contains("\"acme\""), "{text}");

    let out = Command::new(tvm())
        .args(["policy", "test"])
        .arg(examples().join("reports-readonly.yaml"))
        .args([
            "--caller",
            "arn:aws:iam::123456789012:user/analyst-ana",
            "--at",
            "2026-11-29T03:30:00+01:00",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("rule maintenance denies this caller"),
        "{text}"
    );
    // A grant ends with its reason: 10 minutes before the maintenance hour,
    // what is left is under STS's 900 s; 20 minutes before, it is the cap.
    let at = |when: &str| {
        let out = Command::new(tvm())
            .args(["policy", "test"])
            .arg(examples().join("reports-readonly.yaml"))
            .args(["--caller", "arn:aws:iam::123456789012:user/analyst-ana"])
            .args(["--at", when, "--duration", "1800"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = at("2026-11-29T02:50:00+01:00");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("ends in 600 s"), "{text}");
    let (code, text) = at("2026-11-29T02:40:00+01:00");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("duration: 1200s"), "{text}");
}
