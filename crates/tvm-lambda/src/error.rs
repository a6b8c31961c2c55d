//! Every way a request can fail, and the one place that maps a failure to an
//! HTTP status and a stable code. 4xx messages say what the caller can fix;
//! 5xx messages are generic and the cause goes to the log.

use tvm_core::api::ErrorCode;

/// The AWS service a dependency failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Ssm,
    DynamoDb,
    Sts,
    Iam,
    Sns,
}

impl Dependency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssm => "ssm",
            Self::DynamoDb => "dynamodb",
            Self::Sts => "sts",
            Self::Iam => "iam",
            Self::Sns => "sns",
        }
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("out of time")]
    OutOfTime,
    #[error("{dependency:?} failed: {source}")]
    Dependency {
        dependency: Dependency,
        #[source]
        source: BoxError,
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
            Self::MethodNotAllowed => (405, ErrorCode::BadRequest, "method not allowed on this route".into()),
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
        }
    }
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
    fn unknown_and_refused_profiles_answer_alike() {
        assert_eq!(
            ApiError::AccessDenied.answer(Some("a")).1,
            ErrorCode::AccessDenied
        );
    }
}
