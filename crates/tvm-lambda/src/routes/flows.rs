//! Approval, break-glass and revocation flows through the handler over the
//! in-memory stores (fast; the same flows run on the emulator in tests/it).

use std::sync::Arc;

use serde_json::{json, Value};
use tvm_core::revocation::Target;

use crate::app::App;
use crate::fakes::{app, app_with, Memory};

const EVENT: &str = include_str!("../../../../fixtures/events/http-api-v2-iam.json");
const DEV: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/jane";
const DEV_AGAIN: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/other";
const SEC: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Sec_1/bob";
const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_SecAdmin_1/eve";
const ONCALL: &str = "arn:aws:sts::123456789012:assumed-role/oncall/ann";

async fn call(app: &App, method: &str, path: &str, caller: &str, body: Value) -> (u16, Value) {
    let mut e: Value = serde_json::from_str(EVENT).unwrap();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    e["rawQueryString"] = json!(query);
    e["queryStringParameters"] = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(caller);
    e["body"] = json!(body.to_string());
    let out = app.invoke(e, "lambda-req", None).await;
    let answer = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    (out["statusCode"].as_u64().unwrap() as u16, answer)
}

async fn vend(app: &App, caller: &str) -> (u16, Value) {
    call(
        app,
        "POST",
        "/v1/credentials",
        caller,
        json!({"profile": "orders-tenant"}),
    )
    .await
}

#[tokio::test]
async fn given_an_approved_request_the_requester_vends_and_nobody_decides_twice() {
    let app = app(Arc::new(Memory::default()));
    // GIVEN a developer whose rule requires approval
    let (code, first) = vend(&app, DEV).await;
    assert_eq!(
        (code, first["code"].as_str()),
        (403, Some("ApprovalRequired"))
    );
    let id = first["approval_request_id"].as_str().unwrap().to_string();
    let (_, again) = vend(&app, DEV).await;
    assert_eq!(
        again["approval_request_id"], id,
        "the same pending request on repeat"
    );
    // WHEN another session of the requester's role tries to approve it: it
    // does not even see it
    let approve = format!("/v1/requests/{id}/approve");
    let (code, _) = call(&app, "POST", &approve, DEV_AGAIN, json!({})).await;
    assert_eq!(code, 404);
    // AND an approver approves it
    let (code, approved) = call(&app, "POST", &approve, SEC, json!({})).await;
    assert_eq!(
        (code, approved["status"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    // THEN the requester vends under the approval
    let (code, creds) = vend(&app, DEV).await;
    assert_eq!(code, 200, "{creds}");
    // AND a decided request cannot be decided again: 409
    let (code, body) = call(&app, "POST", &approve, SEC, json!({})).await;
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    let deny = format!("/v1/requests/{id}/deny");
    let (code, _) = call(&app, "POST", &deny, SEC, json!({})).await;
    assert_eq!(code, 409);
}

#[tokio::test]
async fn a_request_is_seen_by_its_requester_and_approvers_only() {
    let app = app(Arc::new(Memory::default()));
    let body = json!({"profile": "orders-tenant", "justification": "debugging order 42"});
    let (code, created) = call(&app, "POST", "/v1/requests", DEV, body).await;
    assert_eq!(code, 201, "{created}");
    let path = format!("/v1/requests/{}", created["id"].as_str().unwrap());
    // The exact requester and the approvers; not another person of its role.
    for (who, expected) in [(DEV, 200), (DEV_AGAIN, 404), (SEC, 200), (ONCALL, 404)] {
        let (code, _) = call(&app, "GET", &path, who, json!({})).await;
        assert_eq!(code, expected, "{who}");
    }
    let (code, _) = call(&app, "POST", &format!("{path}/cancel"), SEC, json!({})).await;
    assert_eq!(code, 403, "only the requester cancels");
    let (code, cancelled) = call(&app, "POST", &format!("{path}/cancel"), DEV, json!({})).await;
    assert_eq!(
        (code, cancelled["status"].as_str()),
        (200, Some("cancelled"))
    );
}

const BREAK_GLASS: &str = r#"
profile: orders-tenant
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
rules:
  - {name: oncall, effect: break_glass, role_names: [oncall], accounts: ["123456789012"]}
break_glass: {principals: ["arn:aws:sts::123456789012:assumed-role/oncall/*"], max_duration: 1800, min_justification: 20}
"#;

#[tokio::test]
async fn break_glass_vends_while_open_once_per_caller_and_not_after_it_closes() {
    let memory = Arc::new(Memory::default());
    let app = app_with(memory.clone(), &[BREAK_GLASS]);
    let (code, _) = vend(&app, ONCALL).await;
    assert_eq!(code, 403);
    let ask = json!({"profile": "orders-tenant", "reason": "incident", "justification": "the orders table is on fire"});
    let (code, event) = call(&app, "POST", "/v1/breakglass", ONCALL, ask.clone()).await;
    assert_eq!(
        (code, event["status"].as_str()),
        (201, Some("open")),
        "{event}"
    );
    let (code, creds) = vend(&app, ONCALL).await;
    assert_eq!(code, 200, "{creds}");
    let (code, body) = call(&app, "POST", "/v1/breakglass", ONCALL, ask).await;
    assert_eq!((code, body["code"].as_str()), (409, Some("Conflict")));
    let close = format!("/v1/breakglass/{}/close", event["id"].as_str().unwrap());
    let (code, closed) = call(&app, "POST", &close, ONCALL, json!({})).await;
    assert_eq!((code, closed["status"].as_str()), (200, Some("closed")));
    // The grant ends with its reason: what the event vended is denied.
    let event_id = event["id"].as_str().unwrap();
    assert!(creds["SessionId"].is_string());
    assert_eq!(
        memory.denied(),
        [(
            vec!["123456789012".to_string()],
            Target::Grant(format!("break_glass:{event_id}"))
        )]
    );
    let (code, _) = vend(&app, ONCALL).await;
    assert_eq!(code, 403, "closed: no more vends");
    let (code, _) = call(&app, "POST", &close, ONCALL, json!({})).await;
    assert_eq!(code, 409, "closing twice");
}

#[tokio::test]
async fn a_close_whose_revocation_failed_revokes_on_the_next_close() {
    let memory = Arc::new(Memory::default());
    let app = app_with(memory.clone(), &[BREAK_GLASS]);
    let ask = json!({"profile": "orders-tenant", "reason": "incident", "justification": "the orders table is on fire"});
    let (_, event) = call(&app, "POST", "/v1/breakglass", ONCALL, ask).await;
    let (code, creds) = vend(&app, ONCALL).await;
    assert_eq!(code, 200, "{creds}");
    memory
        .fail_deny_once
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let close = format!("/v1/breakglass/{}/close", event["id"].as_str().unwrap());
    let (code, _) = call(&app, "POST", &close, ONCALL, json!({})).await;
    assert_eq!(code, 503, "IAM failed: the close says so");
    assert!(memory.denied().is_empty());
    let (code, body) = call(&app, "POST", &close, ONCALL, json!({})).await;
    assert_eq!((code, body["code"].as_str()), (409, Some("Conflict")));
    let event_id = event["id"].as_str().unwrap();
    assert!(creds["SessionId"].is_string());
    assert_eq!(
        memory.denied(),
        [(
            vec!["123456789012".to_string()],
            Target::Grant(format!("break_glass:{event_id}"))
        )]
    );
}

#[tokio::test]
async fn a_revoked_session_stops_its_caller_and_denies_its_credentials() {
    let memory = Arc::new(Memory::default());
    let app = app(memory.clone());
    let task = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";
    let (code, creds) = vend(&app, task).await;
    assert_eq!(code, 200);
    let session = creds["SessionId"].as_str().unwrap();
    let revoke = format!("/v1/sessions/{session}/revoke");
    // The caller itself manages nothing: its session answers as unknown.
    let (code, _) = call(&app, "POST", &revoke, task, json!({"reason": "leaked"})).await;
    assert_eq!(code, 404);
    let (code, answer) = call(&app, "POST", &revoke, SEC, json!({"reason": "leaked"})).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        memory.denied(),
        [(
            vec!["123456789012".to_string()],
            Target::Session(format!("tvm-{session}"))
        )]
    );
    let (code, body) = vend(
        &app,
        "arn:aws:sts::123456789012:assumed-role/orders-task/other",
    )
    .await;
    assert_eq!((code, body["code"].as_str()), (403, Some("SessionRevoked")));
}

#[tokio::test]
async fn a_revoked_session_is_listed_with_its_time_to_the_security_team_only() {
    let memory = Arc::new(Memory::default());
    let app = app(memory.clone());
    let task = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";
    let (_, creds) = vend(&app, task).await;
    let session = creds["SessionId"].as_str().unwrap().to_string();
    let one = format!("/v1/sessions/{session}");
    // Its caller and the security team see it; another caller does not.
    let (code, seen) = call(&app, "GET", &one, task, json!(null)).await;
    assert_eq!(
        (code, seen["role_session_name"].as_str()),
        (200, Some(format!("acme.{session}").as_str()))
    );
    assert_eq!(call(&app, "GET", &one, DEV, json!(null)).await.0, 404);
    let (code, _) = call(
        &app,
        "POST",
        &format!("{one}/revoke"),
        SEC,
        json!({"reason": "leaked"}),
    )
    .await;
    assert_eq!(code, 200);
    let (code, seen) = call(&app, "GET", &one, SEC, json!(null)).await;
    assert_eq!((code, seen["status"].as_str()), (200, Some("revoked")));
    let at = seen["revoked_at"].as_i64().expect("the revocation's time");

    let since = format!("/v1/sessions?revoked_since={}", at - 60);
    let (code, list) = call(&app, "GET", &since, ADMIN, json!(null)).await;
    assert_eq!(code, 200, "{list}");
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [session.as_str()]);
    let future = format!("/v1/sessions?revoked_since={}", at + 120);
    assert_eq!(call(&app, "GET", &future, ADMIN, json!(null)).await.0, 400);
    // Only the security team lists revocations (not an approver); within
    // CloudTrail's 90 days.
    assert_eq!(call(&app, "GET", &since, task, json!(null)).await.0, 403);
    assert_eq!(call(&app, "GET", &since, SEC, json!(null)).await.0, 403);
    let old = format!("/v1/sessions?revoked_since={}", at - 91 * 86_400);
    assert_eq!(call(&app, "GET", &old, ADMIN, json!(null)).await.0, 400);
    let both = format!("{since}&caller={task}");
    assert_eq!(call(&app, "GET", &both, ADMIN, json!(null)).await.0, 400);
}

#[tokio::test]
async fn a_vend_that_failed_at_sts_stays_failed() {
    let memory = Arc::new(Memory {
        fail_assume: true,
        ..Memory::default()
    });
    let app = app(memory.clone());
    let task = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";
    let (code, _) = vend(&app, task).await;
    assert_eq!(code, 503);
    let session = memory
        .state()
        .sessions
        .keys()
        .next()
        .expect("the record")
        .clone();
    let (code, body) = call(
        &app,
        "POST",
        &format!("/v1/sessions/{session}/revoke"),
        ADMIN,
        json!({"reason": "tidy"}),
    )
    .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    let (_, seen) = call(
        &app,
        "GET",
        &format!("/v1/sessions/{session}"),
        ADMIN,
        json!(null),
    )
    .await;
    assert_eq!(seen["status"], "failed");
}

#[tokio::test]
async fn a_refusal_decided_on_a_remembered_gate_is_decided_again_on_the_store() {
    let memory = Arc::new(Memory::default());
    let app = app_with(memory.clone(), &[BREAK_GLASS]);
    let ask = json!({"profile": "orders-tenant", "reason": "incident", "justification": "the orders table is on fire"});
    let (code, event) = call(&app, "POST", "/v1/breakglass", ONCALL, ask).await;
    assert_eq!(code, 201, "{event}");
    let (code, _) = vend(&app, ONCALL).await;
    assert_eq!(code, 200);
    // This container remembers an event about to end (as one closed and
    // reopened elsewhere would leave it): on it alone the vend is refused
    // (less than 900 s left), while the store holds an open event.
    let now = chrono::Utc::now();
    let ending = tvm_core::decision::GateState {
        approval: None,
        break_glass: Some(tvm_core::decision::ActiveBreakGlass {
            id: "an-older-event".into(),
            ends_at: now + chrono::Duration::seconds(120),
        }),
    };
    app.remembered()
        .open_gates
        .granted(ONCALL, "orders-tenant", &ending, now.timestamp());
    let (code, creds) = vend(&app, ONCALL).await;
    assert_eq!(code, 200, "decided again on the store: {creds}");
    let session = memory.state().sessions[creds["SessionId"].as_str().unwrap()].clone();
    assert_eq!(session.via_id.as_deref(), event["id"].as_str());
}
