//! The handler's own cost: one whole warm vend (event parsing, identity,
//! decision, rendering, session record, AssumeRole, response, decision log
//! line) over in-memory adapters, so what is measured is tvm and not AWS.
//! Also the per-request cost a design pays when it rebuilds its STS client.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tvm_lambda::fakes::{app, Memory};

const EVENT: &str = include_str!("../../../fixtures/events/http-api-v2-iam.json");
const TASK: &str = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";

fn vend_event() -> Value {
    let mut e: Value = serde_json::from_str(EVENT).unwrap();
    e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(TASK);
    e["body"] = json!(r#"{"profile":"orders-tenant"}"#);
    e
}

fn bench_handler(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = app(Arc::new(Memory::default()));
    let event = vend_event();
    // Warm: policies loaded, first answer checked.
    let first = rt.block_on(app.invoke(event.clone(), "bench", None));
    assert_eq!(first["statusCode"], 200, "{first}");
    // The decision line goes to the log as in production; keep it off the
    // terminal without making it free.
    let _quiet = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::sink)
            .finish(),
    );
    c.bench_function("handler_vend", |b| {
        b.iter(|| {
            let out = rt.block_on(app.invoke(black_box(event.clone()), "bench", None));
            assert_eq!(out["statusCode"], 200);
        })
    });
}

/// What a design that builds its STS client per request pays before any I/O
/// (the lost connection pool is not in this number; see docs/performance.md).
fn bench_client_rebuild(c: &mut Criterion) {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    c.bench_function("sts_client_build", |b| {
        b.iter(|| aws_sdk_sts::Client::new(black_box(&sdk)))
    });
}

criterion_group!(benches, bench_handler, bench_client_rebuild);
criterion_main!(benches);
