//! Lambda events to HTTP requests and HTTP answers back to events: the
//! shapes of API Gateway REST (payload 1.0), HTTP API (2.0) and function
//! URLs, their stages, their request ids.

use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde_json::{json, Value};
use tvm_core::api::MAX_BODY_BYTES;

use crate::error::ApiError;

/// An API Gateway (REST v1, HTTP API v2) or function URL event as an HTTP
/// request, or why not. lambda_http's conversion unwraps URL parsing of the
/// host, path and X-Forwarded-Proto it is given (found by fuzzing): a panic
/// there is a malformed event like any other.
pub fn parse_event(event: Value) -> Result<http::Request<Body>, String> {
    let lr = serde_json::from_value::<LambdaRequest>(event).map_err(|e| e.to_string())?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http::Request::from(lr)))
        .map_err(|_| "the event's host, path or scheme is not a URL".to_string())
}

/// A request id fit for logs and answers: printable ASCII, at most 128.
fn usable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic())
}

/// API Gateway's request id, read from the raw event (for an event that
/// does not parse, so that even its 400 carries the id the caller saw).
pub fn raw_request_id(event: &Value) -> Option<&str> {
    event
        .pointer("/requestContext/requestId")
        .and_then(Value::as_str)
        .filter(|id| usable(id))
}

/// API Gateway's request id of a parsed request.
pub fn request_id(req: &http::Request<Body>) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
        RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
    .filter(|id| usable(id))
}

/// The path the routes see, from the event's own path:
///
/// - REST APIs (payload 1.0) send `path` without the stage: used as it is;
/// - HTTP APIs (payload 2.0) send `rawPath` with a named stage in front
///   (`/prod/v1/...`; `$default` has none): that one prefix is dropped when
///   what remains is a route (`known`), so that events whose `rawPath`
///   leaves the stage out (the SAM CLI's samples do) route too;
/// - function URLs have no stage.
///
/// lambda_http's own URI guesses (it adds the stage unless the path already
/// starts with it), so a stage named like the first path segment (`v1`)
/// would be stripped twice: it is not used here.
pub fn route_path(req: &http::Request<Body>, known: impl Fn(&str) -> bool) -> String {
    let raw = req.raw_http_path();
    let raw = if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    };
    if let Some(RequestContext::ApiGatewayV2(c)) = req.request_context_ref() {
        let stage = c
            .stage
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "$default");
        let rest = stage.and_then(|s| raw.strip_prefix('/')?.strip_prefix(s));
        if let Some(rest) = rest.filter(|r| r.starts_with('/') && known(r)) {
            return rest.to_string();
        }
    }
    raw.to_string()
}

/// A query string parameter's first value.
pub fn query<'a>(req: &'a http::Request<Body>, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// Refuse a body over tvm's limit before anything reads it.
pub fn check_body_size(req: &http::Request<Body>) -> Result<(), ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    Ok(())
}

/// Parse a JSON body, refusing oversized or malformed ones with what to fix.
pub fn body_json<T: serde::de::DeserializeOwned>(req: &http::Request<Body>) -> Result<T, ApiError> {
    check_body_size(req)?;
    serde_json::from_slice(req.body().as_ref()).map_err(|e| {
        ApiError::BadRequest(format!("invalid body: {}", truncate(&e.to_string(), 160)))
    })
}

pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// An HTTP answer in the shape API Gateway (v1 and v2) and function URLs accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
            ],
            body: serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
        }
    }

    pub fn to_event_response(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body,
            "isBase64Encoded": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(fixture: &str, raw_path: Option<&str>) -> String {
        let mut e: Value = serde_json::from_str(fixture).unwrap();
        if let Some(p) = raw_path {
            e["rawPath"] = json!(p);
        }
        route_path(&parse_event(e).unwrap(), |p| p == "/v1/credentials")
    }

    const STAGE_V1: &str = include_str!("../../../fixtures/events/http-api-v2-stage-v1.json");

    #[test]
    fn a_named_http_api_stage_is_dropped_once_and_only_before_a_route() {
        assert_eq!(path_of(STAGE_V1, None), "/v1/credentials");
        assert_eq!(
            path_of(STAGE_V1, Some("/v1/credentials")),
            "/v1/credentials"
        );
        assert_eq!(
            path_of(STAGE_V1, Some("/v1/v1/v1/credentials")),
            "/v1/v1/v1/credentials"
        );
        let rest = include_str!("../../../fixtures/events/rest-v1-stage-v1-sam.json");
        assert_eq!(path_of(rest, None), "/v1/credentials");
    }

    #[test]
    fn request_ids_are_taken_only_when_printable_and_short() {
        assert_eq!(
            raw_request_id(&json!({"requestContext": {"requestId": "abc-1"}})),
            Some("abc-1")
        );
        for bad in [json!(""), json!("a b"), json!("x".repeat(129)), json!(7)] {
            assert_eq!(
                raw_request_id(&json!({"requestContext": {"requestId": bad}})),
                None
            );
        }
    }
}
