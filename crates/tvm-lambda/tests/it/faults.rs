//! Every dependency, every way it can fail: unreachable (connection reset),
//! slow past the timeout, throttling, and 500. Each time: no credentials,
//! 503 DependencyFailed, a log line naming the dependency, an answer within
//! the configured bounds; and never credentials without a session record.

use std::time::{Duration, Instant};

use serde_json::json;
use tvm_devstack::proxy::{Call, Fault, Proxy};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::free_port;

use crate::harness::*;

/// One AWS operation may take this long, retries included. Not shorter: the
/// calls that are not faulted go to moto, whose TransactWriteItems slows as
/// the suite fills the sessions table (seen at ~800 ms, which timed out the
/// record before STS was ever reached).
const TIMEOUT_MS: u64 = 2000;
/// The answer comes within two operations (the record, then the faulted
/// call) and a margin.
const ANSWER_BOUND: Duration = Duration::from_millis(2 * TIMEOUT_MS + 1000);

const FAULTS: [(&str, Fault); 4] = [
    ("unreachable", Fault::Reset),
    ("slow", Fault::Delay(Duration::from_secs(5))),
    ("throttling", Fault::Throttle),
    ("500", Fault::Status(500)),
];

async fn deployment() -> (Lambda, Proxy) {
    counted_lambda(&[("TVM_AWS_TIMEOUT_MS", &TIMEOUT_MS.to_string())]).await
}

fn vend() -> serde_json::Value {
    vend_event(
        &format!("{TASK}faults"),
        json!({"profile": "orders-tenant"}),
    )
}

async fn fails_closed(lambda: &Lambda, dependency: &str, fault: &str) {
    let started = Instant::now();
    let a = call(lambda, vend()).await;
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
            && !message.contains("injected")
            && !message.contains("arn:")
            && !message.contains("error"),
        "{message}"
    );
    assert!(
        took < ANSWER_BOUND,
        "{dependency} {fault}: answered after {took:?}, past the timeout bound"
    );
    // The function's output is read from its pipe as it comes: the answer can
    // arrive before the log line is collected, so poll for it (bounded).
    let needle = format!("\"dependency\":\"{dependency}\"");
    let mut logged = false;
    for _ in 0..100 {
        logged = lambda.logs().iter().any(|l| l.contains(&needle));
        if logged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged,
        "{dependency} {fault}: no log line names the dependency: {:?}",
        lambda.logs()
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

/// A warm instance (policies loaded), then `service` fails: the calls made
/// while it failed, after checking the vend failed closed.
async fn warm_then_failing(service: &str, name: &str, fault: Fault) -> Vec<Call> {
    let (lambda, proxy) = deployment().await;
    assert_eq!(
        call(&lambda, vend()).await.status,
        200,
        "{service} {name}: warm-up"
    );
    proxy.set_fault(service, Some(fault));
    let mark = proxy.mark();
    fails_closed(&lambda, service, name).await;
    lambda.stop().await;
    proxy.calls_since(mark)
}

#[test]
fn dynamodb_failing_in_any_way_fails_closed_before_any_assume_role() {
    run(async {
        for (name, fault) in FAULTS {
            let calls = warm_then_failing("dynamodb", name, fault).await;
            assert!(
                !calls.iter().any(|c| c.action == "AssumeRole"),
                "dynamodb {name}: no credentials are minted without a session record"
            );
        }
    });
}

#[test]
fn sts_failing_in_any_way_fails_closed_after_recording_the_session() {
    run(async {
        for (name, fault) in FAULTS {
            let calls = warm_then_failing("sts", name, fault).await;
            assert!(
                calls.iter().any(|c| c.action == "TransactWriteItems"),
                "sts {name}: the record comes first"
            );
        }
    });
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
        fails_closed(&lambda, "ssm", "unreachable").await;
        lambda.stop().await;
    });
}

#[test]
fn dynamodb_failing_fails_closed_before_any_assume_role() {
    run(async {
        let (lambda, proxy) = counted_lambda(&[("TVM_AWS_TIMEOUT_MS", "1000")]).await;
        proxy.set_fault("dynamodb", Some(Fault::Status(500)));
        fails_closed(&lambda, "dynamodb", "500").await;
        let d = decisions(&lambda).into_iter().last().unwrap();
        assert_eq!(d["dependency"], "dynamodb");
        assert_eq!(
            emf_metric(&d, &["service", "dependency"], "DependencyFailures"),
            Some(1.0)
        );
        assert_eq!(
            emf_metric(&d, &["service", "code"], "ServerErrors"),
            Some(1.0)
        );
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
        fails_closed(&lambda, "sts", "reset").await;
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
