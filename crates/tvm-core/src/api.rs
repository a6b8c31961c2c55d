//! Types shared by the function and the client: what goes over the wire.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decision::Access;
pub use crate::status::SessionStatus;
use crate::status::{BreakGlassStatus, RequestStatus};

/// Header carrying a presigned STS GetCallerIdentity request (base64 JSON of
/// [`IdentityEnvelope`]).
pub const IDENTITY_HEADER: &str = "x-tvm-identity";
/// Signed header that binds a presigned identity to one tvm deployment.
pub const SERVER_ID_HEADER: &str = "x-tvm-server-id";
/// The only body a presigned identity may carry.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// Largest request body tvm reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `POST /v1/credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// The answer to a successful vend.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialsResponse {
    pub version: u8,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339, UTC.
    pub expiration: String,
    pub session_id: String,
    pub profile: String,
    pub role_arn: String,
}

impl fmt::Debug for CredentialsResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsResponse")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("session_id", &self.session_id)
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .finish()
    }
}

/// What `credential_process` must print: exactly the fields the SDKs read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessCredentials {
    pub version: u8,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

impl From<CredentialsResponse> for ProcessCredentials {
    fn from(c: CredentialsResponse) -> Self {
        Self {
            version: 1,
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration: c.expiration,
        }
    }
}

impl fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCredentials")
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    AccessDenied,
    ApprovalRequired,
    SessionRevoked,
    RateLimited,
    PolicyInvalid,
    NotFound,
    /// The state does not allow it (approving a decided request): 409.
    Conflict,
    DependencyFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::Unauthenticated => "Unauthenticated",
            Self::AccessDenied => "AccessDenied",
            Self::ApprovalRequired => "ApprovalRequired",
            Self::SessionRevoked => "SessionRevoked",
            Self::RateLimited => "RateLimited",
            Self::PolicyInvalid => "PolicyInvalid",
            Self::NotFound => "NotFound",
            Self::Conflict => "Conflict",
            Self::DependencyFailed => "DependencyFailed",
        }
    }
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
    /// For `ApprovalRequired`: the pending request to get approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
}

/// `GET /v1/profiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfilesResponse {
    pub caller: String,
    pub profiles: Vec<ProfileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEntry {
    pub profile: String,
    pub role_arn: String,
    pub access: Access,
    pub default_duration: u32,
    pub max_duration: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    pub version: String,
}

/// A presigned STS GetCallerIdentity request, as the client signed it. The
/// server never takes a URL or host from it: it replays to its own STS
/// endpoint, and only if the signed host is that endpoint's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityEnvelope {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One session, as `GET /v1/sessions` lists it. Never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub session_id: String,
    /// The role or user behind the caller.
    pub caller: String,
    pub caller_arn: String,
    pub profile: String,
    pub role_arn: String,
    pub rule: String,
    pub via: String,
    /// The approval request or break-glass event it was vended under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_id: Option<String>,
    /// When the caller was a session tvm vended: the caller the first vend
    /// of the chain was for (whose revocation reaches this one too), and that
    /// vend's grant tag. `source_identity` is then the first vend's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_via: Option<String>,
    pub duration_seconds: u32,
    /// Epoch seconds.
    pub issued_at: i64,
    pub expires_at: i64,
    pub source_identity: String,
    /// The RoleSessionName (CloudTrail's user name for the session's
    /// calls); absent on records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    pub status: SessionStatus,
    /// When the session was revoked (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
}

/// `POST /v1/sessions/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessionRequest {
    pub reason: String,
    /// How long new vends for the session's caller and profile stay refused (default 3600).
    #[serde(default)]
    pub duration_seconds: Option<u32>,
}

/// `POST /v1/callers/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCallerRequest {
    /// A caller ARN, or the role or user behind it.
    pub principal: String,
    pub reason: String,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
}

/// The answer to a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationResponse {
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Epoch seconds until which new vends are refused.
    pub until: i64,
    /// Sessions whose credentials are now denied on their role.
    pub sessions_revoked: Vec<String>,
}

/// `POST /v1/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub profile: String,
    pub justification: String,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// The request attributes the vend under the approval will send: the
    /// approval is for these and no others.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// An approval request, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub profile: String,
    /// The role or user behind the requester.
    pub caller: String,
    /// The exact requesting caller, session name included: only it vends
    /// under the approval.
    pub caller_arn: String,
    /// An oidc requester's persons (see `Principal::persons`): none of them
    /// approves the request under an AWS identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<String>,
    pub justification: String,
    pub duration_seconds: u32,
    pub status: RequestStatus,
    pub created_at: i64,
    /// Pending until then; once approved, vends until `valid_until`.
    pub expires_at: i64,
    pub required: u32,
    /// Distinct approving persons so far (session or user names, see the
    /// security model).
    pub approvals: Vec<String>,
    /// The ARNs they approved with.
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// The request attributes the approval is for.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// What the profile's rule binds for this caller and these attributes:
    /// what the approvers approve. A vend must render the same.
    #[serde(default)]
    pub bindings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// `GET /v1/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsResponse {
    pub requests: Vec<RequestView>,
}

/// `POST /v1/breakglass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBreakGlass {
    pub profile: String,
    pub reason: String,
    pub justification: String,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
}

/// A break-glass event, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassView {
    pub id: String,
    pub profile: String,
    pub caller: String,
    pub caller_arn: String,
    pub reason: String,
    pub justification: String,
    pub status: BreakGlassStatus,
    pub opened_at: i64,
    pub ends_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// Whether anything was vended under it (so closing it has something to
    /// revoke); events opened before tvm counted say `true`.
    #[serde(default)]
    pub vended: bool,
}

/// `GET /v1/breakglass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassList {
    pub events: Vec<BreakGlassView>,
}

/// What tvm publishes to `TVM_NOTIFY_TOPIC_ARN` (JSON, schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub version: u8,
    /// `request.created`, `request.approved`, `request.denied`,
    /// `request.cancelled`, `breakglass.opened`, `breakglass.closed`,
    /// `session.revoked`, `caller.revoked`. Also a message attribute `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Epoch seconds.
    pub at: i64,
    /// Who did it (caller ARN).
    pub actor: String,
    /// Whom it is about (the role or user behind the caller).
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The request, event or session id (for a caller revocation: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Reason, justification, status, until: what the type carries.
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_credential_types_never_shows_a_secret() {
        let c = CredentialsResponse {
            version: 1,
            access_key_id: "ASIAVENDEDKEYID".into(),
            secret_access_key: "vended-secret".into(),
            session_token: "vended-token".into(),
            expiration: "2026-11-23T01:00:00Z".into(),
            session_id: "s".into(),
            profile: "p".into(),
            role_arn: "r".into(),
        };
        let p = ProcessCredentials::from(c.clone());
        for shown in [
            format!("{c:?}"),
            format!("{p:?}"),
            format!("{c:#?}"),
            format!("{p:#?}"),
        ] {
            for secret in ["ASIAVENDEDKEYID", "vended-secret", "vended-token"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
}
