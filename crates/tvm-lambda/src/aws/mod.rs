//! Thin adapters around the AWS SDK clients, built once at cold start, and
//! the small traits the handler sees them through (so tests can fake them).

pub mod dynamo;
pub mod gates;
pub mod iam;
pub mod sns;
pub mod ssm;
pub mod sts;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tvm_core::api::{Notification, SessionView};
use tvm_core::decision::Via;
use tvm_core::limits::RateLimit;
use tvm_core::principal::Principal;
use tvm_core::revocation::Revoked;

use crate::error::ApiError;
use crate::identity::{CheckedPresign, IdentityError};

/// The one HTTPS client every SDK client shares: rustls on ring, the
/// system's roots, connections pooled for the life of the container.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// DynamoDB attribute values, shortly.
pub(crate) mod attr {
    use aws_sdk_dynamodb::types::AttributeValue;

    pub fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_string())
    }

    pub fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }
}

/// One policy parameter: its full name and its (decrypted) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParameter {
    pub name: String,
    pub value: String,
}

/// Where policy documents come from (SSM Parameter Store).
pub trait PolicySource: Send + Sync {
    fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, ApiError>>;
}

/// The record of one vend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub request_id: String,
    pub caller_arn: String,
    /// The role or user behind the caller (not the session name).
    pub caller: String,
    pub account: String,
    pub profile: String,
    pub role_arn: String,
    pub rule: String,
    pub via: Via,
    pub duration_seconds: u32,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub source_identity: String,
    /// When the item may be deleted by DynamoDB TTL.
    pub delete_after: DateTime<Utc>,
}

/// The gates a vend passes in the same DynamoDB step as its record.
#[derive(Debug, Clone, Copy)]
pub struct Gates {
    pub rate_limit: RateLimit,
    /// Epoch seconds.
    pub now: i64,
}

/// Where vends are recorded (DynamoDB).
pub trait SessionStore: Send + Sync {
    /// In one transaction: write the record (never reusing an id), check that
    /// neither the caller nor the caller and profile are revoked, and count
    /// the vend against the rate limit. `SessionRevoked` / `RateLimited` say
    /// which gate refused.
    fn record<'a>(
        &'a self,
        session: &'a SessionRecord,
        gates: Gates,
    ) -> BoxFut<'a, Result<(), ApiError>>;
    /// Set a recorded session's status: `failed` (STS refused), `revoked`.
    fn set_status<'a>(
        &'a self,
        session_id: &'a str,
        status: &'a str,
    ) -> BoxFut<'a, Result<(), ApiError>>;
    fn get<'a>(&'a self, session_id: &'a str) -> BoxFut<'a, Result<Option<SessionView>, ApiError>>;
    /// Newest first, from the by-caller or by-profile index.
    fn list<'a>(
        &'a self,
        query: &'a SessionQuery,
    ) -> BoxFut<'a, Result<Vec<SessionView>, ApiError>>;
    /// Refuse new vends for a caller, or a caller and profile, until a time.
    /// A longer revocation already in place is kept.
    fn revoke<'a>(&'a self, marker: &'a RevocationMarker) -> BoxFut<'a, Result<(), ApiError>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionQuery {
    Caller { caller: String, limit: usize },
    Profile { profile: String, limit: usize },
}

/// A revocation of new vends: the gate item the vend transaction checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationMarker {
    /// `limits::keys::revoked_caller` or `revoked_pair`.
    pub key: String,
    pub until: i64,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

/// Where approval, break-glass and revocation events are announced (SNS).
pub trait Notifier: Send + Sync {
    fn publish<'a>(&'a self, notification: &'a Notification) -> BoxFut<'a, Result<(), ApiError>>;
}

/// The revocation policy on protected roles: credentials already issued stop working.
pub trait RoleRevocations: Send + Sync {
    /// Add these sessions to the role's deny list (and drop expired ones).
    fn deny<'a>(
        &'a self,
        role_arn: &'a str,
        sessions: &'a [Revoked],
        now: i64,
    ) -> BoxFut<'a, Result<(), ApiError>>;
}

/// What AssumeRole is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeSpec {
    pub role_arn: String,
    pub role_session_name: String,
    pub source_identity: String,
    pub duration_seconds: u32,
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// Credentials from STS. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// STS AssumeRole.
pub trait Issuer: Send + Sync {
    fn assume<'a>(&'a self, spec: &'a AssumeSpec) -> BoxFut<'a, Result<Issued, ApiError>>;
}

/// Failure of a presigned identity replay.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Refused(#[from] IdentityError),
    #[error(transparent)]
    Dependency(#[from] ApiError),
}

/// Replays a checked presigned GetCallerIdentity to STS.
pub trait IdentityVerifier: Send + Sync {
    fn verify(&self, presign: CheckedPresign) -> BoxFut<'_, Result<Principal, VerifyError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_issued_credentials_never_shows_a_secret() {
        let i = Issued {
            access_key_id: "ASIAVENDEDKEYID".into(),
            secret_access_key: "vended-secret".into(),
            session_token: "vended-token".into(),
            expiration: chrono::Utc::now(),
        };
        let shown = format!("{i:?} {i:#?}");
        for secret in ["ASIAVENDEDKEYID", "vended-secret", "vended-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
