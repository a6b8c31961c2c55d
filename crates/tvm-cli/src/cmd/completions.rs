//! `tvm completions SHELL`: a completion script for the whole command tree.

use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::error::CliError;
use crate::Cli;

#[derive(Args)]
pub struct Completions {
    shell: clap_complete::Shell,
}

impl Completions {
    pub fn run(self) -> Result<ExitCode, CliError> {
        clap_complete::generate(
            self.shell,
            &mut Cli::command(),
            "tvm",
            &mut std::io::stdout(),
        );
        Ok(ExitCode::SUCCESS)
    }
}
