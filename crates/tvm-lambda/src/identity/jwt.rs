//! The `jwt` identity mode: `Authorization: Bearer <JWT>`, verified here
//! with the keys of its issuer (see `jwks`), its claims checked by
//! `tvm_core::oidc::caller`.
//!
//! In order, each step refusing with a 401 that says what to fix:
//! the token's size ([`MAX_TOKEN_BYTES`], before anything is decoded); its
//! shape; its algorithm (RS256 or ES256: `none`, HMAC and every other are
//! refused before a key is looked up); its issuer, read unverified only to
//! choose among the configured issuers (never a URL to fetch); the key of its
//! `kid`, which must be for that algorithm; the signature (jsonwebtoken, on
//! ring); then iss, aud, exp, nbf, iat and sub.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use lambda_http::Body;
use serde_json::{Map, Value};
use tvm_core::oidc::{Trust, MAX_TOKEN_BYTES};
use tvm_core::principal::Principal;

use super::jwks::{Jwks, Lookup};
use super::{IdentityError, IdentityFailure, IdentitySource};
use crate::aws::BoxFut;

pub struct JwtSource {
    keys: Arc<Jwks>,
    issuers: Vec<String>,
    audiences: Vec<String>,
}

impl JwtSource {
    pub fn new(keys: Arc<Jwks>, issuers: Vec<String>, audiences: Vec<String>) -> Self {
        Self {
            keys,
            issuers,
            audiences,
        }
    }
}

fn refused(why: &'static str) -> IdentityFailure {
    IdentityFailure::Refused(IdentityError::Bearer(why))
}

/// The bearer token of a request: `None` without an `Authorization` header
/// or with another scheme (SigV4's).
pub fn bearer(req: &http::Request<Body>) -> Result<Option<&str>, IdentityFailure> {
    let Some(value) = req.headers().get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    if value.len() > MAX_TOKEN_BYTES + 7 {
        return Err(refused("the token is longer than 8192 bytes"));
    }
    let Ok(value) = value.to_str() else {
        return Err(refused("the Authorization header is not ASCII"));
    };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Ok(None),
    }
}

/// What a token says before it is verified: its algorithm, key id and
/// issuer.
fn peek(token: &str) -> Result<(Algorithm, Option<String>, String), IdentityFailure> {
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts[..] else {
        return Err(refused(
            "the token is not a JWS compact serialization (three parts)",
        ));
    };
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        refused("the token's header is not JSON with an algorithm tvm knows (RS256, ES256)")
    })?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(refused(
            "the token's algorithm is not accepted: tvm accepts RS256 and ES256",
        ));
    }
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .ok_or_else(|| refused("the token's payload is not a JSON object"))?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| refused("the token has no issuer (iss)"))?;
    Ok((header.alg, header.kid, issuer.to_string()))
}

impl IdentitySource for JwtSource {
    fn name(&self) -> &'static str {
        "jwt"
    }

    fn identify<'a>(
        &'a self,
        req: &'a http::Request<Body>,
        now: DateTime<Utc>,
    ) -> BoxFut<'a, Result<Option<Principal>, IdentityFailure>> {
        Box::pin(async move {
            let Some(token) = bearer(req)? else {
                return Ok(None);
            };
            let (alg, kid, issuer) = peek(token)?;
            if !self.issuers.contains(&issuer) {
                return Err(IdentityError::Token(tvm_core::oidc::TokenError::Issuer).into());
            }
            let key = match self.keys.key(&issuer, kid.as_deref(), alg).await? {
                Lookup::Found(k) => k,
                Lookup::UnknownKey => {
                    return Err(refused(
                        "the token's key id (kid) is not one of its issuer's current keys",
                    ))
                }
                Lookup::WrongAlgorithm => {
                    return Err(refused(
                        "the token's algorithm is not the one its key (kid) is for",
                    ))
                }
            };
            // The signature only: the claims are tvm_core's to check.
            let mut v = Validation::new(key.alg);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v.validate_nbf = false;
            v.validate_aud = false;
            let data =
                jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v).map_err(|_| {
                    refused("the token's signature does not verify with its issuer's key")
                })?;
            if data.claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(IdentityError::Token(tvm_core::oidc::TokenError::Issuer).into());
            }
            let trust = Trust {
                issuers: &self.issuers,
                audiences: &self.audiences,
            };
            let caller = tvm_core::oidc::caller(&data.claims, trust, now.timestamp())
                .map_err(IdentityError::Token)?;
            Ok(Some(Principal::from(caller)))
        })
    }

    fn settle<'a>(&'a self, bound: Duration) -> BoxFut<'a, ()> {
        Box::pin(self.keys.settle(bound))
    }
}
