//! `tvm credential-process`: credentials as `credential_process` JSON on stdout.

use std::process::ExitCode;

use clap::Args;
use tvm_core::api::ProcessCredentials;

use crate::error::CliError;
use crate::flags::{Global, VendArgs};

/// Guard against `credential_process` calling itself through the default chain.
const DEPTH_VAR: &str = "TVM_CREDENTIAL_PROCESS_ACTIVE";

#[derive(Args)]
pub struct CredentialProcess {
    #[command(flatten)]
    vend: VendArgs,
}

impl CredentialProcess {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        if std::env::var_os(DEPTH_VAR).is_some() {
            return Err("credential-process was invoked by itself: the AWS profile tvm signs with must not use `tvm credential-process`".into());
        }
        std::env::set_var(DEPTH_VAR, "1");
        let creds = self.vend.vend(&global.endpoint).await?;
        println!(
            "{}",
            serde_json::to_string(&ProcessCredentials::from(creds))?
        );
        Ok(ExitCode::SUCCESS)
    }
}
