//! The `sts` identity source's verifier: a checked presigned
//! GetCallerIdentity replayed to one fixed STS endpoint (never a host the
//! client names), whose answer is the caller.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use tvm_core::api::GET_CALLER_IDENTITY_BODY;
use tvm_core::principal::Principal;

use super::presigned::{parse_caller_identity, CheckedPresign, IdentityVerifier};
use super::{IdentityError, IdentityFailure};
use crate::aws::{AwsError, BoxFut, Dependency};

type Https = HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Replays presigned GetCallerIdentity requests to one fixed STS endpoint.
pub struct StsIdentity {
    client: Https,
    endpoint: http::Uri,
    timeout: Duration,
}

/// Largest STS answer read.
const MAX_RESPONSE: usize = 64 * 1024;

impl StsIdentity {
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        roots: &crate::tls::Roots,
    ) -> Result<Self, String> {
        let endpoint: http::Uri = format!("{endpoint}/")
            .parse()
            .map_err(|_| format!("STS endpoint {endpoint:?} is not a URL"))?;
        Ok(Self {
            client: super::http_client(roots.aws_client()?)?,
            endpoint,
            timeout,
        })
    }

    /// `host[:port]` as a client signs it.
    pub fn authority(&self) -> String {
        self.endpoint
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

impl IdentityVerifier for StsIdentity {
    fn verify(&self, presign: CheckedPresign) -> BoxFut<'_, Result<Principal, IdentityFailure>> {
        Box::pin(async move {
            let dep = |e: &str| {
                IdentityFailure::Unavailable(AwsError::unavailable(Dependency::Sts, e.to_string()))
            };
            let mut req = http::Request::post(self.endpoint.clone());
            for (name, value) in &presign.headers {
                req = req.header(name, value);
            }
            let req = req
                .body(Full::new(Bytes::from_static(
                    GET_CALLER_IDENTITY_BODY.as_bytes(),
                )))
                .map_err(|_| {
                    IdentityFailure::Refused(IdentityError::Presigned("a header is not valid HTTP"))
                })?;
            let resp = tokio::time::timeout(self.timeout, self.client.request(req))
                .await
                .map_err(|_| dep("GetCallerIdentity timed out"))?
                .map_err(|e| {
                    IdentityFailure::Unavailable(AwsError::unavailable(Dependency::Sts, e))
                })?;
            let status = resp.status();
            let body = tokio::time::timeout(
                self.timeout,
                Limited::new(resp.into_body(), MAX_RESPONSE).collect(),
            )
            .await
            .map_err(|_| dep("GetCallerIdentity body timed out"))?
            .map_err(|_| dep("GetCallerIdentity body unreadable or too large"))?
            .to_bytes();
            if status.is_success() {
                return parse_caller_identity(&body).map_err(dep);
            }
            let throttled = body.windows(10).any(|w| w == b"Throttling");
            if status.is_client_error() && status.as_u16() != 429 && !throttled {
                Err(IdentityFailure::Refused(IdentityError::Rejected))
            } else {
                Err(dep(&format!("GetCallerIdentity answered {status}")))
            }
        })
    }
}
