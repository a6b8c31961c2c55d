//! Shared emulator, shared function instance, event builders, and the
//! secret check every vend goes through.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use tvm_devstack::runtime::{Lambda, Outcome};
use tvm_devstack::stack::Stack;
use tvm_devstack::testing::block_on_spawned;

pub const V1_IAM: &str = include_str!("../../../../fixtures/events/rest-v1-iam.json");
pub const TASK: &str = "arn:aws:sts::123456789012:assumed-role/orders-task/";

pub struct Shared {
    pub stack: Stack,
    pub lambda: Lambda,
}

pub fn bootstrap() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bootstrap"))
}

/// The emulator and one warm function instance, started on first use.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        block_on_spawned(async {
            let stack = Stack::start().await.expect("local stack");
            let lambda = Lambda::start(bootstrap(), &stack.function_env())
                .await
                .expect("bootstrap");
            Shared { stack, lambda }
        })
    })
}

/// Run a test body on the shared runtime.
pub fn run<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    // Start the shared stack from the test thread, never from inside the runtime.
    shared();
    block_on_spawned(f);
}

/// A function instance of its own, with extra environment.
pub async fn own_lambda(extra: &[(&str, &str)]) -> Lambda {
    let mut env = shared().stack.function_env();
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    Lambda::start(bootstrap(), &env).await.expect("bootstrap")
}

/// An HTTP API v2 event with an IAM identity.
pub fn v2(method: &str, path: &str, caller: Option<&str>, body: Option<&Value>) -> Value {
    tvm_devstack::events::http_api(method, path, caller, body)
}

/// A vend of `profile` with no IAM context and the given `X-Tvm-Identity`.
pub fn presigned_vend(header: &str, profile: &str) -> Value {
    let mut e = v2(
        "POST",
        "/v1/credentials",
        None,
        Some(&serde_json::json!({ "profile": profile })),
    );
    e["headers"]["x-tvm-identity"] = serde_json::json!(header);
    e
}

/// A presigned GetCallerIdentity of `creds` for the local stack, now.
pub fn signed_identity(creds: &aws_credential_types::Credentials) -> String {
    tvm_client::presign::identity_header(
        creds,
        tvm_devstack::stack::REGION,
        &shared().stack.proxy.url(),
        tvm_devstack::stack::SERVER_ID,
        std::time::SystemTime::now(),
    )
    .expect("a presigned identity")
}

pub fn vend_event(caller: &str, body: Value) -> Value {
    v2("POST", "/v1/credentials", Some(caller), Some(&body))
}

/// The HTTP answer inside the function's response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

pub async fn call(lambda: &Lambda, event: Value) -> Answer {
    let request_id = event["requestContext"]["requestId"]
        .as_str()
        .map(str::to_string);
    match lambda.invoke(event).await.expect("invocation") {
        Outcome::Response(v) => {
            let status = v["statusCode"].as_u64().expect("statusCode") as u16;
            let body =
                serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            let answer = Answer {
                status,
                body,
                headers: v["headers"].clone(),
            };
            if let Some(id) = &request_id {
                // The decision line is the request's last log line.
                decision_for(lambda, id).await;
                if answer.status >= 500 {
                    // A failing test's output then says what the function saw.
                    for line in lambda.logs().iter().filter(|l| l.contains(id.as_str())) {
                        eprintln!("function log ({status}): {line}");
                    }
                }
            }
            check_no_secret_logged(lambda, &answer);
            answer
        }
        Outcome::Error(e) => panic!("the function failed the invocation instead of answering: {e}"),
    }
}

/// Values that must never appear in a log line.
pub const HEADER_SECRETS: &[&str] = &[
    "FAKE-SESSION-TOKEN-FROM-THE-CALLER",
    "Signature=0000000000000000000000000000000000000000000000000000000000000000",
];

/// Whatever was vended, and the request's secrets, never reach the log.
pub fn check_no_secret_logged(lambda: &Lambda, answer: &Answer) {
    let logs = lambda.logs().join("\n");
    let mut secrets: Vec<String> = HEADER_SECRETS.iter().map(|s| s.to_string()).collect();
    for field in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        if let Some(v) = answer.body[field].as_str() {
            secrets.push(v.to_string());
        }
    }
    for s in secrets {
        assert!(
            !logs.contains(&s),
            "a secret ({}...) appeared in the function's log",
            &s[..8.min(s.len())]
        );
    }
    // Nor does an answer ever echo the request's own secrets.
    let body = answer.body.to_string();
    for s in HEADER_SECRETS {
        assert!(!body.contains(s), "the answer echoed a request secret");
    }
}

/// The decision lines the function has written so far.
pub fn decisions(lambda: &Lambda) -> Vec<Value> {
    lambda
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "decision")
        .collect()
}

/// The first line the function logged that `wanted` accepts; waits
/// (bounded, 2 s) for the log pipe, which can lag behind the answer.
pub async fn logged(lambda: &Lambda, wanted: impl Fn(&str) -> bool) -> Option<String> {
    for _ in 0..100 {
        if let Some(line) = lambda.logs().into_iter().find(|l| wanted(l)) {
            return Some(line);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// The decision line of one request; waits (bounded) for the log pipe.
pub async fn decision_for(lambda: &Lambda, request_id: &str) -> Value {
    for _ in 0..200 {
        if let Some(d) = decisions(lambda)
            .into_iter()
            .find(|d| d["request_id"] == request_id)
        {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no decision line for {request_id}")
}

/// SDK config for the emulator, as the function's IAM user.
pub fn sdk() -> aws_config::SdkConfig {
    let stack = &shared().stack;
    tvm_devstack::stack::sdk_config(&stack.moto.url(), stack.ids.function.credentials())
}

/// A function instance with a proxy of its own, so its AWS calls can be counted.
pub async fn counted_lambda(extra: &[(&str, &str)]) -> (Lambda, tvm_devstack::proxy::Proxy) {
    let proxy = tvm_devstack::proxy::Proxy::start(shared().stack.moto.addr)
        .await
        .unwrap();
    let url = proxy.url();
    let mut env: Vec<(&str, &str)> = vec![("AWS_ENDPOINT_URL", url.as_str())];
    env.extend_from_slice(extra);
    (own_lambda(&env).await, proxy)
}

/// Read a session item straight from the emulator.
pub async fn session_item(
    session_id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    session_item_in("tvm-sessions", session_id).await
}

/// Read a session item of `table` (an isolated state's) from the emulator.
pub async fn session_item_in(
    table: &str,
    session_id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk());
    ddb.get_item()
        .table_name(table)
        .key(
            "session_id",
            aws_sdk_dynamodb::types::AttributeValue::S(session_id.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the session item exists")
}

pub fn s(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    k: &str,
) -> String {
    match &item[k] {
        aws_sdk_dynamodb::types::AttributeValue::S(v)
        | aws_sdk_dynamodb::types::AttributeValue::N(v) => v.clone(),
        other => panic!("{k}: {other:?}"),
    }
}

/// Put a policy document into the emulator's SSM.
pub async fn put_policy(profile: &str, text: &str, kind: aws_sdk_ssm::types::ParameterType) {
    aws_sdk_ssm::Client::new(&sdk())
        .put_parameter()
        .name(format!("/tvm/policies/{profile}"))
        .value(text)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

pub async fn delete_policy(profile: &str) {
    aws_sdk_ssm::Client::new(&sdk())
        .delete_parameter()
        .name(format!("/tvm/policies/{profile}"))
        .send()
        .await
        .unwrap();
}

pub fn assume_role_calls(calls: &[tvm_devstack::proxy::Call]) -> Vec<tvm_devstack::proxy::Call> {
    calls
        .iter()
        .filter(|c| c.action == "AssumeRole")
        .cloned()
        .collect()
}

/// An IAM client in `account` as its revoker role (which trusts the
/// function's identity): what tvm writes with.
pub async fn revoker_iam(account: &str) -> aws_sdk_iam::Client {
    let out = aws_sdk_sts::Client::new(&sdk())
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/tvm/tvm-revoker"))
        .role_session_name("test-reader")
        .send()
        .await
        .expect("assume the revoker");
    let c = out.credentials().unwrap();
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "test",
    );
    aws_sdk_iam::Client::new(&tvm_devstack::stack::sdk_config(
        &shared().stack.moto.url(),
        creds,
    ))
}

/// The default version of an account's revocation policy, parsed.
pub async fn revocation_policy_in(account: &str) -> Value {
    let iam = revoker_iam(account).await;
    let arn = format!("arn:aws:iam::{account}:policy/tvm/tvm-revocations");
    default_version(&iam, &arn).await
}

/// The default version of a managed policy, parsed: from the listing when
/// it carries documents (moto's does; a revoker may only list), else read.
pub async fn default_version(iam: &aws_sdk_iam::Client, arn: &str) -> Value {
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .expect("the policy exists");
    let default = versions
        .versions()
        .iter()
        .find(|v| v.is_default_version())
        .expect("a default version");
    let doc = match default.document() {
        Some(d) => d.to_string(),
        None => iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(default.version_id().expect("a version id"))
            .send()
            .await
            .expect("get_policy_version")
            .policy_version()
            .and_then(|v| v.document())
            .expect("a document")
            .to_string(),
    };
    serde_json::from_str(&percent_decode(&doc)).expect("the policy is JSON")
}

/// IAM returns policy documents URL-encoded.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of an embedded metric (EMF) on a decision line, if the line's
/// `_aws` block declares it for exactly these dimensions; each dimension
/// must be a string field of the line, as CloudWatch requires.
pub fn emf_metric(line: &Value, dimensions: &[&str], name: &str) -> Option<f64> {
    let directives = line["_aws"]["CloudWatchMetrics"].as_array()?;
    assert_eq!(line["service"], "tvm", "the service dimension");
    directives.iter().find_map(|d| {
        assert_eq!(d["Namespace"], "tvm");
        let sets = d["Dimensions"].as_array()?;
        let declared = sets.iter().any(|set| {
            let set: Vec<&str> = set
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            set == dimensions && set.iter().all(|k| line[*k].is_string())
        });
        let named = d["Metrics"].as_array()?.iter().any(|m| m["Name"] == name);
        (declared && named).then(|| line[name].as_f64()).flatten()
    })
}
