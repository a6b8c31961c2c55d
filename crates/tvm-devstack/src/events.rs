//! API Gateway events as the function receives them, for the tests and the
//! benchmark that drive the real `bootstrap`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

const HTTP_API_IAM: &str = include_str!("../../../fixtures/events/http-api-v2-iam.json");

/// An HTTP API (payload 2.0) event with a unique request id; `caller` is the
/// IAM identity API Gateway saw (none: no authorizer at all).
pub fn http_api(method: &str, path: &str, caller: Option<&str>, body: Option<&Value>) -> Value {
    let mut e: Value = serde_json::from_str(HTTP_API_IAM).expect("the fixture parses");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["requestId"] = json!(request_id());
    match caller {
        Some(arn) => e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(arn),
        None => {
            if let Some(ctx) = e["requestContext"].as_object_mut() {
                ctx.remove("authorizer");
            }
        }
    }
    e["body"] = match body {
        Some(b) => json!(b.to_string()),
        None => Value::Null,
    };
    e
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "req-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
