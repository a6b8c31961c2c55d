//! A local HTTP front for the function: each HTTP request becomes a payload
//! 2.0 event. With [`Auth::Iam`] it checks SigV4 like API Gateway's AWS_IAM
//! authorization and puts the caller in `requestContext.authorizer.iam`;
//! with [`Auth::None`] (a function URL without auth) there is no authorizer
//! and identity must come from the presigned `X-Tvm-Identity` header. A
//! request with `Authorization: Bearer` passes either way without an
//! authorizer: the function verifies the token (its `jwt` mode).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::iam_auth::{authorize, IamIdentity};
use crate::runtime::{Outcome, RuntimeApi};

/// How the front authenticates callers.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    /// No authorizer in the event.
    None,
    /// SigV4 checked against the emulator at this address, as AWS_IAM does.
    Iam { moto: SocketAddr },
}

pub struct Gateway {
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn start(runtime: RuntimeApi, auth: Auth) -> std::io::Result<Self> {
        Self::start_on(runtime, auth, "127.0.0.1:0").await
    }

    pub async fn start_on(runtime: RuntimeApi, auth: Auth, bind: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let runtime = Arc::new(runtime);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    break;
                };
                let runtime = Arc::clone(&runtime);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| forward(Arc::clone(&runtime), auth, peer, req));
                    // One request a connection, so that stop() ends service at once.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, accept })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting: from now on connections are refused, as if tvm were down.
    pub fn stop(&self) {
        self.accept.abort();
    }
}

/// Build the function URL / HTTP API v2 event for a request.
pub fn event_for(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    source_ip: &str,
    identity: Option<&IamIdentity>,
) -> Value {
    let mut hmap = serde_json::Map::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match hmap.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(v);
            }
            _ => {
                hmap.insert(k, Value::String(v.clone()));
            }
        }
    }
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": hmap,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "local"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "body": body,
        "isBase64Encoded": b64
    });
    if let Some(id) = identity {
        event["requestContext"]["authorizer"] = json!({"iam": id.to_context()});
    }
    event
}

async fn forward(
    runtime: Arc<RuntimeApi>,
    auth: Auth,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    // Function URLs cap payloads at 6 MB; we cap lower, the function caps at 64 KiB.
    let body = match Limited::new(req.into_body(), 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")),
    };
    // A bearer token is the function's to verify (its jwt mode), as on an
    // HTTP API route with a JWT or no authorizer beside the IAM ones.
    let bearer = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("authorization")
            && v.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
    });
    let identity = match auth {
        Auth::None => None,
        Auth::Iam { .. } if bearer => None,
        Auth::Iam { moto } => {
            match authorize(moto, &method, &path, &query, &headers, &body).await {
                Ok(id) => Some(id),
                Err(refused) => {
                    let message = json!({"message": refused.0}).to_string();
                    let mut r = Response::new(Full::new(Bytes::from(message)));
                    *r.status_mut() = StatusCode::FORBIDDEN;
                    return Ok(r);
                }
            }
        }
    };
    let event = event_for(
        &method,
        &path,
        &query,
        &headers,
        &body,
        &peer.ip().to_string(),
        identity.as_ref(),
    );
    match runtime
        .invoke(event, std::time::Duration::from_secs(30))
        .await
    {
        Ok(Outcome::Response(v)) => Ok(to_http(&v)),
        Ok(Outcome::Error(_)) | Err(_) => Ok(plain(
            StatusCode::BAD_GATEWAY,
            "{\"message\":\"Internal Server Error\"}",
        )),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// Turn the function's response event into HTTP.
fn to_http(v: &Value) -> Response<Full<Bytes>> {
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = v["body"].as_str().unwrap_or("");
    let body = if v["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            if let (Ok(name), Some(Ok(value))) = (
                k.parse::<hyper::header::HeaderName>(),
                val.as_str().map(|s| s.parse()),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    r
}
