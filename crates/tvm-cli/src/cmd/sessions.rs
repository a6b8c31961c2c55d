//! `tvm sessions` and `tvm revoke`.

use std::process::ExitCode;

use clap::Args;
use tvm_client::api::Api;

use crate::error::CliError;
use crate::flags::Global;
use crate::output::{output, sessions_table, show_revocation};

#[derive(Args)]
pub struct Sessions {
    #[arg(long, conflicts_with = "profile")]
    caller: Option<String>,
    #[arg(long)]
    profile: Option<String>,
    /// Only sessions whose credentials are still valid.
    #[arg(long)]
    active: bool,
}

impl Sessions {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let list = Api(&client)
            .sessions(self.caller.as_deref(), self.profile.as_deref(), self.active)
            .await
            .map_err(CliError::tvm(None))?;
        output(global.json, &list, sessions_table)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Revoke {
    #[arg(required_unless_present = "caller", conflicts_with = "caller")]
    session: Option<String>,
    #[arg(long)]
    caller: Option<String>,
    #[arg(long)]
    reason: String,
    /// How long new vends stay refused (seconds, default 3600).
    #[arg(long)]
    duration: Option<u32>,
}

impl Revoke {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let api = Api(&client);
        let r = match (self.session, self.caller) {
            (Some(id), None) => api.revoke_session(&id, &self.reason, self.duration).await,
            (None, Some(principal)) => {
                api.revoke_caller(&principal, &self.reason, self.duration)
                    .await
            }
            _ => return Err("give a session id or --caller ARN".into()),
        }
        .map_err(CliError::tvm(None))?;
        output(global.json, &r, show_revocation)?;
        Ok(ExitCode::SUCCESS)
    }
}
