//! `tvm audit` against the local stack: moto for SSM and tvm's records, the
//! real `bootstrap` behind the IAM-checking front, and CloudTrail's
//! LookupEvents from `tvm_devstack::cloudtrail` (moto 5.2.5 answers it with
//! a 500). The events are recorded from the calls the proxy saw (tvm's own
//! AssumeRole, a vended session's calls before and after its revocation),
//! plus what an attacker would do, written as CloudTrail records.

use std::time::Duration;

use chrono::Utc;
use tvm_devstack::cloudtrail::{self, Actor, CloudTrail};
use tvm_devstack::stack::sdk_config;

use super::people::{person, seed, tvm_as};
use super::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/tvm/orders-audit";

/// The orders-audit role and profile (its own, so that revoking its pair
/// blocks no other test), and a security admin who may read the policies.
const SETUP: &str = r#"
import boto3, json, sys
iam = boto3.client("iam")
def role(name, path, trust, **kw):
    try:
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust), **kw)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
role("AWSReservedSSO_SecAdmin_audit", "/", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": sys.argv[1]}, "Action": "sts:AssumeRole"}]})
iam.put_role_policy(RoleName="AWSReservedSSO_SecAdmin_audit", PolicyName="audit", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ssm:GetParametersByPath", "ssm:GetParameter", "cloudtrail:LookupEvents", "iam:ListRoles"], "Resource": "*"}]}))
role("orders-audit", "/tvm/", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": sys.argv[2]}, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]}]},
     Tags=[{"Key": "tvm-protected", "Value": "true"}])
doc = open(sys.argv[3]).read().replace("profile: orders-tenant", "profile: orders-audit").replace("role/tvm/orders-tenant", "role/tvm/orders-audit")
boto3.client("ssm").put_parameter(Name="/tvm/policies/orders-audit", Value=doc, Type="String", Overwrite=True)
"#;

fn setup() {
    seed(SETUP);
}

/// `tvm revoke SESSION` as `creds`.
fn revoke(url: &str, creds: &Credentials, session_id: &str, reason: &str) {
    let out = tvm_as(url, creds, &["revoke", session_id, "--reason", reason]);
    assert!(out.status.success(), "{}", text(&out));
}

/// One DynamoDB call with `creds`, through the recording proxy.
fn describe_table(creds: &Credentials) {
    let sdk = sdk_config(&shared().stack.proxy.url(), creds.clone());
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    block_on_spawned(async move {
        let _ = client
            .describe_table()
            .table_name("tvm-sessions")
            .send()
            .await;
    });
}

fn tvm_audit(url: &str, creds: &Credentials, trail: &CloudTrail, extra: &[&str]) -> Output {
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    with_creds(&mut cmd, creds)
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
        .args(["audit", "--since", "1h", "--endpoint", url])
        .args(extra)
        .output()
        .expect("run tvm")
}

/// The session record's `revoked_at`, read from DynamoDB.
fn revoked_at(session_id: &str) -> i64 {
    let sh = shared();
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(
        &sh.stack.moto.url(),
        sh.stack.ids.function.credentials(),
    ));
    let key = aws_sdk_dynamodb::types::AttributeValue::S(session_id.to_string());
    block_on_spawned(async move {
        let item = client
            .get_item()
            .table_name("tvm-sessions")
            .key("session_id", key)
            .send()
            .await
            .expect("get_item")
            .item
            .expect("the session's record");
        item["revoked_at"].as_n().unwrap().parse().unwrap()
    })
}

fn id(record: &Value) -> String {
    record["eventID"].as_str().unwrap().to_string()
}

#[test]
fn the_audit_finds_every_bypass_and_every_use_after_revocation_and_nothing_tvm_did() {
    setup();
    let sh = shared();
    let trail = block_on_spawned(CloudTrail::start()).expect("cloudtrail");
    let (lambda, gateway) = own_deployment();
    let url = gateway.url();
    let sec = person("AWSReservedSSO_SecAdmin_audit", "alice@example.com");

    // A vend, as tvm makes it: the function's AssumeRole, as the proxy saw it.
    let mark = sh.stack.proxy.mark();
    let creds = task("acme");
    let out = credential_process_via(
        &["--endpoint".into(), url.clone()],
        &creds,
        "orders-audit",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let vended: Value = serde_json::from_slice(&out.stdout).unwrap();
    let session = Credentials::new(
        vended["AccessKeyId"].as_str().unwrap(),
        vended["SecretAccessKey"].as_str().unwrap(),
        Some(vended["SessionToken"].as_str().unwrap().to_string()),
        None,
        "vended",
    );
    let assume = sh
        .stack
        .proxy
        .calls_since(mark)
        .into_iter()
        .find(|c| c.action == "AssumeRole" && c.param("RoleArn").as_deref() == Some(ROLE))
        .expect("the function's AssumeRole");
    let name = assume.param("RoleSessionName").unwrap();
    let source_identity = assume.param("SourceIdentity").unwrap();
    let session_id = name.rsplit_once('.').unwrap().1.to_string();
    let function = Actor::User {
        arn: sh.stack.ids.function.arn.clone(),
        access_key: assume.access_key.clone().unwrap(),
    };
    let tvms_own = cloudtrail::from_call(&function, &assume);
    trail.record(tvms_own.clone());
    let vended_session = Actor::Session {
        role_arn: ROLE.into(),
        name: name.clone(),
        access_key: session.access_key_id().into(),
        source_identity: Some(source_identity.clone()),
    };

    // The session's calls before and after its revocation.
    let recorded = |mark: usize| -> Vec<(String, u16)> {
        sh.stack
            .proxy
            .calls_since(mark)
            .iter()
            .filter(|c| c.access_key.as_deref() == Some(session.access_key_id()))
            .map(|c| {
                let r = cloudtrail::from_call(&vended_session, c);
                trail.record(r.clone());
                (id(&r), c.status)
            })
            .collect()
    };
    let mark = sh.stack.proxy.mark();
    describe_table(&session);
    let before = recorded(mark);
    assert_eq!(before.len(), 1);
    // CloudTrail's times are whole seconds: the revocation comes after.
    std::thread::sleep(Duration::from_millis(1100));
    revoke(&url, &sec, &session_id, "audit exercise");
    let mark = sh.stack.proxy.mark();
    describe_table(&session);
    let after = recorded(mark);
    assert_eq!(after.len(), 1);

    // What an attacker does, as CloudTrail records it.
    let now = Utc::now();
    let mallory = Actor::User {
        arn: sh.stack.ids.caller.arn.clone(),
        access_key: sh.stack.ids.caller.access_key_id.clone(),
    };
    let made_up = "ffffffffffffffffffffffffffffffff";
    let attacks = [
        // Straight in, no SourceIdentity; tried and refused, too.
        cloudtrail::assume_role(&mallory, now, ROLE, "mallory", None, None),
        cloudtrail::assume_role(&mallory, now, ROLE, "mallory", None, Some("AccessDenied")),
        // tvm's names copied from CloudTrail, replayed.
        cloudtrail::assume_role(&mallory, now, ROLE, &name, Some(&source_identity), None),
        // A made-up tvm SourceIdentity and session name.
        cloudtrail::assume_role(
            &mallory,
            now,
            ROLE,
            &format!("x.{made_up}"),
            Some(&format!("tvm-{made_up}")),
            None,
        ),
        // The vended session chaining into a protected role (its
        // SourceIdentity passes on), after its revocation.
        cloudtrail::assume_role(
            &vended_session,
            now,
            "arn:aws:iam::123456789012:role/tvm/orders-tenant",
            "hop",
            None,
            None,
        ),
        // A role nobody protects.
        cloudtrail::assume_role(&mallory, now, &sh.stack.ids.task_role, "ci", None, None),
        // The protected role by an ARN without its path (STS finds roles by name).
        cloudtrail::assume_role(
            &mallory,
            now,
            "arn:aws:iam::123456789012:role/orders-audit",
            "pathless",
            None,
            None,
        ),
    ];
    for a in &attacks {
        trail.record(a.clone());
    }

    let out = tvm_audit(&url, &sec, &trail, &["--json", "--lag", "0"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "findings exit 2: {said}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{said}"));
    let findings = report["findings"].as_array().unwrap();
    let of = |record: &Value, kind: &str| {
        findings
            .iter()
            .filter(|f| f["event_id"] == record["eventID"] && f["kind"] == kind)
            .cloned()
            .collect::<Vec<Value>>()
    };
    // tvm's own vend and the call before the revocation are not findings.
    assert!(
        findings
            .iter()
            .all(|f| f["event_id"] != tvms_own["eventID"]),
        "{said}"
    );
    assert!(
        findings
            .iter()
            .all(|f| f["event_id"] != before[0].0.as_str()),
        "{said}"
    );
    let why = |record: &Value| of(record, "assumed-without-tvm")[0]["why"].clone();
    assert_eq!(why(&attacks[0]), "no_tvm_source_identity");
    assert_eq!(
        of(&attacks[1], "assumed-without-tvm")[0]["outcome"]["refused"],
        "AccessDenied"
    );
    assert_eq!(why(&attacks[2]), "duplicate");
    assert_eq!(why(&attacks[3]), "no_record");
    assert_eq!(why(&attacks[4]), "no_record");
    assert!(of(&attacks[5], "assumed-without-tvm").is_empty(), "{said}");
    assert_eq!(why(&attacks[6]), "no_tvm_source_identity");
    // After the revocation: the session's call, with what AWS answered
    // (moto does not attach the revocation policy here: it succeeded), and
    // its chaining.
    let used = findings
        .iter()
        .filter(|f| f["kind"] == "used-after-revocation")
        .collect::<Vec<_>>();
    assert!(
        used.iter().all(|f| f["session_id"] == session_id.as_str()),
        "{said}"
    );
    let call = used
        .iter()
        .find(|f| f["event_id"] == after[0].0.as_str())
        .unwrap_or_else(|| panic!("the call after the revocation: {said}"));
    let expected = if (200..300).contains(&after[0].1) {
        serde_json::json!("succeeded")
    } else {
        serde_json::json!({"refused": "AccessDenied"})
    };
    assert_eq!(call["outcome"], expected);
    assert!(
        used.iter().any(|f| f["event_id"] == attacks[4]["eventID"]),
        "{said}"
    );
    assert_eq!(used.len(), 2, "{said}");
    assert_eq!(report["complete"], true, "{said}");
    // The profiles' roles, and the roles under /tvm/ that no profile names.
    let protected = report["protected_roles"].as_array().unwrap();
    assert!(protected.iter().any(|r| r == ROLE), "{said}");
    assert!(
        protected
            .iter()
            .any(|r| r == sh.stack.ids.chain_target.as_str()),
        "{said}"
    );
    // CloudTrail's documented rate was kept: the server never throttled
    // more than the SDK's retries absorb, and every lookup was answered.
    let (answered, _throttled) = trail.lookups();
    assert_eq!(
        answered,
        report["lookups"].as_u64().unwrap() as usize,
        "{said}"
    );
    // Nothing secret in the report.
    assert_no_secret(&said, &session);
    assert_no_secret(&said, &sec);

    // Out of lookups: what was read is still checked and reported (the
    // first page holds the attacks: exit 2), and the audit is not complete.
    let short = tvm_audit(
        &url,
        &sec,
        &trail,
        &["--json", "--lag", "0", "--max-lookups", "1"],
    );
    let cut: Value =
        serde_json::from_slice(&short.stdout).unwrap_or_else(|_| panic!("{}", text(&short)));
    assert_eq!(
        (short.status.code(), &cut["complete"]),
        (Some(2), &Value::Bool(false))
    );
    let cut_ids: Vec<&Value> = cut["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["event_id"])
        .collect();
    assert!(cut_ids.contains(&&attacks[0]["eventID"]), "{cut}");
    // With nothing found in what was read, an incomplete audit is exit 1.
    // (A window a day back holds none of these events.)
    let none = tvm_audit(
        &url,
        &sec,
        &trail,
        &["--json", "--lag", "1d", "--max-lookups", "1"],
    );
    let empty: Value =
        serde_json::from_slice(&none.stdout).unwrap_or_else(|_| panic!("{}", text(&none)));
    assert_eq!(
        (none.status.code(), &empty["complete"], &empty["findings"]),
        (Some(1), &Value::Bool(false), &serde_json::json!([]))
    );
    assert!(String::from_utf8_lossy(&short.stderr).contains("--max-lookups (1) ran out"));

    // With CloudTrail's delivery lag (the default 15 minutes) the window
    // ends before the revocation: nothing to read for it yet, and no error.
    let lagged = tvm_audit(&url, &sec, &trail, &["--json"]);
    let lagged_report: Value =
        serde_json::from_slice(&lagged.stdout).unwrap_or_else(|_| panic!("{}", text(&lagged)));
    assert_eq!(lagged.status.code(), Some(0), "{lagged_report}");
    assert_eq!(lagged_report["complete"], true);

    // Revoked again, later: the first revocation's time stays (the calls in
    // between would vanish from the audit otherwise).
    let first = revoked_at(&session_id);
    revoke(&url, &sec, &session_id, "again");
    assert!(
        Utc::now().timestamp() > first,
        "time has passed since the first revocation"
    );
    assert_eq!(revoked_at(&session_id), first);

    // The table for people says the same.
    let table = tvm_audit(&url, &sec, &trail, &["--lag", "0"]);
    let said = text(&table);
    assert_eq!(table.status.code(), Some(2), "{said}");
    assert!(
        said.contains("assumed-without-tvm") && said.contains("used-after-revocation"),
        "{said}"
    );

    gateway.stop();
    block_on_spawned(async move { lambda.stop().await });
}
