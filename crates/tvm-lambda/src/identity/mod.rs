//! Who is calling: an ordered list of identity sources behind one seam.
//! Each source looks at the request for what it understands and either
//! finds a caller, finds nothing (the next source is asked), or refuses.
//! Headers and body never contribute to an identity except through a
//! source that verifies them (the presigned GetCallerIdentity, replayed to
//! STS).
//!
//! - `apigw`: the IAM identity API Gateway (REST v1, HTTP API v2) or a
//!   function URL put in the request context after checking SigV4;
//! - `presigned`: a presigned STS GetCallerIdentity in `X-Tvm-Identity`,
//!   checked here and replayed (`replay`) to tvm's own STS endpoint.
//!
//! A new source (OIDC, say) is one more implementation of [`IdentitySource`]
//! added to the list in `main.rs`.

pub mod apigw;
pub mod presigned;
pub mod replay;

use chrono::{DateTime, Utc};
use lambda_http::Body;
use tvm_core::principal::{Principal, PrincipalError};

use crate::aws::{AwsError, BoxFut};

/// Why a caller could not be established. Every variant is a 401: the caller
/// must sign differently. The messages say what, never echo a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the request carries no IAM identity; sign it with SigV4 (service execute-api)")]
    Missing,
    #[error("the caller ARN was refused: {0}")]
    BadPrincipal(#[from] PrincipalError),
    #[error("the request context's account does not match the caller ARN")]
    AccountMismatch,
    #[error("X-Tvm-Identity: {0}")]
    Presigned(&'static str),
    #[error("the presigned GetCallerIdentity was refused by STS (expired or bad signature)")]
    Rejected,
}

/// Why a source could not establish a caller: a refusal (401, the caller
/// must sign differently) or a dependency that failed (503).
#[derive(Debug, thiserror::Error)]
pub enum IdentityFailure {
    #[error(transparent)]
    Refused(#[from] IdentityError),
    #[error(transparent)]
    Unavailable(#[from] AwsError),
}

/// One way of knowing who is calling.
pub trait IdentitySource: Send + Sync {
    /// The source's name in the decision log (`identity_source`).
    fn name(&self) -> &'static str;
    /// The caller this source finds in the request; `Ok(None)` when the
    /// request carries nothing for it.
    fn identify<'a>(
        &'a self,
        req: &'a http::Request<Body>,
        now: DateTime<Utc>,
    ) -> BoxFut<'a, Result<Option<Principal>, IdentityFailure>>;
}

/// The identity sources of a deployment, asked in order.
pub struct Identities(Vec<Box<dyn IdentitySource>>);

impl Identities {
    pub fn new(sources: Vec<Box<dyn IdentitySource>>) -> Self {
        Self(sources)
    }

    /// The first caller a source finds, and that source's name; on failure,
    /// the source that refused (none when no source found anything).
    pub async fn caller(
        &self,
        req: &http::Request<Body>,
        now: DateTime<Utc>,
    ) -> Result<(Principal, &'static str), (IdentityFailure, Option<&'static str>)> {
        for source in &self.0 {
            match source.identify(req, now).await {
                Ok(Some(p)) => return Ok((p, source.name())),
                Ok(None) => {}
                Err(e) => return Err((e, Some(source.name()))),
            }
        }
        Err((IdentityError::Missing.into(), None))
    }
}
