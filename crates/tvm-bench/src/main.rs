//! `tvm-bench`: the runtime half of `make bench`. It starts the local stack
//! (moto behind the project's proxy, loopback only), runs the real release
//! `bootstrap` through the Lambda runtime API emulator, and measures:
//!
//! - round trips: every AWS call delayed by D at the proxy, D = 0 and 50 ms;
//!   sequential calls = (latency(D) - latency(0)) / D, per path, with the
//!   calls per service the proxy saw;
//! - the policy cache: SSM calls per minute at two request rates, and request
//!   latency while a (slowed) refresh is in flight;
//! - cold start: exec to the first runtime-API poll and to the first vend;
//! - memory: RSS after 1,000 and 10,000 warm vends, and the peak;
//! - load: N function instances at once (N = 1, 2, 4), each vending one
//!   request after another, on a fresh emulator: throughput, latency
//!   percentiles, CPU (user + system) per vend from /proc, and the bytes the
//!   function logs per vend.
//!
//! It writes one JSON document; `bench/report.py` turns it (with criterion's
//! estimates and the binary sizes) into docs/performance.md.
//!
//! Usage: tvm-bench BOOTSTRAP OUT.json [--quick] [--update]
//! (`--update`: measure the cold start and the load run again into OUT.json)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tvm_devstack::proxy::{Call, Fault, ANY};
use tvm_devstack::runtime::{Lambda, Outcome};
use tvm_devstack::stack::{sdk_config, Stack, REGION, SERVER_ID};

/// Every path the round-trip table reports, on one profile.
const BENCH: &str = r#"
profile: bench
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 1800}
rate_limit: {requests: 100000, per_seconds: 60}
rules:
  - {name: denied, effect: deny, session_names: ["denied-*"], principals: ["*"]}
  - {name: tasks, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/orders-task/*"]}
  - {name: humans, effect: require_approval, principals: ["arn:aws:sts::123456789012:assumed-role/appr-*/*"]}
  - {name: oncall, effect: break_glass, principals: ["arn:aws:sts::123456789012:assumed-role/oncall-*/*"]}
approval:
  approvers: ["arn:aws:sts::123456789012:assumed-role/bench-approver/*"]
  required: 1
  ttl: 3600
break_glass:
  principals: ["arn:aws:sts::123456789012:assumed-role/oncall-*/*"]
  max_duration: 1800
  min_justification: 20
"#;

/// One vend an hour: every vend after the first is rate-limited.
const LIMITED: &str = r#"
profile: bench-limited
role_arn: arn:aws:iam::123456789012:role/tvm/orders-tenant
duration: {default: 900, max: 900}
rate_limit: {requests: 1, per_seconds: 3600}
rules:
  - {name: tasks, effect: allow, principals: ["arn:aws:sts::123456789012:assumed-role/orders-task/*"]}
"#;

const DELAY: Duration = Duration::from_millis(50);

fn arn(role: &str, session: &str) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}")
}

struct Settings {
    samples: usize,
    cold_runs: usize,
    memory_vends: usize,
    load_seconds: u64,
    /// Vends at each load level, shared among its instances.
    load_vends: usize,
}

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(bootstrap), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: tvm-bench BOOTSTRAP OUT.json [--quick]");
        std::process::exit(2);
    };
    let settings = if args.iter().any(|a| a == "--quick") {
        Settings {
            samples: 5,
            cold_runs: 3,
            memory_vends: 1_000,
            load_seconds: 4,
            load_vends: 60,
        }
    } else {
        Settings {
            samples: 25,
            cold_runs: 30,
            memory_vends: 10_000,
            load_seconds: 20,
            load_vends: 400,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bootstrap = PathBuf::from(bootstrap);
    let measured = if args.iter().any(|a| a == "--update") {
        match std::fs::read_to_string(out)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(results) => rt.block_on(update(&bootstrap, &settings, results)),
            Err(e) => Err(format!("--update needs {out}: {e}")),
        }
    } else {
        rt.block_on(run(&bootstrap, &settings))
    };
    match measured {
        Ok(results) => {
            let text = serde_json::to_string_pretty(&results).expect("json");
            if let Err(e) = std::fs::write(out, text + "\n") {
                eprintln!("tvm-bench: writing {out}: {e}");
                std::process::exit(1);
            }
            eprintln!("tvm-bench: wrote {out}");
        }
        Err(e) => {
            eprintln!("tvm-bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn stack() -> Res<Stack> {
    let stack = Stack::start().await?;
    put_policy(&stack, "bench", BENCH).await?;
    put_policy(&stack, "bench-limited", LIMITED).await?;
    Ok(stack)
}

/// `--update`: the cold start (and its round-trip row) and the load run
/// measured again into an existing results file, the rest kept.
async fn update(bootstrap: &Path, s: &Settings, mut results: Value) -> Res<Value> {
    let b = Bench {
        stack: stack().await?,
        bootstrap,
    };
    step("cold starts");
    let (row, cold) = b.cold_round_trips(s).await?;
    let paths = results["round_trips"]["paths"]
        .as_array_mut()
        .ok_or("no round trips in the results")?;
    let at = paths
        .iter()
        .position(|p| p["path"] == row["path"])
        .ok_or("no cold-start row in the results")?;
    paths[at] = row;
    let warm_ms = results["round_trips"]["paths"][0]["latency_ms"]["0"]
        .as_f64()
        .ok_or("no warm latency")?;
    let mut cold_start = cold_start(&cold, warm_ms);
    cold_start["harness_floor_ms"] = json!(b.poll_floor(s.cold_runs).await?);
    results["cold_start"] = cold_start;
    drop(b);
    step("load");
    results["load"] = load(bootstrap, s).await?;
    results["generated"] = json!(unix_seconds());
    Ok(results)
}

/// The load run, each level on a fresh emulator: moto slows with every
/// transaction it has kept.
async fn load(bootstrap: &Path, s: &Settings) -> Res<Value> {
    let mut levels = Vec::new();
    for n in LOAD_INSTANCES {
        let b = Bench {
            stack: stack().await?,
            bootstrap,
        };
        levels.push(b.load_level(n, s).await?);
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(json!({"levels": levels, "cpus": cpus}))
}

async fn run(bootstrap: &Path, s: &Settings) -> Res<Value> {
    let b = Bench {
        stack: stack().await?,
        bootstrap,
    };
    step("round trips and cold starts");
    let (round_trips, cold) = b.round_trips(s).await?;
    let warm_ms = round_trips["paths"][0]["latency_ms"]["0"]
        .as_f64()
        .ok_or("no warm latency")?;
    let mut cold_start = cold_start(&cold, warm_ms);
    cold_start["harness_floor_ms"] = json!(b.poll_floor(s.cold_runs).await?);
    step("policy cache");
    let policy_cache = b.policy_cache(s).await?;
    step("memory");
    let memory = b.memory(s).await?;
    drop(b);
    step("load");
    let load = load(bootstrap, s).await?;
    Ok(json!({
        "generated": unix_seconds(),
        "quick": s.samples < 25,
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "round_trips": round_trips,
        "policy_cache": policy_cache,
        "cold_start": cold_start,
        "memory": memory,
        "load": load,
    }))
}

fn step(name: &str) {
    eprintln!("tvm-bench: {name}");
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn put_policy(stack: &Stack, name: &str, text: &str) -> Res<()> {
    let sdk = sdk_config(&stack.moto.url(), stack.ids.function.credentials());
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(format!("/tvm/policies/{name}"))
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| format!("put policy {name}: {e:?}"))?;
    Ok(())
}

fn event(method: &str, path: &str, caller: Option<&str>, body: &Value) -> Value {
    tvm_devstack::events::http_api(method, path, caller, Some(body))
}

fn vend(caller: &str, profile: &str) -> Value {
    event(
        "POST",
        "/v1/credentials",
        Some(caller),
        &json!({ "profile": profile }),
    )
}

/// Invoke and return the HTTP status, the body and the time to the answer.
async fn call(lambda: &Lambda, event: Value) -> Res<(u16, Value, Duration)> {
    let start = Instant::now();
    let outcome = lambda.invoke(event).await?;
    let took = start.elapsed();
    match outcome {
        Outcome::Response(v) => {
            let status = v["statusCode"].as_u64().ok_or("no statusCode")? as u16;
            let body =
                serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            Ok((status, body, took))
        }
        Outcome::Error(e) => Err(format!("the function failed the invocation: {e}")),
    }
}

async fn expect(lambda: &Lambda, event: Value, status: u16) -> Res<(Value, Duration)> {
    let (got, body, took) = call(lambda, event).await?;
    if got != status {
        let logs = lambda.logs();
        let tail = logs[logs.len().saturating_sub(3)..].join("\n");
        return Err(format!(
            "expected {status}, got {got}: {body}\nthe function's last lines:\n{tail}"
        ));
    }
    Ok((body, took))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut values: Vec<f64>) -> Value {
    values.sort_by(f64::total_cmp);
    json!({
        "n": values.len(),
        "p50": percentile(&values, 0.5),
        "p90": percentile(&values, 0.9),
        "p99": percentile(&values, 0.99),
        "max": values.last().copied().unwrap_or(0.0),
    })
}

/// Calls per request, by service.
fn per_service(calls: &[Call], requests: usize) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for c in calls {
        *by.entry(format!("{}:{}", c.service, c.action)).or_default() += 1.0;
    }
    for v in by.values_mut() {
        *v = (*v / requests as f64 * 100.0).round() / 100.0;
    }
    by
}

/// What the DynamoDB calls of a path carried: transaction items by kind
/// with the largest item's JSON size (an upper bound of its DynamoDB size),
/// and batch-read keys. The cost model prices these.
fn dynamodb_items(calls: &[Call]) -> Value {
    let mut out = serde_json::Map::new();
    let first = |action: &str| {
        calls
            .iter()
            .find(|c| c.service == "dynamodb" && c.action == action)
            .and_then(|c| serde_json::from_str::<Value>(&c.body).ok())
    };
    if let Some(body) = first("TransactWriteItems") {
        let items = body["TransactItems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        let mut largest = 0;
        // The attributes the Put writes: which indexes its item lands in.
        let mut put_attributes: Vec<String> = Vec::new();
        for item in &items {
            for (kind, op) in item.as_object().into_iter().flatten() {
                *kinds.entry(kind.clone()).or_default() += 1;
                if kind == "Put" {
                    put_attributes.extend(
                        op["Item"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.clone()),
                    );
                }
                let size = op
                    .get("Item")
                    .or_else(|| op.get("Key"))
                    .map_or(0, |v| v.to_string().len());
                largest = largest.max(size);
            }
        }
        out.insert(
            "transact_write".into(),
            json!({"items": kinds, "largest_item_json_bytes": largest, "put_attributes": put_attributes}),
        );
    }
    if let Some(body) = first("BatchGetItem") {
        let tables = body["RequestItems"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let keys: usize = tables
            .values()
            .map(|t| t["Keys"].as_array().map_or(0, Vec::len))
            .sum();
        let consistent = tables.values().all(|t| t["ConsistentRead"] == true);
        out.insert(
            "batch_get".into(),
            json!({"keys": keys, "consistent": consistent}),
        );
    }
    Value::Object(out)
}

/// How to make one request of a path, and what it must answer.
struct Route {
    name: &'static str,
    status: u16,
    make: Box<dyn Fn() -> Res<Value> + Send + Sync>,
}

struct Bench<'a> {
    stack: Stack,
    bootstrap: &'a Path,
}

impl Bench<'_> {
    /// Delete the session items vends left behind (not the gate items, whose
    /// keys start with `#`). moto deep-copies a table for every transaction,
    /// so a vend gets slower with every item: without this, 10,000 vends
    /// would measure moto, and its client-side timeouts.
    async fn prune(&self) -> Res<()> {
        use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
        let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(
            &self.stack.moto.url(),
            self.stack.ids.function.credentials(),
        ));
        let items = ddb
            .scan()
            .table_name("tvm-sessions")
            .projection_expression("session_id")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| format!("scan sessions: {e:?}"))?;
        let keys: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("session_id")?.as_s().ok().cloned())
            .filter(|k| !k.starts_with('#'))
            .collect();
        for chunk in keys.chunks(25) {
            let writes = chunk
                .iter()
                .map(|k| {
                    let del = DeleteRequest::builder()
                        .key("session_id", AttributeValue::S(k.clone()))
                        .build()
                        .map_err(|e| e.to_string())?;
                    Ok(WriteRequest::builder().delete_request(del).build())
                })
                .collect::<Res<Vec<_>>>()?;
            ddb.batch_write_item()
                .request_items("tvm-sessions", writes)
                .send()
                .await
                .map_err(|e| format!("delete sessions: {e:?}"))?;
        }
        Ok(())
    }

    async fn lambda(&self, extra: &[(&str, &str)]) -> Res<Lambda> {
        let env = self.env(extra);
        Lambda::start(self.bootstrap, &env)
            .await
            .map_err(|e| format!("starting bootstrap: {e}"))
    }

    /// An instance spawned as Lambda execs it (see `Lambda::start_measured`).
    async fn measured_lambda(&self, program: &Path) -> Res<Lambda> {
        Lambda::start_measured(program, &self.env(&[]))
            .await
            .map_err(|e| format!("starting {}: {e}", program.display()))
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.stack.function_env();
        // moto pauses for over a second now and then (garbage collection on
        // a growing heap). With the default 1.5 s attempt timeout the SDK
        // retries a transaction moto has already applied, and moto, which
        // ignores ClientRequestToken, cancels the retry. Give each attempt 10 s.
        env.push(("TVM_AWS_TIMEOUT_MS".into(), "20000".into()));
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// The harness's own exec to first poll: a shell that polls at once.
    async fn poll_floor(&self, runs: usize) -> Res<f64> {
        let stub = std::env::temp_dir().join(format!("tvm-bench-stub-{}", std::process::id()));
        std::fs::write(
            &stub,
            "#!/bin/bash\nexec 3<>/dev/tcp/${AWS_LAMBDA_RUNTIME_API%:*}/${AWS_LAMBDA_RUNTIME_API#*:}\nprintf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: runtime\\r\\n\\r\\n' >&3\nsleep 10\n",
        )
        .map_err(|e| format!("writing the stub: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let mut polls = Vec::with_capacity(runs);
        for _ in 0..runs {
            let lambda = self.measured_lambda(&stub).await?;
            let mut polled = None;
            for _ in 0..500 {
                polled = lambda.runtime.first_poll();
                if polled.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let polled = polled.ok_or("the stub never polled")?;
            polls.push(ms(polled - lambda.spawned));
            lambda.stop().await;
        }
        let _ = std::fs::remove_file(&stub);
        Ok(median(polls))
    }

    fn delay(&self, d: Duration) {
        let fault = (!d.is_zero()).then_some(Fault::Delay(d));
        self.stack.proxy.set_fault(ANY, fault);
    }

    /// Set up the gated paths' state through the function itself: an approved
    /// request for jane, an open break-glass event for sam, and the limited
    /// profile's one vend spent.
    async fn gated_state(&self, lambda: &Lambda) -> Res<()> {
        let jane = arn("appr-dev", "jane");
        let (asked, _) = expect(lambda, vend(&jane, "bench"), 403).await?;
        let id = asked["approval_request_id"]
            .as_str()
            .ok_or("no approval request id")?;
        let (approved, _) = expect(
            lambda,
            event(
                "POST",
                &format!("/v1/requests/{id}/approve"),
                Some(&arn("bench-approver", "bob")),
                &json!({}),
            ),
            200,
        )
        .await?;
        if approved["status"] != "approved" {
            return Err(format!("request not approved: {approved}"));
        }
        expect(
            lambda,
            event(
                "POST",
                "/v1/breakglass",
                Some(&arn("oncall-sre", "sam")),
                &json!({"profile": "bench", "reason": "incident", "justification": "bench: payments outage INC-4711", "duration_seconds": 1800}),
            ),
            201,
        )
        .await?;
        expect(
            lambda,
            vend(&arn("orders-task", "limited"), "bench-limited"),
            200,
        )
        .await?;
        Ok(())
    }

    async fn round_trips(&self, s: &Settings) -> Res<(Value, Vec<ColdRun>)> {
        // A long policy TTL: no background refresh among the counted calls.
        let lambda = self.lambda(&[("TVM_POLICY_TTL_SECONDS", "3600")]).await?;
        self.delay(Duration::ZERO);
        expect(&lambda, vend(&arn("orders-task", "warmup"), "bench"), 200).await?;
        self.gated_state(&lambda).await?;
        let task = self.stack.task_credentials("presigned").await?;
        let sts = self.stack.proxy.url();
        let paths: Vec<Route> = vec![
            Route {
                name: "warm allow",
                status: 200,
                make: Box::new(|| Ok(vend(&arn("orders-task", "acme"), "bench"))),
            },
            Route {
                name: "allow, presigned identity",
                status: 200,
                make: Box::new(move || {
                    let header = tvm_client::presign::identity_header(
                        &task,
                        REGION,
                        &sts,
                        SERVER_ID,
                        SystemTime::now(),
                    )
                    .map_err(|e| e.to_string())?;
                    let mut e = event(
                        "POST",
                        "/v1/credentials",
                        None,
                        &json!({"profile": "bench"}),
                    );
                    e["headers"]["x-tvm-identity"] = json!(header);
                    Ok(e)
                }),
            },
            Route {
                name: "approved request",
                status: 200,
                make: Box::new(|| Ok(vend(&arn("appr-dev", "jane"), "bench"))),
            },
            Route {
                name: "break-glass",
                status: 200,
                make: Box::new(|| Ok(vend(&arn("oncall-sre", "sam"), "bench"))),
            },
            Route {
                name: "denied",
                status: 403,
                make: Box::new(|| Ok(vend(&arn("orders-task", "denied-x"), "bench"))),
            },
            Route {
                name: "rate-limited",
                status: 429,
                make: Box::new(|| Ok(vend(&arn("orders-task", "limited"), "bench-limited"))),
            },
        ];
        let mut rows = Vec::new();
        for path in &paths {
            let mut latency = BTreeMap::new();
            let mut calls = BTreeMap::new();
            let mut items = Value::Null;
            for d in [Duration::ZERO, DELAY] {
                self.prune().await?;
                self.delay(d);
                // One unmeasured request per setting: connections warm.
                expect(&lambda, (path.make)()?, path.status).await?;
                let mark = self.stack.proxy.mark();
                let mut took = Vec::with_capacity(s.samples);
                for _ in 0..s.samples {
                    let (_, t) = expect(&lambda, (path.make)()?, path.status).await?;
                    took.push(ms(t));
                }
                self.delay(Duration::ZERO);
                latency.insert(d.as_millis().to_string(), median(took));
                if d.is_zero() {
                    let seen = self.stack.proxy.calls_since(mark);
                    calls = per_service(&seen, s.samples);
                    items = dynamodb_items(&seen);
                }
            }
            let mut r = row(path.name, path.status, latency, calls);
            r["dynamodb"] = items;
            rows.push(r);
        }
        lambda.stop().await;
        let (cold_row, cold) = self.cold_round_trips(s).await?;
        rows.push(cold_row);
        Ok((
            json!({"delay_ms": DELAY.as_millis() as u64, "samples": s.samples, "paths": rows}),
            cold,
        ))
    }

    /// Fresh function instances at delay `d`, each spawned, sent one vend
    /// and stopped; with every AWS call they made.
    async fn cold_runs(&self, d: Duration, runs: usize) -> Res<(Vec<ColdRun>, Vec<Call>)> {
        self.prune().await?;
        self.delay(d);
        let start = self.stack.proxy.mark();
        let mut out = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mark = self.stack.proxy.mark();
            let lambda = self.measured_lambda(self.bootstrap).await?;
            expect(&lambda, vend(&arn("orders-task", "cold"), "bench"), 200).await?;
            let first_ms = ms(lambda.spawned.elapsed());
            let polled = lambda.runtime.first_poll().ok_or("never polled")?;
            let ssm: Vec<Call> = self
                .stack
                .proxy
                .calls_since(mark)
                .into_iter()
                .filter(|c| c.service == "ssm")
                .collect();
            let (Some(a), Some(b)) = (
                ssm.iter().map(|c| c.started).min(),
                ssm.iter().map(|c| c.finished).max(),
            ) else {
                return Err("no policy load seen at cold start".into());
            };
            out.push(ColdRun {
                first_ms,
                poll_ms: ms(polled - lambda.spawned),
                load_ms: ms(b - a),
            });
            lambda.stop().await;
        }
        self.delay(Duration::ZERO);
        Ok((out, self.stack.proxy.calls_since(start)))
    }

    /// The round-trip row of the first request after cold start (spawn to
    /// answer), and the runs at D = 0 for the cold-start table.
    async fn cold_round_trips(&self, s: &Settings) -> Res<(Value, Vec<ColdRun>)> {
        let (quiet, calls) = self.cold_runs(Duration::ZERO, s.cold_runs).await?;
        let (slow, _) = self.cold_runs(DELAY, s.cold_runs).await?;
        let latency = BTreeMap::from([
            (
                "0".to_string(),
                median(quiet.iter().map(|r| r.first_ms).collect()),
            ),
            (
                DELAY.as_millis().to_string(),
                median(slow.iter().map(|r| r.first_ms).collect()),
            ),
        ]);
        let calls = per_service(&calls, s.cold_runs);
        Ok((
            row("first request after cold start", 200, latency, calls),
            quiet,
        ))
    }

    async fn policy_cache(&self, s: &Settings) -> Res<Value> {
        let ttl = 2u64;
        let lambda = self
            .lambda(&[("TVM_POLICY_TTL_SECONDS", &ttl.to_string())])
            .await?;
        expect(&lambda, vend(&arn("orders-task", "load"), "bench"), 200).await?;
        let mut loads = Vec::new();
        for rps in [5u32, 20] {
            let mark = self.stack.proxy.mark();
            let run = steady(self, &lambda, rps, Duration::from_secs(s.load_seconds)).await?;
            let ssm = self
                .stack
                .proxy
                .calls_since(mark)
                .iter()
                .filter(|c| c.service == "ssm")
                .count();
            let secs = run.elapsed.as_secs_f64();
            loads.push(json!({
                "target_rps": rps,
                "rps": (run.requests.len() as f64 / secs * 10.0).round() / 10.0,
                "seconds": (secs * 10.0).round() / 10.0,
                "ssm_calls": ssm,
                "ssm_calls_per_minute": (ssm as f64 / secs * 60.0 * 10.0).round() / 10.0,
                "latency_ms": summary(run.requests.iter().map(|r| ms(r.1 - r.0)).collect()),
            }));
        }
        // Slow every refresh down and compare requests that overlapped one
        // with those that did not.
        let slow = Duration::from_millis(500);
        self.stack.proxy.set_fault("ssm", Some(Fault::Delay(slow)));
        let mark = self.stack.proxy.mark();
        let run = steady(self, &lambda, 20, Duration::from_secs(s.load_seconds)).await?;
        self.stack.proxy.set_fault("ssm", None);
        let refreshes: Vec<(Instant, Instant)> = self
            .stack
            .proxy
            .calls_since(mark)
            .iter()
            .filter(|c| c.service == "ssm")
            .map(|c| (c.started, c.finished))
            .collect();
        let (mut during, mut outside) = (Vec::new(), Vec::new());
        for (start, end) in &run.requests {
            let overlaps = refreshes.iter().any(|(a, b)| start < b && a < end);
            if overlaps { &mut during } else { &mut outside }.push(ms(*end - *start));
        }
        lambda.stop().await;
        if during.is_empty() {
            return Err("no request overlapped a refresh: the experiment proves nothing".into());
        }
        Ok(json!({
            "ttl_seconds": ttl,
            "expected_per_minute": 60 / ttl,
            "loads": loads,
            "refresh_in_flight": {
                "ssm_delay_ms": slow.as_millis() as u64,
                "refreshes": refreshes.len(),
                "during": summary(during),
                "outside": summary(outside),
            },
        }))
    }

    async fn memory(&self, s: &Settings) -> Res<Value> {
        let lambda = self.lambda(&[]).await?;
        let pid = lambda.pid().ok_or("no pid")?;
        let caller = arn("orders-task", "memory");
        let start = Instant::now();
        let mut checkpoints = BTreeMap::new();
        let mut stalls = 0;
        for i in 1..=s.memory_vends {
            if i % PRUNE_EVERY == 0 {
                self.prune().await?;
            }
            // A moto stall past the attempt timeout fails one vend closed
            // (503, see `lambda`); the memory run counts it and goes on.
            let (status, body, _) = call(&lambda, vend(&caller, "bench")).await?;
            match status {
                200 => {}
                503 if body["code"] == "DependencyFailed" => stalls += 1,
                other => return Err(format!("memory run: {other} {body}")),
            }
            if i == s.memory_vends / 10 || i == s.memory_vends {
                checkpoints.insert(i.to_string(), status_kb(pid, "VmRSS")?);
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let peak = status_kb(pid, "VmHWM")?;
        lambda.stop().await;
        Ok(json!({
            "vends": s.memory_vends,
            "rss_kb": checkpoints,
            "peak_rss_kb": peak,
            "vends_per_second": (s.memory_vends as f64 / seconds * 10.0).round() / 10.0,
            "emulator_stalls": stalls,
        }))
    }
}

impl Bench<'_> {
    /// N instances at once, each sending its next vend when the last is
    /// answered (one invocation at a time, as Lambda runs an environment),
    /// `load_vends` in all.
    async fn load_level(&self, n: usize, s: &Settings) -> Res<Value> {
        let per_instance = s.load_vends / n;
        {
            let mut lambdas = Vec::with_capacity(n);
            for _ in 0..n {
                let lambda = self.lambda(&[]).await?;
                // Warm: policies loaded, connections open.
                expect(&lambda, vend(&arn("orders-task", "load"), "bench"), 200).await?;
                lambdas.push(lambda);
            }
            self.prune().await?;
            let pids: Vec<u32> = lambdas.iter().filter_map(Lambda::pid).collect();
            let cpu_before = cpu_ticks(&pids)?;
            let logged_before: usize = lambdas.iter().map(log_bytes).sum();
            let start = Instant::now();
            let runs = lambdas.iter().enumerate().map(|(i, lambda)| async move {
                let caller = arn("orders-task", &format!("load-{i}"));
                let mut took = Vec::with_capacity(per_instance);
                let mut failed = 0;
                for _ in 0..per_instance {
                    let (status, _, t) = call(lambda, vend(&caller, "bench")).await?;
                    match status {
                        200 => took.push(ms(t)),
                        _ => failed += 1,
                    }
                }
                Ok::<_, String>((took, failed))
            });
            let results = futures_util::future::join_all(runs).await;
            let elapsed = start.elapsed().as_secs_f64();
            let cpu = cpu_ticks(&pids)? - cpu_before;
            let logged: usize = lambdas.iter().map(log_bytes).sum::<usize>() - logged_before;
            let mut took = Vec::new();
            let mut failed = 0;
            for r in results {
                let (t, f) = r?;
                took.extend(t);
                failed += f;
            }
            let vends = took.len() + failed;
            for lambda in lambdas {
                lambda.stop().await;
            }
            self.prune().await?;
            took.sort_by(f64::total_cmp);
            Ok(json!({
                "instances": n,
                "vends": vends,
                "failed": failed,
                "seconds": (elapsed * 100.0).round() / 100.0,
                "vends_per_second": (vends as f64 / elapsed * 10.0).round() / 10.0,
                "latency_ms": {
                    "p50": percentile(&took, 0.5),
                    "p99": percentile(&took, 0.99),
                    "max": took.last().copied().unwrap_or(0.0),
                },
                // USER_HZ is 100 on Linux: a tick is 10 ms.
                "cpu_ms_per_vend": ((cpu as f64 * 10.0 / vends.max(1) as f64) * 100.0).round() / 100.0,
                "log_bytes_per_vend": (logged as f64 / vends.max(1) as f64).round(),
            }))
        }
    }
}

/// Instance counts of the load run.
const LOAD_INSTANCES: [usize; 3] = [1, 2, 4];

/// User + system clock ticks of these processes (/proc/PID/stat).
fn cpu_ticks(pids: &[u32]) -> Res<u64> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
        // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        total += tick(11)
            .zip(tick(12))
            .map(|(u, s)| u + s)
            .ok_or("bad /proc stat")?;
    }
    Ok(total)
}

/// Bytes the function has written to its log so far, lines and newlines.
fn log_bytes(lambda: &Lambda) -> usize {
    lambda.logs().iter().map(|l| l.len() + 1).sum()
}

fn row(
    name: &str,
    status: u16,
    latency: BTreeMap<String, f64>,
    calls: BTreeMap<String, f64>,
) -> Value {
    let d = DELAY.as_secs_f64() * 1e3;
    let sequential = match (
        latency.get("0"),
        latency.get(&DELAY.as_millis().to_string()),
    ) {
        (Some(a), Some(b)) => ((b - a) / d * 100.0).round() / 100.0,
        _ => f64::NAN,
    };
    json!({
        "path": name,
        "status": status,
        "latency_ms": latency,
        "sequential_calls": sequential,
        "calls_per_request": calls,
    })
}

/// One fresh function instance, times from the exec of `bootstrap`.
struct ColdRun {
    first_ms: f64,
    poll_ms: f64,
    load_ms: f64,
}

fn cold_start(runs: &[ColdRun], warm_ms: f64) -> Value {
    let policy_load = median(runs.iter().map(|r| r.load_ms).collect());
    json!({
        "runs": runs.len(),
        "first_poll_ms": median(runs.iter().map(|r| r.poll_ms).collect()),
        "first_vend_ms": median(runs.iter().map(|r| r.first_ms).collect()),
        "policy_load_ms": policy_load,
        "warm_vend_ms": warm_ms,
        "first_vend_bound_ms": ((2.0 * warm_ms + policy_load) * 1000.0).round() / 1000.0,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

struct Run {
    /// (sent, answered) per request.
    requests: Vec<(Instant, Instant)>,
    elapsed: Duration,
}

/// Vends between two prunes of the sessions table.
const PRUNE_EVERY: usize = 200;

/// Requests at a steady rate, one at a time, for `length`. The pruning
/// pauses (off the clock of any request) are counted in the elapsed time.
async fn steady(bench: &Bench<'_>, lambda: &Lambda, rps: u32, length: Duration) -> Res<Run> {
    let caller = arn("orders-task", "steady");
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rps);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut requests = Vec::new();
    while start.elapsed() < length {
        if requests.len() % PRUNE_EVERY == PRUNE_EVERY - 1 {
            bench.prune().await?;
        }
        tick.tick().await;
        let sent = Instant::now();
        expect(lambda, vend(&caller, "bench"), 200).await?;
        requests.push((sent, Instant::now()));
    }
    Ok(Run {
        requests,
        elapsed: start.elapsed(),
    })
}

/// A `kB` line of /proc/PID/status.
fn status_kb(pid: u32, key: &str) -> Res<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
}
