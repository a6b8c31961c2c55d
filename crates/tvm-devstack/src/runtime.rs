//! A Lambda runtime API emulator and a process that runs the real
//! `bootstrap` against it. Invocations are queued; the bootstrap polls
//! `/next`, answers on `/response` or `/error`, exactly as in Lambda.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Pending {
    id: String,
    event: Value,
    deadline_ms: i64,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Pending>>,
    notify: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    polls: std::sync::atomic::AtomicUsize,
    first_poll: std::sync::OnceLock<Instant>,
}

/// The runtime API endpoint the bootstrap talks to.
#[derive(Clone)]
pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

const PREFIX: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::default());
        crate::serve::http1(listener, Arc::clone(&inner), route);
        Ok(Self { addr, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the bootstrap has asked for work.
    pub fn polls(&self) -> usize {
        self.inner.polls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// When the bootstrap first asked for work.
    pub fn first_poll(&self) -> Option<Instant> {
        self.inner.first_poll.get().copied()
    }

    /// Queue an event and wait (bounded) for the bootstrap's answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Outcome, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(id.clone(), tx);
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        self.inner.queue.lock().unwrap().push_back(Pending {
            id: id.clone(),
            event,
            deadline_ms,
        });
        self.inner.notify.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err("the runtime API dropped the invocation".into()),
            Err(_) => {
                self.inner.waiting.lock().unwrap().remove(&id);
                let init = self.inner.init_error.lock().unwrap().clone();
                Err(match init {
                    Some(e) => format!("bootstrap failed to initialise: {e}"),
                    None => format!("no answer within {timeout:?}"),
                })
            }
        }
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

async fn route(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if method == hyper::Method::GET && rest == "/invocation/next" {
        inner.first_poll.get_or_init(Instant::now);
        inner
            .polls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Long poll, as Lambda does: wait until there is work.
        let next = loop {
            let popped = inner.queue.lock().unwrap().pop_front();
            if let Some(p) = popped {
                break p;
            }
            inner.notify.notified().await;
        };
        let mut r = reply(StatusCode::OK, Bytes::from(next.event.to_string()));
        let h = r.headers_mut();
        h.insert("lambda-runtime-aws-request-id", next.id.parse().unwrap());
        h.insert(
            "lambda-runtime-deadline-ms",
            next.deadline_ms.to_string().parse().unwrap(),
        );
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:tvm"
                .parse()
                .unwrap(),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".parse().unwrap(),
        );
        h.insert("content-type", "application/json".parse().unwrap());
        return Ok(r);
    }
    if method == hyper::Method::POST && rest == "/init/error" {
        *inner.init_error.lock().unwrap() =
            Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
    }
    if let Some(tail) = rest.strip_prefix("/invocation/") {
        if let Some((id, kind)) = tail.split_once('/') {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let outcome = match kind {
                "response" => Outcome::Response(value),
                "error" => Outcome::Error(value),
                _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
            };
            if let Some(tx) = inner.waiting.lock().unwrap().remove(id) {
                let _ = tx.send(outcome);
            }
            return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, Bytes::new()))
}

/// The real `bootstrap` binary, running against a [`RuntimeApi`]. Every line
/// it writes (stdout and stderr) is kept for assertions.
pub struct Lambda {
    pub runtime: RuntimeApi,
    child: tokio::process::Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// Just before the process was spawned.
    pub spawned: Instant,
}

impl Lambda {
    /// Start `bootstrap` with a clean environment: only what Lambda sets and `env`.
    pub async fn start(bootstrap: &Path, env: &[(String, String)]) -> std::io::Result<Self> {
        Self::start_with(bootstrap, env, true).await
    }

    /// Start it as Lambda does, an exec with nothing run before it: no
    /// parent-death signal (set between fork and exec, it makes the spawn
    /// fork this whole process first, which is the harness's time, not the
    /// function's cold start). Dropping it still kills it.
    pub async fn start_measured(
        bootstrap: &Path,
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        Self::start_with(bootstrap, env, false).await
    }

    async fn start_with(
        bootstrap: &Path,
        env: &[(String, String)],
        die_with_parent: bool,
    ) -> std::io::Result<Self> {
        let runtime = RuntimeApi::start().await?;
        let mut std_cmd = std::process::Command::new(bootstrap);
        if die_with_parent {
            crate::stack::die_with_parent(&mut std_cmd);
        }
        let mut cmd = tokio::process::Command::from(std_cmd);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "tvm")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tvm")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = cmd.spawn()?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            collect(out, Arc::clone(&logs));
        }
        if let Some(err) = child.stderr.take() {
            collect(err, Arc::clone(&logs));
        }
        Ok(Self {
            runtime,
            child,
            logs,
            spawned,
        })
    }

    pub async fn invoke(&self, event: Value) -> Result<Outcome, String> {
        self.runtime.invoke(event, Duration::from_secs(30)).await
    }

    /// Invoke with a Lambda deadline `timeout` from now (the function
    /// answers before it, or the wait ends then).
    pub async fn invoke_within(&self, event: Value, timeout: Duration) -> Result<Outcome, String> {
        self.runtime.invoke(event, timeout).await
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    logs: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.lock().unwrap().push(line);
        }
    });
}
