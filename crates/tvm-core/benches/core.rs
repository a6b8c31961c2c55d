//! CPU cost of the pure core: `decide` over 10, 100 and 1,000 rules (the
//! matching rule last, so every rule is evaluated), rendering, and principal
//! parsing. `make bench` reads the estimates into docs/performance.md.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tvm_core::decision::{decide, GateState, VendRequest};
use tvm_core::policy::{parse_profile, PolicySet};
use tvm_core::principal::Principal;
use tvm_core::render::{caller_vars, render};

const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/orders-task/acme";

/// A profile with `rules` rules: a deny, then allows for other services'
/// roles, then the caller's allow last.
fn profile_with(rules: usize) -> String {
    let mut doc = String::from(
        r#"profile: orders-tenant
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 3600}
session_policy: |
  {"Version": "2012-10-17",
   "Statement": [{"Effect": "Allow",
     "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
     "Resource": "arn:aws:dynamodb:*:123456789012:table/orders",
     "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${tenant}"]}}}]}
session_tags:
  tenant: "${tenant}"
rules:
  - {name: blocked, effect: deny, session_names: ["blocked-*"], principals: ["*"]}
"#,
    );
    for i in 1..rules.saturating_sub(1) {
        writeln!(
            doc,
            "  - {{name: svc-{i}, effect: allow, principals: [\"arn:aws:sts::123456789012:assumed-role/svc-{i}-task/*\"], bind: {{tenant: \"${{caller.session_name}}\"}}}}"
        )
        .unwrap();
    }
    doc.push_str(
        "  - {name: ecs-orders, effect: allow, principals: [\"arn:aws:sts::123456789012:assumed-role/orders-task/*\"], bind: {tenant: \"${caller.session_name}\"}}\n",
    );
    doc
}

fn bench_decide(c: &mut Criterion) {
    let caller = Principal::parse(CALLER, None).unwrap();
    let request = VendRequest {
        profile: "orders-tenant".into(),
        duration_seconds: None,
        attributes: BTreeMap::new(),
    };
    let state = GateState::default();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let mut group = c.benchmark_group("decide");
    for rules in [10usize, 100, 1000] {
        let set = PolicySet::new([parse_profile(&profile_with(rules), None).unwrap()]);
        assert_eq!(set.get("orders-tenant").unwrap().rules.len(), rules);
        let grant = decide(&set, &caller, &request, &state, now).unwrap();
        assert_eq!(grant.rule.name, "ecs-orders");
        group.bench_with_input(BenchmarkId::from_parameter(rules), &set, |b, set| {
            b.iter(|| decide(black_box(set), black_box(&caller), &request, &state, now).is_ok())
        });
    }
    // A time window anywhere in the profile: the grant's end is found by a
    // scan of the next hour's minute boundaries (60 evaluations).
    let mut windowed = profile_with(10);
    windowed.push_str("  - {name: freeze, effect: deny, principals: [\"*\"], time: {days: [sun], hours: \"03:00-04:00\", timezone: Europe/Berlin}}\n");
    let set = PolicySet::new([parse_profile(&windowed, None).unwrap()]);
    let long = VendRequest {
        duration_seconds: Some(3600),
        ..request.clone()
    };
    assert_eq!(
        decide(&set, &caller, &long, &state, now)
            .unwrap()
            .duration_seconds,
        3600
    );
    group.bench_function("10-windowed", |b| {
        b.iter(|| decide(black_box(&set), black_box(&caller), &long, &state, now).is_ok())
    });
    group.finish();
}

fn bench_render(c: &mut Criterion) {
    let set = PolicySet::new([parse_profile(&profile_with(10), None).unwrap()]);
    let caller = Principal::parse(CALLER, None).unwrap();
    let request = VendRequest {
        profile: "orders-tenant".into(),
        duration_seconds: None,
        attributes: BTreeMap::new(),
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let grant = decide(&set, &caller, &request, &GateState::default(), now).unwrap();
    let rendered = render(grant.profile, &grant.bindings).unwrap();
    assert!(rendered.policy.unwrap().contains("\"acme\""));
    c.bench_function("render", |b| {
        b.iter(|| render(black_box(grant.profile), black_box(&grant.bindings)).is_ok())
    });
    c.bench_function("caller_vars", |b| {
        b.iter(|| caller_vars(black_box(&caller)))
    });
}

fn bench_principal(c: &mut Criterion) {
    let mut group = c.benchmark_group("principal_parse");
    for (name, arn) in [
        ("assumed_role", CALLER),
        ("user", "arn:aws:iam::123456789012:user/ci/deployer"),
        (
            "sso",
            "arn:aws-us-gov:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/jane@example.com",
        ),
    ] {
        assert!(Principal::parse(arn, None).is_ok());
        group.bench_function(name, |b| {
            b.iter(|| Principal::parse(black_box(arn), None).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide, bench_render, bench_principal);
criterion_main!(benches);
