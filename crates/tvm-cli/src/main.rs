//! `tvm`: get credentials from a tvm deployment, serve them to SDKs, and
//! check policies offline.
//!
//! This file parses and dispatches; each command lives in `cmd/` with its own
//! `run`, the flags several commands share in `flags`, everything shown in
//! `output`, and the one error type in `error`. (The other modules under
//! `src/` are the `tvm_client` library.)

mod cmd;
mod error;
mod flags;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::approvals::{Act, Request, Requests};
use crate::cmd::audit::Audit;
use crate::cmd::break_glass::BreakGlass;
use crate::cmd::completions::Completions;
use crate::cmd::credential_process::CredentialProcess;
use crate::cmd::exec::Exec;
use crate::cmd::policy::Policy;
use crate::cmd::profiles::{Profiles, Whoami};
use crate::cmd::serve::Serve;
use crate::cmd::sessions::{Revoke, Sessions};
use crate::error::CliError;
use crate::flags::Global;
use crate::output::paint;

#[derive(Parser)]
#[command(
    name = "tvm",
    version,
    about = "Token vending machine client: short-lived AWS credentials from tvm"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print credentials as credential_process JSON (`credential_process = tvm credential-process --profile P`).
    CredentialProcess(CredentialProcess),
    /// Serve credentials to AWS SDKs as an ECS-compatible container credentials endpoint on loopback.
    Serve(Serve),
    /// Run a command with the profile's credentials in its environment.
    Exec(Exec),
    /// List the profiles you may get, and how.
    Profiles(Profiles),
    /// Show the caller tvm sees.
    Whoami(Whoami),
    /// Ask for approval to use a profile.
    Request(Request),
    /// List approval requests: the ones you may approve, and yours.
    Requests(Requests),
    /// Approve a request (as one of the profile's approvers).
    Approve(Act),
    /// Deny a request (as one of the profile's approvers).
    Deny(Act),
    /// Cancel your own pending request.
    Cancel(Act),
    /// Break-glass: open, list, close emergency access.
    #[command(subcommand, name = "breakglass")]
    BreakGlass(BreakGlass),
    /// List sessions: yours, a caller's (security team), a profile's (its approvers).
    Sessions(Sessions),
    /// Revoke a session (its caller and profile), or with --caller every session of a caller.
    Revoke(Revoke),
    /// Find sessions that bypassed tvm or outlived their revocation, in CloudTrail.
    Audit(Audit),
    /// Policy documents: validate and test offline; push, pull, diff and sign against SSM and KMS.
    #[command(subcommand)]
    Policy(Policy),
    /// Print a shell completion script.
    Completions(Completions),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e}", paint("tvm", "1;31"));
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let global = &cli.global;
    match cli.command {
        Command::CredentialProcess(c) => c.run(global).await,
        Command::Serve(c) => c.run(global).await,
        Command::Exec(c) => c.run(global).await,
        Command::Profiles(c) => c.run(global).await,
        Command::Whoami(c) => c.run(global).await,
        Command::Request(c) => c.run(global).await,
        Command::Requests(c) => c.run(global).await,
        Command::Approve(c) => c.run("approve", global).await,
        Command::Deny(c) => c.run("deny", global).await,
        Command::Cancel(c) => c.run("cancel", global).await,
        Command::BreakGlass(c) => c.run(global).await,
        Command::Sessions(c) => c.run(global).await,
        Command::Revoke(c) => c.run(global).await,
        Command::Audit(c) => c.run(global).await,
        Command::Policy(c) => c.run().await,
        Command::Completions(c) => c.run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shared_flags_are_read_before_or_after_the_subcommand() {
        for args in [
            &["tvm", "--json", "--endpoint", "https://e", "profiles"][..],
            &["tvm", "profiles", "--json", "--endpoint", "https://e"],
            &[
                "tvm",
                "breakglass",
                "list",
                "--endpoint",
                "https://e",
                "--json",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(cli.global.json, "{args:?}");
            assert_eq!(
                cli.global.endpoint.endpoint.as_deref(),
                Some("https://e"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn everything_after_exec_belongs_to_the_child() {
        let cli = Cli::try_parse_from([
            "tvm",
            "serve",
            "--profile",
            "p",
            "--exec",
            "aws",
            "s3",
            "ls",
            "--region",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoint.region, None);
        let cli =
            Cli::try_parse_from(["tvm", "exec", "--profile", "p", "--", "env", "--json"]).unwrap();
        assert!(!cli.global.json);
    }
}
