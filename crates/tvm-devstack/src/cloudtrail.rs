//! CloudTrail's `LookupEvents` over recorded events, because moto (5.2.5)
//! answers it with a 500. Events are CloudTrail records in the documented
//! format ("CloudTrail record contents"), built here from calls the
//! recording proxy saw (who signed, what was asked, what AWS answered) or by
//! a test for what an attacker would do. The server answers as CloudTrail
//! does: newest first; time range and at most one lookup attribute;
//! `MaxResults` 1-50 and `NextToken`; SigV4 required; and a rate (two
//! lookups a second per account and region) past which it throttles.
//! Loopback only.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::proxy::Call;

/// LookupEvents' documented rate.
pub const LOOKUPS_PER_SECOND: usize = 2;

#[derive(Default)]
struct State {
    events: Mutex<Vec<Value>>,
    /// When the lookups of the last second were answered.
    recent: Mutex<Vec<Instant>>,
    lookups: AtomicUsize,
    throttled: AtomicUsize,
}

pub struct CloudTrail {
    url: String,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl CloudTrail {
    pub async fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(State::default());
        let accept = crate::serve::http1(listener, Arc::clone(&state), serve);
        Ok(Self {
            url: format!("http://{addr}"),
            state,
            accept,
        })
    }

    /// For `AWS_ENDPOINT_URL_CLOUDTRAIL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Add one record (a CloudTrail event, as documented).
    pub fn record(&self, event: Value) {
        self.state.events.lock().unwrap().push(event);
    }

    /// Lookups answered, and lookups refused as over the rate.
    pub fn lookups(&self) -> (usize, usize) {
        (
            self.state.lookups.load(Ordering::SeqCst),
            self.state.throttled.load(Ordering::SeqCst),
        )
    }
}

impl Drop for CloudTrail {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Who made a call, as a record's `userIdentity` names it.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An IAM user (`arn:aws:iam::ACCOUNT:user/NAME`).
    User { arn: String, access_key: String },
    /// A role session: the role's ARN (with its path), the session's name,
    /// its access key and the SourceIdentity it carries.
    Session {
        role_arn: String,
        name: String,
        access_key: String,
        source_identity: Option<String>,
    },
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

fn role_name(role_arn: &str) -> &str {
    role_arn.rsplit('/').next().unwrap_or(role_arn)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Actor {
    fn identity(&self) -> Value {
        match self {
            Self::User { arn, access_key } => json!({
                "type": "IAMUser",
                "principalId": "AIDADEVSTACKUSER",
                "arn": arn,
                "accountId": account_of(arn),
                "accessKeyId": access_key,
                "userName": role_name(arn),
            }),
            Self::Session {
                role_arn,
                name,
                access_key,
                source_identity,
            } => {
                let account = account_of(role_arn);
                let mut context = json!({
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROADEVSTACKROLE",
                        "arn": role_arn,
                        "accountId": account,
                        "userName": role_name(role_arn),
                    },
                    "attributes": {"mfaAuthenticated": "false"},
                });
                if let Some(si) = source_identity {
                    context["sourceIdentity"] = json!(si);
                }
                json!({
                    "type": "AssumedRole",
                    "principalId": format!("AROADEVSTACKROLE:{name}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/{}/{name}", role_name(role_arn)),
                    "accountId": account,
                    "accessKeyId": access_key,
                    "sessionContext": context,
                })
            }
        }
    }
}

fn source_of(service: &str) -> String {
    format!("{service}.amazonaws.com")
}

/// A record of one call: `request` its parameters, `error` what AWS refused
/// it with.
pub fn event(
    by: &Actor,
    at: DateTime<Utc>,
    service: &str,
    name: &str,
    request: Value,
    error: Option<&str>,
) -> Value {
    let mut e = json!({
        "eventVersion": "1.08",
        "userIdentity": by.identity(),
        "eventTime": time(at),
        "eventSource": source_of(service),
        "eventName": name,
        "awsRegion": crate::stack::REGION,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "devstack",
        "requestParameters": request,
        "responseElements": null,
        "requestID": uuid::Uuid::new_v4().to_string(),
        "eventID": uuid::Uuid::new_v4().to_string(),
        "readOnly": name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List"),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account_of(match by {
            Actor::User { arn, .. } => arn,
            Actor::Session { role_arn, .. } => role_arn,
        }),
        "eventCategory": "Management",
    });
    if let Some(code) = error {
        e["errorCode"] = json!(code);
        e["errorMessage"] = json!(format!("refused: {code}"));
    }
    e
}

/// An AssumeRole record.
pub fn assume_role(
    by: &Actor,
    at: DateTime<Utc>,
    role_arn: &str,
    session_name: &str,
    source_identity: Option<&str>,
    error: Option<&str>,
) -> Value {
    let mut request =
        json!({"roleArn": role_arn, "roleSessionName": session_name, "durationSeconds": 900});
    if let Some(si) = source_identity {
        request["sourceIdentity"] = json!(si);
    }
    let mut e = event(by, at, "sts", "AssumeRole", request, error);
    e["readOnly"] = json!(true);
    e["resources"] =
        json!([{"accountId": account_of(role_arn), "type": "AWS::IAM::Role", "ARN": role_arn}]);
    if error.is_none() {
        e["responseElements"] = json!({
            "assumedRoleUser": {
                "assumedRoleId": format!("AROADEVSTACKROLE:{session_name}"),
                "arn": format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", account_of(role_arn), role_name(role_arn)),
            },
        });
    }
    e
}

/// The error code a refused call recorded by the proxy gets.
fn refusal(status: u16) -> Option<&'static str> {
    match status {
        200..=299 => None,
        403 => Some("AccessDenied"),
        400 => Some("ValidationException"),
        _ => Some("InternalFailure"),
    }
}

/// The record of a call the recording proxy saw, made by `by`. An STS
/// AssumeRole keeps its parameters; other calls keep their action only.
pub fn from_call(by: &Actor, call: &Call) -> Value {
    let error = refusal(call.status);
    if call.service == "sts" && call.action == "AssumeRole" {
        let p = |k: &str| call.param(k);
        return assume_role(
            by,
            call.at,
            &p("RoleArn").unwrap_or_default(),
            &p("RoleSessionName").unwrap_or_default(),
            p("SourceIdentity").as_deref(),
            error,
        );
    }
    event(by, call.at, &call.service, &call.action, json!({}), error)
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
    r.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("static"),
    );
    r
}

fn error(code: &str, message: &str) -> Response<Full<Bytes>> {
    answer(400, json!({"__type": code, "message": message}))
}

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let header = |k: &str| {
        parts
            .headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signed = header("authorization");
    if !signed.starts_with("AWS4-HMAC-SHA256 Credential=")
        || !signed.contains("/cloudtrail/aws4_request")
    {
        return Ok(error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if !header("x-amz-target").ends_with("CloudTrail_20131101.LookupEvents") {
        return Ok(error(
            "UnknownOperationException",
            "only LookupEvents is served",
        ));
    }
    {
        let mut recent = state.recent.lock().unwrap();
        let now = Instant::now();
        recent.retain(|t| now.duration_since(*t) < Duration::from_secs(1));
        if recent.len() >= LOOKUPS_PER_SECOND {
            state.throttled.fetch_add(1, Ordering::SeqCst);
            return Ok(error("ThrottlingException", "Rate exceeded"));
        }
        recent.push(now);
    }
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(error("InvalidParameterException", "unreadable body"));
    };
    let Ok(ask) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(error("SerializationException", "body is not JSON"));
    };
    state.lookups.fetch_add(1, Ordering::SeqCst);
    Ok(match lookup(&state.events.lock().unwrap(), &ask) {
        Ok(v) => answer(200, v),
        Err((code, message)) => error(code, &message),
    })
}

type Refusal = (&'static str, String);

/// The value of a lookup attribute for a record, as CloudTrail indexes it.
fn attribute(e: &Value, key: &str) -> Option<String> {
    let text = |p: &str| e.pointer(p).and_then(Value::as_str).map(str::to_string);
    match key {
        "EventId" => text("/eventID"),
        "EventName" => text("/eventName"),
        "EventSource" => text("/eventSource"),
        "AccessKeyId" => text("/userIdentity/accessKeyId"),
        "ReadOnly" => e
            .pointer("/readOnly")
            .and_then(Value::as_bool)
            .map(|b| b.to_string()),
        "Username" => username(e),
        _ => None,
    }
}

fn username(e: &Value) -> Option<String> {
    let id = e.get("userIdentity")?;
    match id.get("type")?.as_str()? {
        "AssumedRole" => id
            .get("arn")?
            .as_str()?
            .rsplit('/')
            .next()
            .map(str::to_string),
        _ => id.get("userName")?.as_str().map(str::to_string),
    }
}

fn epoch(e: &Value) -> f64 {
    e.get("eventTime")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(0.0, |t| t.timestamp() as f64)
}

fn lookup(events: &[Value], ask: &Value) -> Result<Value, Refusal> {
    let attrs = ask
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return Err((
            "InvalidLookupAttributesException",
            "only one lookup attribute is allowed".into(),
        ));
    }
    let filter = match attrs.first() {
        None => None,
        Some(a) => {
            let key = a["AttributeKey"].as_str().unwrap_or_default();
            let known = [
                "EventId",
                "EventName",
                "ReadOnly",
                "Username",
                "ResourceType",
                "ResourceName",
                "EventSource",
                "AccessKeyId",
            ];
            if !known.contains(&key) {
                return Err((
                    "InvalidLookupAttributesException",
                    format!("unknown attribute {key}"),
                ));
            }
            Some((
                key.to_string(),
                a["AttributeValue"].as_str().unwrap_or_default().to_string(),
            ))
        }
    };
    let max = ask.get("MaxResults").and_then(Value::as_u64).unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err((
            "InvalidMaxResultsException",
            "MaxResults must be 1-50".into(),
        ));
    }
    let start = ask
        .get("StartTime")
        .and_then(Value::as_f64)
        .unwrap_or(f64::MIN);
    let end = ask
        .get("EndTime")
        .and_then(Value::as_f64)
        .unwrap_or(f64::MAX);
    if start > end {
        return Err((
            "InvalidTimeRangeException",
            "StartTime is after EndTime".into(),
        ));
    }
    let skip = match ask.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ("InvalidNextTokenException", "bad NextToken".to_string()))?,
    };
    let mut matching: Vec<&Value> = events
        .iter()
        .filter(|e| (start..=end).contains(&epoch(e)))
        .filter(|e| match &filter {
            None => true,
            Some((k, v)) => attribute(e, k).as_deref() == Some(v.as_str()),
        })
        .collect();
    // Newest first.
    matching.sort_by(|a, b| epoch(b).total_cmp(&epoch(a)));
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(max as usize)
        .map(|e| {
            json!({
                "EventId": e["eventID"],
                "EventName": e["eventName"],
                "ReadOnly": e["readOnly"].as_bool().unwrap_or_default().to_string(),
                "AccessKeyId": e.pointer("/userIdentity/accessKeyId"),
                "EventTime": epoch(e),
                "EventSource": e["eventSource"],
                "Username": username(e),
                "Resources": [],
                "CloudTrailEvent": e.to_string(),
            })
        })
        .collect();
    let mut out = json!({ "Events": page });
    if skip + (max as usize) < matching.len() {
        out["NextToken"] = json!((skip + max as usize).to_string());
    }
    Ok(out)
}
