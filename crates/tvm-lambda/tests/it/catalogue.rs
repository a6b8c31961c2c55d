//! The rest of docs/security.md's catalogue through the real bootstrap:
//! allowlists, lookalike callers, broken policies, hostile template values,
//! oversized renderings, expired break-glass.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

use crate::gates::*;
use crate::harness::*;

async fn put(profile: &str, text: &str) {
    put_policy(profile, text, aws_sdk_ssm::types::ParameterType::String).await;
}

#[test]
fn callers_outside_the_allowed_accounts_or_organizations_are_refused() {
    run(async {
        let vend_acme = || vend_event(&format!("{TASK}acme"), json!({"profile": "orders-tenant"}));
        for (var, value, status) in [
            ("TVM_ALLOWED_ACCOUNTS", "999999999999", 403),
            ("TVM_ALLOWED_ORG_IDS", "o-otherorg01", 403),
            ("TVM_ALLOWED_ORG_IDS", "o-exampleorg1", 200),
        ] {
            let lambda = own_lambda(&[(var, value)]).await;
            let a = call(&lambda, vend_acme()).await;
            assert_eq!(a.status, status, "{var}={value}: {:?}", a.body);
            if status == 403 {
                assert_eq!(a.code(), "AccessDenied");
            }
            lambda.stop().await;
        }
    });
}

#[test]
fn a_session_named_like_a_privileged_user_is_not_that_user() {
    run(async {
        let sh = shared();
        let pretender = "arn:aws:sts::123456789012:assumed-role/orders-task/analyst-ana";
        let a = call(
            &sh.lambda,
            vend_event(pretender, json!({"profile": "reports-readonly"})),
        )
        .await;
        assert_eq!((a.status, a.code()), (403, "AccessDenied"));
        let real = call(
            &sh.lambda,
            vend_event(
                "arn:aws:iam::123456789012:user/analyst-ana",
                json!({"profile": "reports-readonly"}),
            ),
        )
        .await;
        // Allowed, unless this runs in the example's Sunday maintenance hour
        // or in the quarter hour before it (the grant would end under 900 s).
        let in_maintenance = real.status == 403
            && decisions(&sh.lambda).iter().any(|d| {
                d["rule"] == "maintenance"
                    || d["reason"].as_str().is_some_and(|r| r.contains("ends in"))
            });
        assert!(real.status == 200 || in_maintenance, "{:?}", real.body);
    });
}

#[test]
fn broken_policies_of_every_kind_are_never_served() {
    run(async {
        let head = |p: &str| {
            format!("profile: {p}\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\n")
        };
        let allow = "  - {name: a, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/orders-task/*']}\n";
        let broken = [
            ("broken-key", format!("{}rules:\n{allow}color: blue\n", head("broken-key"))),
            ("broken-empty", format!("{}rules: []\n", head("broken-empty"))),
            ("broken-glob", format!("{}rules:\n  - {{name: a, effect: allow, principals: ['arn:aws:sts::*:assumed-role/[x]/*']}}\n", head("broken-glob"))),
            ("broken-tz", format!("{}rules:\n{allow}  - {{name: n, effect: deny, time: {{days: [sun], timezone: Mars/Olympus}}}}\n", head("broken-tz"))),
            ("broken-template", format!("{}session_tags: {{t: '${{tenant'}}\nrules:\n{allow}", head("broken-template"))),
        ];
        for (name, text) in &broken {
            put(name, text).await;
        }
        let lambda = own_lambda(&[]).await;
        for (name, _) in &broken {
            let a = call(
                &lambda,
                vend_event(&format!("{TASK}acme"), json!({"profile": name})),
            )
            .await;
            assert_eq!((a.status, a.code()), (403, "AccessDenied"), "{name}");
            let logs = lambda.logs().join("\n");
            assert!(
                logs.contains(&format!("/tvm/policies/{name}")),
                "{name} is not named in the log"
            );
        }
        lambda.stop().await;
    });
}

#[test]
fn a_time_window_is_read_on_its_own_zones_clock_not_utcs() {
    // Kathmandu is UTC+05:45 all year: a window read on UTC's clock, or
    // rounded to whole hours, lands elsewhere.
    run(async {
        let offset = chrono::TimeDelta::minutes(5 * 60 + 45);
        let hours = |clock: chrono::DateTime<chrono::Utc>| {
            let half = chrono::TimeDelta::minutes(30);
            format!(
                "{}-{}",
                (clock - half).format("%H:%M"),
                (clock + half).format("%H:%M")
            )
        };
        let now = chrono::Utc::now();
        let cases = [
            ("tz-local-now", hours(now + offset), 403),
            ("tz-utc-now", hours(now), 200),
        ];
        for (profile, window, _) in &cases {
            put(
                profile,
                &format!("profile: {profile}\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrules:\n  - {{name: closed, effect: deny, time: {{hours: '{window}', timezone: Asia/Kathmandu}}}}\n  - {{name: a, effect: allow, principals: ['{TASK}*']}}\n"),
            )
            .await;
        }
        let lambda = own_lambda(&[]).await;
        for (profile, _, status) in &cases {
            let a = call(
                &lambda,
                vend_event(&format!("{TASK}acme"), json!({"profile": profile})),
            )
            .await;
            assert_eq!(a.status, *status, "{profile}: {:?}", a.body);
        }
        assert!(
            decisions(&lambda)
                .iter()
                .any(|d| d["profile"] == "tz-local-now" && d["rule"] == "closed"),
            "the deny window is the reason"
        );
        lambda.stop().await;
    });
}

#[test]
fn template_values_that_could_change_meaning_are_refused_not_escaped() {
    run(async {
        put(
            "attrs",
            "profile: attrs\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nsession_tags: {tenant: '${tenant}'}\nrules:\n  - {name: saas, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/saas-*/*'], attributes: {tenant: {pattern: '*'}}, bind: {tenant: '${attr.tenant}'}}\n",
        )
        .await;
        let lambda = own_lambda(&[]).await;
        let caller = "arn:aws:sts::123456789012:assumed-role/saas-backend/w1";
        let long = "a".repeat(10_000);
        for value in [
            "a\"b",
            "a\\b",
            "a*",
            "${x}",
            "a\u{1}b",
            "аcme",
            long.as_str(),
            "",
        ] {
            let a = call(
                &lambda,
                vend_event(
                    caller,
                    json!({"profile": "attrs", "attributes": {"tenant": value}}),
                ),
            )
            .await;
            assert_eq!(
                (a.status, a.code()),
                (400, "BadRequest"),
                "{:?}",
                &value[..value.len().min(12)]
            );
        }
        let ok = call(
            &lambda,
            vend_event(
                caller,
                json!({"profile": "attrs", "attributes": {"tenant": "acme"}}),
            ),
        )
        .await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        lambda.stop().await;
    });
}

#[test]
fn a_rendering_over_the_sts_limit_is_refused_before_sts() {
    run(async {
        let resources: Vec<String> = (0..30)
            .map(|i| format!("\"arn:aws:s3:::bucket-{i}/${{tenant}}/*\""))
            .collect();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":[{}]}}]}}"#,
            resources.join(",")
        );
        let doc = format!(
            "profile: big\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nsession_policy: '{policy}'\nrules:\n  - {{name: a, effect: allow, principals: ['arn:aws:sts::123456789012:assumed-role/orders-task/*'], bind: {{tenant: '${{caller.session_name}}'}}}}\n"
        );
        put("big", &doc).await;
        let (lambda, proxy) = counted_lambda(&[]).await;
        let short = call(
            &lambda,
            vend_event(&format!("{TASK}t1"), json!({"profile": "big"})),
        )
        .await;
        assert_eq!(short.status, 200, "{:?}", short.body);
        let mark = proxy.mark();
        let long = call(
            &lambda,
            vend_event(
                &format!("{TASK}{}", "t".repeat(60)),
                json!({"profile": "big"}),
            ),
        )
        .await;
        // The caller's session name makes it too long (a short one fits):
        // a 403 that says what to change, not a broken policy.
        assert_eq!(
            (long.status, long.code()),
            (403, "AccessDenied"),
            "{:?}",
            long.body
        );
        let message = long.body["message"].as_str().unwrap();
        assert!(message.contains("2048"), "{message}");
        assert!(message.contains("with shorter ones it fits"), "{message}");
        assert!(!proxy
            .calls_since(mark)
            .iter()
            .any(|c| c.action == "AssumeRole"));
        lambda.stop().await;
    });
}

#[test]
fn break_glass_past_its_end_no_longer_vends() {
    run(async {
        let lambda = gates_lambda().await;
        let sam = gate("oncall-late", "sam");
        let bg = json!({"profile": "gates", "reason": "incident", "justification": "database failover needs manual fix", "duration_seconds": 1200});
        assert_eq!(post(&lambda, &sam, "/v1/breakglass", bg).await.status, 201);
        assert_eq!(vend(&lambda, &sam).await.status, 200);
        // Let the event's end pass.
        aws_sdk_dynamodb::Client::new(&sdk())
            .update_item()
            .table_name("tvm-breakglass")
            .key("pk", AttributeValue::S(format!("open#{sam}#gates")))
            .update_expression("SET #u = :t")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(
                ":t",
                AttributeValue::N((chrono::Utc::now().timestamp() - 1).to_string()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(vend(&lambda, &sam).await.code(), "AccessDenied");
        lambda.stop().await;
    });
}
