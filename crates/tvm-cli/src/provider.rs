//! tvm as an aws-config credentials provider, for Rust services in Lambda
//! and ECS: the same fetch-ahead, single-flight cache as `tvm serve`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use tvm_client::provider::TvmCredentialsProvider;
//! let provider = TvmCredentialsProvider::builder("orders-tenant")
//!     .endpoint("https://abc123.execute-api.eu-west-1.amazonaws.com")
//!     .build()
//!     .await?;
//! let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .credentials_provider(provider)
//!     .load()
//!     .await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use tvm_core::api::CredentialsRequest;

use crate::cache::{CredentialCache, RefreshPolicy, TvmFetch};
use crate::client::{ClientError, Endpoint, TvmClient};

#[derive(Clone)]
pub struct TvmCredentialsProvider {
    cache: Arc<CredentialCache>,
}

impl std::fmt::Debug for TvmCredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TvmCredentialsProvider")
            .finish_non_exhaustive()
    }
}

pub struct Builder {
    request: CredentialsRequest,
    endpoint: Option<String>,
    region: Option<String>,
    policy: RefreshPolicy,
}

impl TvmCredentialsProvider {
    pub fn builder(profile: impl Into<String>) -> Builder {
        Builder {
            request: CredentialsRequest {
                profile: profile.into(),
                duration_seconds: None,
                attributes: Default::default(),
            },
            endpoint: None,
            region: None,
            policy: RefreshPolicy::default(),
        }
    }

    /// The cache behind the provider (for metrics and tests).
    pub fn cache(&self) -> &Arc<CredentialCache> {
        &self.cache
    }
}

impl Builder {
    /// tvm's base URL; default `TVM_ENDPOINT`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The region tvm's API is signed for; default `AWS_REGION`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    pub fn duration_seconds(mut self, seconds: u32) -> Self {
        self.request.duration_seconds = Some(seconds);
        self
    }

    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.attributes.insert(name.into(), value.into());
        self
    }

    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sign with the standard credential chain (the task or function role).
    pub async fn build(self) -> Result<TvmCredentialsProvider, ClientError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let url = self
            .endpoint
            .or_else(|| env("TVM_ENDPOINT"))
            .ok_or_else(|| {
                ClientError::Config("no tvm endpoint: set TVM_ENDPOINT or call .endpoint()".into())
            })?;
        let region = self
            .region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let client = TvmClient::from_env(Endpoint {
            url,
            region,
            presign: None,
        })
        .await?;
        Ok(TvmCredentialsProvider {
            cache: CredentialCache::new(
                Box::new(TvmFetch {
                    client,
                    request: self.request,
                }),
                self.policy,
            ),
        })
    }
}

impl ProvideCredentials for TvmCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let held = self
                .cache
                .get()
                .await
                .map_err(|e| CredentialsError::provider_error(e.to_string()))?;
            let c = &held.credentials;
            let expiry = SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(held.usable_until.timestamp().max(0) as u64);
            Ok(Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                Some(c.session_token.clone()),
                Some(expiry),
                "tvm",
            ))
        })
    }
}
