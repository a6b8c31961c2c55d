//! `tvm breakglass open|list|close`: emergency access.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tvm_client::api::Api;

use crate::error::CliError;
use crate::flags::Global;
use crate::output::{break_glass_table, output, show_break_glass};

#[derive(Subcommand)]
pub enum BreakGlass {
    /// Open an event: while it is open you can vend the profile.
    Open(Open),
    /// Open events: yours (the security team sees all).
    List,
    /// Close an event.
    Close { id: String },
}

#[derive(Args)]
pub struct Open {
    #[arg(long)]
    profile: String,
    /// incident, outage, security or data-recovery.
    #[arg(long)]
    reason: String,
    #[arg(long)]
    justification: String,
    #[arg(long)]
    duration: Option<u32>,
}

impl BreakGlass {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let api = Api(&client);
        match self {
            Self::Open(o) => {
                let e = api
                    .open_break_glass(&o.profile, &o.reason, &o.justification, o.duration)
                    .await
                    .map_err(CliError::tvm(Some(&o.profile)))?;
                output(global.json, &e, |e| {
                    format!(
                        "{}\n  vend now: tvm credential-process --profile {}",
                        show_break_glass(e),
                        e.profile
                    )
                })?;
            }
            Self::List => {
                let list = api.break_glass().await.map_err(CliError::tvm(None))?;
                output(global.json, &list, break_glass_table)?;
            }
            Self::Close { id } => {
                let e = api
                    .close_break_glass(&id)
                    .await
                    .map_err(CliError::tvm(None))?;
                output(global.json, &e, show_break_glass)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
