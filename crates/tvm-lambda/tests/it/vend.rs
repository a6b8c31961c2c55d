//! `POST /v1/credentials`, `GET /v1/profiles`, `GET /v1/health` through the
//! real bootstrap, API Gateway identity mode.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::harness::*;

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
        // The same line is the vend's metrics (EMF).
        assert_eq!(emf_metric(&d, &["service"], "Vends"), Some(1.0));
        assert_eq!(emf_metric(&d, &["service"], "Requests"), Some(1.0));
        assert!(emf_metric(&d, &["service"], "PolicyAge").is_some_and(|age| age < 60.0));
        assert_eq!(emf_metric(&d, &["service", "code"], "Refusals"), None);
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

/// AWS's own event shapes through the real bootstrap: a REST API stage and an
/// HTTP API stage both named `v1` (the first path segment), the SAM CLI's
/// samples of them, a function URL. Before, a stage named `v1` was stripped
/// twice and every route answered 404.
#[test]
fn every_event_shape_vends_whatever_the_stage_is_named() {
    run(async {
        // Its own instance with a wide rate limit: these vends share the
        // orders-task role's window with the rest of the suite.
        let lambda = own_lambda(&[("TVM_RATE_LIMIT", "1000/60")]).await;
        for (name, text) in [
            (
                "http-api-v2-stage-v1",
                include_str!("../../../../fixtures/events/http-api-v2-stage-v1.json"),
            ),
            (
                "http-api-v2-stage-v1-sam",
                include_str!("../../../../fixtures/events/http-api-v2-stage-v1-sam.json"),
            ),
            (
                "rest-v1-stage-v1-sam",
                include_str!("../../../../fixtures/events/rest-v1-stage-v1-sam.json"),
            ),
            (
                "function-url-iam",
                include_str!("../../../../fixtures/events/function-url-iam.json"),
            ),
        ] {
            let mut e: Value = serde_json::from_str(text).unwrap();
            e["body"] = json!(r#"{"profile":"orders-tenant"}"#);
            e["isBase64Encoded"] = json!(false);
            let a = call(&lambda, e).await;
            assert_eq!(a.status, 200, "{name}: {:?}", a.body);
            let item = session_item(a.body["SessionId"].as_str().unwrap()).await;
            assert_eq!(s(&item, "caller_arn"), format!("{TASK}acme"), "{name}");
        }
        lambda.stop().await;
    });
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
            // Then tvm's own, transitive: caller, session, grant.
            let own: Vec<_> = (2..=4)
                .map(|i| call.param(&format!("Tags.member.{i}.Key")).unwrap())
                .collect();
            assert_eq!(own, ["tvm-caller", "tvm-session", "tvm-via"]);
            assert_eq!(
                call.param("Tags.member.2.Value").unwrap(),
                "arn:aws:iam::123456789012:role/orders-task"
            );
            assert!(call.param("Tags.member.5.Key").is_none());
            let transitive: Vec<_> = (1..=3)
                .map(|i| {
                    call.param(&format!("TransitiveTagKeys.member.{i}"))
                        .unwrap()
                })
                .collect();
            assert_eq!(transitive, own);
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
fn a_warm_vend_makes_two_aws_calls_sent_together() {
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
        // Each call waits at the proxy, so that two sent together overlap.
        proxy.set_fault(
            tvm_devstack::proxy::ANY,
            Some(tvm_devstack::proxy::Fault::Delay(Duration::from_millis(80))),
        );
        for i in 0..5 {
            let mark = proxy.mark();
            let a = call(
                &lambda,
                vend_event(&format!("{TASK}t{i}"), json!({"profile": "orders-tenant"})),
            )
            .await;
            assert_eq!(a.status, 200);
            let mut calls = proxy.calls_since(mark);
            calls.sort_by(|a, b| a.service.cmp(&b.service));
            let seen: Vec<(&str, &str)> = calls
                .iter()
                .map(|c| (c.service.as_str(), c.action.as_str()))
                .collect();
            // One DynamoDB transaction (record, revocation and rate gates), and STS beside it.
            assert_eq!(
                seen,
                [("dynamodb", "TransactWriteItems"), ("sts", "AssumeRole")],
                "warm vend {i}"
            );
            assert!(
                calls[1].started < calls[0].finished && calls[0].started < calls[1].finished,
                "the two calls overlap: one round trip"
            );
        }
        proxy.set_fault(tvm_devstack::proxy::ANY, None);
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

#[test]
fn a_browser_origin_in_tvm_cors_origins_gets_its_preflight_and_reads_the_vend() {
    run(async {
        let lambda = own_lambda(&[("TVM_CORS_ORIGINS", "https://app.example.com")]).await;
        let mut preflight = v2("OPTIONS", "/v1/credentials", None, None);
        preflight["headers"]["origin"] = json!("https://app.example.com");
        preflight["headers"]["access-control-request-method"] = json!("POST");
        preflight["headers"]["access-control-request-headers"] = json!("authorization,x-amz-date");
        let a = call(&lambda, preflight).await;
        assert_eq!(a.status, 204, "{:?}", a.body);
        assert_eq!(
            a.headers["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert!(a.headers["access-control-allow-headers"]
            .as_str()
            .unwrap()
            .contains("x-amz-date"));

        let mut vend = vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"}));
        vend["headers"]["origin"] = json!("https://app.example.com");
        let a = call(&lambda, vend).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(
            a.headers["access-control-allow-origin"],
            "https://app.example.com"
        );

        let mut other = v2("OPTIONS", "/v1/credentials", None, None);
        other["headers"]["origin"] = json!("https://evil.example");
        other["headers"]["access-control-request-method"] = json!("POST");
        let a = call(&lambda, other).await;
        assert_eq!(a.status, 403);
        assert!(a.headers.get("access-control-allow-origin").is_none());
        lambda.stop().await;
    });
}
