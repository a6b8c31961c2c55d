//! `tvm profiles` and `tvm whoami`: what tvm says about the caller.

use std::process::ExitCode;

use clap::Args;
use tvm_core::principal::Principal;

use crate::error::CliError;
use crate::flags::Global;
use crate::output::{output, profiles_table, show_caller};

#[derive(Args)]
pub struct Profiles {}

impl Profiles {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let answer = client.profiles().await.map_err(CliError::tvm(None))?;
        output(global.json, &answer, profiles_table)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Whoami {}

impl Whoami {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let client = global.endpoint.client().await?;
        let answer = client.profiles().await.map_err(CliError::tvm(None))?;
        let caller = Principal::parse(&answer.caller, None)
            .map_err(|e| format!("tvm answered with an unexpected caller: {e}"))?;
        output(global.json, &caller, |c| {
            show_caller(c, answer.profiles.len())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
