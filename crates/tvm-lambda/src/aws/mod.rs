//! Thin adapters around the AWS SDK clients, built once at cold start, and
//! the small traits the handler sees them through (so tests can fake them:
//! the `fakes` module holds in-memory versions that really store).
//!
//! Adapters report [`AwsError`], never an HTTP answer: `crate::error` is the
//! one place that maps failures to statuses and codes.

pub mod dynamo;
pub mod gates;
pub mod iam;
pub mod keys;
pub mod kms;
pub mod sns;
pub mod ssm;
pub mod sts;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tvm_core::api::{BreakGlassView, Notification, RequestView, SessionStatus, SessionView};
use tvm_core::approval::RequestStatus;
use tvm_core::decision::GateState;
use tvm_core::rate::RateLimit;
use tvm_core::revocation::{Adder, Entry, Full};
use tvm_core::vend::{AssumeRole, SessionRecord};

/// The one HTTPS client every SDK client shares: rustls on ring, the
/// function's roots (`crate::tls`), connections pooled for the life of the
/// container.
pub fn https_client(
    roots: &crate::tls::Roots,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, String> {
    use aws_smithy_http_client::tls::{
        rustls_provider::CryptoMode, Provider, TlsContext, TrustStore,
    };
    let trust = TrustStore::empty().with_pem_certificate(roots.pem.clone());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
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

/// The AWS service a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Ssm,
    DynamoDb,
    Sts,
    Iam,
    Sns,
    /// An oidc issuer's discovery document or JWKS.
    Jwks,
    /// The policy signing key (GetPublicKey).
    Kms,
}

impl Dependency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssm => "ssm",
            Self::DynamoDb => "dynamodb",
            Self::Sts => "sts",
            Self::Iam => "iam",
            Self::Sns => "sns",
            Self::Jwks => "jwks",
            Self::Kms => "kms",
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an adapter reports when a call does not simply succeed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The service failed, timed out, throttled, or answered something unusable.
    #[error("{dependency} failed: {source}")]
    Unavailable {
        dependency: Dependency,
        #[source]
        source: BoxError,
    },
    /// The stored state does not allow the change (a decided request).
    #[error("{0}")]
    Conflict(String),
    /// The record is not there (any more).
    #[error("{0}")]
    Missing(String),
    /// A vend gate refused: the caller, or the caller and profile, is revoked.
    #[error("a revocation is in place")]
    Revoked,
    /// The approval or break-glass event the vend relied on ended meanwhile.
    #[error("the approval or break-glass event ended")]
    GateClosed,
    /// A vend gate refused: the rate window is full.
    #[error("the rate window is full")]
    RateLimited { retry_after: u64 },
    /// STS refused the rendered session policy and tags as too large.
    #[error("STS answered PackedPolicyTooLarge")]
    PolicyTooLarge,
    /// An account lacks what tvm writes its revocation policy with.
    #[error("account {account} has no {missing}")]
    NotDeployed { account: String, missing: String },
    /// Writing an account's revocation policy failed.
    #[error("{dependency} failed for account {account}: {source}")]
    RevocationFailed {
        account: String,
        dependency: Dependency,
        #[source]
        source: BoxError,
    },
    /// The revocation would not fit the revocation policy.
    #[error("{0}")]
    PolicyFull(Full),
    /// A revocation failed after it was stored in the revocation state.
    #[error("stored, then: {0}")]
    Stored(Box<AwsError>),
}

impl AwsError {
    /// The service behind a failure, when one is.
    pub fn dependency(&self) -> Option<Dependency> {
        match self {
            Self::Unavailable { dependency, .. } | Self::RevocationFailed { dependency, .. } => {
                Some(*dependency)
            }
            Self::NotDeployed { .. } => Some(Dependency::Iam),
            Self::Stored(inner) => inner.dependency(),
            _ => None,
        }
    }

    pub fn unavailable(dependency: Dependency, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            dependency,
            source: source.into(),
        }
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
    fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, AwsError>>;
}

/// The gates a vend passes in the same DynamoDB step as its record.
#[derive(Debug, Clone)]
pub struct Gates {
    pub rate_limit: RateLimit,
    /// Epoch seconds.
    pub now: i64,
    /// The approval or break-glass event the grant relied on, checked in the
    /// same transaction: a vend racing a close (or an expiry) is refused, so
    /// that no session is recorded after the close listed what to revoke.
    pub still_open: Option<StillOpen>,
    /// For a vend whose caller is a session tvm vended: what revoked the
    /// chain that session belongs to refuses this vend too.
    pub parent: Option<ParentGate>,
}

/// The revocations a vend for a vended session must not find: its parent
/// vend's pair gate, the first caller's gate, and in the revocation state
/// the chain's SourceIdentity and grant and a cut-off of the first caller
/// after the parent was issued.
#[derive(Debug, Clone)]
pub struct ParentGate {
    /// The first vend's caller (stable principal).
    pub origin: String,
    /// The parent vend's caller and profile.
    pub caller: String,
    pub profile: String,
    /// Revocation-state entries that must not exist (`Target::key`).
    pub absent: Vec<String>,
    /// The first caller's entry, whose cut-off must not be after `issued_at`.
    pub caller_entry: String,
    /// When the parent was issued.
    pub issued_at: i64,
}

impl ParentGate {
    /// The gate items to check besides the vend's own (never one twice:
    /// a transaction names an item once).
    pub fn gates(&self, r: &SessionRecord) -> Vec<String> {
        let own = [
            keys::revoked_caller(&r.caller),
            keys::revoked_pair(&r.caller, &r.profile),
        ];
        let mut out = Vec::new();
        for key in [
            keys::revoked_caller(&self.origin),
            keys::revoked_pair(&self.caller, &self.profile),
        ] {
            if !own.contains(&key) && !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }
}

/// The approval or break-glass pointer a vend's record requires to still
/// link to `id`, unexpired.
#[derive(Debug, Clone)]
pub struct StillOpen {
    pub gate: GateKind,
    pub caller_arn: String,
    pub profile: String,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    Approval,
    BreakGlass,
}

/// Where vends are recorded (DynamoDB).
pub trait SessionStore: Send + Sync {
    /// In one transaction: write the record (never reusing an id), check that
    /// neither the caller nor the caller and profile are revoked, and count
    /// the vend against the rate limit. `Revoked` / `RateLimited` say which
    /// gate refused.
    fn record<'a>(
        &'a self,
        session: &'a SessionRecord,
        gates: Gates,
    ) -> BoxFut<'a, Result<(), AwsError>>;
    /// Set a recorded session's status: `failed` (STS refused), `revoked`
    /// (at `at`, epoch seconds, kept with it).
    fn set_status<'a>(
        &'a self,
        session_id: &'a str,
        status: SessionStatus,
        at: i64,
    ) -> BoxFut<'a, Result<(), AwsError>>;
    /// Record a session whose credentials STS issued while its gates were
    /// checked and tvm dropped unsent, because the gates refused or failed:
    /// status `discarded` (and `discarded_at`), so that its AssumeRole in
    /// CloudTrail leads to a record. Not in the revocation index, which
    /// only the security team's revocations write. Replaces the record only
    /// when the gate transaction committed after all (it timed out) and it
    /// is still `issued`.
    fn discard<'a>(
        &'a self,
        session: &'a SessionRecord,
        at: i64,
    ) -> BoxFut<'a, Result<(), AwsError>>;
    fn get<'a>(&'a self, session_id: &'a str) -> BoxFut<'a, Result<Option<SessionView>, AwsError>>;
    /// Newest first, from the by-caller, by-profile or by-revocation index.
    fn list<'a>(
        &'a self,
        query: &'a SessionQuery,
    ) -> BoxFut<'a, Result<Vec<SessionView>, AwsError>>;
    /// Refuse new vends for a caller, or a caller and profile, until a time.
    /// A longer revocation already in place is kept.
    fn revoke<'a>(&'a self, marker: &'a RevocationMarker) -> BoxFut<'a, Result<(), AwsError>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionQuery {
    /// A caller's sessions, newest first; only those issued at or after
    /// `since` when given (the index's range key).
    Caller {
        caller: String,
        since: Option<i64>,
        limit: usize,
    },
    Profile {
        profile: String,
        limit: usize,
    },
    /// Sessions revoked at or after `since` (at most 90 days before `now`:
    /// one index partition per day), newest day first.
    Revoked {
        since: i64,
        now: i64,
        limit: usize,
    },
}

/// What a revocation of new vends covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationScope {
    /// Every profile of a caller (its stable principal).
    Caller(String),
    /// One profile of a caller.
    Pair { caller: String, profile: String },
}

/// A revocation of new vends: the gate item the vend transaction checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationMarker {
    pub scope: RevocationScope,
    pub until: i64,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

/// Who approves: the person and the principal counted (see
/// `Principal::person` and `Principal::stable_id`: an approval counts only
/// when both are new), and the ARN shown.
#[derive(Debug, Clone, Copy)]
pub struct Approver<'a> {
    pub person: &'a str,
    pub principal: &'a str,
    pub arn: &'a str,
}

/// The vend path's one read of the approval and break-glass gates.
pub trait GateStates: Send + Sync {
    /// The approval and break-glass state of a caller for a profile (one
    /// read), by the caller's exact ARN: what one person opened.
    fn state<'a>(
        &'a self,
        caller_arn: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, AwsError>>;
}

/// Where approval requests live. Every change is conditional: transitions
/// are one-way and racing approvers are each counted once.
pub trait ApprovalStore: Send + Sync {
    /// Create a pending request unless one is pending or approved for this
    /// caller and profile; either way, the id that matters.
    fn open<'a>(&'a self, r: &'a RequestView, now: i64) -> BoxFut<'a, Result<String, AwsError>>;
    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, AwsError>>;
    /// Requests in a state, newest first (at most 200).
    fn list<'a>(
        &'a self,
        status: RequestStatus,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, AwsError>>;
    /// Count one approving person; approve once `required` are counted.
    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        approver: Approver<'a>,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>>;
    /// pending -> `Denied` or `Cancelled`.
    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: RequestStatus,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>>;
}

/// Where break-glass events live.
pub trait BreakGlassStore: Send + Sync {
    /// Open unless one is open for this caller and profile (`Conflict`).
    fn open<'a>(&'a self, e: &'a BreakGlassView, now: i64) -> BoxFut<'a, Result<(), AwsError>>;
    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, AwsError>>;
    fn open_events<'a>(&'a self, now: i64) -> BoxFut<'a, Result<Vec<BreakGlassView>, AwsError>>;
    fn close<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, AwsError>>;
}

/// Where approval, break-glass and revocation events are announced (SNS).
pub trait Notifier: Send + Sync {
    fn publish<'a>(&'a self, notification: &'a Notification) -> BoxFut<'a, Result<(), AwsError>>;
}

/// The revocation policy every protected role carries: credentials already
/// issued stop working.
pub trait RevocationPolicy: Send + Sync {
    /// Add `entries` (a few) to what is revoked and write
    /// the policy in every one of `accounts`. `Ok` only once every
    /// account's policy holds them; a retry of the same entries completes a
    /// failed one. `by`: whose room in the policy it may use.
    fn revoke<'a>(
        &'a self,
        entries: &'a [Entry],
        accounts: &'a [String],
        by: Adder,
        now: i64,
    ) -> BoxFut<'a, Result<(), AwsError>>;
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
    fn assume<'a>(&'a self, spec: &'a AssumeRole) -> BoxFut<'a, Result<Issued, AwsError>>;
}

/// Which item of a cancelled transaction failed its condition.
pub(crate) fn failed_condition<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
    index: usize,
) -> bool {
    matches!(e.as_service_error(), Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c))
        if c.cancellation_reasons().get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed"))
}

/// An error and its sources on one line, for logs (never for callers).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    let mut depth = 0;
    while let Some(s) = next {
        if depth == 8 {
            break;
        }
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
        depth += 1;
    }
    out
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
