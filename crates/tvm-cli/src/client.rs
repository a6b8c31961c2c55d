//! A signing HTTP client for the tvm API.

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tvm_core::api::{
    CredentialsRequest, CredentialsResponse, ErrorBody, ProfilesResponse, IDENTITY_HEADER,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("no AWS credentials to sign with: {0}")]
    Credentials(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("could not reach tvm at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{}: {} (request id {})", .body.code.as_str(), .body.message, .body.request_id)]
    Api { status: u16, body: ErrorBody },
    /// Refused in front of tvm (API Gateway's own `{"message": ...}` answers).
    #[error("refused before reaching tvm (HTTP {status}): {message}")]
    Gateway { status: u16, message: String },
    #[error("unexpected answer from tvm (HTTP {status})")]
    Protocol { status: u16 },
}

impl From<crate::presign::PresignError> for ClientError {
    fn from(e: crate::presign::PresignError) -> Self {
        match e {
            crate::presign::PresignError::Endpoint(m) => Self::Config(m),
            crate::presign::PresignError::Signing(m) => Self::Signing(m),
        }
    }
}

/// Where tvm is, and how to prove who we are to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL of the tvm API, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`.
    pub url: String,
    /// Region the API is signed for.
    pub region: String,
    /// Attach a presigned GetCallerIdentity for this deployment (`sts` identity mode).
    pub presign: Option<PresignTarget>,
}

#[derive(Debug, Clone)]
pub struct PresignTarget {
    pub server_id: String,
    /// The STS endpoint the tvm deployment replays to.
    pub sts_endpoint: String,
}

type Https = HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct TvmClient {
    endpoint: Endpoint,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    http: Https,
    timeout: Duration,
}

const MAX_ANSWER: usize = 256 * 1024;

impl TvmClient {
    /// Build with the standard AWS credential chain.
    pub async fn from_env(endpoint: Endpoint) -> Result<Self, ClientError> {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(crate::https_client())
            .load()
            .await;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| ClientError::Credentials("no credential provider configured".into()))?;
        Self::new(endpoint, credentials)
    }

    pub fn new(
        endpoint: Endpoint,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
    ) -> Result<Self, ClientError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ClientError::Config(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            endpoint,
            credentials,
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(15),
        })
    }

    async fn signing_credentials(&self) -> Result<Credentials, ClientError> {
        self.credentials
            .provide_credentials()
            .await
            .map_err(|e| ClientError::Credentials(error_text(&e)))
    }

    /// `POST /v1/credentials`.
    pub async fn credentials(
        &self,
        request: &CredentialsRequest,
    ) -> Result<CredentialsResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Config(e.to_string()))?;
        let (status, bytes) = self.call("POST", "/v1/credentials", body).await?;
        parse(status, &bytes)
    }

    /// `GET /v1/profiles`.
    pub async fn profiles(&self) -> Result<ProfilesResponse, ClientError> {
        let (status, bytes) = self.call("GET", "/v1/profiles", Vec::new()).await?;
        parse(status, &bytes)
    }

    /// Any JSON route: sign, send, parse the answer or the error.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::Config(e.to_string()))?,
            None => Vec::new(),
        };
        let (status, answer) = self.call(method, path, bytes).await?;
        parse(status, &answer)
    }

    /// Sign and send one request; returns status and body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), ClientError> {
        let creds = self.signing_credentials().await?;
        let base = self.endpoint.url.trim_end_matches('/');
        let url = format!("{base}{path}");
        let uri: http::Uri = url
            .parse()
            .map_err(|_| ClientError::Config(format!("endpoint {base:?} is not a URL")))?;
        let host = uri
            .authority()
            .ok_or_else(|| ClientError::Config(format!("endpoint {base:?} has no host")))?
            .to_string();
        let mut headers: Vec<(String, String)> = vec![("host".into(), host)];
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(target) = &self.endpoint.presign {
            let value = crate::presign::identity_header(
                &creds,
                &self.endpoint.region,
                &target.sts_endpoint,
                &target.server_id,
                SystemTime::now(),
            )?;
            headers.push((IDENTITY_HEADER.into(), value));
        }
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.endpoint.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ClientError::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method,
            url.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ClientError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ClientError::Signing(e.to_string()))?
            .into_parts();
        let mut req = http::Request::builder().method(method).uri(uri);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let mut req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Config(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut req);
        let unreachable = |reason: String| ClientError::Unreachable {
            endpoint: base.to_string(),
            reason,
        };
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(error_text(&e)))?;
        let status = resp.status().as_u16();
        let bytes = tokio::time::timeout(
            self.timeout,
            Limited::new(resp.into_body(), MAX_ANSWER).collect(),
        )
        .await
        .map_err(|_| unreachable("timed out reading the answer".into()))?
        .map_err(|_| unreachable("answer unreadable or too large".into()))?
        .to_bytes();
        Ok((status, bytes))
    }
}

fn parse<T: serde::de::DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T, ClientError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(bytes).map_err(|_| ClientError::Protocol { status });
    }
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
        return Err(ClientError::Api { status, body });
    }
    #[derive(serde::Deserialize)]
    struct GatewayError {
        message: String,
    }
    match serde_json::from_slice::<GatewayError>(bytes) {
        Ok(g) => Err(ClientError::Gateway {
            status,
            message: g.message.chars().take(300).collect(),
        }),
        Err(_) => Err(ClientError::Protocol { status }),
    }
}

/// Percent-encode a query value the way SigV4 canonicalises it
/// (everything but `A-Za-z0-9-_.~`).
pub fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An error and its sources, one line.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    for _ in 0..6 {
        let Some(s) = next else { break };
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
