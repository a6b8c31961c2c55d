//! Who is calling: an ordered list of identity sources behind one seam.
//! Each source looks at the request for what it understands and either
//! finds a caller, finds nothing (the next source is asked), or refuses.
//! Headers and body never contribute to an identity except through a
//! source that verifies them (the presigned GetCallerIdentity, replayed to
//! STS).
//!
//! - `apigw`: the IAM identity API Gateway (REST v1, HTTP API v2) or a
//!   function URL put in the request context after checking SigV4, or the
//!   claims an HTTP API JWT authorizer verified (an oidc caller);
//! - `presigned`: a presigned STS GetCallerIdentity in `X-Tvm-Identity`,
//!   checked here and replayed (`replay`) to tvm's own STS endpoint;
//! - `jwt`: `Authorization: Bearer <JWT>`, verified here with the keys of
//!   its issuer (`jwks`): an oidc caller.
//!
//! A new source is one more implementation of [`IdentitySource`] added to
//! the list in `main.rs`.

pub mod apigw;
pub mod jwks;
pub mod jwt;
pub mod presigned;
pub mod replay;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_http::Body;
use tvm_core::principal::{Principal, PrincipalError};

use crate::aws::{AwsError, BoxFut};

/// The HTTPS client (over `tls`: the AWS roots for the presigned replay to
/// STS, the web's for issuers' keys, `crate::tls`; plain HTTP for local
/// endpoints) of the sources that call out themselves. Built once, at cold
/// start.
pub(crate) fn http_client<B>(
    tls: rustls::ClientConfig,
) -> Result<
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        B,
    >,
    String,
>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

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
    #[error("the bearer token was refused: {0}")]
    Bearer(&'static str),
    #[error("the bearer token was refused: {0}")]
    Token(tvm_core::oidc::TokenError),
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

    /// Wait, at most `bound`, for work the source started in the
    /// background (a key refresh) before the answer goes.
    fn settle<'a>(&'a self, _bound: Duration) -> BoxFut<'a, ()> {
        Box::pin(async {})
    }
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

    /// Every source's background work, at most `bound`.
    pub async fn settle(&self, bound: Duration) {
        futures_util::future::join_all(self.0.iter().map(|s| s.settle(bound))).await;
    }
}
