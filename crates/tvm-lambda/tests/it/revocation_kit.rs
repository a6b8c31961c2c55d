//! What the revocation attack tests share: a state of one's own (its own
//! sessions table, revocation policy and profile prefix, so that filling or
//! racing it disturbs no other test), and reading what reached AWS.

use std::collections::HashMap;

use serde_json::{json, Value};
use tvm_devstack::proxy::{Call, Proxy};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::ACCOUNT;

use crate::aws_rules::Context;
use crate::gates::post;
use crate::harness::*;

pub fn caller(role: &str, session: &str) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}")
}

pub async fn put_profile(prefix: &str, name: &str, text: &str) {
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

/// A sessions table of its own, created by scripts/bootstrap.py as the
/// deployment's are.
pub fn sessions_table(table: &str) {
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
        .env("TVM_SESSIONS_TABLE", table)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn isolated(tag: &str, profiles: &[(&str, &str)]) -> Vec<(String, String)> {
    let table = format!("tvm-sessions-{tag}");
    sessions_table(&table);
    let empty = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "ChainOnlyIntoRevocableRoles", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:ResourceTag/tvm-revocable": "true"}}}]});
    let _ = aws_sdk_iam::Client::new(&sdk())
        .create_policy()
        .policy_name(format!("tvm-revocations-{tag}"))
        .path("/tvm/")
        .policy_document(empty.to_string())
        .send()
        .await;
    let prefix = format!("/tvm/isolated-{tag}/");
    for (name, text) in profiles {
        put_profile(&prefix, name, text).await;
    }
    vec![
        ("TVM_SESSIONS_TABLE".into(), table),
        (
            "TVM_REVOCATION_POLICY".into(),
            format!("/tvm/tvm-revocations-{tag}"),
        ),
        ("TVM_POLICY_PREFIX".into(), prefix),
    ]
}

pub async fn lambda_in(env: &[(String, String)]) -> (Lambda, Proxy) {
    let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    counted_lambda(&e).await
}

pub async fn versions_of(tag: &str) -> Vec<(String, bool, Value)> {
    let iam = aws_sdk_iam::Client::new(&sdk());
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/tvm/tvm-revocations-{tag}");
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

pub async fn policy_of(tag: &str) -> Value {
    versions_of(tag)
        .await
        .into_iter()
        .find(|(_, d, _)| *d)
        .unwrap()
        .2
}

pub fn signed_for(proxy: &Proxy, creds: &aws_credential_types::Credentials) -> String {
    tvm_client::presign::identity_header(
        creds,
        tvm_devstack::stack::REGION,
        &proxy.url(),
        tvm_devstack::stack::SERVER_ID,
        std::time::SystemTime::now(),
    )
    .expect("a presigned identity")
}

pub fn sid(a: &Answer) -> String {
    a.body["SessionId"].as_str().unwrap().to_string()
}

pub fn creds_of(a: &Answer) -> aws_credential_types::Credentials {
    let b = &a.body;
    aws_credential_types::Credentials::new(
        b["AccessKeyId"].as_str().unwrap(),
        b["SecretAccessKey"].as_str().unwrap(),
        b["SessionToken"].as_str().map(str::to_string),
        None,
        "vended",
    )
}

pub fn by_source_identity(id: &str) -> Context {
    Context {
        source_identity: Some(format!("tvm-{id}")),
        action: "s3:GetObject".into(),
        ..Default::default()
    }
}

pub async fn revoke_session(lambda: &Lambda, who: &str, id: &str) -> Answer {
    post(
        lambda,
        who,
        &format!("/v1/sessions/{id}/revoke"),
        json!({"reason": "attack test"}),
    )
    .await
}

pub fn vended_context(assume: &Call, issued_at: i64) -> Context {
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
        ..Context::default()
    }
}

/// The recorded AssumeRole of the vend whose session tag is `id`.
pub fn assume_of(proxy: &Proxy, id: &str) -> Call {
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
