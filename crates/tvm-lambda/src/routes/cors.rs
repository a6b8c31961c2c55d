//! CORS for browsers calling tvm directly (`TVM_CORS_ORIGINS`): preflights
//! answered without an identity (browsers send none), and the allow-origin
//! header on answers to an allowed origin. Exact origins only: no wildcard,
//! no path. Behind API Gateway the HTTP API's own CORS configuration (the
//! templates set it from the same list) answers preflights first.

use lambda_http::Body;

use crate::event::Reply;

/// Request headers a browser client may send: SigV4's, the presigned
/// identity's, and a bearer token's (the templates allow the same).
pub const ALLOW_HEADERS: &str =
    "authorization, content-type, x-amz-content-sha256, x-amz-date, x-amz-security-token, x-tvm-identity";
pub const ALLOW_METHODS: &str = "GET, POST";
pub const EXPOSE_HEADERS: &str = "retry-after";
pub const MAX_AGE_SECONDS: u32 = 600;

/// Is `origin` one a setting may list: `http(s)://host[:port]`, lower case.
pub fn valid_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

/// The request's `Origin`, when it is one of `allowed` (exactly).
pub fn allowed_origin(req: &http::Request<Body>, allowed: &[String]) -> Option<String> {
    let origin = req.headers().get("origin")?.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a == origin)
        .then(|| origin.to_string())
}

/// A CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub fn is_preflight(req: &http::Request<Body>) -> bool {
    req.method() == http::Method::OPTIONS
        && req.headers().contains_key("access-control-request-method")
}

/// The answer to an allowed origin's preflight.
pub fn preflight(origin: &str) -> Reply {
    let mut reply = Reply {
        status: 204,
        headers: Vec::new(),
        body: String::new(),
    };
    allow(&mut reply, origin);
    reply.headers.extend([
        ("access-control-allow-methods", ALLOW_METHODS.to_string()),
        ("access-control-allow-headers", ALLOW_HEADERS.to_string()),
        ("access-control-max-age", MAX_AGE_SECONDS.to_string()),
    ]);
    reply
}

/// Let `origin` read this answer.
pub fn allow(reply: &mut Reply, origin: &str) {
    reply.headers.extend([
        ("access-control-allow-origin", origin.to_string()),
        ("access-control-expose-headers", EXPOSE_HEADERS.to_string()),
        ("vary", "origin".to_string()),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_origins_are_settings() {
        for ok in [
            "https://app.example.com",
            "http://127.0.0.1:8080",
            "https://a-b.example",
        ] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://App.Example.com",
            "app.example.com",
            "ftp://app.example.com",
            "https://",
            "https://app.example.com:0",
            "https://app.example.com:99999",
            "null",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
