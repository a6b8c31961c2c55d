//! Notifications: every state change of the gates reaches the SNS topic,
//! read back through an SQS queue subscribed to it in the emulator.
//!
//! SNS runs on a second moto without auth enforcement: moto 5.2.5 miscomputes
//! SigV4 for query-protocol bodies containing spaces as the Rust SDK encodes
//! them (`%20`), answering SignatureDoesNotMatch (seen: boto3's `+` passes,
//! the same publish from aws-sdk-sns fails). Real SNS accepts both.

use std::process::Command;

use serde_json::{json, Value};
use tvm_devstack::stack::{venv, Moto, REGION};

use crate::gates::*;
use crate::harness::*;
use crate::revocation_kit::{isolated, lambda_in};

const BOB: &str = "arn:aws:sts::123456789012:assumed-role/gate-approver/bob";
const CAROL: &str = "arn:aws:sts::123456789012:assumed-role/second-approver/carol";

/// Run a boto3 snippet against an emulator.
fn boto3(endpoint: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const SUBSCRIBE: &str = r#"
import boto3, json, sys
sns, sqs = boto3.client("sns"), boto3.client("sqs")
topic = sns.create_topic(Name=sys.argv[1])["TopicArn"]
queue = sqs.create_queue(QueueName=sys.argv[1])["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
print(json.dumps({"topic": topic, "queue": queue}))
"#;

const DRAIN: &str = r#"
import boto3, json, sys, time
sqs = boto3.client("sqs")
want, out = int(sys.argv[2]), []
for _ in range(40):
    got = sqs.receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    out += [json.loads(m["Body"]) for m in got]
    if len(out) >= want:
        break
    time.sleep(0.1)
print(json.dumps(out))
"#;

#[test]
fn every_gate_event_is_announced_with_the_documented_schema() {
    run(async {
        let sns = Moto::start().expect("a second emulator for SNS and SQS");
        let names: Value =
            serde_json::from_str(&boto3(&sns.url(), SUBSCRIBE, &["tvm-events-test"])).unwrap();
        let topic = names["topic"].as_str().unwrap().to_string();
        // A state of its own: the break-glass close below revokes what the
        // event vended, which must not fill the shared revocation policy.
        let mut env = isolated("notify", &[("gates", GATES)]).await;
        env.push(("TVM_NOTIFY_TOPIC_ARN".into(), topic.clone()));
        env.push(("AWS_ENDPOINT_URL_SNS".into(), sns.url()));
        let sns_url = sns.url();
        let (lambda, _proxy) = lambda_in(&env).await;

        // A request from a vend, approved by two; a denied one; break-glass; revocations.
        let id = vend(&lambda, &gate("appr-note", "x1")).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        post(
            &lambda,
            BOB,
            &format!("/v1/requests/{id}/approve"),
            json!({}),
        )
        .await;
        post(
            &lambda,
            CAROL,
            &format!("/v1/requests/{id}/approve"),
            json!({}),
        )
        .await;
        let denied = vend(&lambda, &gate("appr-note2", "x1")).await.body["approval_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        post(
            &lambda,
            BOB,
            &format!("/v1/requests/{denied}/deny"),
            json!({}),
        )
        .await;
        let bg = json!({"profile": "gates", "reason": "outage", "justification": "region failover drill gone wrong", "duration_seconds": 1200});
        let opened = post(&lambda, &gate("oncall-note", "sre"), "/v1/breakglass", bg).await;
        let event = opened.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", opened.body))
            .to_string();
        let under_event = vend(&lambda, &gate("oncall-note", "sre")).await;
        assert_eq!(under_event.status, 200, "{:?}", under_event.body);
        post(
            &lambda,
            &gate("oncall-note", "sre"),
            &format!("/v1/breakglass/{event}/close"),
            json!({}),
        )
        .await;
        let vended = vend(&lambda, &gate("gate-note", "x1")).await;
        let sid = vended.body["SessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", vended.body))
            .to_string();
        post(
            &lambda,
            ADMIN,
            &format!("/v1/sessions/{sid}/revoke"),
            json!({"reason": "test revoke"}),
        )
        .await;
        post(
            &lambda,
            ADMIN,
            "/v1/callers/revoke",
            json!({"principal": gate("gate-note2", "x1"), "reason": "test revoke"}),
        )
        .await;

        let messages: Vec<Value> = serde_json::from_str(&boto3(
            &sns_url,
            DRAIN,
            &[names["queue"].as_str().unwrap(), "10"],
        ))
        .unwrap();
        let sns_errors: Vec<String> = lambda
            .logs()
            .into_iter()
            .filter(|l| l.contains("sns"))
            .collect();
        assert!(sns_errors.is_empty(), "{sns_errors:?}");
        let mut kinds: Vec<&str> = messages
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "breakglass.closed",
                "breakglass.opened",
                "breakglass.vended",
                "caller.revoked",
                "request.approved",
                "request.created",
                "request.created",
                "request.denied",
                "session.revoked",
            ]
        );
        for m in &messages {
            assert_eq!(m["version"], 1);
            assert!(m["at"].as_i64().unwrap() > 0);
            assert!(m["actor"].as_str().unwrap().starts_with("arn:aws:"));
            assert!(m["subject"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:iam::123456789012:"));
            assert!(m.get("AccessKeyId").is_none() && !m.to_string().contains("SecretAccessKey"));
        }
        let vended = messages
            .iter()
            .find(|m| m["type"] == "breakglass.vended")
            .unwrap();
        assert_eq!(
            (vended["id"].as_str(), vended["profile"].as_str()),
            (Some(event.as_str()), Some("gates"))
        );
        assert_eq!(
            vended["details"]["session_id"].as_str(),
            under_event.body["SessionId"].as_str()
        );
        let approved = messages
            .iter()
            .find(|m| m["type"] == "request.approved")
            .unwrap();
        assert_eq!(
            (approved["id"].as_str(), approved["profile"].as_str()),
            (Some(id.as_str()), Some("gates"))
        );
        lambda.stop().await;
    });
}
