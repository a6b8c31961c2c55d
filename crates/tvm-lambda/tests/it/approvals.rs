//! Approvals and break-glass through the real bootstrap, on the `gates`
//! profile: quorum 2, racing approvers, one-way transitions, break-glass.

use serde_json::json;

use crate::gates::*;
use crate::harness::*;

const BOB: &str = "arn:aws:sts::123456789012:assumed-role/gate-approver/bob";
const CAROL: &str = "arn:aws:sts::123456789012:assumed-role/second-approver/carol";

fn request_path(id: &str, action: &str) -> String {
    format!("/v1/requests/{id}/{action}")
}

#[test]
fn a_request_approved_by_two_racing_approvers_vends_for_its_caller_only() {
    run(async {
        let lambda = gates_lambda().await;
        let jane = gate("appr-dev", "jane");
        let first = vend(&lambda, &jane).await;
        assert_eq!(
            (first.status, first.code()),
            (403, "ApprovalRequired"),
            "{:?}",
            first.body
        );
        let id = first.body["approval_request_id"]
            .as_str()
            .expect("a pending request id")
            .to_string();
        // A repeat gets the same request, and so does an explicit one; another
        // session of the same role (another person) gets a request of its own.
        let again = vend(&lambda, &jane).await;
        assert_eq!(again.body["approval_request_id"], id.as_str());
        let other_person = vend(&lambda, &gate("appr-dev", "another-session")).await;
        assert_eq!(other_person.code(), "ApprovalRequired");
        assert_ne!(other_person.body["approval_request_id"], id.as_str());
        let explicit = post(&lambda, &jane, "/v1/requests", json!({"profile": "gates", "justification": "debugging ticket 123", "duration_seconds": 1200})).await;
        assert_eq!(explicit.status, 201, "{:?}", explicit.body);
        assert_eq!(explicit.body["id"], id.as_str());

        // Another session of the requester's role neither sees nor approves it.
        let own = post(
            &lambda,
            &gate("appr-dev", "bob"),
            &request_path(&id, "approve"),
            json!({}),
        )
        .await;
        assert_eq!((own.status, own.code()), (404, "NotFound"));
        // Someone else's request answers as not found.
        let other = get(
            &lambda,
            &gate("gate-other", "x1"),
            &format!("/v1/requests/{id}"),
        )
        .await;
        assert_eq!((other.status, other.code()), (404, "NotFound"));
        let pending = get(&lambda, BOB, "/v1/requests?status=pending").await;
        assert!(pending.body["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()));

        // Bob twice, under two session names: counted once.
        let one = post(&lambda, BOB, &request_path(&id, "approve"), json!({})).await;
        assert_eq!(one.status, 200, "{:?}", one.body);
        assert_eq!(one.body["status"], "pending");
        let twice = post(
            &lambda,
            &gate("gate-approver", "bob-again"),
            &request_path(&id, "approve"),
            json!({}),
        )
        .await;
        assert_eq!(
            (twice.status, twice.code()),
            (409, "Conflict"),
            "{:?}",
            twice.body
        );
        let still = get(&lambda, BOB, &format!("/v1/requests/{id}")).await;
        assert_eq!(still.body["approvals"].as_array().unwrap().len(), 1);
        assert_eq!(
            vend(&lambda, &jane).await.code(),
            "ApprovalRequired",
            "one approval of two does not vend"
        );

        // Carol completes the quorum.
        let done = post(&lambda, CAROL, &request_path(&id, "approve"), json!({})).await;
        assert_eq!(done.body["status"], "approved", "{:?}", done.body);
        assert_eq!(done.body["approvals"].as_array().unwrap().len(), 2);
        let late = post(
            &lambda,
            &gate("second-approver", "dave"),
            &request_path(&id, "approve"),
            json!({}),
        )
        .await;
        assert_eq!(late.status, 409, "transitions are one-way");

        let granted = vend(&lambda, &jane).await;
        assert_eq!(granted.status, 200, "{:?}", granted.body);
        let d = decisions(&lambda)
            .into_iter()
            .rev()
            .find(|d| d["session_id"] == granted.body["SessionId"])
            .unwrap();
        assert_eq!(
            (d["via"].as_str(), d["via_id"].as_str()),
            (Some("approval"), Some(id.as_str()))
        );
        assert_eq!(
            d["duration_seconds"], 900,
            "the request asked for the default (900) on the first vend"
        );
        // Another caller of the same profile is not approved.
        assert_eq!(
            vend(&lambda, &gate("appr-ops", "x1")).await.code(),
            "ApprovalRequired"
        );
        lambda.stop().await;
    });
}

#[test]
fn racing_approvers_on_two_function_instances_are_counted_exactly_once_each() {
    run(async {
        let (a, b) = (gates_lambda().await, gates_lambda().await);
        let requester = gate("appr-race", "x1");
        let id = vend(&a, &requester).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let path = request_path(&id, "approve");
        let (one, two) = tokio::join!(
            post(&a, BOB, &path, json!({})),
            post(&b, CAROL, &path, json!({}))
        );
        assert_eq!(
            (one.status, two.status),
            (200, 200),
            "{:?} {:?}",
            one.body,
            two.body
        );
        let final_view = get(&a, BOB, &format!("/v1/requests/{id}")).await;
        assert_eq!(final_view.body["status"], "approved");
        let mut approvers: Vec<String> = final_view.body["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        approvers.sort();
        // Counted as persons, shown with the ARNs they approved under.
        assert_eq!(approvers, ["bob", "carol"]);
        let mut by: Vec<&str> = final_view.body["approved_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        by.sort();
        assert_eq!(by, [BOB, CAROL]);
        assert_eq!(vend(&b, &requester).await.status, 200);
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn denied_and_cancelled_requests_never_vend_and_stay_that_way() {
    run(async {
        let lambda = gates_lambda().await;
        let dan = gate("appr-deny", "dan");
        let id = vend(&lambda, &dan).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let denied = post(&lambda, BOB, &request_path(&id, "deny"), json!({})).await;
        assert_eq!(denied.body["status"], "denied", "{:?}", denied.body);
        assert_eq!(
            post(&lambda, CAROL, &request_path(&id, "approve"), json!({}))
                .await
                .status,
            409
        );
        let next = vend(&lambda, &dan).await;
        assert_eq!(next.code(), "ApprovalRequired");
        assert_ne!(
            next.body["approval_request_id"],
            id.as_str(),
            "a denied request is not reused"
        );

        let cleo = gate("appr-cancel", "cleo");
        let id = vend(&lambda, &cleo).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let not_hers = post(&lambda, BOB, &request_path(&id, "cancel"), json!({})).await;
        assert_eq!((not_hers.status, not_hers.code()), (403, "AccessDenied"));
        let cancelled = post(&lambda, &cleo, &request_path(&id, "cancel"), json!({})).await;
        assert_eq!(cancelled.body["status"], "cancelled");
        assert_eq!(
            post(&lambda, BOB, &request_path(&id, "approve"), json!({}))
                .await
                .status,
            409
        );
        assert_eq!(
            post(&lambda, CAROL, &request_path(&id, "approve"), json!({}))
                .await
                .status,
            409
        );
        let short = post(
            &lambda,
            &cleo,
            "/v1/requests",
            json!({"profile": "gates", "justification": "short"}),
        )
        .await;
        assert_eq!((short.status, short.code()), (400, "BadRequest"));
        lambda.stop().await;
    });
}

#[test]
fn break_glass_opens_vends_for_the_time_left_closes_and_then_refuses() {
    run(async {
        let lambda = gates_lambda().await;
        let sam = gate("oncall-sre", "sam");
        assert_eq!(
            vend(&lambda, &sam).await.code(),
            "AccessDenied",
            "no event, no vend"
        );
        let good = json!({"profile": "gates", "reason": "incident", "justification": "payments outage INC-4711 needs table fix", "duration_seconds": 1200});
        for (body, why) in [
            (
                json!({"profile": "gates", "reason": "incident", "justification": "too short"}),
                "short justification",
            ),
            (
                json!({"profile": "gates", "reason": "curiosity", "justification": "payments outage INC-4711 needs table fix"}),
                "unknown reason",
            ),
            (
                json!({"profile": "gates", "reason": "incident", "justification": "payments outage INC-4711 needs table fix", "duration_seconds": 3600}),
                "over max_duration",
            ),
        ] {
            let a = post(&lambda, &sam, "/v1/breakglass", body).await;
            assert_eq!(
                (a.status, a.code()),
                (400, "BadRequest"),
                "{why}: {:?}",
                a.body
            );
        }
        let stranger = post(
            &lambda,
            &gate("gate-other", "x1"),
            "/v1/breakglass",
            good.clone(),
        )
        .await;
        assert_eq!(
            (stranger.status, stranger.code()),
            (403, "AccessDenied"),
            "not listed in break_glass"
        );

        let opened = post(&lambda, &sam, "/v1/breakglass", good.clone()).await;
        assert_eq!(opened.status, 201, "{:?}", opened.body);
        let event = opened.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            post(&lambda, &sam, "/v1/breakglass", good).await.status,
            409,
            "one open event at a time"
        );

        let granted = call(
            &lambda,
            vend_event(&sam, json!({"profile": "gates", "duration_seconds": 1800})),
        )
        .await;
        assert_eq!(granted.status, 200, "{:?}", granted.body);
        let d = decisions(&lambda)
            .into_iter()
            .rev()
            .find(|d| d["session_id"] == granted.body["SessionId"])
            .unwrap();
        assert_eq!(
            (d["via"].as_str(), d["via_id"].as_str()),
            (Some("break_glass"), Some(event.as_str()))
        );
        let granted_for = d["duration_seconds"].as_u64().unwrap();
        assert!(
            (900..1200).contains(&granted_for),
            "capped at the time the event has left: {granted_for}"
        );

        let mine = get(&lambda, &sam, "/v1/breakglass").await;
        assert!(mine.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event.as_str()));
        let admin = get(&lambda, ADMIN, "/v1/breakglass").await;
        assert!(admin.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event.as_str()));
        let others = get(&lambda, &gate("gate-other", "x1"), "/v1/breakglass").await;
        assert!(!others.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event.as_str()));

        let close = format!("/v1/breakglass/{event}/close");
        assert_eq!(
            post(&lambda, &gate("gate-other", "x1"), &close, json!({}))
                .await
                .status,
            404
        );
        let closed = post(&lambda, &sam, &close, json!({})).await;
        assert_eq!(closed.body["status"], "closed", "{:?}", closed.body);
        assert_eq!(
            vend(&lambda, &sam).await.code(),
            "AccessDenied",
            "after close, no vend"
        );
        assert_eq!(post(&lambda, &sam, &close, json!({})).await.status, 409);
        lambda.stop().await;
    });
}

#[test]
fn an_approval_past_its_ttl_no_longer_vends_and_the_next_vend_asks_again() {
    run(async {
        use aws_sdk_dynamodb::types::AttributeValue;
        let lambda = gates_lambda().await;
        let erin = gate("appr-expire", "erin");
        let id = vend(&lambda, &erin).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        post(&lambda, BOB, &request_path(&id, "approve"), json!({})).await;
        post(&lambda, CAROL, &request_path(&id, "approve"), json!({})).await;
        assert_eq!(vend(&lambda, &erin).await.status, 200);

        // Let the approval's ttl pass: move its end into the past in the store.
        let past = (chrono::Utc::now().timestamp() - 1).to_string();
        let ddb = aws_sdk_dynamodb::Client::new(&sdk());
        let pointer = format!("open#{erin}#gates");
        for (key, attrs) in [
            (pointer.to_string(), vec!["until"]),
            (format!("req#{id}"), vec!["valid_until", "expires_at"]),
        ] {
            for attr in attrs {
                ddb.update_item()
                    .table_name("tvm-approvals")
                    .key("pk", AttributeValue::S(key.clone()))
                    .update_expression("SET #a = :t")
                    .expression_attribute_names("#a", attr)
                    .expression_attribute_values(":t", AttributeValue::N(past.clone()))
                    .send()
                    .await
                    .unwrap();
            }
        }
        let expired = vend(&lambda, &erin).await;
        assert_eq!(expired.code(), "ApprovalRequired", "{:?}", expired.body);
        assert_ne!(
            expired.body["approval_request_id"],
            id.as_str(),
            "an expired approval is not reused"
        );
        let view = get(&lambda, BOB, &format!("/v1/requests/{id}")).await;
        assert_eq!(view.body["status"], "expired");
        assert_eq!(
            post(&lambda, BOB, &request_path(&id, "deny"), json!({}))
                .await
                .status,
            409
        );
        lambda.stop().await;
    });
}
