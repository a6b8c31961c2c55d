//! `tvm exec`: run one command with the profile's credentials in its environment.

use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::error::CliError;
use crate::flags::{Global, VendArgs};
use crate::output::time_left;

#[derive(Args)]
pub struct Exec {
    #[command(flatten)]
    vend: VendArgs,
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<String>,
}

impl Exec {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let creds = self.vend.vend(&global.endpoint).await?;
        if std::io::stderr().is_terminal() {
            if let Ok(exp) = creds.expiration.parse::<DateTime<Utc>>() {
                eprintln!(
                    "tvm: {} as {} ({})",
                    self.vend.profile,
                    creds.role_arn,
                    time_left(exp, Utc::now())
                );
            }
        }
        let command = &self.command;
        let status = tokio::process::Command::new(&command[0])
            .args(&command[1..])
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_PROFILE")
            .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &creds.session_token)
            .env("AWS_CREDENTIAL_EXPIRATION", &creds.expiration)
            .env("TVM_SESSION_ID", &creds.session_id)
            .status()
            .await
            .map_err(|source| CliError::Run {
                program: command[0].clone(),
                source,
            })?;
        Ok(exit_code(status))
    }
}

/// A child's exit as ours: its code, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::from(1),
    }
}
