//! Every way a request can fail, and the one place that maps a failure to an
//! HTTP status and a stable code. 4xx messages say what the caller can fix;
//! 5xx messages are generic and the cause goes to the log.
//!
//! Typed failures from elsewhere convert with `From` so that `?` works at
//! every boundary: adapter errors ([`AwsError`]), identity failures, denials
//! and refusals from `tvm_core`. Nothing else builds an HTTP error.

use tvm_core::api::ErrorCode;
use tvm_core::approval::{BadAsk, BreakGlassError, Refusal};
use tvm_core::decision::Denial;
use tvm_core::revocation::TermsError;
use tvm_core::vend::PlanError;

use crate::aws::{AwsError, BoxError, Dependency};
use crate::identity::{IdentityError, IdentityFailure};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unauthenticated(String),
    /// Deliberately the same for an unknown profile and a refused one.
    #[error("not allowed")]
    AccessDenied,
    /// A refusal of a caller a rule applies to, that says what to do (a
    /// grant that would end too soon, an approval for other attributes).
    #[error("{0}")]
    Forbidden(String),
    #[error("approval required")]
    ApprovalRequired { request_id: Option<String> },
    #[error("revoked")]
    SessionRevoked,
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    #[error("{0}")]
    PolicyInvalid(String),
    #[error("no route {method} {path}")]
    NotFound { method: String, path: String },
    /// A thing that does not exist, or that the caller may not see (alike).
    #[error("{0}")]
    Missing(String),
    /// The route exists with other methods: listed in the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// The stored state does not allow the change (a decided request).
    #[error("{0}")]
    Conflict(String),
    #[error("out of time")]
    OutOfTime,
    #[error("{dependency:?} failed: {source}")]
    Dependency {
        dependency: Dependency,
        #[source]
        source: BoxError,
    },
    /// A failure after a change that stands: the answer says what was done.
    #[error("{done}; then: {error}")]
    After {
        done: &'static str,
        #[source]
        error: Box<ApiError>,
    },
    /// A revocation that did not complete, and how far it got.
    #[error("revocation incomplete: {cause}")]
    NotRevoked {
        stage: Stage,
        #[source]
        cause: AwsError,
    },
}

impl ApiError {
    pub fn dependency(dependency: Dependency, source: impl Into<BoxError>) -> Self {
        Self::Dependency {
            dependency,
            source: source.into(),
        }
    }

    /// Status, stable code, and the message the caller sees.
    pub fn answer(&self, profile: Option<&str>) -> (u16, ErrorCode, String) {
        match self {
            Self::BadRequest(m) => (400, ErrorCode::BadRequest, m.clone()),
            Self::PayloadTooLarge(_) => (413, ErrorCode::BadRequest, self.to_string()),
            Self::Unauthenticated(m) => (401, ErrorCode::Unauthenticated, m.clone()),
            Self::AccessDenied => (
                403,
                ErrorCode::AccessDenied,
                match profile {
                    Some(p) => format!("you may not have credentials for profile {p:?}, or it does not exist; `tvm profiles` lists what you can get"),
                    None => "you may not do this".into(),
                },
            ),
            Self::Forbidden(m) => (403, ErrorCode::AccessDenied, m.clone()),
            Self::ApprovalRequired { request_id } => (
                403,
                ErrorCode::ApprovalRequired,
                match request_id {
                    Some(id) => format!("this profile needs an approved request; request {id} is pending"),
                    None => "this profile needs an approved request; create one with `tvm request`".into(),
                },
            ),
            Self::SessionRevoked => (
                403,
                ErrorCode::SessionRevoked,
                "your credentials for this profile have been revoked; ask the security team".into(),
            ),
            Self::RateLimited { retry_after } => (
                429,
                ErrorCode::RateLimited,
                format!("too many requests for this profile; retry after {retry_after} s"),
            ),
            Self::PolicyInvalid(m) => (500, ErrorCode::PolicyInvalid, m.clone()),
            Self::NotFound { .. } | Self::Missing(_) => (404, ErrorCode::NotFound, self.to_string()),
            Self::MethodNotAllowed { allow } => (405, ErrorCode::BadRequest, format!("method not allowed on this route; it allows {allow}")),
            Self::Conflict(m) => (409, ErrorCode::Conflict, m.clone()),
            Self::OutOfTime => (
                503,
                ErrorCode::DependencyFailed,
                "tvm ran out of time waiting for AWS; no credentials were issued, try again".into(),
            ),
            Self::Dependency { dependency, .. } => (
                503,
                ErrorCode::DependencyFailed,
                format!("a dependency ({}) failed; no credentials were issued, try again", dependency.as_str()),
            ),
            Self::NotRevoked { stage, cause } => not_revoked(*stage, cause),
            Self::After { done, error } => {
                let (status, code, message) = error.answer(profile);
                (status, code, format!("{done}; {message}"))
            }
        }
    }

    /// The dependency behind a 5xx, for the log line.
    pub fn failed_dependency(&self) -> Option<Dependency> {
        match self {
            Self::After { error, .. } => error.failed_dependency(),
            Self::Dependency { dependency, .. } => Some(*dependency),
            Self::NotRevoked { cause, .. } => cause.dependency(),
            _ => None,
        }
    }
}

/// How far a revocation got before it failed (its steps run in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing stored, written or marked.
    Nothing,
    /// Stored in the revocation state, but not written to every account's
    /// policy (any later revocation writes it too).
    Stored,
    /// Every account's policy denies it; new vends are not refused yet, or
    /// the sessions not marked.
    Denied,
}

/// What a revocation that did not complete tells the security team: what
/// failed, what already holds, and that the same request completes it.
fn not_revoked(stage: Stage, cause: &AwsError) -> (u16, ErrorCode, String) {
    const RETRY: &str = "retry the same request to complete it";
    let failed = |what: String| {
        let message = match stage {
            Stage::Denied => format!("the revocation is incomplete: credentials already issued are denied, but {what} before new vends were refused and sessions marked; {RETRY}"),
            Stage::Stored => format!("the revocation did not take effect everywhere: it is stored, but {what}, so credentials already issued may still work there; nothing was marked revoked; {RETRY}"),
            Stage::Nothing => format!(
                "the revocation did not take effect: {what}; nothing was marked revoked; {RETRY}"
            ),
        };
        (503, ErrorCode::DependencyFailed, message)
    };
    match cause {
        AwsError::Stored(inner) => not_revoked(Stage::Stored, inner),
        AwsError::NotDeployed { account, missing } => failed(format!(
            "account {account} has no {missing} (deploy tvm's account resources there: docs/revocation.md)"
        )),
        AwsError::RevocationFailed {
            account,
            dependency,
            ..
        } => failed(format!("{dependency} failed for account {account}")),
        AwsError::Unavailable { dependency, .. } => {
            failed(format!("a dependency ({dependency}) failed"))
        }
        AwsError::PolicyFull(full) => (
            409,
            ErrorCode::Conflict,
            format!("{full}; nothing was revoked"),
        ),
        _ => failed("an unexpected failure".into()),
    }
}

impl From<AwsError> for ApiError {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::Unavailable { dependency, source } => Self::Dependency { dependency, source },
            AwsError::Conflict(m) => Self::Conflict(m),
            AwsError::Missing(m) => Self::Missing(m),
            AwsError::Revoked => Self::SessionRevoked,
            AwsError::GateClosed => Self::Forbidden(
                "the approval or break-glass event this vend relied on has just ended; no credentials were issued".into(),
            ),
            AwsError::RateLimited { retry_after } => Self::RateLimited { retry_after },
            AwsError::NotDeployed { .. }
            | AwsError::RevocationFailed { .. }
            | AwsError::PolicyFull(_)
            | AwsError::Stored(_) => Self::NotRevoked {
                stage: Stage::Nothing,
                cause: e,
            },
            AwsError::PolicyTooLarge => Self::PolicyInvalid(
                "the rendered session policy and tags are too large for STS (PackedPolicyTooLarge); shorten the profile's session_policy or session_tags".into(),
            ),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        Self::Unauthenticated(e.to_string())
    }
}

impl From<IdentityFailure> for ApiError {
    fn from(e: IdentityFailure) -> Self {
        match e {
            IdentityFailure::Refused(e) => e.into(),
            IdentityFailure::Unavailable(e) => e.into(),
        }
    }
}

/// Unknown, denied and gated profiles answer alike (403); what the caller
/// sent wrong is a 400; a profile that cannot bind for this caller is a
/// policy problem (500), unless what it cannot bind is an oidc caller's
/// subject or claim (403: the token's problem).
impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::UnknownProfile
            | Denial::Denied { .. }
            | Denial::NoMatchingRule
            | Denial::VendedSession { .. }
            | Denial::BreakGlassRequired { .. } => Self::AccessDenied,
            Denial::EndsTooSoon { .. } | Denial::ApprovedForOther { .. } => {
                Self::Forbidden(d.to_string())
            }
            Denial::ApprovalRequired { .. } => Self::ApprovalRequired { request_id: None },
            Denial::BadDuration | Denial::BadAttribute { .. } => Self::BadRequest(d.to_string()),
            Denial::Unbindable { .. } => Self::PolicyInvalid(d.to_string()),
            Denial::CallerValue { .. } | Denial::ValuesTooLong { .. } => {
                Self::Forbidden(d.to_string())
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(_: Refusal) -> Self {
        Self::AccessDenied
    }
}

impl From<BadAsk> for ApiError {
    fn from(e: BadAsk) -> Self {
        Self::BadRequest(e.0)
    }
}

impl From<BreakGlassError> for ApiError {
    fn from(e: BreakGlassError) -> Self {
        match e {
            BreakGlassError::Refused(r) => r.into(),
            BreakGlassError::Bad(b) => b.into(),
        }
    }
}

impl From<TermsError> for ApiError {
    fn from(e: TermsError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let reason = e.to_string();
        match e {
            PlanError::ValuesTooLong(_) => Denial::ValuesTooLong { reason }.into(),
            e if e.from_caller() => Denial::CallerValue { reason }.into(),
            _ => Self::PolicyInvalid(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_failure_never_shows_its_cause() {
        let e = ApiError::dependency(
            Dependency::Sts,
            "AccessDenied: User arn:aws:iam::1:user/x secret",
        );
        let (status, code, message) = e.answer(Some("p"));
        assert_eq!((status, code), (503, ErrorCode::DependencyFailed));
        assert!(!message.contains("AccessDenied") && !message.contains("arn:"));
    }

    #[test]
    fn a_state_conflict_is_409_and_says_what_happened() {
        let (status, code, message) =
            ApiError::from(AwsError::Conflict("request r is denied".into())).answer(None);
        assert_eq!(
            (status, code, message.as_str()),
            (409, ErrorCode::Conflict, "request r is denied")
        );
    }

    #[test]
    fn unknown_and_refused_profiles_answer_alike() {
        assert_eq!(
            ApiError::AccessDenied.answer(Some("a")).1,
            ErrorCode::AccessDenied
        );
    }
}
