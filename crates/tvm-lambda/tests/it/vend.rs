//! `POST /v1/credentials`, `GET /v1/profiles`, `GET /v1/health` through the
//! real bootstrap, API Gateway identity mode.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tvm_devstack::proxy::{Call, Fault};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::free_port;

use crate::harness::*;

/// Read a session item straight from the emulator.
async fn session_item(session_id: &str) -> std::collections::HashMap<String, AttributeValue> {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk());
    ddb.get_item()
        .table_name("tvm-sessions")
        .key("session_id", AttributeValue::S(session_id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the session item exists")
}

fn s(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> String {
    match &item[k] {
        AttributeValue::S(v) | AttributeValue::N(v) => v.clone(),
        other => panic!("{k}: {other:?}"),
    }
}

/// Put a policy document into the emulator's SSM.
async fn put_policy(profile: &str, text: &str, kind: aws_sdk_ssm::types::ParameterType) {
    aws_sdk_ssm::Client::new(&sdk())
        .put_parameter()
        .name(format!("/tvm/policies/{profile}"))
        .value(text)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

async fn delete_policy(profile: &str) {
    aws_sdk_ssm::Client::new(&sdk())
        .delete_parameter()
        .name(format!("/tvm/policies/{profile}"))
        .send()
        .await
        .unwrap();
}

fn expires_in(answer: &Answer) -> i64 {
    let exp: DateTime<Utc> = answer.body["Expiration"].as_str().unwrap().parse().unwrap();
    (exp - Utc::now()).num_seconds()
}

#[test]
fn given_an_ecs_task_when_it_vends_then_it_gets_credentials_and_a_session_item() {
    run(async {
        let sh = shared();
        let a = call(
            &sh.lambda,
            vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["Version"], 1);
        assert!(a.body["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
        assert_eq!(a.body["Profile"], "orders-tenant");
        assert_eq!(
            a.body["RoleArn"],
            "arn:aws:iam::123456789012:role/tvm/orders-tenant"
        );
        let left = expires_in(&a);
        assert!(
            (880..=900).contains(&left),
            "default duration 900, got {left}"
        );

        let sid = a.body["SessionId"].as_str().unwrap();
        let item = session_item(sid).await;
        assert_eq!(s(&item, "caller_arn"), format!("{TASK}acme"));
        assert_eq!(
            s(&item, "caller"),
            "arn:aws:iam::123456789012:role/orders-task"
        );
        assert_eq!(s(&item, "profile"), "orders-tenant");
        assert_eq!(s(&item, "rule"), "ecs-orders");
        assert_eq!(s(&item, "duration_seconds"), "900");
        assert_eq!(s(&item, "source_identity"), format!("tvm-{sid}"));
        assert_eq!(s(&item, "status"), "issued");
        let granted: i64 = s(&item, "expires_at").parse().unwrap();
        let answered: DateTime<Utc> = a.body["Expiration"].as_str().unwrap().parse().unwrap();
        assert!(
            (granted - answered.timestamp()).abs() <= 2,
            "item expiry {granted} vs answer {answered}"
        );
        assert!(s(&item, "ttl").parse::<i64>().unwrap() > granted);

        let d = decisions(&sh.lambda)
            .into_iter()
            .find(|d| d["session_id"] == sid)
            .expect("decision line");
        assert_eq!(d["decision"], "allow");
        assert_eq!(d["caller"], format!("{TASK}acme"));
        assert_eq!(d["account"], "123456789012");
        assert_eq!(d["rule"], "ecs-orders");
        assert_eq!(d["duration_seconds"], 900);
        assert!(d["latency_ms"].as_f64().unwrap() > 0.0);
    });
}

#[test]
fn rest_api_v1_events_with_a_stage_in_the_path_vend_too() {
    run(async {
        let mut e: Value = serde_json::from_str(V1_IAM).unwrap();
        e["requestContext"]["requestId"] = json!("v1-stage-test");
        let a = call(&shared().lambda, e).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let item = session_item(a.body["SessionId"].as_str().unwrap()).await;
        assert_eq!(s(&item, "caller_arn"), format!("{TASK}acme"));
    });
}

fn assume_role_calls(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| c.action == "AssumeRole")
        .cloned()
        .collect()
}

#[test]
fn two_tenants_get_session_policies_that_differ_only_in_their_tenant() {
    run(async {
        let (lambda, proxy) = counted_lambda(&[]).await;
        for tenant in ["acme", "globex"] {
            let a = call(
                &lambda,
                vend_event(
                    &format!("{TASK}{tenant}"),
                    json!({"profile": "orders-tenant"}),
                ),
            )
            .await;
            assert_eq!(a.status, 200, "{:?}", a.body);
        }
        let calls = assume_role_calls(&proxy.calls());
        assert_eq!(calls.len(), 2);
        let expected = |t: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],"Resource":"arn:aws:dynamodb:*:123456789012:table/orders","Condition":{{"ForAllValues:StringEquals":{{"dynamodb:LeadingKeys":["{t}"]}}}}}}]}}"#
            )
        };
        for (call, tenant) in calls.iter().zip(["acme", "globex"]) {
            assert_eq!(
                call.param("RoleArn").unwrap(),
                "arn:aws:iam::123456789012:role/tvm/orders-tenant"
            );
            assert_eq!(call.param("Policy").unwrap(), expected(tenant));
            assert_eq!(call.param("Tags.member.1.Key").unwrap(), "tenant");
            assert_eq!(call.param("Tags.member.1.Value").unwrap(), tenant);
            assert!(call.param("Tags.member.2.Key").is_none());
            assert_eq!(call.param("DurationSeconds").unwrap(), "900");
            let si = call.param("SourceIdentity").unwrap();
            assert!(si.starts_with("tvm-") && si.len() == 36, "{si}");
            assert!(call
                .param("RoleSessionName")
                .unwrap()
                .starts_with(&format!("{tenant}.")));
        }
        let (a, g) = (
            calls[0].param("Policy").unwrap(),
            calls[1].param("Policy").unwrap(),
        );
        assert_ne!(a, g);
        assert_eq!(a.replace("acme", "globex"), g);
        lambda.stop().await;
    });
}

#[test]
fn a_warm_vend_makes_exactly_two_sequential_aws_calls() {
    run(async {
        let (lambda, proxy) = counted_lambda(&[]).await;
        let cold = call(
            &lambda,
            vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!(cold.status, 200);
        let cold_calls = proxy.calls();
        assert!(
            cold_calls.iter().any(|c| c.action == "GetParametersByPath"),
            "the first vend loads policies"
        );
        for i in 0..5 {
            let mark = proxy.mark();
            let a = call(
                &lambda,
                vend_event(&format!("{TASK}t{i}"), json!({"profile": "orders-tenant"})),
            )
            .await;
            assert_eq!(a.status, 200);
            let calls = proxy.calls_since(mark);
            let seen: Vec<(&str, &str)> = calls
                .iter()
                .map(|c| (c.service.as_str(), c.action.as_str()))
                .collect();
            // One DynamoDB transaction (record, revocation and rate gates), then STS.
            assert_eq!(
                seen,
                [("dynamodb", "TransactWriteItems"), ("sts", "AssumeRole")],
                "warm vend {i}"
            );
            assert!(
                calls[1].started >= calls[0].finished,
                "the two calls are sequential, not overlapping"
            );
        }
        lambda.stop().await;
    });
}

#[test]
fn an_explicit_deny_wins_and_nothing_matching_is_a_deny() {
    run(async {
        let sh = shared();
        let blocked = call(
            &sh.lambda,
            vend_event(
                &format!("{TASK}blocked-1"),
                json!({"profile": "orders-tenant"}),
            ),
        )
        .await;
        assert_eq!((blocked.status, blocked.code()), (403, "AccessDenied"));
        assert!(blocked.body.get("AccessKeyId").is_none());
        let d = decisions(&sh.lambda)
            .into_iter()
            .rev()
            .find(|d| d["caller"] == format!("{TASK}blocked-1"))
            .unwrap();
        assert_eq!(
            (d["decision"].as_str(), d["rule"].as_str()),
            (Some("deny"), Some("blocked-tenants"))
        );
        assert!(d.get("session_id").is_none());

        let stranger = "arn:aws:sts::123456789012:assumed-role/other-task/x1";
        let refused = call(
            &sh.lambda,
            vend_event(stranger, json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!((refused.status, refused.code()), (403, "AccessDenied"));
        // A profile the caller may not have answers exactly like one that does not exist.
        let missing = call(
            &sh.lambda,
            vend_event(stranger, json!({"profile": "no-such-profile"})),
        )
        .await;
        assert_eq!((missing.status, missing.code()), (403, "AccessDenied"));
        assert_eq!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .replace("orders-tenant", "P"),
            missing.body["message"]
                .as_str()
                .unwrap()
                .replace("no-such-profile", "P")
        );
    });
}

#[test]
fn require_approval_never_vends() {
    run(async {
        let sh = shared();
        let dev = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DevAccess_abc/jane";
        let a = call(
            &sh.lambda,
            vend_event(dev, json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!((a.status, a.code()), (403, "ApprovalRequired"));
        assert!(a.body.get("AccessKeyId").is_none());
        let d = decisions(&sh.lambda)
            .into_iter()
            .rev()
            .find(|d| d["caller"] == dev)
            .unwrap();
        assert_eq!(d["rule"], "humans");
        assert!(d.get("session_id").is_none());
    });
}

#[test]
fn the_duration_is_capped_by_the_profile_and_bad_durations_are_400() {
    run(async {
        let sh = shared();
        let a = call(
            &sh.lambda,
            vend_event(
                &format!("{TASK}acme"),
                json!({"profile": "orders-tenant", "duration_seconds": 3600}),
            ),
        )
        .await;
        assert_eq!(a.status, 200);
        let left = expires_in(&a);
        assert!(
            (1780..=1800).contains(&left),
            "capped at the profile max 1800, got {left}"
        );
        assert_eq!(
            s(
                &session_item(a.body["SessionId"].as_str().unwrap()).await,
                "duration_seconds"
            ),
            "1800"
        );
        for bad in [
            json!(0),
            json!(-1),
            json!(899),
            json!(3601),
            json!(900.5),
            json!("900"),
        ] {
            let r = call(
                &sh.lambda,
                vend_event(
                    &format!("{TASK}acme"),
                    json!({"profile": "orders-tenant", "duration_seconds": bad}),
                ),
            )
            .await;
            assert_eq!(
                (r.status, r.code()),
                (400, "BadRequest"),
                "duration {bad}: {:?}",
                r.body
            );
        }
    });
}

#[test]
fn bad_input_gets_a_400_that_says_what_to_fix() {
    run(async {
        let sh = shared();
        let task = format!("{TASK}acme");
        // Not an HTTP event at all.
        let a = call(&sh.lambda, json!({"hello": "world"})).await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        let mut e = vend_event(&task, json!({}));
        e["body"] = json!("{not json");
        let a = call(&sh.lambda, e).await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        assert!(a.body["message"].as_str().unwrap().contains("profile"));
        let a = call(
            &sh.lambda,
            vend_event(
                &task,
                json!({"profile": "orders-tenant", "caller": "arn:aws:iam::123456789012:root"}),
            ),
        )
        .await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"));
        assert!(a.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `caller`"));
        for name in [
            "../orders-tenant",
            "orders%2Ftenant",
            "a\u{0}b",
            &"p".repeat(10_000),
        ] {
            let a = call(&sh.lambda, vend_event(&task, json!({"profile": name}))).await;
            assert_eq!(
                (a.status, a.code()),
                (400, "BadRequest"),
                "profile {:?}",
                &name[..name.len().min(20)]
            );
        }
        let big = json!({"profile": "orders-tenant", "attributes": {"x": "y".repeat(70_000)}});
        // A scheme lambda_http cannot parse (it used to panic on it).
        let mut e = vend_event(&task, json!({"profile": "orders-tenant"}));
        e["headers"]["x-forwarded-proto"] = json!("ht tp");
        let a = call(&sh.lambda, e).await;
        assert_eq!((a.status, a.code()), (400, "BadRequest"), "{:?}", a.body);
        let a = call(&sh.lambda, vend_event(&task, big)).await;
        assert_eq!((a.status, a.code()), (413, "BadRequest"));
        let a = call(
            &sh.lambda,
            vend_event(
                &task,
                json!({"profile": "orders-tenant", "attributes": {"tenant": "other"}}),
            ),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "BadRequest"),
            "an undeclared attribute is refused, not dropped"
        );
    });
}

#[test]
fn without_an_iam_identity_the_answer_is_401() {
    run(async {
        let sh = shared();
        let mut e = v2(
            "POST",
            "/v1/credentials",
            None,
            Some(&json!({"profile": "orders-tenant"})),
        );
        // Identity-looking headers change nothing.
        e["headers"]["x-amzn-iam-userarn"] = json!(format!("{TASK}acme"));
        e["headers"]["x-forwarded-for"] = json!("10.0.0.1");
        let a = call(&sh.lambda, e).await;
        assert_eq!((a.status, a.code()), (401, "Unauthenticated"));
        let a = call(
            &sh.lambda,
            v2(
                "POST",
                "/v1/credentials",
                Some(""),
                Some(&json!({"profile": "orders-tenant"})),
            ),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (401, "Unauthenticated"),
            "an empty userArn is no identity"
        );
        let a = call(
            &sh.lambda,
            v2(
                "POST",
                "/v1/credentials",
                Some("arn:aws:sts::123456789012:assumed-role/orders-task/a\nb"),
                Some(&json!({"profile": "orders-tenant"})),
            ),
        )
        .await;
        assert_eq!((a.status, a.code()), (401, "Unauthenticated"));
    });
}

#[test]
fn health_needs_no_identity_profiles_do_and_unknown_routes_are_404() {
    run(async {
        let sh = shared();
        let a = call(&sh.lambda, v2("GET", "/v1/health", None, None)).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["status"], "ok");
        assert!(
            !a.body.to_string().contains("orders"),
            "health shows no policy content"
        );
        let a = call(
            &sh.lambda,
            v2("GET", "/v1/nope", Some(&format!("{TASK}acme")), None),
        )
        .await;
        assert_eq!((a.status, a.code()), (404, "NotFound"));
        let a = call(&sh.lambda, v2("GET", "/v1/profiles", None, None)).await;
        assert_eq!(a.status, 401);

        let a = call(
            &sh.lambda,
            v2("GET", "/v1/profiles", Some(&format!("{TASK}acme")), None),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["caller"], format!("{TASK}acme"));
        let profiles: Vec<(String, String)> = a.body["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["profile"].as_str().unwrap().to_string(),
                    p["access"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        // Other tests may add profiles to SSM; these two are fixed.
        assert!(
            profiles.contains(&("orders-tenant".to_string(), "allow".to_string())),
            "{profiles:?}"
        );
        assert!(
            !profiles.iter().any(|(p, _)| p == "reports-readonly"),
            "analysts only: {profiles:?}"
        );
        let dev = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DevAccess_abc/jane";
        let a = call(&sh.lambda, v2("GET", "/v1/profiles", Some(dev), None)).await;
        let orders = a.body["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["profile"] == "orders-tenant")
            .cloned();
        assert_eq!(orders.unwrap()["access"], "approval");
    });
}

#[test]
fn an_invalid_policy_is_never_served_and_the_others_still_are() {
    run(async {
        let broken = "profile: broken\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrules:\n  - {name: all, effect: permit, principals: ['*']}\n";
        put_policy("broken", broken, aws_sdk_ssm::types::ParameterType::String).await;
        let lambda = own_lambda(&[]).await;
        let a = call(
            &lambda,
            vend_event(&format!("{TASK}acme"), json!({"profile": "broken"})),
        )
        .await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"));
        let logs = lambda.logs().join("\n");
        assert!(
            logs.contains("invalid policy skipped") && logs.contains("/tvm/policies/broken"),
            "{logs}"
        );
        assert!(logs.contains("unknown effect"), "the log names the problem");
        let a = call(
            &lambda,
            vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"})),
        )
        .await;
        assert_eq!(a.status, 200);
        delete_policy("broken").await;
        lambda.stop().await;
    });
}

/// Every dependency failure: 503 DependencyFailed, no credentials, no SDK
/// text in the answer, a log line naming the dependency.
async fn assert_fails_closed(lambda: &Lambda, dependency: &str) -> Answer {
    let a = call(
        lambda,
        vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"})),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (503, "DependencyFailed"),
        "{dependency}: {:?}",
        a.body
    );
    assert!(a.body.get("AccessKeyId").is_none());
    let message = a.body["message"].as_str().unwrap();
    assert!(
        !message.contains("Exception") && !message.contains("arn:") && !message.contains("error"),
        "{message}"
    );
    let logs = lambda.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains(&format!("\"dependency\":\"{dependency}\""))),
        "no log line names {dependency}: {logs:?}"
    );
    a
}

#[test]
fn ssm_unreachable_fails_closed() {
    run(async {
        let dead = format!("http://127.0.0.1:{}", free_port());
        let lambda = own_lambda(&[
            ("AWS_ENDPOINT_URL_SSM", &dead),
            ("TVM_AWS_TIMEOUT_MS", "1000"),
        ])
        .await;
        assert_fails_closed(&lambda, "ssm").await;
        lambda.stop().await;
    });
}

#[test]
fn dynamodb_failing_fails_closed_before_any_assume_role() {
    run(async {
        let (lambda, proxy) = counted_lambda(&[("TVM_AWS_TIMEOUT_MS", "1000")]).await;
        proxy.set_fault("dynamodb", Some(Fault::Status(500)));
        assert_fails_closed(&lambda, "dynamodb").await;
        assert!(
            assume_role_calls(&proxy.calls()).is_empty(),
            "no credentials are minted without a session record"
        );
        lambda.stop().await;
    });
}

#[test]
fn sts_failing_fails_closed_and_marks_the_session_failed() {
    run(async {
        let (lambda, proxy) = counted_lambda(&[("TVM_AWS_TIMEOUT_MS", "1000")]).await;
        proxy.set_fault("sts", Some(Fault::Reset));
        assert_fails_closed(&lambda, "sts").await;
        let d = decisions(&lambda).into_iter().last().unwrap();
        let sid = d["session_id"]
            .as_str()
            .expect("the session was recorded first");
        // Bounded wait for the best-effort status update.
        let mut status = String::new();
        for _ in 0..50 {
            status = s(&session_item(sid).await, "status");
            if status == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, "failed");
        lambda.stop().await;
    });
}

#[test]
fn a_secure_string_policy_is_decrypted_and_served() {
    run(async {
        let doc = std::fs::read_to_string(
            tvm_devstack::stack::repo_root().join("examples/policies/orders-tenant.yaml"),
        )
        .unwrap()
        .replace("profile: orders-tenant", "profile: orders-secure");
        put_policy(
            "orders-secure",
            &doc,
            aws_sdk_ssm::types::ParameterType::SecureString,
        )
        .await;
        let lambda = own_lambda(&[]).await;
        let a = call(
            &lambda,
            vend_event(&format!("{TASK}acme"), json!({"profile": "orders-secure"})),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["Profile"], "orders-secure");
        delete_policy("orders-secure").await;
        lambda.stop().await;
    });
}
