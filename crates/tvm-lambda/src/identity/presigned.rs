//! A presigned STS GetCallerIdentity request in `X-Tvm-Identity` (for fronts
//! without IAM auth, and for local runs): checked here against brief
//! section 3, then replayed by an [`IdentityVerifier`] to tvm's own STS
//! endpoint, which verifies the signature.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use lambda_http::Body;
use std::sync::Arc;
use tvm_core::api::{
    IdentityEnvelope, GET_CALLER_IDENTITY_BODY, IDENTITY_HEADER, SERVER_ID_HEADER,
};
use tvm_core::principal::Principal;

use super::{IdentityError, IdentityFailure, IdentitySource};
use crate::aws::BoxFut;

/// Replays a checked presigned GetCallerIdentity to STS.
pub trait IdentityVerifier: Send + Sync {
    fn verify(&self, presign: CheckedPresign) -> BoxFut<'_, Result<Principal, IdentityFailure>>;
}

/// The `sts` identity mode: the source owns its rules and its verifier.
pub struct PresignedSource {
    pub server_id: String,
    /// `host[:port]` presigned identities must be signed for.
    pub sts_authority: String,
    pub verifier: Arc<dyn IdentityVerifier>,
}

impl IdentitySource for PresignedSource {
    fn name(&self) -> &'static str {
        "sts"
    }

    fn identify<'a>(
        &'a self,
        req: &'a http::Request<Body>,
        now: DateTime<Utc>,
    ) -> BoxFut<'a, Result<Option<Principal>, IdentityFailure>> {
        Box::pin(async move {
            let mut values = req.headers().get_all(IDENTITY_HEADER).iter();
            let Some(value) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(IdentityError::Presigned("sent more than once").into());
            }
            let value = value
                .to_str()
                .map_err(|_| IdentityError::Presigned("not ASCII"))?;
            let rules = PresignRules {
                server_id: &self.server_id,
                sts_authority: &self.sts_authority,
            };
            let checked = check_presigned(value, &rules, now)?;
            self.verifier.verify(checked).await.map(Some)
        })
    }
}

/// Largest `X-Tvm-Identity` header accepted, base64 included.
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024;
const MAX_HEADER_VALUE: usize = 4096;
/// How far `x-amz-date` may be from now.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Headers a presigned identity may carry. Anything else, and every other
/// `x-amz-*` header in particular, is refused.
const ALLOWED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    SERVER_ID_HEADER,
];
const REQUIRED_SIGNED: &[&str] = &["host", "x-amz-date", SERVER_ID_HEADER];

/// A presigned request that passed every local check, ready to replay.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedPresign {
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for CheckedPresign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CheckedPresign")
            .field("headers", &names)
            .finish()
    }
}

/// What the server expects of a presigned identity.
#[derive(Debug, Clone)]
pub struct PresignRules<'a> {
    pub server_id: &'a str,
    /// `host[:port]` of the STS endpoint tvm replays to.
    pub sts_authority: &'a str,
}

/// Check an `X-Tvm-Identity` header value against brief section 3.
pub fn check_presigned(
    header: &str,
    rules: &PresignRules<'_>,
    now: DateTime<Utc>,
) -> Result<CheckedPresign, IdentityError> {
    let bad = IdentityError::Presigned;
    if header.len() > MAX_ENVELOPE_BYTES {
        return Err(bad("larger than 8 KiB"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| bad("not base64"))?;
    let env: IdentityEnvelope = serde_json::from_slice(&raw)
        .map_err(|_| bad("not a JSON {method, headers, body} envelope"))?;
    if env.method != "POST" {
        return Err(bad("method must be POST"));
    }
    if env.body != GET_CALLER_IDENTITY_BODY {
        return Err(bad(
            "body must be exactly Action=GetCallerIdentity&Version=2011-06-15",
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::with_capacity(env.headers.len());
    for (name, value) in env.headers {
        let lower = name.to_ascii_lowercase();
        if lower != name {
            return Err(bad("header names must be lowercase"));
        }
        if !ALLOWED_HEADERS.contains(&lower.as_str()) {
            return Err(if lower.starts_with("x-amz-") {
                bad("carries an x-amz-* header outside the SigV4 set")
            } else {
                bad("carries a header that is not part of a GetCallerIdentity signature")
            });
        }
        if headers.iter().any(|(n, _)| *n == lower) {
            return Err(bad("repeats a header"));
        }
        if value.len() > MAX_HEADER_VALUE || value.chars().any(|c| c.is_control() || !c.is_ascii())
        {
            return Err(bad(
                "a header value is too long or has control or non-ASCII characters",
            ));
        }
        headers.push((lower, value));
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };

    if get("host") != Some(rules.sts_authority) {
        return Err(bad(
            "signed for a host other than this deployment's STS endpoint",
        ));
    }
    match get(SERVER_ID_HEADER) {
        None => return Err(bad("missing x-tvm-server-id")),
        Some(id) if !constant_time_eq(id.as_bytes(), rules.server_id.as_bytes()) => {
            return Err(bad("x-tvm-server-id is not this deployment's"))
        }
        Some(_) => {}
    }
    let date = get("x-amz-date").ok_or(bad("missing x-amz-date"))?;
    let signed_at = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| bad("x-amz-date is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    if (now - signed_at).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(bad("x-amz-date is more than 15 minutes from now"));
    }

    let auth = get("authorization").ok_or(bad("missing authorization"))?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(bad("authorization is not AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in fields.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) if credential.is_none() => credential = Some(v),
            Some(("SignedHeaders", v)) if signed.is_none() => signed = Some(v),
            Some(("Signature", v)) if signature.is_none() => signature = Some(v),
            _ => return Err(bad("authorization has an unexpected or repeated field")),
        }
    }
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => {
            return Err(bad(
                "authorization lacks Credential, SignedHeaders or Signature",
            ))
        }
    };
    let scope: Vec<&str> = credential.split('/').collect();
    match scope[..] {
        [_key, day, _region, "sts", "aws4_request"] if date.starts_with(day) => {}
        _ => {
            return Err(bad(
                "the credential scope is not for sts on the signing date",
            ))
        }
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the signature is not 64 hex characters"));
    }
    let signed: Vec<&str> = signed.split(';').collect();
    for required in REQUIRED_SIGNED {
        if !signed.contains(required) {
            return Err(bad("host, x-amz-date and x-tvm-server-id must be signed"));
        }
    }
    for (name, _) in &headers {
        if name != "authorization" && !signed.contains(&name.as_str()) {
            return Err(bad("carries a header it did not sign"));
        }
    }
    if signed.iter().any(|s| get(s).is_none()) {
        return Err(bad("signs a header it does not carry"));
    }
    Ok(CheckedPresign { headers })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parse STS's GetCallerIdentity answer: exactly one result with an ARN and
/// an account that agree.
pub fn parse_caller_identity(xml: &[u8]) -> Result<Principal, &'static str> {
    use aws_smithy_xml::decode::{try_data, Document};
    let mut doc = Document::try_from(xml).map_err(|_| "not XML")?;
    let mut root = doc.root_element().map_err(|_| "no root element")?;
    if !root.start_el().matches("GetCallerIdentityResponse") {
        return Err("not a GetCallerIdentityResponse");
    }
    let (mut arn, mut account, mut results) = (None, None, 0);
    while let Some(mut tag) = root.next_tag() {
        if !tag.start_el().matches("GetCallerIdentityResult") {
            continue;
        }
        results += 1;
        while let Some(mut field) = tag.next_tag() {
            let slot = if field.start_el().matches("Arn") {
                &mut arn
            } else if field.start_el().matches("Account") {
                &mut account
            } else {
                continue;
            };
            if slot.is_some() {
                return Err("a field appears twice");
            }
            *slot = Some(
                try_data(&mut field)
                    .map_err(|_| "unreadable field")?
                    .to_string(),
            );
        }
    }
    if results != 1 {
        return Err("not exactly one GetCallerIdentityResult");
    }
    let (Some(arn), Some(account)) = (arn, account) else {
        return Err("no Arn or Account");
    };
    let principal = Principal::parse(&arn, None).map_err(|_| "the ARN was refused")?;
    if principal.account != account {
        return Err("Arn and Account disagree");
    }
    Ok(principal)
}

#[cfg(test)]
mod tests;
