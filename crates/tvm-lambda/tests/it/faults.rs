//! Every dependency, every way it can fail: unreachable (connection reset),
//! slow past the timeout, throttling, and 500. Each time: no credentials,
//! 503 DependencyFailed, a log line naming the dependency, an answer within
//! the configured bounds; and never credentials without a session record.

use std::time::{Duration, Instant};

use serde_json::json;
use tvm_devstack::proxy::{Fault, Proxy};
use tvm_devstack::runtime::Lambda;

use crate::harness::*;

/// One AWS operation may take this long, retries included.
const TIMEOUT_MS: &str = "600";

const FAULTS: [(&str, Fault); 4] = [
    ("unreachable", Fault::Reset),
    ("slow", Fault::Delay(Duration::from_secs(3))),
    ("throttling", Fault::Throttle),
    ("500", Fault::Status(500)),
];

async fn deployment() -> (Lambda, Proxy) {
    counted_lambda(&[("TVM_AWS_TIMEOUT_MS", TIMEOUT_MS)]).await
}

async fn fails_closed(lambda: &Lambda, dependency: &str, fault: &str) {
    let started = Instant::now();
    let a = call(
        lambda,
        vend_event(
            &format!("{TASK}faults"),
            json!({"profile": "orders-tenant"}),
        ),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        (a.status, a.code()),
        (503, "DependencyFailed"),
        "{dependency} {fault}: {:?}",
        a.body
    );
    assert!(a.body.get("AccessKeyId").is_none());
    let message = a.body["message"].as_str().unwrap();
    assert!(
        !message.contains("Throttl")
            && !message.contains("Exception")
            && !message.contains("injected"),
        "{message}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "{dependency} {fault}: answered after {took:?}, past the timeout bound"
    );
    let logged = lambda
        .logs()
        .iter()
        .any(|l| l.contains(&format!("\"dependency\":\"{dependency}\"")));
    assert!(
        logged,
        "{dependency} {fault}: no log line names the dependency"
    );
}

#[test]
fn ssm_failing_in_any_way_fails_closed() {
    run(async {
        for (name, fault) in FAULTS {
            let (lambda, proxy) = deployment().await;
            proxy.set_fault("ssm", Some(fault));
            fails_closed(&lambda, "ssm", name).await;
            assert!(
                !proxy.calls().iter().any(|c| c.action == "AssumeRole"),
                "ssm {name}: credentials minted"
            );
            lambda.stop().await;
        }
    });
}

#[test]
fn dynamodb_failing_in_any_way_fails_closed_before_any_assume_role() {
    run(async {
        for (name, fault) in FAULTS {
            let (lambda, proxy) = deployment().await;
            // Warm: policies loaded, the next failure is DynamoDB's alone.
            let warm = call(
                &lambda,
                vend_event(
                    &format!("{TASK}faults"),
                    json!({"profile": "orders-tenant"}),
                ),
            )
            .await;
            assert_eq!(warm.status, 200);
            proxy.set_fault("dynamodb", Some(fault));
            let mark = proxy.mark();
            fails_closed(&lambda, "dynamodb", name).await;
            assert!(
                !proxy
                    .calls_since(mark)
                    .iter()
                    .any(|c| c.action == "AssumeRole"),
                "dynamodb {name}: no credentials are minted without a session record"
            );
            lambda.stop().await;
        }
    });
}

#[test]
fn sts_failing_in_any_way_fails_closed_after_recording_the_session() {
    run(async {
        for (name, fault) in FAULTS {
            let (lambda, proxy) = deployment().await;
            let warm = call(
                &lambda,
                vend_event(
                    &format!("{TASK}faults"),
                    json!({"profile": "orders-tenant"}),
                ),
            )
            .await;
            assert_eq!(warm.status, 200);
            proxy.set_fault("sts", Some(fault));
            let mark = proxy.mark();
            fails_closed(&lambda, "sts", name).await;
            let calls = proxy.calls_since(mark);
            assert!(
                calls.iter().any(|c| c.action == "TransactWriteItems"),
                "sts {name}: the record comes first"
            );
            lambda.stop().await;
        }
    });
}
