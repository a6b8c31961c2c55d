//! The `X-Tvm-Identity` header: a GetCallerIdentity request signed for the
//! STS endpoint the tvm deployment replays to, bound to that deployment by
//! the signed `x-tvm-server-id` header. tvm never sees the secret key.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine;
use tvm_core::api::{IdentityEnvelope, GET_CALLER_IDENTITY_BODY, SERVER_ID_HEADER};

/// Why a presigned identity could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    #[error("{0}")]
    Endpoint(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Build the base64 `X-Tvm-Identity` value.
pub fn identity_header(
    credentials: &Credentials,
    region: &str,
    sts_endpoint: &str,
    server_id: &str,
    at: SystemTime,
) -> Result<String, PresignError> {
    let url: http::Uri = format!("{}/", sts_endpoint.trim_end_matches('/'))
        .parse()
        .map_err(|_| {
            PresignError::Endpoint(format!("STS endpoint {sts_endpoint:?} is not a URL"))
        })?;
    let host = url
        .authority()
        .ok_or_else(|| {
            PresignError::Endpoint(format!("STS endpoint {sts_endpoint:?} has no host"))
        })?
        .to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
        (SERVER_ID_HEADER.into(), server_id.into()),
    ];
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| PresignError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    )
    .map_err(|e| PresignError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| PresignError::Signing(e.to_string()))?
        .into_parts();
    let (added, _) = instructions.into_parts();
    for h in added {
        headers.push((h.name().to_ascii_lowercase(), h.value().to_string()));
    }
    let envelope = IdentityEnvelope {
        method: "POST".into(),
        headers,
        body: GET_CALLER_IDENTITY_BODY.into(),
    };
    let json = serde_json::to_vec(&envelope).map_err(|e| PresignError::Signing(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}
