//! Flags shared by several commands: the global ones (where tvm is, `--json`),
//! declared once on the top-level command, and the vend flags of the three
//! commands that get credentials.

use std::collections::BTreeMap;

use clap::Args;
use tvm_client::client::{Endpoint, PresignTarget, TvmClient};
use tvm_client::settings::FileSettings;
use tvm_core::api::{CredentialsRequest, CredentialsResponse};

use crate::error::CliError;

/// Accepted before or after any subcommand; commands that do not talk to tvm
/// (or print nothing for scripts) ignore them.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct EndpointArgs {
    /// tvm API base URL (else TVM_ENDPOINT, else tvm_endpoint in the AWS profile, else [tvm] endpoint).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// Region the API is signed for (else TVM_REGION, the AWS config, AWS_REGION, us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Also prove identity with a presigned STS GetCallerIdentity (for fronts without IAM auth).
    #[arg(long, global = true)]
    pub server_id: Option<String>,
    /// STS endpoint the deployment replays presigned identities to (default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, or the regional endpoint).
    #[arg(long, global = true)]
    pub sts_endpoint: Option<String>,
}

impl EndpointArgs {
    /// Flags, then `TVM_*`, then the AWS config file (see `settings`).
    pub fn resolve(&self) -> Result<Endpoint, CliError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let file = FileSettings::load();
        let url = self
            .endpoint
            .clone()
            .or_else(|| env("TVM_ENDPOINT"))
            .or(file.endpoint)
            .ok_or("no tvm endpoint: pass --endpoint, set TVM_ENDPOINT, or add `endpoint = URL` to a [tvm] section of ~/.aws/config")?;
        let region = self
            .region
            .clone()
            .or_else(|| env("TVM_REGION"))
            .or(file.region)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let presign = self
            .server_id
            .clone()
            .or_else(|| env("TVM_SERVER_ID"))
            .or(file.server_id)
            .map(|server_id| PresignTarget {
                server_id,
                sts_endpoint: self
                    .sts_endpoint
                    .clone()
                    .or_else(|| env("AWS_ENDPOINT_URL_STS"))
                    .or_else(|| env("AWS_ENDPOINT_URL"))
                    .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com")),
            });
        Ok(Endpoint {
            url,
            region,
            presign,
        })
    }

    /// A client for the resolved endpoint, signing with the standard AWS chain.
    pub async fn client(&self) -> Result<TvmClient, CliError> {
        TvmClient::from_env(self.resolve()?)
            .await
            .map_err(CliError::tvm(None))
    }
}

/// What to vend: `credential-process`, `serve` and `exec`.
#[derive(Args, Debug)]
pub struct VendArgs {
    #[arg(long)]
    pub profile: String,
    /// Session length in seconds (900-3600); capped by the profile.
    #[arg(long)]
    pub duration: Option<u32>,
    /// Request attributes the profile accepts, as KEY=VALUE.
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
}

impl VendArgs {
    pub fn request(&self) -> Result<CredentialsRequest, CliError> {
        Ok(CredentialsRequest {
            profile: self.profile.clone(),
            duration_seconds: self.duration,
            attributes: attributes(&self.attributes)?,
        })
    }

    /// Vend once from the endpoint the flags name.
    pub async fn vend(&self, endpoint: &EndpointArgs) -> Result<CredentialsResponse, CliError> {
        let request = self.request()?;
        endpoint
            .client()
            .await?
            .credentials(&request)
            .await
            .map_err(CliError::tvm(Some(&request.profile)))
    }
}

/// `--attribute KEY=VALUE` pairs.
pub fn attributes(pairs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::Usage(format!("--attribute {p:?} must be KEY=VALUE")))
        })
        .collect()
}
