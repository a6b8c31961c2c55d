//! A recording, fault-injecting HTTP proxy in front of the emulator
//! (loopback only). It sees exactly what tvm sent to AWS: which service,
//! which action, with which parameters, and when.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// One AWS call that went through the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    /// SigV4 service name: `sts`, `ssm`, `dynamodb`, `iam`.
    pub service: String,
    /// `AssumeRole`, `PutItem`, `GetParametersByPath`, ...
    pub action: String,
    pub body: String,
    /// The access key id that signed the call (SigV4 `Credential=`).
    pub access_key: Option<String>,
    pub started: Instant,
    pub finished: Instant,
    /// When it was answered (wall clock): a recorded CloudTrail event's time.
    pub at: chrono::DateTime<chrono::Utc>,
    pub status: u16,
}

impl Call {
    /// A form-encoded parameter (query protocol: STS).
    pub fn param(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| url_decode(v))
        })
    }

    /// All form parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter_map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (url_decode(k), url_decode(v)))
            })
            .collect()
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the proxy does to calls for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an AWS-shaped error body.
    Status(u16),
    /// Close the connection without an answer.
    Reset,
    /// Wait this long before forwarding.
    Delay(Duration),
    /// Answer 403 with this AWS error code, in the Query protocol's XML
    /// (STS, IAM): what AWS says where moto is looser (moto lets anyone
    /// assume a role that does not exist).
    Refuse(&'static str),
    /// Answer as the service does when it throttles (DynamoDB:
    /// ProvisionedThroughputExceededException, SSM: ThrottlingException,
    /// STS and IAM: Throttling).
    Throttle,
}

/// The throttling answer of each service, in its own protocol.
fn throttled(service: &str) -> (u16, &'static str, &'static str) {
    match service {
        "dynamodb" => (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
        ),
        "ssm" => (400, "application/x-amz-json-1.1", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        _ => (
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        ),
    }
}

/// The service name [`Proxy::set_fault`] takes to mean every service.
pub const ANY: &str = "*";

#[derive(Default)]
struct State {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<HashMap<String, Fault>>,
    /// Faults for the calls of a service whose body contains a string.
    matching: Mutex<Vec<(String, String, Fault)>>,
    /// Answer CORS preflights as AWS's service endpoints do (see
    /// [`Proxy::for_browsers`]).
    browsers: bool,
}

#[derive(Clone)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(upstream, State::default()).await
    }

    /// A proxy for a browser page's AWS calls: it answers CORS preflights
    /// for any origin, as DynamoDB's endpoint does, and forwards the signed
    /// requests. (moto, once it enforces auth, answers the unsigned
    /// preflight with a 500.)
    pub async fn for_browsers(upstream: SocketAddr) -> std::io::Result<Self> {
        let state = State {
            browsers: true,
            ..State::default()
        };
        Self::start_with(upstream, state).await
    }

    async fn start_with(upstream: SocketAddr, state: State) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(state);
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (state, client) = (Arc::clone(&served), client.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        forward(Arc::clone(&state), client.clone(), upstream, req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Calls recorded after `mark` (a length of `calls()` taken earlier).
    pub fn calls_since(&self, mark: usize) -> Vec<Call> {
        self.calls().into_iter().skip(mark).collect()
    }

    pub fn mark(&self) -> usize {
        self.state.calls.lock().unwrap().len()
    }

    /// Set or clear the fault for one SigV4 service name, or for every
    /// service without one of its own ([`ANY`]).
    pub fn set_fault(&self, service: &str, fault: Option<Fault>) {
        let mut f = self.state.faults.lock().unwrap();
        match fault {
            Some(fault) => f.insert(service.to_string(), fault),
            None => f.remove(service),
        };
    }

    /// Set or clear a fault for the calls of `service` whose body contains
    /// `needle` (one step of a multi-call operation); it wins over
    /// [`Proxy::set_fault`].
    pub fn set_fault_when(&self, service: &str, needle: &str, fault: Option<Fault>) {
        let mut m = self.state.matching.lock().unwrap();
        m.retain(|(s, n, _)| !(s == service && n == needle));
        if let Some(fault) = fault {
            m.push((service.to_string(), needle.to_string(), fault));
        }
    }
}

fn service_of(headers: &hyper::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string()
}

fn access_key_of(headers: &hyper::HeaderMap) -> Option<String> {
    let credential = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .split("Credential=")
        .nth(1)?;
    credential.split('/').next().map(str::to_string)
}

fn action_of(headers: &hyper::HeaderMap, body: &str) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    body.split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .unwrap_or("")
        .to_string()
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

/// A CORS preflight's answer: any origin, the methods and headers asked for.
fn preflight(asked: &hyper::HeaderMap) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", "*".parse().expect("static"));
    h.insert(
        "access-control-allow-methods",
        "GET, POST, PUT, DELETE, HEAD".parse().expect("static"),
    );
    if let Some(headers) = asked.get("access-control-request-headers") {
        h.insert("access-control-allow-headers", headers.clone());
    }
    h.insert("access-control-max-age", "600".parse().expect("static"));
    r
}

async fn forward(
    state: Arc<State>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Reply {
    let started = Instant::now();
    if state.browsers && req.method() == hyper::Method::OPTIONS {
        return Ok(preflight(req.headers()));
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let service = service_of(&parts.headers);
    let action = action_of(&parts.headers, &text);
    let access_key = access_key_of(&parts.headers);
    let matched = {
        let m = state.matching.lock().unwrap();
        m.iter()
            .find(|(s, n, _)| *s == service && text.contains(n.as_str()))
            .map(|(_, _, f)| *f)
    };
    let fault = matched.or_else(|| {
        let faults = state.faults.lock().unwrap();
        faults.get(&service).or_else(|| faults.get(ANY)).copied()
    });
    let record = |status: u16| Call {
        service: service.clone(),
        action: action.clone(),
        body: text.clone(),
        access_key: access_key.clone(),
        started,
        finished: Instant::now(),
        at: chrono::Utc::now(),
        status,
    };
    match fault {
        Some(Fault::Reset) => {
            state.calls.lock().unwrap().push(record(0));
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault: reset",
            ));
        }
        Some(Fault::Status(code)) => {
            state.calls.lock().unwrap().push(record(code));
            let body = "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected fault</Message></Error></ErrorResponse>";
            let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *r.status_mut() =
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(r);
        }
        Some(Fault::Throttle) => {
            let (status, content_type, body) = throttled(&service);
            state.calls.lock().unwrap().push(record(status));
            let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            r.headers_mut()
                .insert("content-type", content_type.parse().expect("static"));
            return Ok(r);
        }
        Some(Fault::Refuse(code)) => {
            state.calls.lock().unwrap().push(record(403));
            let body = format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected refusal</Message></Error></ErrorResponse>");
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut()
                .insert("content-type", "text/xml".parse().expect("static"));
            return Ok(r);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{upstream}{pq}"));
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let out = out.body(Full::new(body)).map_err(std::io::Error::other)?;
    let resp = client.request(out).await.map_err(std::io::Error::other)?;
    let (mut rparts, rbody) = resp.into_parts();
    if state.browsers {
        rparts
            .headers
            .insert("access-control-allow-origin", "*".parse().expect("static"));
    }
    let rbody = rbody
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state
        .calls
        .lock()
        .unwrap()
        .push(record(rparts.status.as_u16()));
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}
