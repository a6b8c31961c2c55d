//! Least privilege, measured: every route walked through the real
//! bootstrap, every AWS call it made replayed against the execution role's
//! statements in template.yaml (and the revoker's in
//! infra/cloudformation/tvm-account.yaml, for the IAM writes made through
//! it). A call no statement allows fails the test; so does a grant that no
//! call used, but for the few the code never makes itself (listed below,
//! with why). Terraform's role is held to the same statements in
//! infra/tests (and applied in `terraform.rs`).

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{json, Value};
use tvm_devstack::proxy::Call;
use tvm_devstack::stack::{repo_root, venv, REGION};
use tvm_lambda::routes::Route;

use crate::aws_rules::like;
use crate::gates::*;
use crate::harness::*;
use crate::revocation_kit::{isolated, lambda_in};

const ACCOUNT: &str = "123456789012";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:tvm-least-privilege";
const CAROL: &str = "arn:aws:sts::123456789012:assumed-role/second-approver/carol";

/// Grants the code never exercises itself: `(sid, action)`.
const NOT_CALLED_BY_TVM: &[(&str, &str, &str)] = &[
    (
        "Logs",
        "logs:CreateLogStream",
        "Lambda writes the function's logs",
    ),
    (
        "Logs",
        "logs:PutLogEvents",
        "Lambda writes the function's logs",
    ),
    (
        "DecryptSecureStringPolicies",
        "kms:Decrypt",
        "SSM decrypts SecureString policies on tvm's behalf (kms:ViaService)",
    ),
];

fn statements() -> (Vec<Value>, Vec<Value>) {
    sam_statements(&json!({
        // The walk's own state (crate::revocation_kit::isolated), so that its
        // revocations fill no other test's policy.
        "Parameters": {"PolicyPrefix": "/tvm/isolated-lp/"},
        "RevocationPolicy": "/tvm/tvm-revocations-lp",
        "Partition": "aws", "Region": REGION, "AccountId": ACCOUNT,
        // The profiles walked have their roles here (revocation.rs writes the other account).
        "Accounts": [ACCOUNT],
        "SessionsTable": "tvm-sessions-lp", "ApprovalsTable": "tvm-approvals",
        "BreakGlassTable": "tvm-breakglass", "NotifyTopic": TOPIC,
        "Conditions": {"Notify": true, "Traced": false, "SignedPolicies": false},
    }))
}

/// template.yaml's execution-role statements and the revoker's, resolved
/// for one deployment by infra/tests/sam_policy.py.
pub fn sam_statements(values: &Value) -> (Vec<Value>, Vec<Value>) {
    let out = Command::new(venv().join("bin/python"))
        .arg(repo_root().join("infra/tests/sam_policy.py"))
        .arg(values.to_string())
        .output()
        .expect("sam_policy.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = |k: &str| v[k].as_array().unwrap().clone();
    (list("execution"), list("revoker"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => vec![],
    }
}

/// The IAM authorizations one recorded call needs: `(action, resource)`.
fn needs(c: &Call) -> Vec<(String, String)> {
    let table = |name: &str| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}");
    let body: Value = serde_json::from_str(&c.body).unwrap_or(Value::Null);
    let one = |action: &str, resource: String| vec![(action.to_string(), resource)];
    match (c.service.as_str(), c.action.as_str()) {
        ("dynamodb", "TransactWriteItems") => body["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|item| {
                let (kind, op) = item.as_object().unwrap().iter().next().unwrap();
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_string(),
                    other => format!("{other}Item"),
                };
                one(
                    &format!("dynamodb:{action}"),
                    table(op["TableName"].as_str().unwrap()),
                )
            })
            .collect(),
        ("dynamodb", "BatchGetItem") => body["RequestItems"]
            .as_object()
            .unwrap()
            .keys()
            .map(|t| ("dynamodb:BatchGetItem".to_string(), table(t)))
            .collect(),
        ("dynamodb", action) => {
            let name = body["TableName"].as_str().unwrap();
            let resource = match body["IndexName"].as_str() {
                Some(index) => format!("{}/index/{index}", table(name)),
                None => table(name),
            };
            one(&format!("dynamodb:{action}"), resource)
        }
        ("ssm", "GetParametersByPath") => one(
            "ssm:GetParametersByPath",
            format!(
                "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{}",
                body["Path"].as_str().unwrap()
            ),
        ),
        ("sts", "AssumeRole") => {
            let role = c.param("RoleArn").unwrap();
            let mut out = one("sts:AssumeRole", role.clone());
            if c.param("SourceIdentity").is_some() {
                out.push(("sts:SetSourceIdentity".into(), role.clone()));
            }
            if c.param("Tags.member.1.Key").is_some() {
                out.push(("sts:TagSession".into(), role));
            }
            out
        }
        ("sns", "Publish") => one("sns:Publish", c.param("TopicArn").unwrap()),
        ("iam", action) => one(&format!("iam:{action}"), c.param("PolicyArn").unwrap()),
        (service, action) => panic!("the test does not know {service}:{action}"),
    }
}

/// Mark what `statements` allow of `need`; false if nothing does.
fn allow(
    statements: &[Value],
    need: &(String, String),
    used: &mut BTreeSet<(String, String, String)>,
) -> bool {
    let mut allowed = false;
    for st in statements {
        assert_eq!(st["Effect"], "Allow");
        let sid = st["Sid"].as_str().unwrap().to_string();
        for action in strings(&st["Action"]) {
            for resource in strings(&st["Resource"]) {
                if action == need.0 && like(&need.1, &resource) {
                    allowed = true;
                    used.insert((sid.clone(), action.clone(), resource));
                }
            }
        }
    }
    allowed
}

/// Walk every route (`Route::ALL`), the gated vends and revocations included.
async fn walk(lambda: &tvm_devstack::runtime::Lambda) -> BTreeSet<(String, String)> {
    let mut walked = BTreeSet::new();
    let mut step = |method: &str, template: &str, a: &Answer, want: u16| {
        assert_eq!(a.status, want, "{method} {template}: {:?}", a.body);
        walked.insert((method.to_string(), template.to_string()));
    };
    let a = get(lambda, &gate("gate-lp", "walker"), "/v1/health").await;
    step("GET", "/v1/health", &a, 200);
    let a = vend(lambda, &gate("gate-lp", "walker")).await;
    step("POST", "/v1/credentials", &a, 200);
    let sid = a.body["SessionId"].as_str().unwrap().to_string();
    let a = get(lambda, &gate("gate-lp", "walker"), "/v1/profiles").await;
    step("GET", "/v1/profiles", &a, 200);

    // Approvals: created by a vend and explicitly, approved twice, denied, cancelled.
    let asked = vend(lambda, &gate("appr-lp", "walker")).await;
    let id = asked.body["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    for approver in [APPROVER, CAROL] {
        let a = post(
            lambda,
            approver,
            &format!("/v1/requests/{id}/approve"),
            json!({}),
        )
        .await;
        step("POST", "/v1/requests/{id}/approve", &a, 200);
    }
    let a = vend(lambda, &gate("appr-lp", "walker")).await;
    assert_eq!(a.status, 200, "a vend under the approval: {:?}", a.body);
    let body = json!({"profile": "gates", "justification": "least privilege walk", "duration_seconds": 900});
    let created = post(
        lambda,
        &gate("appr-lp", "asker"),
        "/v1/requests",
        body.clone(),
    )
    .await;
    step("POST", "/v1/requests", &created, 201);
    let other = created.body["id"].as_str().unwrap().to_string();
    let a = get(lambda, APPROVER, &format!("/v1/requests/{other}")).await;
    step("GET", "/v1/requests/{id}", &a, 200);
    let a = get(lambda, APPROVER, "/v1/requests?status=pending").await;
    step("GET", "/v1/requests", &a, 200);
    let a = post(
        lambda,
        APPROVER,
        &format!("/v1/requests/{other}/deny"),
        json!({}),
    )
    .await;
    step("POST", "/v1/requests/{id}/deny", &a, 200);
    let third = post(lambda, &gate("appr-lp", "canceller"), "/v1/requests", body).await;
    let third = third.body["id"].as_str().unwrap().to_string();
    let a = post(
        lambda,
        &gate("appr-lp", "canceller"),
        &format!("/v1/requests/{third}/cancel"),
        json!({}),
    )
    .await;
    step("POST", "/v1/requests/{id}/cancel", &a, 200);

    // Break-glass: opened, vended under, listed, closed (which revokes).
    let oncall = gate("oncall-lp", "sre");
    let bg = json!({"profile": "gates", "reason": "outage", "justification": "walking every route for least privilege", "duration_seconds": 1200});
    let a = post(lambda, &oncall, "/v1/breakglass", bg).await;
    step("POST", "/v1/breakglass", &a, 201);
    let event = a.body["id"].as_str().unwrap().to_string();
    let a = vend(lambda, &oncall).await;
    assert_eq!(a.status, 200, "a vend under break-glass: {:?}", a.body);
    let a = get(lambda, &oncall, "/v1/breakglass").await;
    step("GET", "/v1/breakglass", &a, 200);
    let a = post(
        lambda,
        &oncall,
        &format!("/v1/breakglass/{event}/close"),
        json!({}),
    )
    .await;
    step("POST", "/v1/breakglass/{id}/close", &a, 200);

    // Sessions: listed, one revoked, a caller revoked.
    let a = get(lambda, ADMIN, "/v1/sessions?profile=gates").await;
    step("GET", "/v1/sessions", &a, 200);
    let a = post(
        lambda,
        ADMIN,
        &format!("/v1/sessions/{sid}/revoke"),
        json!({"reason": "walk"}),
    )
    .await;
    step("POST", "/v1/sessions/{id}/revoke", &a, 200);
    let a = get(lambda, ADMIN, &format!("/v1/sessions/{sid}")).await;
    step("GET", "/v1/sessions/{id}", &a, 200);
    assert_eq!(a.body["status"], "revoked");
    // The sparse revocation index, as tvm audit reads it.
    let since = chrono::Utc::now().timestamp() - 600;
    let a = get(
        lambda,
        ADMIN,
        &format!("/v1/sessions?revoked_since={since}"),
    )
    .await;
    step("GET", "/v1/sessions", &a, 200);
    assert!(
        a.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == sid.as_str()),
        "{:?}",
        a.body
    );
    let a = post(
        lambda,
        ADMIN,
        "/v1/callers/revoke",
        json!({"principal": gate("gate-lp2", "someone"), "reason": "walk"}),
    )
    .await;
    step("POST", "/v1/callers/revoke", &a, 200);
    // An account's policy keeps 5 versions: enough revocations that tvm
    // deletes the oldest (IAM's limit) at least once.
    for i in 0..5 {
        let who = gate(&format!("gate-lp-r{i}"), "someone");
        let a = post(
            lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": who, "reason": "walk"}),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    walked
}

#[test]
fn the_execution_role_grants_exactly_what_the_code_calls() {
    run(async {
        let mut env = isolated("lp", &[("gates", GATES)]).await;
        env.push(("TVM_NOTIFY_TOPIC_ARN".into(), TOPIC.into()));
        let (lambda, proxy) = lambda_in(&env).await;
        let walked = walk(&lambda).await;
        let every: BTreeSet<(String, String)> = Route::ALL
            .iter()
            .map(|e| (e.method.to_string(), e.path.to_string()))
            .collect();
        assert_eq!(walked, every, "the walk covers every route");
        lambda.stop().await;

        let (execution, revoker) = statements();
        let mut used = BTreeSet::new();
        let mut missing = Vec::new();
        for c in proxy.calls() {
            if c.service == "sts" && c.action == "GetCallerIdentity" {
                continue; // a caller's presigned request, signed by the caller
            }
            // IAM writes are made as the account's revoker, the rest as the function.
            let granted = if c.service == "iam" {
                &revoker
            } else {
                &execution
            };
            for need in needs(&c) {
                if !allow(granted, &need, &mut used) {
                    missing.push(format!("{} on {}", need.0, need.1));
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "called but not granted: {missing:#?}");

        let mut unused = Vec::new();
        for st in execution.iter().chain(&revoker) {
            let sid = st["Sid"].as_str().unwrap();
            for action in strings(&st["Action"]) {
                if NOT_CALLED_BY_TVM
                    .iter()
                    .any(|(s, a, _)| *s == sid && *a == action)
                {
                    continue;
                }
                for resource in strings(&st["Resource"]) {
                    if !used.contains(&(sid.to_string(), action.clone(), resource.clone())) {
                        unused.push(format!("{sid}: {action} on {resource}"));
                    }
                }
            }
        }
        assert!(unused.is_empty(), "granted but never called: {unused:#?}");
    });
}
