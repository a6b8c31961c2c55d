//! What API Gateway's AWS_IAM authorization does, for the local front: check
//! the SigV4 signature of each request with the caller's secret (looked up
//! in the emulator's state), and hand the function the caller's IAM identity
//! in the request context. Any SigV4 client works against it unchanged.

use std::net::SocketAddr;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The identity API Gateway puts in `requestContext.authorizer.iam`.
#[derive(Debug, Clone)]
pub struct IamIdentity {
    pub access_key: String,
    pub account_id: String,
    pub user_arn: String,
    pub user_id: String,
}

impl IamIdentity {
    pub fn to_context(&self) -> Value {
        json!({
            "accessKey": self.access_key,
            "accountId": self.account_id,
            "callerId": self.user_id,
            "principalOrgId": null,
            "userArn": self.user_arn,
            "userId": self.user_id,
        })
    }
}

/// Why API Gateway would answer 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

struct Secret {
    secret: String,
    token: Option<String>,
    identity: IamIdentity,
}

/// Find the secret behind an access key in moto's state.
async fn lookup(moto: SocketAddr, access_key: &str) -> Option<Secret> {
    let state = fetch_state(moto).await?;
    for k in state["iam"]["AccessKey"].as_array()? {
        // moto lists assumed-role keys here too, without a user: those are below.
        let Some(name) = k["user_name"].as_str() else {
            continue;
        };
        if k["access_key_id"] == access_key && k["status"] == "Active" {
            let user = state["iam"]["User"]
                .as_array()?
                .iter()
                .find(|u| u["name"] == name)?;
            return Some(Secret {
                secret: k["secret_access_key"].as_str()?.to_string(),
                token: None,
                identity: IamIdentity {
                    access_key: access_key.to_string(),
                    account_id: user["account_id"].as_str()?.to_string(),
                    user_arn: user["arn"].as_str()?.to_string(),
                    user_id: user["id"].as_str()?.to_uppercase(),
                },
            });
        }
    }
    for r in state["sts"]["AssumedRole"].as_array()? {
        if r["access_key_id"] == access_key {
            return Some(Secret {
                secret: r["secret_access_key"].as_str()?.to_string(),
                token: r["session_token"].as_str().map(str::to_string),
                identity: IamIdentity {
                    access_key: access_key.to_string(),
                    account_id: r["account_id"].as_str()?.to_string(),
                    user_arn: r["arn"].as_str()?.to_string(),
                    user_id: r["user_id"].as_str()?.to_string(),
                },
            });
        }
    }
    None
}

async fn fetch_state(moto: SocketAddr) -> Option<Value> {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let uri: hyper::Uri = format!("http://{moto}/moto-api/data.json").parse().ok()?;
    let resp = client.get(uri).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Check a request the way API Gateway's AWS_IAM authorization does.
pub async fn authorize(
    moto: SocketAddr,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<IamIdentity, Refused> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let auth = get("authorization").ok_or(Refused("Missing Authentication Token"))?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(Refused("Missing Authentication Token"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in fields.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(Refused(
            "Authorization header requires Credential, SignedHeaders and Signature",
        ));
    };
    let scope: Vec<&str> = credential.splitn(2, '/').collect();
    let [access_key, scope] = scope[..] else {
        return Err(Refused("Credential should be scoped correctly"));
    };
    let date = get("x-amz-date").ok_or(Refused(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
    ))?;
    let signed_at = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| Refused("X-Amz-Date is not in the ISO 8601 basic format"))?
        .and_utc();
    if (chrono::Utc::now() - signed_at).num_seconds().abs() > 300 {
        return Err(Refused("Signature expired"));
    }
    let secret = lookup(moto, access_key).await.ok_or(Refused(
        "The security token included in the request is invalid",
    ))?;
    if let Some(token) = &secret.token {
        if get("x-amz-security-token") != Some(token.as_str()) {
            return Err(Refused(
                "The security token included in the request is invalid",
            ));
        }
    }

    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(Refused("a signed header is missing"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort();
    let canonical_query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let payload = get("x-amz-content-sha256")
        .map(str::to_string)
        .unwrap_or_else(|| sha256_hex(body));
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload}",
        if path.is_empty() { "/" } else { path },
        canonical_query.join("&")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let parts: Vec<&str> = scope.split('/').collect();
    let [day, region, service, "aws4_request"] = parts[..] else {
        return Err(Refused("Credential should be scoped correctly"));
    };
    let mut key = hmac(format!("AWS4{}", secret.secret).as_bytes(), day);
    for step in [region, service, "aws4_request"] {
        key = hmac(&key, step);
    }
    let expected = hex::encode(hmac(&key, &string_to_sign));
    if expected != signature {
        return Err(Refused(
            "The request signature we calculated does not match the signature you provided",
        ));
    }
    Ok(secret.identity)
}
