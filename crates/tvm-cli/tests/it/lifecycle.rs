//! `tvm policy push|pull|diff|sign` against moto (SSM and KMS), and signed
//! policies through the real `bootstrap` with `TVM_POLICY_SIGNING_KEY`: a
//! signed document vends; an unsigned one, one changed in SSM after
//! signing, and one signed with another key do not.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_ssm::types::ParameterType;
use tvm_devstack::stack::sdk_config;
use tvm_devstack::testing::block_on_spawned;

use super::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/tvm/orders-tenant";
const TASK: &str = "arn:aws:sts::123456789012:assumed-role/orders-task/";

/// The policy admin of these tests (the stack's all-powerful function user),
/// talking to moto directly.
fn policy(args: &[&str]) -> Output {
    let sh = shared();
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    with_creds(&mut cmd, &sh.stack.ids.function.credentials())
        .env("AWS_ENDPOINT_URL", sh.stack.moto.url())
        .arg("policy")
        .args(args)
        .output()
        .expect("run tvm")
}

fn sdk() -> aws_config::SdkConfig {
    let sh = shared();
    sdk_config(&sh.stack.moto.url(), sh.stack.ids.function.credentials())
}

fn stored(name: &str) -> Option<(String, ParameterType)> {
    let client = aws_sdk_ssm::Client::new(&sdk());
    block_on_spawned({
        let name = name.to_string();
        async move {
            let out = client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .ok()?;
            let p = out.parameter()?;
            Some((p.value()?.to_string(), p.r#type()?.clone()))
        }
    })
}

fn put_raw(name: &str, value: &str) {
    let (name, value) = (name.to_string(), value.to_string());
    let client = aws_sdk_ssm::Client::new(&sdk());
    block_on_spawned(async move {
        client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put_parameter");
    });
}

fn kms_key(spec: KeySpec, usage: KeyUsageType) -> String {
    let client = aws_sdk_kms::Client::new(&sdk());
    block_on_spawned(async move {
        client
            .create_key()
            .key_spec(spec)
            .key_usage(usage)
            .send()
            .await
            .expect("create_key")
            .key_metadata()
            .expect("metadata")
            .arn()
            .expect("arn")
            .to_string()
    })
}

/// A directory of its own under the system's temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tvm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, file: &str, body: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

fn orders_doc(profile: &str, extra_rule: &str) -> String {
    format!(
        "profile: {profile}\nrole_arn: {ROLE}\nsession_policy: |\n  {{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Action\": \"dynamodb:GetItem\", \"Resource\": \"arn:aws:dynamodb:*:123456789012:table/orders\", \"Condition\": {{\"ForAllValues:StringEquals\": {{\"dynamodb:LeadingKeys\": [\"${{tenant}}\"]}}}}}}]}}\nrules:\n  - {{name: ecs, effect: allow, principals: [\"{TASK}*\"], bind: {{tenant: \"${{caller.session_name}}\"}}}}\n{extra_rule}"
    )
}

#[test]
fn push_validates_shows_the_diff_and_stores_pull_writes_back_and_diff_renders_before_and_after() {
    let prefix = "/tvm/lifecycle-policies/";
    let dir = scratch("lifecycle");
    let good = write(&dir, "good.yaml", &orders_doc("life-orders", ""));
    let bad = write(
        &dir,
        "bad.yaml",
        "profile: life-broken\nrules:\n  - {name: x, effect: maybe}\n",
    );
    let name = format!("{prefix}life-orders");

    // One invalid document: nothing is stored, every problem is named.
    let out = policy(&["push", "--prefix", prefix, &good, &bad]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bad.yaml"), "{}", text(&out));
    assert!(text(&out).contains("nothing was stored"), "{}", text(&out));
    assert_eq!(stored(&name), None);

    let out = policy(&["push", "--prefix", prefix, "--dry-run", &good]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("life-orders: new profile"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("dry run: nothing stored (1 would be)"));
    assert_eq!(stored(&name), None);

    let out = policy(&["push", "--prefix", prefix, &good]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("stored {name}")));
    let (value, kind) = stored(&name).expect("stored");
    assert_eq!(value, orders_doc("life-orders", ""));
    assert_eq!(kind, ParameterType::String);

    let out = policy(&["push", "--prefix", prefix, &good]);
    assert!(
        text(&out).contains("life-orders: unchanged"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("stored "), "{}", text(&out));

    // A new rule for the ops role: the diff names it, and for an ops caller
    // the decision goes from deny to allow with the rendered policy.
    let ops = "  - {name: ops, effect: allow, principals: [\"arn:aws:sts::123456789012:assumed-role/ops/*\"], bind: {tenant: ops}}\n";
    let changed = write(&dir, "good.yaml", &orders_doc("life-orders", ops));
    let caller = "arn:aws:sts::123456789012:assumed-role/ops/olga";
    let out = policy(&["diff", "--prefix", prefix, &changed, "--caller", caller]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("+ rule ops"), "{shown}");
    let (before, after) = shown.split_once("  after:").expect("before and after");
    assert!(before.contains("decision: deny"), "{shown}");
    assert!(after.contains("decision: allow"), "{shown}");
    assert!(after.contains("\"ops\""), "{shown}");

    // SecureString with a key of its own.
    let key = kms_key(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt);
    let out = policy(&[
        "push",
        "--prefix",
        prefix,
        "--secure",
        "--kms-key-id",
        &key,
        &changed,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("+ rule ops"), "{}", text(&out));
    let (value, kind) = stored(&name).expect("stored");
    assert_eq!(kind, ParameterType::SecureString);
    assert_eq!(value, orders_doc("life-orders", ops));

    // SecureString with the account's SSM key (no --kms-key-id).
    let other = write(
        &dir,
        "default-key.yaml",
        &orders_doc("life-default-key", ""),
    );
    let out = policy(&["push", "--prefix", prefix, "--secure", &other]);
    assert!(out.status.success(), "{}", text(&out));
    let (value, kind) = stored(&format!("{prefix}life-default-key")).expect("stored");
    assert_eq!(
        (value, kind),
        (
            orders_doc("life-default-key", ""),
            ParameterType::SecureString
        )
    );

    // SSM's sizes, which moto does not enforce: over 4 KB goes to the
    // advanced tier; over 8 KB is refused before anything is stored.
    let padding = |n: usize| format!("# {}\n", "x".repeat(n));
    let big = write(
        &dir,
        "big.yaml",
        &(orders_doc("life-big", "") + &padding(5000)),
    );
    let out = policy(&["push", "--prefix", prefix, &big]);
    assert!(out.status.success(), "{}", text(&out));
    let tier = block_on_spawned({
        let client = aws_sdk_ssm::Client::new(&sdk());
        let name = format!("{prefix}life-big");
        async move {
            let out = client
                .describe_parameters()
                .parameter_filters(
                    aws_sdk_ssm::types::ParameterStringFilter::builder()
                        .key("Name")
                        .values(name)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .expect("describe_parameters");
            out.parameters()[0].tier().cloned()
        }
    });
    assert_eq!(tier, Some(aws_sdk_ssm::types::ParameterTier::Advanced));
    let huge = write(
        &dir,
        "huge.yaml",
        &(orders_doc("life-huge", "") + &padding(8200)),
    );
    let out = policy(&["push", "--prefix", prefix, &huge]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("at most 8192"), "{}", text(&out));
    assert_eq!(stored(&format!("{prefix}life-huge")), None);

    // Pull writes what is stored, decrypted.
    let back = scratch("lifecycle-pull");
    let out = policy(&["pull", "--prefix", prefix, "--dir", back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(back.join("life-orders.yaml")).unwrap(),
        orders_doc("life-orders", ops)
    );
    let out = policy(&["pull", "--prefix", prefix, "no-such-profile"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no profile no-such-profile"),
        "{}",
        text(&out)
    );
}

/// Vend `profile` through `gateway` as an ECS task.
fn vends(gateway: &Gateway, profile: &str) -> bool {
    let front = vec!["--endpoint".to_string(), gateway.url()];
    credential_process_via(&front, &task("acme"), profile, &[])
        .status
        .success()
}

/// Poll (bounded) until vending `profile` gives `expected`: the function
/// reloads its policies every second here.
fn until_vends(gateway: &Gateway, profile: &str, expected: bool) {
    for _ in 0..40 {
        if vends(gateway, profile) == expected {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{profile}: vending never became {expected}");
}

#[test]
fn with_a_signing_key_only_documents_signed_with_it_and_unchanged_since_vend() {
    let prefix = "/tvm/signed-policies/";
    let dir = scratch("signed");
    let key = kms_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let other_key = kms_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let signed = write(&dir, "signed.yaml", &orders_doc("signed-orders", ""));
    let unsigned = write(&dir, "unsigned.yaml", &orders_doc("unsigned-orders", ""));

    // Signed for the default prefix: another deployment's parameter.
    let out = policy(&["sign", "--key", &key, &signed]);
    assert!(out.status.success(), "{}", text(&out));
    let elsewhere = std::fs::read_to_string(&signed).unwrap();
    let out = policy(&["sign", "--prefix", prefix, "--key", &key, &signed]);
    assert!(out.status.success(), "{}", text(&out));
    let signed_text = std::fs::read_to_string(&signed).unwrap();
    assert!(
        signed_text
            .lines()
            .last()
            .unwrap()
            .starts_with("# tvm-signature: v1 ECDSA_SHA_256 "),
        "{signed_text}"
    );
    // Signing again replaces the signature line.
    let out = policy(&["sign", "--prefix", prefix, "--key", &key, &signed]);
    assert!(out.status.success(), "{}", text(&out));
    let again = std::fs::read_to_string(&signed).unwrap();
    assert_eq!(again.matches("# tvm-signature:").count(), 1);
    for file in [&signed, &unsigned] {
        let out = policy(&["push", "--prefix", prefix, file]);
        assert!(out.status.success(), "{}", text(&out));
    }

    let sh = shared();
    let mark = sh.stack.proxy.mark();
    let (lambda, gateway) = own_deployment_with(&[
        ("TVM_POLICY_PREFIX", prefix),
        ("TVM_POLICY_SIGNING_KEY", &key),
        ("TVM_POLICY_TTL_SECONDS", "1"),
    ]);
    assert!(
        vends(&gateway, "signed-orders"),
        "{}",
        lambda.logs().join("\n")
    );
    assert!(!vends(&gateway, "unsigned-orders"));

    let name = format!("{prefix}signed-orders");
    // A signature made for another deployment's parameter of that profile.
    put_raw(&name, &elsewhere);
    until_vends(&gateway, "signed-orders", false);
    put_raw(&name, &again);
    until_vends(&gateway, "signed-orders", true);
    // Changed in SSM after signing: one more second of duration.
    let tampered = again.replace("rules:", "duration: {default: 901}\nrules:");
    put_raw(&name, &tampered);
    until_vends(&gateway, "signed-orders", false);
    // pull --verify-key writes only what verifies.
    let back = scratch("signed-pull");
    let dir = back.to_str().unwrap();
    let out = policy(&[
        "pull",
        "--prefix",
        prefix,
        "--dir",
        dir,
        "--verify-key",
        &key,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("signed-orders: not written: the signature does not verify"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("unsigned-orders: not written: the document is not signed"),
        "{}",
        text(&out)
    );
    assert!(!back.join("signed-orders.yaml").exists());
    // Signed with another key.
    let out = policy(&[
        "push",
        "--prefix",
        prefix,
        "--sign-key",
        &other_key,
        &signed,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("~ signature"), "{}", text(&out));
    until_vends(&gateway, "signed-orders", false);
    // Signed again with the deployment's key: vends again.
    let out = policy(&["push", "--prefix", prefix, "--sign-key", &key, &signed]);
    assert!(out.status.success(), "{}", text(&out));
    until_vends(&gateway, "signed-orders", true);
    // Pushed again, signed with the same key: nothing to store.
    let out = policy(&["push", "--prefix", prefix, "--sign-key", &key, &signed]);
    assert!(
        text(&out).contains("signed-orders: unchanged"),
        "{}",
        text(&out)
    );
    let out = policy(&[
        "pull",
        "--prefix",
        prefix,
        "--dir",
        dir,
        "--verify-key",
        &key,
        "signed-orders",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(back.join("signed-orders.yaml")).unwrap(),
        stored(&name).expect("stored").0
    );
    // A key that cannot sign is refused before anything is stored.
    let encrypt_only = kms_key(KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt);
    let out = policy(&["sign", "--prefix", prefix, "--key", &encrypt_only, &signed]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a SIGN_VERIFY key"),
        "{}",
        text(&out)
    );

    // The key's public half was read once, however many loads there were.
    let calls = sh.stack.proxy.calls_since(mark);
    let fetched = calls
        .iter()
        .filter(|c| c.service == "kms" && c.action == "GetPublicKey")
        .count();
    let loads = calls
        .iter()
        .filter(|c| c.action == "GetParametersByPath")
        .count();
    assert_eq!(fetched, 1, "GetPublicKey calls");
    assert!(loads >= 3, "{loads} policy loads");
    let logs = lambda.logs().join("\n");
    assert!(logs.contains("its signature does not verify"), "{logs}");
    assert!(logs.contains("PolicySignatureRejections"), "{logs}");
    block_on_spawned(async move { lambda.stop().await });

    // A key that cannot be read: nothing is served (fail closed).
    let (lambda, gateway) = own_deployment_with(&[
        ("TVM_POLICY_PREFIX", prefix),
        ("TVM_POLICY_SIGNING_KEY", "alias/no-such-key"),
    ]);
    let front = vec!["--endpoint".to_string(), gateway.url()];
    let out = credential_process_via(&front, &task("acme"), "signed-orders", &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("DependencyFailed"), "{}", text(&out));
    block_on_spawned(async move { lambda.stop().await });
}
