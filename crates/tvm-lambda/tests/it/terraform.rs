//! Terraform applied for real: `terraform init` from the machine's provider
//! mirror (the repo's CLI config, no network), `terraform validate` of every
//! module and the example, `terraform apply` of the example against a moto
//! of its own, then the real bootstrap run with the environment Terraform
//! computed, as the function role Terraform created: a vend through the
//! tables, policy parameters and roles Terraform made, a revocation written
//! through the revoker role and policy it made, and `terraform destroy`.
//!
//! Without terraform or the mirror the test says so and passes: the hcl2
//! cross-checks in infra/tests still hold the files to the code.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::{repo_root, sdk_config, Moto, REGION};

use crate::aws_rules::{denied_by, Context};
use crate::harness::*;

const MIRROR: &str = "/opt/tf-plugins";
const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/sec-admin/alice";

fn terraform_available() -> Result<(), String> {
    let version = Command::new("terraform").arg("version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err("terraform is not on PATH".into());
    }
    if !Path::new(MIRROR)
        .join("registry.terraform.io/hashicorp/aws")
        .is_dir()
    {
        return Err(format!("no hashicorp/aws provider in the mirror {MIRROR}"));
    }
    Ok(())
}

/// Run terraform in `dir`; its output on failure.
fn tf(dir: &Path, args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env(
            "TF_CLI_CONFIG_FILE",
            repo_root().join("infra/terraform/cli.tfrc"),
        )
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("terraform runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "terraform {args:?} in {}:\n{text}",
        dir.display()
    );
    text
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".terraform" || name.to_string_lossy().ends_with(".tfstate") {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The provider pointed at the emulator: an override file beside the
/// example's own configuration (Terraform merges it into `provider "aws"`).
fn moto_override(moto: &str) -> String {
    let services = [
        "apigatewayv2",
        "cloudwatch",
        "dynamodb",
        "iam",
        "lambda",
        "logs",
        "organizations",
        "sns",
        "ssm",
        "sts",
    ];
    let endpoints: String = services
        .iter()
        .map(|s| format!("    {s} = \"{moto}\"\n"))
        .collect();
    format!(
        "provider \"aws\" {{\n  access_key = \"test\"\n  secret_key = \"test\"\n  \
         skip_credentials_validation = true\n  skip_metadata_api_check = true\n  \
         skip_region_validation = true\n  \
         max_retries = 1\n  endpoints {{\n{endpoints}  }}\n}}\n"
    )
}

#[test]
fn terraform_validates_applies_vends_revokes_and_destroys_against_the_emulator() {
    if let Err(why) = terraform_available() {
        eprintln!("SKIPPED: terraform apply test: {why}");
        return;
    }
    run(async {
        let work = tempdir();
        let tree = work.join("terraform");
        copy_tree(&repo_root().join("infra/terraform"), &tree);
        let cache = work.join("plugin-cache");
        std::fs::create_dir_all(&cache).unwrap();
        let cache_env = [("TF_PLUGIN_CACHE_DIR", cache.display().to_string())];

        // Every module and the example: init from the mirror, validate.
        let example = tree.join("examples/complete");
        let dirs: Vec<PathBuf> = [
            "modules/tvm",
            "modules/tvm-account",
            "modules/protected-role",
            "modules/scp",
        ]
        .iter()
        .map(|d| tree.join(d))
        .chain([example.clone()])
        .collect();
        let validated = tokio::task::spawn_blocking({
            let (dirs, cache_env) = (dirs.clone(), cache_env.clone());
            move || {
                for d in &dirs {
                    // The example's committed lock file must cover what it installs.
                    let lock = d.join(".terraform.lock.hcl").exists();
                    let init: &[&str] = if lock {
                        &["init", "-backend=false", "-lockfile=readonly", "-no-color"]
                    } else {
                        &["init", "-backend=false", "-no-color"]
                    };
                    tf(d, init, &cache_env);
                    tf(d, &["validate", "-no-color"], &cache_env);
                }
            }
        });
        validated.await.unwrap();

        let moto = Moto::start().expect("an emulator for terraform");
        std::fs::write(example.join("moto_override.tf"), moto_override(&moto.url())).unwrap();
        let zip = work.join("bootstrap.zip");
        make_zip(&zip);
        let vars = vec![
            format!("-var=lambda_zip={}", zip.display()),
            format!(
                "-var=policies_dir={}",
                repo_root().join("examples/policies").display()
            ),
            format!("-var=region={REGION}"),
            "-var=table_deletion_protection=false".to_string(),
            // moto has no logs:PutQueryDefinition.
            "-var=saved_queries=false".to_string(),
            format!(
                "-var=admin_principals=[\"{}\"]",
                "arn:aws:sts::123456789012:assumed-role/sec-admin/*"
            ),
        ];
        let apply: Vec<String> = ["apply", "-auto-approve", "-no-color"]
            .iter()
            .map(|s| s.to_string())
            .chain(vars.iter().cloned())
            .collect();
        let outputs = tokio::task::spawn_blocking({
            let (example, cache_env) = (example.clone(), cache_env.clone());
            move || {
                let args: Vec<&str> = apply.iter().map(String::as_str).collect();
                tf(&example, &args, &cache_env);
                tf(&example, &["output", "-json"], &cache_env)
            }
        })
        .await
        .unwrap();
        let outputs: Value = serde_json::from_str(&outputs).expect("terraform output -json");
        let out = |name: &str| outputs[name]["value"].clone();

        // Terraform's execution role grants what SAM's does (which the
        // least-privilege test holds to what the code calls).
        let iam = aws_sdk_iam::Client::new(&sdk_config(
            &moto.url(),
            aws_credential_types::Credentials::new("test", "test", None, None, "tf"),
        ));
        let granted = iam
            .get_role_policy()
            .role_name("tvm-function")
            .policy_name("tvm")
            .send()
            .await
            .unwrap();
        let granted: Value =
            serde_json::from_str(&percent_decode(granted.policy_document())).unwrap();
        let tables = out("tables");
        let (sam, _) = crate::least_privilege::sam_statements(&json!({
            "Partition": "aws", "Region": REGION, "AccountId": "123456789012",
            "Accounts": ["123456789012"],
            "SessionsTable": tables["sessions"], "ApprovalsTable": tables["approvals"],
            "BreakGlassTable": tables["breakglass"], "NotifyTopic": out("notify_topic_arn"),
            "Conditions": {"Notify": true, "Traced": false, "SignedPolicies": false},
            "LogGroup": "/aws/lambda/tvm",
        }));
        assert_eq!(
            by_sid(granted["Statement"].as_array().unwrap()),
            by_sid(&sam)
        );

        // The function role Terraform created, its credentials from the emulator.
        let sdk = sdk_config(
            &moto.url(),
            aws_credential_types::Credentials::new("test", "test", None, None, "tf"),
        );
        let role = out("function_role_arn").as_str().unwrap().to_string();
        let assumed = aws_sdk_sts::Client::new(&sdk)
            .assume_role()
            .role_arn(&role)
            .role_session_name("tvm")
            .send()
            .await
            .unwrap();
        let c = assumed.credentials().unwrap();
        let mut env: Vec<(String, String)> = out("function_environment")
            .as_object()
            .expect("the function's environment")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        assert!(env
            .iter()
            .any(|(k, v)| k == "TVM_SESSIONS_TABLE" && v == "tvm-sessions"));
        env.extend([
            ("AWS_REGION".to_string(), REGION.to_string()),
            ("AWS_ENDPOINT_URL".to_string(), moto.url()),
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                c.access_key_id().to_string(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                c.secret_access_key().to_string(),
            ),
            (
                "AWS_SESSION_TOKEN".to_string(),
                c.session_token().to_string(),
            ),
        ]);
        let lambda = Lambda::start(bootstrap(), &env).await.expect("bootstrap");

        // A vend by the example's caller, through what Terraform made.
        let caller = out("caller_role_arn")
            .as_str()
            .unwrap()
            .replace(":iam::", ":sts::")
            .replace(":role/", ":assumed-role/")
            + "/acme";
        let vended = call(
            &lambda,
            vend_event(&caller, json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!(vended.status, 200, "{:?}", vended.body);
        assert_eq!(vended.body["RoleArn"], out("orders_tenant_role_arn"));
        let sid = vended.body["SessionId"].as_str().unwrap().to_string();
        let item = aws_sdk_dynamodb::Client::new(&sdk)
            .get_item()
            .table_name(out("tables")["sessions"].as_str().unwrap())
            .key(
                "session_id",
                aws_sdk_dynamodb::types::AttributeValue::S(sid.clone()),
            )
            .send()
            .await
            .unwrap();
        assert!(
            item.item().is_some(),
            "the session is in the table Terraform made"
        );

        // A revocation, written through the revoker Terraform made.
        let revoked = call(
            &lambda,
            v2(
                "POST",
                &format!("/v1/sessions/{sid}/revoke"),
                Some(ADMIN),
                Some(&json!({"reason": "terraform test"})),
            ),
        )
        .await;
        assert_eq!(revoked.status, 200, "{:?}", revoked.body);
        let iam = aws_sdk_iam::Client::new(&sdk);
        let policy_arn = "arn:aws:iam::123456789012:policy/tvm/tvm-revocations";
        let text = default_version(&iam, policy_arn).await.to_string();
        assert!(text.contains(&format!("tvm-{sid}")), "{text}");
        lambda.stop().await;

        let destroy: Vec<String> = ["destroy", "-auto-approve", "-no-color"]
            .iter()
            .map(|s| s.to_string())
            .chain(vars)
            .collect();
        tokio::task::spawn_blocking({
            let cache_env = cache_env.clone();
            move || {
                let args: Vec<&str> = destroy.iter().map(String::as_str).collect();
                tf(&example, &args, &cache_env);
                let state = tf(&example, &["state", "list"], &cache_env);
                assert!(state.trim().is_empty(), "left after destroy: {state}");
            }
        })
        .await
        .unwrap();
        scp_applies_and_denies_what_bypasses_tvm(&tree, &moto, &cache_env).await;
        drop(moto);
        let _ = std::fs::remove_dir_all(&work);
    });
}

const APP: &str = "arn:aws:iam::123456789012:role/app";
const TVM_ROLE: &str = "arn:aws:iam::123456789012:role/tvm-function";
const BREAK_GLASS: &str = "arn:aws:iam::123456789012:role/break-glass";

/// `modules/scp` applied to the emulator's organization (moto keeps SCPs
/// but evaluates none): attached to the root, within AWS's 5,120
/// characters, and denying what it should, by the evaluator.
async fn scp_applies_and_denies_what_bypasses_tvm(
    tree: &Path,
    moto: &Moto,
    cache_env: &[(&str, String)],
) {
    let root = tree.join("scp-test");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("moto_override.tf"), moto_override(&moto.url())).unwrap();
    std::fs::write(
        root.join("main.tf"),
        format!(
            "provider \"aws\" {{\n  region = \"{REGION}\"\n}}\n\
             resource \"aws_organizations_organization\" \"org\" {{\n  feature_set = \"ALL\"\n  enabled_policy_types = [\"SERVICE_CONTROL_POLICY\"]\n}}\n\
             module \"scp\" {{\n  source = \"../modules/scp\"\n  sensitive_actions = [\"dynamodb:GetItem\", \"s3:Get*\"]\n  tvm_role_arns = [\"{TVM_ROLE}\"]\n  exempt_principal_arns = [\"{BREAK_GLASS}\"]\n  target_ids = [aws_organizations_organization.org.roots[0].id]\n}}\n\
             output \"document\" {{\n  value = module.scp.document\n}}\n"
        ),
    )
    .unwrap();
    let (outputs, state) = tokio::task::spawn_blocking({
        let root = root.clone();
        let cache_env: Vec<(&'static str, String)> = cache_env
            .iter()
            .map(|(_, v)| ("TF_PLUGIN_CACHE_DIR", v.clone()))
            .collect();
        // Each run of terraform below reads the plugin cache only.
        move || {
            tf(&root, &["init", "-backend=false", "-no-color"], &cache_env);
            // The organization first: its root id keys the attachments
            // (known up front in a real deployment).
            let org = "-target=aws_organizations_organization.org";
            tf(
                &root,
                &["apply", "-auto-approve", "-no-color", org],
                &cache_env,
            );
            tf(&root, &["apply", "-auto-approve", "-no-color"], &cache_env);
            let outputs = tf(&root, &["output", "-json"], &cache_env);
            let state = tf(&root, &["state", "list"], &cache_env);
            tf(
                &root,
                &["destroy", "-auto-approve", "-no-color"],
                &cache_env,
            );
            (outputs, state)
        }
    })
    .await
    .unwrap();
    assert!(
        state.contains("module.scp.aws_organizations_policy_attachment.targets[\"r-"),
        "attached to the root: {state}"
    );
    let outputs: Value = serde_json::from_str(&outputs).unwrap();
    let text = outputs["document"]["value"].as_str().unwrap().to_string();
    assert!(text.len() <= 5120, "{} characters", text.len());
    let doc: Value = serde_json::from_str(&text).unwrap();
    let ctx = |action: &str, principal: Option<&str>, si: Option<&str>| Context {
        action: action.into(),
        principal_arn: principal.map(str::to_string),
        source_identity: si.map(str::to_string),
        ..Default::default()
    };
    let only = Some("SensitiveActionsOnlyThroughTvm".to_string());
    // Without tvm: denied; through tvm (or chained from it): not.
    assert_eq!(
        denied_by(&doc, &ctx("dynamodb:GetItem", Some(APP), None)),
        only
    );
    assert_eq!(
        denied_by(&doc, &ctx("s3:GetObject", Some(APP), Some("app-1"))),
        only
    );
    assert_eq!(
        denied_by(&doc, &ctx("dynamodb:GetItem", Some(APP), Some("tvm-0a1b"))),
        None
    );
    // tvm's own calls, the break-glass role, and actions not chosen: not.
    assert_eq!(
        denied_by(&doc, &ctx("dynamodb:GetItem", Some(TVM_ROLE), None)),
        None
    );
    assert_eq!(
        denied_by(&doc, &ctx("dynamodb:GetItem", Some(BREAK_GLASS), None)),
        None
    );
    assert_eq!(
        denied_by(&doc, &ctx("dynamodb:PutItem", Some(APP), None)),
        None
    );
    // A tvm- SourceIdentity only from tvm: forging one is denied, for a
    // role session and for federation (no principal ARN); tvm's own
    // vends and a tvm session chaining on are not.
    let minted = |action: &str, principal: Option<&str>, own: Option<&str>| Context {
        requested_source_identity: Some("tvm-0a1b".into()),
        ..ctx(action, principal, own)
    };
    let forged = Some("TvmSourceIdentityOnlyFromTvm".to_string());
    assert_eq!(
        denied_by(&doc, &minted("sts:AssumeRole", Some(APP), None)),
        forged
    );
    assert_eq!(
        denied_by(&doc, &minted("sts:SetSourceIdentity", Some(APP), None)),
        forged
    );
    assert_eq!(
        denied_by(&doc, &minted("sts:AssumeRoleWithSAML", None, None)),
        forged
    );
    assert_eq!(
        denied_by(&doc, &minted("sts:AssumeRole", Some(TVM_ROLE), None)),
        None
    );
    let tvm_session = "arn:aws:iam::123456789012:role/tvm/orders-tenant";
    assert_eq!(
        denied_by(
            &doc,
            &minted("sts:AssumeRole", Some(tvm_session), Some("tvm-0a1b"))
        ),
        None
    );
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tvm-terraform-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The package Terraform uploads. moto stores the code and never runs it
/// (the test runs the bootstrap itself), so a small zip holding a
/// placeholder stands in for the release build `make package` makes.
fn make_zip(path: &Path) {
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('bootstrap', '#!/bin/sh\\n')\n";
    let ok = Command::new(tvm_devstack::stack::venv().join("bin/python"))
        .args(["-c", script])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "writing the zip");
}

/// Statements by Sid: sorted actions and resources (log group ARNs compared
/// by group: CloudFormation's `Arn` attribute ends in `:*`, Terraform's
/// `arn` does not).
fn by_sid(
    statements: &[Value],
) -> std::collections::BTreeMap<String, (Vec<String>, Vec<String>, Value)> {
    let list = |v: &Value| -> Vec<String> {
        let mut l: Vec<String> = match v {
            Value::String(s) => vec![s.trim_end_matches(":*").to_string()],
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap().trim_end_matches(":*").to_string())
                .collect(),
            _ => vec![],
        };
        l.sort();
        l
    };
    statements
        .iter()
        .map(|st| {
            (
                st["Sid"].as_str().unwrap().to_string(),
                (
                    list(&st["Action"]),
                    list(&st["Resource"]),
                    st["Condition"].clone(),
                ),
            )
        })
        .collect()
}
