//! What a vend refuses before any credentials: bad input (400 that says what
//! to fix), no identity (401), unknown routes (404), an invalid policy
//! (never served), through the real bootstrap.

use serde_json::json;

use crate::harness::*;

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
        let health = v2("GET", "/v1/health", None, None);
        let id = health["requestContext"]["requestId"]
            .as_str()
            .unwrap()
            .to_string();
        let a = call(&sh.lambda, health).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["status"], "ok");
        // Anyone may call it: its line is no metric (no dilution of the 5xx rate).
        let line = decision_for(&sh.lambda, &id).await;
        assert!(
            line.get("_aws").is_none() && line.get("Requests").is_none(),
            "{line}"
        );
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
        // A route's path with another method: 405, and the methods it takes.
        let a = call(
            &sh.lambda,
            v2("GET", "/v1/credentials", Some(&format!("{TASK}acme")), None),
        )
        .await;
        assert_eq!(a.status, 405, "{:?}", a.body);
        assert_eq!(a.headers["allow"], "POST");
        let a = call(
            &sh.lambda,
            v2("DELETE", "/v1/requests", Some(&format!("{TASK}acme")), None),
        )
        .await;
        assert_eq!(
            (a.status, a.headers["allow"].as_str()),
            (405, Some("GET, POST"))
        );
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
