//! CORS for browsers calling tvm directly (`TVM_CORS_ORIGINS`): preflights
//! answered without an identity (browsers send none), and the allow-origin
//! header on answers to an allowed origin. Exact origins only: no wildcard,
//! no path. Behind API Gateway the HTTP API's own CORS configuration (the
//! templates set it from the same list) answers preflights first. Which
//! origins a setting may list: `config::valid_origin`.

use lambda_http::Body;

use crate::event::Reply;

/// Request headers a browser client may send: SigV4's, the presigned
/// identity's, and a bearer token's (the templates allow the same).
pub const ALLOW_HEADERS: &str =
    "authorization, content-type, x-amz-content-sha256, x-amz-date, x-amz-security-token, x-tvm-identity";
pub const ALLOW_METHODS: &str = "GET, POST";
pub const EXPOSE_HEADERS: &str = "retry-after";
pub const MAX_AGE_SECONDS: u32 = 600;

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
