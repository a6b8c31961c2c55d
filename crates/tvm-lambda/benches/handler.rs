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
    let memory = Arc::new(Memory::default());
    let app = app(memory.clone());
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
            // More vends a second than the rate limit allows one caller.
            memory.forget_rate_counts();
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

/// What a signed policy costs per load and document: one ECDSA P-256
/// verification (TVM_POLICY_SIGNING_KEY), the key read once per container.
fn bench_policy_verify(c: &mut Criterion) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use tvm_core::signature::{attach, message, Algorithm};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // The SubjectPublicKeyInfo KMS returns: id-ecPublicKey, prime256v1, point.
    let mut spki: Vec<u8> = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]
    .to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    let key = tvm_lambda::aws::kms::PolicyKey::from_spki("ECC_NIST_P256", &spki).unwrap();
    // A 2 KB document, as a larger profile is.
    let doc = format!(
        "profile: orders-tenant\nrole_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant\nrules:\n{}",
        "  - {name: r, effect: allow, principals: [\"arn:aws:sts::123456789012:assumed-role/orders-task/*\"]}\n".repeat(20)
    );
    let sig = pair.sign(&rng, &message("orders-tenant", &doc)).unwrap();
    let value = attach(&doc, Algorithm::EcdsaSha256, sig.as_ref());
    assert!(key.verify("orders-tenant", &value).is_ok());
    c.bench_function("policy_verify_p256_2kb", |b| {
        b.iter(|| {
            key.verify(black_box("orders-tenant"), black_box(&value))
                .unwrap()
        })
    });
}

criterion_group!(
    benches,
    bench_handler,
    bench_client_rebuild,
    bench_policy_verify
);
criterion_main!(benches);
