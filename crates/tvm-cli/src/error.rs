//! The `tvm` binary's one error type. Every message says what to do next;
//! `main` prints it after `tvm: ` and exits 1.

use tvm_client::ClientError;
use tvm_core::api::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag, file or environment the user must fix; the message says how.
    #[error("{0}")]
    Usage(String),
    /// tvm, or the way to it, refused or failed. `profile` is the one the
    /// command was about, for the hint.
    #[error("{}", explain(.source, .profile.as_deref()))]
    Tvm {
        #[source]
        source: ClientError,
        profile: Option<String>,
    },
    /// A command tvm was asked to run could not be started.
    #[error("could not run {program:?}: {source}")]
    Run {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// A failed call to tvm about `profile` (if the command names one).
    pub fn tvm(profile: Option<&str>) -> impl FnOnce(ClientError) -> Self + '_ {
        move |source| Self::Tvm {
            source,
            profile: profile.map(str::to_string),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::Usage(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        Self::Usage(message.to_string())
    }
}

/// Turn a client error into what the user should do next.
fn explain(e: &ClientError, profile: Option<&str>) -> String {
    match e {
        ClientError::Api { body, .. } => {
            let mut m = e.to_string();
            match body.code {
                ErrorCode::ApprovalRequired => {
                    if let Some(id) = &body.approval_request_id {
                        m.push_str(&format!("\n  pending approval request: {id}"));
                    }
                    m.push_str(&format!(
                        "\n  ask an approver, or create a request: tvm request --profile {} --justification \"...\"",
                        profile.unwrap_or("PROFILE")
                    ));
                }
                ErrorCode::AccessDenied => {
                    m.push_str("\n  `tvm profiles` lists the profiles you can get")
                }
                ErrorCode::Unauthenticated => m.push_str(
                    "\n  check the AWS credentials tvm signs with: `aws sts get-caller-identity`",
                ),
                _ => {}
            }
            m
        }
        ClientError::Credentials(_) => format!(
            "{e}\n  tvm signs with your AWS credentials: set AWS_PROFILE or the AWS_* variables"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvm_core::api::ErrorBody;

    fn refused(code: ErrorCode, approval_request_id: Option<&str>) -> ClientError {
        ClientError::Api {
            status: 403,
            body: ErrorBody {
                code,
                message: "no".into(),
                request_id: "r1".into(),
                approval_request_id: approval_request_id.map(str::to_string),
            },
        }
    }

    #[test]
    fn an_approval_required_refusal_says_how_to_ask() {
        let e = CliError::tvm(Some("payroll"))(refused(ErrorCode::ApprovalRequired, Some("q7")));
        assert_eq!(
            e.to_string(),
            "ApprovalRequired: no (request id r1)\n  pending approval request: q7\n  ask an approver, or create a request: tvm request --profile payroll --justification \"...\""
        );
    }

    #[test]
    fn access_denied_points_at_tvm_profiles() {
        let e = CliError::tvm(None)(refused(ErrorCode::AccessDenied, None));
        assert_eq!(
            e.to_string(),
            "AccessDenied: no (request id r1)\n  `tvm profiles` lists the profiles you can get"
        );
    }

    #[test]
    fn missing_signing_credentials_point_at_the_aws_chain() {
        let e = CliError::tvm(None)(ClientError::Credentials("none".into()));
        assert!(e
            .to_string()
            .ends_with("set AWS_PROFILE or the AWS_* variables"));
    }
}
