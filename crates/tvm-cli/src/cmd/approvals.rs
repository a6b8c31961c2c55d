//! Approval requests: `tvm request`, `requests`, `approve`, `deny`, `cancel`.

use std::process::ExitCode;

use clap::Args;
use tvm_client::api::Api;

use crate::error::CliError;
use crate::flags::Global;
use crate::output::{output, requests_table, show_request};

#[derive(Args)]
pub struct Request {
    #[arg(long)]
    profile: String,
    #[arg(long)]
    justification: String,
    #[arg(long)]
    duration: Option<u32>,
    /// Request attributes the vend will send, as KEY=VALUE: the approval is
    /// for these and no others.
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
}

impl Request {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let attributes = crate::flags::attributes(&self.attributes)?;
        let client = global.endpoint.client().await?;
        let r = Api(&client)
            .create_request(
                &self.profile,
                &self.justification,
                self.duration,
                &attributes,
            )
            .await
            .map_err(CliError::tvm(Some(&self.profile)))?;
        output(global.json, &r, |r| {
            format!(
                "{}\n  an approver runs: tvm approve {}",
                show_request(r),
                r.id
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Requests {
    #[arg(long, default_value = "pending")]
    status: String,
}

impl Requests {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let list = Api(&client)
            .requests(&self.status)
            .await
            .map_err(CliError::tvm(None))?;
        output(global.json, &list, requests_table)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `approve`, `deny` or `cancel` one request: the same flags, one route each.
#[derive(Args)]
pub struct Act {
    id: String,
}

impl Act {
    /// `action` is the last segment of `/v1/requests/{id}/{action}`.
    pub async fn run(self, action: &str, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let r = Api(&client)
            .act(&self.id, action)
            .await
            .map_err(CliError::tvm(None))?;
        output(global.json, &r, show_request)?;
        Ok(ExitCode::SUCCESS)
    }
}
