//! `tvm serve`: an ECS-compatible container credentials endpoint on loopback.
//!
//! The AWS SDKs' container provider reads `AWS_CONTAINER_CREDENTIALS_FULL_URI`
//! and sends `AWS_CONTAINER_AUTHORIZATION_TOKEN` (or the contents of
//! `..._TOKEN_FILE`) as the `Authorization` header; it expects
//! `{AccessKeyId, SecretAccessKey, Token, Expiration}`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::SecondsFormat;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::cache::CredentialCache;

/// The path the credentials are served on.
pub const PATH: &str = "/credentials";

/// A random token: 64 hex characters from the OS's randomness.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Two v4 UUIDs carry 244 random bits.
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r.headers_mut()
        .insert("cache-control", "no-store".parse().expect("static"));
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    answer(status, json!({"code": code, "message": message}))
}

async fn handle(
    cache: Arc<CredentialCache>,
    token: Arc<String>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.headers().contains_key("x-forwarded-for") {
        return Ok(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "requests relayed through a proxy are refused",
        ));
    }
    if req.uri().path() != PATH {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "credentials are served on /credentials",
        ));
    }
    if req.method() != hyper::Method::GET {
        return Ok(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use GET",
        ));
    }
    let presented = req.headers().get("authorization").map(|v| v.as_bytes());
    match presented {
        None => {
            return Ok(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "set AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            ))
        }
        Some(p) if !constant_time_eq(p, token.as_bytes()) => {
            return Ok(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the authorization token is not this endpoint's",
            ))
        }
        Some(_) => {}
    }
    match cache.get().await {
        Ok(held) => {
            let c = &held.credentials;
            Ok(answer(
                StatusCode::OK,
                json!({
                    "AccessKeyId": c.access_key_id,
                    "SecretAccessKey": c.secret_access_key,
                    "Token": c.session_token,
                    "Expiration": held.usable_until.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "RoleArn": c.role_arn,
                }),
            ))
        }
        Err(e) => Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CredentialsUnavailable",
            &format!("tvm serve has no usable credentials: {e}"),
        )),
    }
}

/// Serve until `shutdown` resolves, then let in-flight requests finish
/// (bounded) and return. Also keeps the cache warm in the background.
pub async fn serve(
    listener: TcpListener,
    cache: Arc<CredentialCache>,
    token: String,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let token = Arc::new(token);
    let active = Arc::new(AtomicUsize::new(0));
    let refresher = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .refresh_ahead(|e| eprintln!("tvm serve: refresh failed, will retry: {e}"))
                .await
        })
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (cache, token, active) = (Arc::clone(&cache), Arc::clone(&token), Arc::clone(&active));
                active.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(Arc::clone(&cache), Arc::clone(&token), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
    refresher.abort();
    // Let in-flight requests finish, for at most five seconds.
    for _ in 0..100 {
        if active.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
