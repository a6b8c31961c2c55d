//! The commands for people, end to end: a developer asks, the security team
//! approves, lists and revokes, all through `tvm` and the SigV4-checking front.
//!
//! It runs on a profile and protected role of its own (`orders-e2e`) and a
//! function instance of its own: the revocation policy it causes must not
//! touch the role the other tests use (moto applies a Deny whose condition
//! key it does not know to every request, where IAM would apply it to none).

use std::process::{Command, Output};

use aws_credential_types::Credentials;
use serde_json::Value;
use tvm_devstack::stack::{repo_root, venv, REGION};

use super::*;

/// Two SSO-like roles the demo caller may assume: a developer and a security admin.
const ROLES: &str = r#"
import boto3, json, sys
iam, sts = boto3.client("iam"), boto3.client("sts")
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": sys.argv[1]}, "Action": "sts:AssumeRole"}]}
for name in ["AWSReservedSSO_DevAccess_e2e", "AWSReservedSSO_SecAdmin_e2e"]:
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
# The protected role of the orders-e2e profile: trusts the function only.
fn_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": sys.argv[2]}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]}]}
try:
    iam.create_role(RoleName="orders-e2e", Path="/tvm/", AssumeRolePolicyDocument=json.dumps(fn_trust), Tags=[{"Key": "tvm-protected", "Value": "true"}])
except iam.exceptions.EntityAlreadyExistsException:
    pass
doc = open(sys.argv[3]).read().replace("profile: orders-tenant", "profile: orders-e2e").replace("role/tvm/orders-tenant", "role/tvm/orders-e2e")
boto3.client("ssm").put_parameter(Name="/tvm/policies/orders-e2e", Value=doc, Type="String", Overwrite=True)
"#;

const ASSUME: &str = r#"
import boto3, json, sys
c = boto3.client("sts").assume_role(RoleArn=sys.argv[1], RoleSessionName=sys.argv[2])["Credentials"]
print(json.dumps({k: c[k] for k in ["AccessKeyId", "SecretAccessKey", "SessionToken"]}))
"#;

pub(super) fn python(keys: (&str, &str), script: &str, args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run a seeding `script` as the stack's function user, with the demo
/// caller's ARN, the function's ARN and the example policy as arguments.
pub(super) fn seed(script: &str) {
    let ids = &shared().stack.ids;
    let f = &ids.function;
    let policy = repo_root().join("examples/policies/orders-tenant.yaml");
    python(
        (&f.access_key_id, &f.secret_access_key),
        script,
        &[&ids.caller.arn, &f.arn, policy.to_str().unwrap()],
    );
}

/// The SSO-like roles, and the orders-e2e role and profile.
fn setup() {
    seed(ROLES);
}

pub(super) fn person(role: &str, session: &str) -> Credentials {
    let ids = &shared().stack.ids;
    let arn = format!("arn:aws:iam::123456789012:role/{role}");
    let c: Value = serde_json::from_str(&python(
        (&ids.caller.access_key_id, &ids.caller.secret_access_key),
        ASSUME,
        &[&arn, session],
    ))
    .unwrap();
    Credentials::new(
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        Some(c["SessionToken"].as_str().unwrap().to_string()),
        None,
        "e2e",
    )
}

pub(super) fn tvm_as(endpoint: &str, creds: &Credentials, args: &[&str]) -> Output {
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    with_creds(&mut cmd, creds)
        .args(args)
        .args(["--endpoint", endpoint])
        .output()
        .unwrap()
}

#[test]
fn a_developer_asks_the_security_team_approves_lists_and_revokes() {
    setup();
    let dev = person("AWSReservedSSO_DevAccess_e2e", "jane@example.com");
    let sec = person("AWSReservedSSO_SecAdmin_e2e", "alice@example.com");
    let (lambda, gateway) = own_deployment();
    let url = gateway.url();
    let tvm_as = |creds: &Credentials, args: &[&str]| tvm_as(&url, creds, args);

    let refused = tvm_as(&dev, &["credential-process", "--profile", "orders-e2e"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = text(&refused);
    assert!(
        said.contains("ApprovalRequired")
            && said.contains("pending approval request:")
            && said.contains("tvm request --profile orders-e2e"),
        "{said}"
    );

    let asked = tvm_as(
        &dev,
        &[
            "request",
            "--profile",
            "orders-e2e",
            "--justification",
            "debug order 42 for acme",
            "--json",
        ],
    );
    assert!(asked.status.success(), "{}", text(&asked));
    let request: Value = serde_json::from_slice(&asked.stdout).unwrap();
    let id = request["id"].as_str().unwrap().to_string();
    assert!(
        said.contains(&id),
        "the vend's pending request is the one asked for"
    );

    let own = tvm_as(&dev, &["approve", &id]);
    assert_eq!(own.status.code(), Some(1), "a developer cannot approve");

    let listed = tvm_as(&sec, &["requests"]);
    let table = text(&listed);
    assert!(
        table.lines().next().unwrap().starts_with("REQUEST") && table.contains(&id),
        "{table}"
    );

    let approved = tvm_as(&sec, &["approve", &id, "--json"]);
    let view: Value =
        serde_json::from_slice(&approved.stdout).unwrap_or_else(|_| panic!("{}", text(&approved)));
    assert_eq!(view["status"], "approved");

    let vended = tvm_as(&dev, &["credential-process", "--profile", "orders-e2e"]);
    assert!(vended.status.success(), "{}", text(&vended));

    let sessions = tvm_as(
        &sec,
        &["sessions", "--profile", "orders-e2e", "--active", "--json"],
    );
    let list: Value =
        serde_json::from_slice(&sessions.stdout).unwrap_or_else(|_| panic!("{}", text(&sessions)));
    let session = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["caller"] == "arn:aws:iam::123456789012:role/awsreservedsso_devaccess_e2e")
        .expect("the developer's session is listed")["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = tvm_as(
        &sec,
        &["revoke", &session, "--reason", "end of the exercise"],
    );
    assert!(revoked.status.success(), "{}", text(&revoked));
    assert!(text(&revoked).contains("revoked:"));
    let after = tvm_as(&dev, &["credential-process", "--profile", "orders-e2e"]);
    assert!(text(&after).contains("SessionRevoked"), "{}", text(&after));
    let none = tvm_as(&sec, &["breakglass", "list"]);
    assert!(
        none.status.success() && text(&none).starts_with("EVENT"),
        "{}",
        text(&none)
    );
    gateway.stop();
    block_on_spawned(async move { lambda.stop().await });
}
