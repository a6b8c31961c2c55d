//! The handler over in-memory fakes: fast checks of the flow and its order.
//! The same paths run against the emulator in `tests/it`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::fakes::{app, Memory};

const EVENT: &str = include_str!("../../../../fixtures/events/http-api-v2-iam.json");

fn event(caller: &str, body: &str) -> Value {
    let mut e: Value = serde_json::from_str(EVENT).unwrap();
    e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(caller);
    e["body"] = json!(body);
    e
}

async fn status(app: &App, e: Value) -> (u16, Value) {
    let out = app.invoke(e, "lambda-req", None).await;
    let body = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    (out["statusCode"].as_u64().unwrap() as u16, body)
}

const TASK: &str = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";

#[tokio::test]
async fn a_grant_sends_its_record_and_assume_role_together() {
    let j = Arc::new(Memory::default());
    let (code, body) = status(
        &app(j.clone()),
        event(
            TASK,
            r#"{"profile":"orders-tenant","duration_seconds":3600}"#,
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["AccessKeyId"], "ASIAFAKE");
    assert_eq!(
        *j.steps.lock().unwrap(),
        [
            "record orders-tenant",
            "assume arn:aws:iam::123456789012:role/tvm/orders-tenant 1800"
        ]
    );
}

#[tokio::test]
async fn a_store_failure_issues_nothing_and_hides_the_cause() {
    let j = Arc::new(Memory {
        fail_record: true,
        ..Default::default()
    });
    let (code, body) = status(
        &app(j.clone()),
        event(TASK, r#"{"profile":"orders-tenant"}"#),
    )
    .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (503, Some("DependencyFailed"))
    );
    assert!(!body.to_string().contains("Provisioned"));
    let steps = j.steps.lock().unwrap().clone();
    assert_eq!(steps[0], "record orders-tenant");
    assert_eq!(steps.last().unwrap(), "discard orders-tenant", "{steps:?}");
}

/// The caller's stable principal, as the gates key it.
const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/orders-task";

#[tokio::test]
async fn credentials_minted_beside_a_refusal_are_discarded_and_the_caller_goes_sequential() {
    let j = Arc::new(Memory::default());
    j.state()
        .until
        .insert(crate::aws::keys::revoked_caller(TASK_ROLE), i64::MAX);
    let app = app(j.clone());
    let (code, body) = status(&app, event(TASK, r#"{"profile":"orders-tenant"}"#)).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (403, Some("SessionRevoked")),
        "{body}"
    );
    assert!(body.get("AccessKeyId").is_none());
    assert_eq!(
        *j.steps.lock().unwrap(),
        [
            "record orders-tenant",
            "assume arn:aws:iam::123456789012:role/tvm/orders-tenant 900",
            "discard orders-tenant",
        ]
    );
    let sessions: Vec<_> = j.state().sessions.values().cloned().collect();
    assert_eq!(sessions.len(), 1, "the minted session is on record");
    assert_eq!(sessions[0].status, tvm_core::api::SessionStatus::Discarded);
    assert!(sessions[0].revoked_at.is_none(), "not a revocation");
    // Refused once: this container checks the gates before it mints for
    // that caller again, while another caller still overlaps.
    j.steps.lock().unwrap().clear();
    let (code, _) = status(&app, event(TASK, r#"{"profile":"orders-tenant"}"#)).await;
    assert_eq!(code, 403);
    assert_eq!(*j.steps.lock().unwrap(), ["record orders-tenant"]);
}

#[tokio::test]
async fn failing_gates_send_every_caller_sequential_and_discard_what_was_minted() {
    let j = Arc::new(Memory {
        fail_record: true,
        ..Default::default()
    });
    let app = app(j.clone());
    let other = "arn:aws:sts::123456789012:assumed-role/orders-task/other";
    for caller in [TASK, other] {
        let (code, body) = status(&app, event(caller, r#"{"profile":"orders-tenant"}"#)).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (503, Some("DependencyFailed"))
        );
        assert!(body.get("AccessKeyId").is_none());
    }
    let steps = j.steps.lock().unwrap().clone();
    assert_eq!(
        steps,
        [
            "record orders-tenant",
            "assume arn:aws:iam::123456789012:role/tvm/orders-tenant 900",
            "discard orders-tenant",
            "record orders-tenant",
        ],
        "the second vend, another caller's, did not mint"
    );
}

#[tokio::test]
async fn an_sts_failure_marks_the_recorded_session_failed() {
    let j = Arc::new(Memory {
        fail_assume: true,
        ..Default::default()
    });
    let (code, _) = status(
        &app(j.clone()),
        event(TASK, r#"{"profile":"orders-tenant"}"#),
    )
    .await;
    assert_eq!(code, 503);
    assert_eq!(j.steps.lock().unwrap().last().unwrap(), "status failed");
}

#[tokio::test]
async fn the_lambda_deadline_bounds_the_wait_for_aws() {
    let j = Arc::new(Memory {
        slow_assume: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let deadline = std::time::SystemTime::now() + Duration::from_secs(1);
    let out = app(j)
        .invoke(
            event(TASK, r#"{"profile":"orders-tenant"}"#),
            "lambda-req",
            Some(deadline),
        )
        .await;
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (out["statusCode"].as_u64(), body["code"].as_str()),
        (Some(503), Some("DependencyFailed"))
    );
    assert!(body.get("AccessKeyId").is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1000),
        "answered after {took:?}"
    );
}

#[tokio::test]
async fn denials_touch_no_dependency() {
    let j = Arc::new(Memory::default());
    let app = app(j.clone());
    for (caller, expected) in [
        (
            "arn:aws:sts::123456789012:assumed-role/orders-task/blocked-x",
            "AccessDenied",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/jane",
            "ApprovalRequired",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/stranger/x1",
            "AccessDenied",
        ),
    ] {
        let (code, body) = status(&app, event(caller, r#"{"profile":"orders-tenant"}"#)).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (403, Some(expected)),
            "{caller}"
        );
    }
    assert!(j.steps.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_account_allowlist_is_checked_before_anything_else() {
    let j = Arc::new(Memory::default());
    let mut app = app(j.clone());
    app.config.allowed_accounts = vec!["999999999999".into()];
    let (code, body) = status(&app, event(TASK, r#"{"profile":"orders-tenant"}"#)).await;
    assert_eq!((code, body["code"].as_str()), (403, Some("AccessDenied")));
    app.config.allowed_accounts = vec![];
    app.config.allowed_org_ids = vec!["o-otherorg01".into()];
    let (code, _) = status(&app, event(TASK, r#"{"profile":"orders-tenant"}"#)).await;
    assert_eq!(code, 403, "the fixture's org o-exampleorg1 is not allowed");
    app.config.allowed_org_ids = vec!["o-exampleorg1".into()];
    let (code, _) = status(&app, event(TASK, r#"{"profile":"orders-tenant"}"#)).await;
    assert_eq!(code, 200);
}

// ---------------------------------------------------------------- routes

const ID: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn every_entry_of_the_table_parses_to_its_route_and_nothing_else_does() {
    for e in Route::ALL {
        let path = e.path.replace("{id}", ID);
        let route = Route::parse(e.method, &path).unwrap_or_else(|_| panic!("{} {path}", e.method));
        assert_eq!(
            route,
            (e.make)(if e.path.contains("{id}") {
                ID.into()
            } else {
                String::new()
            })
        );
    }
    for (m, p) in [
        ("GET", "/v1/nothing"),
        ("GET", "/v1/requests/not-an-id"),
        ("POST", "/v1/requests/0123/approve"),
        ("POST", &format!("/v1/requests/{ID}/explode")),
        ("GET", "/v1/health/"),
        ("GET", "/"),
    ] {
        assert!(
            matches!(Route::parse(m, p), Err(ApiError::NotFound { .. })),
            "{m} {p}"
        );
    }
}

#[test]
fn a_known_path_with_another_method_lists_the_methods_it_allows() {
    for (m, p, allow) in [
        ("GET", "/v1/credentials".to_string(), "POST"),
        ("DELETE", "/v1/requests".to_string(), "GET, POST"),
        ("PUT", "/v1/breakglass".to_string(), "GET, POST"),
        ("GET", format!("/v1/requests/{ID}/approve"), "POST"),
        ("DELETE", format!("/v1/requests/{ID}"), "GET"),
        ("POST", "/v1/health".to_string(), "GET"),
    ] {
        match Route::parse(m, &p) {
            Err(ApiError::MethodNotAllowed { allow: a }) => assert_eq!(a, allow, "{m} {p}"),
            other => panic!("{m} {p}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_405_answer_carries_an_allow_header() {
    let app = app(Arc::new(Memory::default()));
    let mut e = event(TASK, "{}");
    e["requestContext"]["http"]["method"] = json!("GET");
    let out = app.invoke(e, "lambda-req", None).await;
    assert_eq!(out["statusCode"], 405, "{out}");
    assert_eq!(out["headers"]["allow"], "POST", "{out}");
}

/// AWS's own event shapes, stage named like the first path segment included.
#[tokio::test]
async fn a_vend_routes_from_every_event_shape_whatever_the_stage_is_named() {
    for (name, text) in [
        (
            "http-api-v2-iam",
            include_str!("../../../../fixtures/events/http-api-v2-iam.json"),
        ),
        (
            "http-api-v2-stage-v1",
            include_str!("../../../../fixtures/events/http-api-v2-stage-v1.json"),
        ),
        (
            "http-api-v2-stage-v1-sam",
            include_str!("../../../../fixtures/events/http-api-v2-stage-v1-sam.json"),
        ),
        (
            "rest-v1-iam",
            include_str!("../../../../fixtures/events/rest-v1-iam.json"),
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
        let app = app(Arc::new(Memory::default()));
        let (code, body) = status(&app, e).await;
        assert_eq!(code, 200, "{name}: {body}");
        assert_eq!(body["AccessKeyId"], "ASIAFAKE", "{name}");
    }
}

#[tokio::test]
async fn a_named_stage_is_dropped_once_only() {
    let mut e: Value = serde_json::from_str(include_str!(
        "../../../../fixtures/events/http-api-v2-stage-v1.json"
    ))
    .unwrap();
    e["body"] = json!(r#"{"profile":"orders-tenant"}"#);
    e["isBase64Encoded"] = json!(false);
    // Stage v1, then /v1/v1/credentials: dropping the stage twice would make
    // it a route.
    e["rawPath"] = json!("/v1/v1/v1/credentials");
    let (code, body) = status(&app(Arc::new(Memory::default())), e).await;
    assert_eq!(code, 404, "{body}");
}

// ---------------------------------------------------------------- fuzzing
//
// `make fuzz` runs these with many more cases (PROPTEST_CASES); `make test`
// runs the default 256 as a smoke. Seeds: the event fixtures in tests/it.

use proptest::prelude::*;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A real event with one part replaced by anything.
fn arb_event() -> impl Strategy<Value = Value> {
    let base: Value = serde_json::from_str(EVENT).unwrap();
    let paths = prop::sample::select(vec![
        "/rawPath",
        "/body",
        "/headers",
        "/requestContext/authorizer",
        "/requestContext/authorizer/iam/userArn",
        "/requestContext/http/method",
        "/requestContext/stage",
        "/isBase64Encoded",
        "/version",
        "",
    ]);
    (paths, arb_json(), ".{0,200}").prop_map(move |(path, value, text)| {
        let mut e = base.clone();
        if path.is_empty() {
            return value;
        }
        if let Some(slot) = e.pointer_mut(path) {
            *slot = if path == "/body" || path.ends_with("userArn") || path == "/rawPath" {
                json!(text)
            } else {
                value
            };
        }
        e
    })
}

proptest! {
    #[test]
    fn fuzz_any_event_gets_an_http_answer_and_never_credentials_without_an_identity(event in arb_event()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let j = Arc::new(Memory::default());
        let out = rt.block_on(app(j).invoke(event.clone(), "fuzz", None));
        let status = out["statusCode"].as_u64().unwrap_or(0);
        prop_assert!((200..600).contains(&status), "{out}");
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        if status == 200 && body.get("AccessKeyId").is_some() {
            // Credentials only for a well-formed caller the policy allows.
            let arn = event.pointer("/requestContext/authorizer/iam/userArn").and_then(Value::as_str).unwrap_or("");
            prop_assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/orders-task/"), "vended for {arn}");
        }
    }
}

/// Records what it publishes, after a delay (SNS's round trip).
struct SlowNotifier {
    published: std::sync::Mutex<Vec<String>>,
    delay: Duration,
}

impl crate::aws::Notifier for SlowNotifier {
    fn publish<'a>(
        &'a self,
        n: &'a tvm_core::api::Notification,
    ) -> crate::aws::BoxFut<'a, Result<(), crate::aws::AwsError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.published.lock().unwrap().push(n.kind.clone());
            Ok(())
        })
    }
}

#[tokio::test]
async fn what_a_vend_announces_is_published_before_the_answer_goes() {
    // Lambda freezes the environment once it has the answer: a publish the
    // vend left running would be lost. The answer waits for it, bounded.
    for (delay, published) in [
        (Duration::from_millis(100), true),
        (Duration::from_secs(3), false),
    ] {
        let notifier = Arc::new(SlowNotifier {
            published: Default::default(),
            delay,
        });
        let mut a = app(Arc::new(Memory::default()));
        a.notifier = Some(notifier.clone());
        let dev = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DevAccess_1a2b/jane";
        let started = std::time::Instant::now();
        let (code, body) = status(&a, event(dev, r#"{"profile":"orders-tenant"}"#)).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (403, Some("ApprovalRequired")),
            "{body}"
        );
        let kinds = notifier.published.lock().unwrap().clone();
        if published {
            assert_eq!(kinds, ["request.created"]);
        } else {
            // SNS slower than the bound: the answer goes anyway, in time.
            assert!(kinds.is_empty());
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
        }
    }
}

fn headers(out: &Value) -> std::collections::BTreeMap<String, String> {
    out["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn with_origin(mut e: Value, method: &str, origin: &str) -> Value {
    e["requestContext"]["http"]["method"] = json!(method);
    e["headers"]["origin"] = json!(origin);
    if method == "OPTIONS" {
        e["headers"]["access-control-request-method"] = json!("POST");
        // Browsers send no credentials on a preflight.
        e["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
    }
    e
}

#[tokio::test]
async fn browsers_of_the_configured_origins_alone_may_read_answers() {
    let mut a = app(Arc::new(Memory::default()));
    a.config.cors_origins = vec!["https://app.example.com".into()];
    let vend = || event(TASK, r#"{"profile":"orders-tenant"}"#);

    // A preflight: answered without an identity, only for a listed origin.
    let out = a
        .invoke(
            with_origin(vend(), "OPTIONS", "https://app.example.com"),
            "l",
            None,
        )
        .await;
    let h = headers(&out);
    assert_eq!(out["statusCode"], 204);
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-methods"], cors::ALLOW_METHODS);
    assert_eq!(h["access-control-allow-headers"], cors::ALLOW_HEADERS);
    assert_eq!(h["vary"], "origin");
    let out = a
        .invoke(
            with_origin(vend(), "OPTIONS", "https://evil.example"),
            "l",
            None,
        )
        .await;
    assert_eq!(out["statusCode"], 403);
    assert!(!headers(&out).contains_key("access-control-allow-origin"));

    // The answer itself: readable by the listed origin, by no other.
    let out = a
        .invoke(
            with_origin(vend(), "POST", "https://app.example.com"),
            "l",
            None,
        )
        .await;
    assert_eq!(out["statusCode"], 200);
    assert_eq!(
        headers(&out)["access-control-allow-origin"],
        "https://app.example.com"
    );
    let out = a
        .invoke(
            with_origin(vend(), "POST", "https://app.example.com.evil.example"),
            "l",
            None,
        )
        .await;
    assert_eq!(
        out["statusCode"], 200,
        "CORS is the browser's: the caller's identity decides"
    );
    assert!(!headers(&out).contains_key("access-control-allow-origin"));

    // Without the setting nothing changes: a preflight is a method tvm does not serve.
    let a = app(Arc::new(Memory::default()));
    let out = a
        .invoke(
            with_origin(vend(), "OPTIONS", "https://app.example.com"),
            "l",
            None,
        )
        .await;
    assert_eq!(out["statusCode"], 405);
    assert!(!headers(&out).contains_key("access-control-allow-origin"));
}
