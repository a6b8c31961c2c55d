//! `tvm`: get credentials from a tvm deployment, and check policies offline.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use tvm_client::client::{ClientError, Endpoint, PresignTarget, TvmClient};
use tvm_core::api::{CredentialsRequest, ProcessCredentials};
use tvm_core::decision::{decide, GateState, VendRequest};
use tvm_core::policy::{parse_profile, PolicySet};
use tvm_core::principal::Principal;
use tvm_core::render::{caller_vars, render};

#[derive(Parser)]
#[command(
    name = "tvm",
    version,
    about = "Token vending machine client: short-lived AWS credentials from tvm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print credentials as credential_process JSON (for `credential_process = tvm credential-process --profile P`).
    CredentialProcess {
        #[arg(long)]
        profile: String,
        /// Session length in seconds (900-3600); capped by the profile.
        #[arg(long)]
        duration: Option<u32>,
        /// Request attributes the profile accepts, as KEY=VALUE.
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// List the profiles you may get, and how.
    Profiles {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Check and try policy documents offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policy documents; every problem is listed with its field.
    Validate {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Evaluate a policy for a sample caller and print the rendered session policy.
    Test {
        file: String,
        /// The caller's ARN, e.g. arn:aws:sts::111122223333:assumed-role/orders-task/acme
        #[arg(long)]
        caller: String,
        #[arg(long)]
        org_id: Option<String>,
        /// Evaluate at this time (RFC 3339), default now.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        duration: Option<u32>,
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
}

#[derive(Args)]
struct EndpointArgs {
    /// tvm API base URL.
    #[arg(long, env = "TVM_ENDPOINT")]
    endpoint: String,
    /// Region the API is signed for (default: AWS_REGION, else us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Also prove identity with a presigned STS GetCallerIdentity (for fronts without IAM auth).
    #[arg(long, env = "TVM_SERVER_ID")]
    server_id: Option<String>,
    /// STS endpoint the deployment replays presigned identities to (default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, or the regional endpoint).
    #[arg(long)]
    sts_endpoint: Option<String>,
}

impl EndpointArgs {
    fn resolve(self) -> Endpoint {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = self
            .region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let presign = self.server_id.map(|server_id| PresignTarget {
            server_id,
            sts_endpoint: self
                .sts_endpoint
                .or_else(|| env("AWS_ENDPOINT_URL_STS"))
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com")),
        });
        Endpoint {
            url: self.endpoint,
            region,
            presign,
        }
    }
}

fn attributes(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--attribute {p:?} must be KEY=VALUE"))
        })
        .collect()
}

/// Guard against `credential_process` calling itself through the default chain.
const DEPTH_VAR: &str = "TVM_CREDENTIAL_PROCESS_ACTIVE";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("tvm: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::CredentialProcess {
            profile,
            duration,
            attributes: attrs,
            endpoint,
        } => {
            if std::env::var_os(DEPTH_VAR).is_some() {
                return Err("credential-process was invoked by itself: the AWS profile tvm signs with must not use `tvm credential-process`".into());
            }
            std::env::set_var(DEPTH_VAR, "1");
            let client = TvmClient::from_env(endpoint.resolve())
                .await
                .map_err(explain)?;
            let request = CredentialsRequest {
                profile,
                duration_seconds: duration,
                attributes: attributes(&attrs)?,
            };
            let creds = client.credentials(&request).await.map_err(explain)?;
            let out = serde_json::to_string(&ProcessCredentials::from(creds))
                .map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Profiles { json, endpoint } => {
            let client = TvmClient::from_env(endpoint.resolve())
                .await
                .map_err(explain)?;
            let answer = client.profiles().await.map_err(explain)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
                );
            } else {
                println!("caller: {}", answer.caller);
                let width = answer
                    .profiles
                    .iter()
                    .map(|p| p.profile.len())
                    .max()
                    .unwrap_or(7)
                    .max(7);
                println!("{:width$}  {:12}  {:>8}  ROLE", "PROFILE", "ACCESS", "MAX");
                for p in &answer.profiles {
                    let access = serde_json::to_value(p.access)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    println!(
                        "{:width$}  {:12}  {:>7}s  {}",
                        p.profile, access, p.max_duration, p.role_arn
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Validate { files }) => {
            let mut failed = false;
            for file in &files {
                let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
                match parse_profile(&text, None) {
                    Ok(p) => println!("{file}: ok (profile {}, {} rules)", p.name, p.rules.len()),
                    Err(e) => {
                        failed = true;
                        for err in &e.errors {
                            println!("{file}: {err}");
                        }
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Policy(PolicyCommand::Test {
            file,
            caller,
            org_id,
            at,
            duration,
            attributes: attrs,
        }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
            let profile = parse_profile(&text, None).map_err(|e| format!("{file}: {e}"))?;
            let name = profile.name.clone();
            let set = PolicySet::new([profile]);
            let who = Principal::parse(&caller, org_id.as_deref())
                .map_err(|e| format!("--caller: {e}"))?;
            let now = match at {
                Some(t) => DateTime::parse_from_rfc3339(&t)
                    .map_err(|_| {
                        format!("--at {t:?} must be RFC 3339, e.g. 2026-11-23T09:00:00+01:00")
                    })?
                    .with_timezone(&Utc),
                None => Utc::now(),
            };
            let request = VendRequest {
                profile: name,
                duration_seconds: duration,
                attributes: attributes(&attrs)?,
            };
            match decide(&set, &who, &request, &GateState::default(), now) {
                Err(denial) => {
                    println!("decision: deny");
                    println!("reason:   {denial}");
                    Ok(ExitCode::from(2))
                }
                Ok(grant) => {
                    let mut vars = caller_vars(&who);
                    vars.extend(&grant.bindings);
                    let _ = vars.insert("profile", &grant.profile.name);
                    let _ = vars.insert("session_id", "00000000000000000000000000000000");
                    let rendered =
                        render(grant.profile, &vars).map_err(|e| format!("rendering: {e}"))?;
                    println!("decision: allow");
                    println!("rule:     {}", grant.rule.name);
                    println!("role:     {}", grant.profile.role_arn);
                    println!("duration: {}s", grant.duration_seconds);
                    for (k, v) in &rendered.tags {
                        println!("tag:      {k}={v}");
                    }
                    if let Some(policy) = rendered.policy {
                        let pretty = serde_json::from_str::<serde_json::Value>(&policy)
                            .and_then(|v| serde_json::to_string_pretty(&v))
                            .unwrap_or(policy);
                        println!("session policy:\n{pretty}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

/// Turn a client error into what the user should do next.
fn explain(e: ClientError) -> String {
    match &e {
        ClientError::Api { body, .. } => {
            let mut m = e.to_string();
            if let Some(id) = &body.approval_request_id {
                m.push_str(&format!("\n  pending approval request: {id}"));
            }
            m
        }
        ClientError::Credentials(_) => format!(
            "{e}\n  tvm signs with your AWS credentials: set AWS_PROFILE or the AWS_* variables"
        ),
        _ => e.to_string(),
    }
}
