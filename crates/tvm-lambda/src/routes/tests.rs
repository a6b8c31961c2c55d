//! The handler over in-memory fakes: fast checks of the flow and its order.
//! The same paths run against the emulator in `tests/it`.

use std::time::Duration;

use super::*;
use crate::fakes::{app, Journal};

const EVENT: &str = include_str!("../../tests/it/fixtures/http-api-v2-iam.json");

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
async fn a_grant_records_the_session_before_it_assumes_the_role() {
    let j = Arc::new(Journal::default());
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
    let j = Arc::new(Journal {
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
    assert_eq!(*j.steps.lock().unwrap(), ["record orders-tenant"]);
}

#[tokio::test]
async fn an_sts_failure_marks_the_recorded_session_failed() {
    let j = Arc::new(Journal {
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
    let j = Arc::new(Journal {
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
    let j = Arc::new(Journal::default());
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
    let j = Arc::new(Journal::default());
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
        let j = Arc::new(Journal::default());
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
