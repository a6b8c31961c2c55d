//! `tvm`: get credentials from a tvm deployment, serve them to SDKs, and
//! check policies offline.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand};
use tvm_client::cache::{CredentialCache, RefreshPolicy, TvmFetch};
use tvm_client::client::{ClientError, Endpoint, PresignTarget, TvmClient};
use tvm_client::people::{
    break_glass_table, output, requests_table, sessions_table, show_break_glass, show_request,
    show_revocation, table, time_left, Api,
};
use tvm_client::serve;
use tvm_client::settings::FileSettings;
use tvm_core::api::{CredentialsRequest, ErrorCode, ProcessCredentials};
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
    /// Print credentials as credential_process JSON (`credential_process = tvm credential-process --profile P`).
    CredentialProcess {
        #[command(flatten)]
        vend: VendArgs,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Serve credentials to AWS SDKs as an ECS-compatible container credentials endpoint on loopback.
    Serve {
        #[command(flatten)]
        vend: VendArgs,
        #[command(flatten)]
        endpoint: EndpointArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Allow listening on a non-loopback address.
        #[arg(long)]
        allow_remote: bool,
        /// Read the authorization token from this file, or write a random one to it if it does not exist.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Print the variables an SDK needs (export lines) on stdout.
        #[arg(long)]
        print_env: bool,
        /// Start refreshing when less than this many seconds are left.
        #[arg(long, default_value_t = 300)]
        refresh_window: u64,
        /// Stop handing out credentials this many seconds before they expire.
        #[arg(long, default_value_t = 60)]
        expiry_margin: u64,
        /// Run this command with the variables set; stop when it exits, with its exit code.
        #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "CMD")]
        exec: Option<Vec<String>>,
    },
    /// Run a command with the profile's credentials in its environment.
    Exec {
        #[command(flatten)]
        vend: VendArgs,
        #[command(flatten)]
        endpoint: EndpointArgs,
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List the profiles you may get, and how.
    Profiles {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Show the caller tvm sees.
    Whoami {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Ask for approval to use a profile.
    Request {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        justification: String,
        #[arg(long)]
        duration: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// List approval requests: the ones you may approve, and yours.
    Requests {
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Approve a request (as one of the profile's approvers).
    Approve {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Deny a request (as one of the profile's approvers).
    Deny {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Cancel your own pending request.
    Cancel {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Break-glass: open, list, close emergency access.
    #[command(subcommand)]
    Breakglass(BreakglassCommand),
    /// List sessions: yours, a caller's (security team), a profile's (its approvers).
    Sessions {
        #[arg(long, conflicts_with = "profile")]
        caller: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        /// Only sessions whose credentials are still valid.
        #[arg(long)]
        active: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Revoke a session (its caller and profile), or with --caller every session of a caller.
    Revoke {
        #[arg(required_unless_present = "caller", conflicts_with = "caller")]
        session: Option<String>,
        #[arg(long)]
        caller: Option<String>,
        #[arg(long)]
        reason: String,
        /// How long new vends stay refused (seconds, default 3600).
        #[arg(long)]
        duration: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Check and try policy documents offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
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

#[derive(Subcommand)]
enum BreakglassCommand {
    /// Open an event: while it is open you can vend the profile.
    Open {
        #[arg(long)]
        profile: String,
        /// incident, outage, security or data-recovery.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        justification: String,
        #[arg(long)]
        duration: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Open events: yours (the security team sees all).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Close an event.
    Close {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
}

#[derive(Args)]
struct VendArgs {
    #[arg(long)]
    profile: String,
    /// Session length in seconds (900-3600); capped by the profile.
    #[arg(long)]
    duration: Option<u32>,
    /// Request attributes the profile accepts, as KEY=VALUE.
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
}

impl VendArgs {
    fn request(&self) -> Result<CredentialsRequest, String> {
        Ok(CredentialsRequest {
            profile: self.profile.clone(),
            duration_seconds: self.duration,
            attributes: attributes(&self.attributes)?,
        })
    }
}

#[derive(Args)]
struct EndpointArgs {
    /// tvm API base URL (else TVM_ENDPOINT, else tvm_endpoint in the AWS profile, else [tvm] endpoint).
    #[arg(long)]
    endpoint: Option<String>,
    /// Region the API is signed for (else TVM_REGION, the AWS config, AWS_REGION, us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Also prove identity with a presigned STS GetCallerIdentity (for fronts without IAM auth).
    #[arg(long)]
    server_id: Option<String>,
    /// STS endpoint the deployment replays presigned identities to (default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, or the regional endpoint).
    #[arg(long)]
    sts_endpoint: Option<String>,
}

impl EndpointArgs {
    fn resolve(self) -> Result<Endpoint, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let file = FileSettings::load();
        let url = self
            .endpoint
            .or_else(|| env("TVM_ENDPOINT"))
            .or(file.endpoint)
            .ok_or("no tvm endpoint: pass --endpoint, set TVM_ENDPOINT, or add `endpoint = URL` to a [tvm] section of ~/.aws/config")?;
        let region = self
            .region
            .or_else(|| env("TVM_REGION"))
            .or(file.region)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let presign = self
            .server_id
            .or_else(|| env("TVM_SERVER_ID"))
            .or(file.server_id)
            .map(|server_id| PresignTarget {
                server_id,
                sts_endpoint: self
                    .sts_endpoint
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

    async fn client(self) -> Result<TvmClient, String> {
        TvmClient::from_env(self.resolve()?)
            .await
            .map_err(|e| explain(e, None))
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{}: {message}", paint("tvm", "1;31"));
            ExitCode::from(1)
        }
    }
}

/// ANSI colour only when stderr is a terminal and NO_COLOR is unset.
fn paint(text: &str, code: &str) -> String {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::CredentialProcess { vend, endpoint } => {
            if std::env::var_os(DEPTH_VAR).is_some() {
                return Err("credential-process was invoked by itself: the AWS profile tvm signs with must not use `tvm credential-process`".into());
            }
            std::env::set_var(DEPTH_VAR, "1");
            let request = vend.request()?;
            let client = endpoint.client().await?;
            let creds = client
                .credentials(&request)
                .await
                .map_err(|e| explain(e, Some(&request.profile)))?;
            let out = serde_json::to_string(&ProcessCredentials::from(creds))
                .map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec {
            vend,
            endpoint,
            command,
        } => {
            let request = vend.request()?;
            let client = endpoint.client().await?;
            let creds = client
                .credentials(&request)
                .await
                .map_err(|e| explain(e, Some(&request.profile)))?;
            if std::io::stderr().is_terminal() {
                if let Ok(exp) = creds.expiration.parse::<DateTime<Utc>>() {
                    eprintln!(
                        "tvm: {} as {} ({})",
                        request.profile,
                        creds.role_arn,
                        time_left(exp, Utc::now())
                    );
                }
            }
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
                .map_err(|e| format!("could not run {:?}: {e}", command[0]))?;
            Ok(exit_code(status))
        }
        Command::Serve {
            vend,
            endpoint,
            listen,
            allow_remote,
            token_file,
            print_env,
            refresh_window,
            expiry_margin,
            exec,
        } => {
            if !listen.ip().is_loopback() && !allow_remote {
                return Err(format!("refusing to listen on {listen}: credentials are served on loopback only (pass --allow-remote to override)"));
            }
            // STS's shortest session is 900 s: a window that long would refresh on every request.
            if refresh_window >= 900 || expiry_margin > refresh_window {
                return Err(
                    "--refresh-window must be under 900 seconds and at least --expiry-margin"
                        .into(),
                );
            }
            let token = match &token_file {
                Some(path) => token_from_file(path)?,
                None => serve::random_token(),
            };
            let request = vend.request()?;
            let client = endpoint.client().await?;
            let cache = CredentialCache::new(
                Box::new(TvmFetch { client, request }),
                RefreshPolicy {
                    window: Duration::from_secs(refresh_window),
                    margin: Duration::from_secs(expiry_margin),
                    ..RefreshPolicy::default()
                },
            );
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let uri = format!("http://{addr}{}", serve::PATH);
            let mut vars = vec![(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                uri.clone(),
            )];
            match &token_file {
                Some(path) => vars.push((
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                    path.display().to_string(),
                )),
                None => vars.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), token.clone())),
            }
            if print_env {
                for (k, v) in &vars {
                    println!("export {k}={v}");
                }
            }
            eprintln!(
                "tvm serve: credentials for profile {} on {uri}",
                vend.profile
            );
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve::serve(listener, Arc::clone(&cache), token, async {
                let _ = stop_rx.await;
            }));
            let code = match exec {
                Some(cmd) => {
                    // The child must reach the container provider, not the
                    // credentials tvm signs with (they come first in every chain).
                    let mut child = tokio::process::Command::new(&cmd[0])
                        .args(&cmd[1..])
                        .env_remove("AWS_ACCESS_KEY_ID")
                        .env_remove("AWS_SECRET_ACCESS_KEY")
                        .env_remove("AWS_SESSION_TOKEN")
                        .env_remove("AWS_PROFILE")
                        .env_remove("AWS_DEFAULT_PROFILE")
                        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .spawn()
                        .map_err(|e| format!("could not run {:?}: {e}", cmd[0]))?;
                    tokio::select! {
                        status = child.wait() => exit_code(status.map_err(|e| e.to_string())?),
                        _ = terminated() => {
                            let _ = child.kill().await;
                            ExitCode::from(143)
                        }
                    }
                }
                None => {
                    terminated().await;
                    ExitCode::SUCCESS
                }
            };
            let _ = stop_tx.send(());
            let _ = server.await;
            eprintln!("tvm serve: stopped");
            Ok(code)
        }
        Command::Profiles { json, endpoint } => {
            let answer = endpoint
                .client()
                .await?
                .profiles()
                .await
                .map_err(|e| explain(e, None))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("caller: {}", answer.caller);
            let rows: Vec<[String; 4]> = answer
                .profiles
                .iter()
                .map(|p| {
                    let how = match p.access {
                        tvm_core::decision::Access::Allow => "allow",
                        tvm_core::decision::Access::Approval => "approval",
                        tvm_core::decision::Access::BreakGlass => "break-glass",
                    };
                    [
                        p.profile.clone(),
                        how.into(),
                        format!("{}m", p.max_duration / 60),
                        p.role_arn.clone(),
                    ]
                })
                .collect();
            println!("{}", table(["PROFILE", "ACCESS", "MAX", "ROLE"], &rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Whoami { json, endpoint } => {
            let answer = endpoint
                .client()
                .await?
                .profiles()
                .await
                .map_err(|e| explain(e, None))?;
            let caller = Principal::parse(&answer.caller, None)
                .map_err(|e| format!("tvm answered with an unexpected caller: {e}"))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&caller).map_err(|e| e.to_string())?
                );
            } else {
                println!("arn:     {}", caller.arn);
                println!("account: {}", caller.account);
                println!("kind:    {}", caller.kind.as_str());
                println!("name:    {}", caller.name);
                if let Some(s) = &caller.session_name {
                    println!("session: {s}");
                }
                println!("profiles available: {}", answer.profiles.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Request {
            profile,
            justification,
            duration,
            json,
            endpoint,
        } => {
            let client = endpoint.client().await?;
            let r = Api(&client)
                .create_request(&profile, &justification, duration)
                .await
                .map_err(|e| explain(e, Some(&profile)))?;
            output(json, &r, |r| {
                format!(
                    "{}\n  an approver runs: tvm approve {}",
                    show_request(r),
                    r.id
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Requests {
            status,
            json,
            endpoint,
        } => {
            let client = endpoint.client().await?;
            let list = Api(&client)
                .requests(&status)
                .await
                .map_err(|e| explain(e, None))?;
            output(json, &list, requests_table)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Approve { id, json, endpoint } => act(endpoint, &id, "approve", json).await,
        Command::Deny { id, json, endpoint } => act(endpoint, &id, "deny", json).await,
        Command::Cancel { id, json, endpoint } => act(endpoint, &id, "cancel", json).await,
        Command::Breakglass(BreakglassCommand::Open {
            profile,
            reason,
            justification,
            duration,
            json,
            endpoint,
        }) => {
            let client = endpoint.client().await?;
            let e = Api(&client)
                .open_break_glass(&profile, &reason, &justification, duration)
                .await
                .map_err(|e| explain(e, Some(&profile)))?;
            output(json, &e, |e| {
                format!(
                    "{}\n  vend now: tvm credential-process --profile {}",
                    show_break_glass(e),
                    e.profile
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Breakglass(BreakglassCommand::List { json, endpoint }) => {
            let client = endpoint.client().await?;
            let list = Api(&client)
                .break_glass()
                .await
                .map_err(|e| explain(e, None))?;
            output(json, &list, break_glass_table)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Breakglass(BreakglassCommand::Close { id, json, endpoint }) => {
            let client = endpoint.client().await?;
            let e = Api(&client)
                .close_break_glass(&id)
                .await
                .map_err(|e| explain(e, None))?;
            output(json, &e, show_break_glass)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions {
            caller,
            profile,
            active,
            json,
            endpoint,
        } => {
            let client = endpoint.client().await?;
            let list = Api(&client)
                .sessions(caller.as_deref(), profile.as_deref(), active)
                .await
                .map_err(|e| explain(e, None))?;
            output(json, &list, sessions_table)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke {
            session,
            caller,
            reason,
            duration,
            json,
            endpoint,
        } => {
            let client = endpoint.client().await?;
            let api = Api(&client);
            let r = match (session, caller) {
                (Some(id), None) => api.revoke_session(&id, &reason, duration).await,
                (None, Some(principal)) => api.revoke_caller(&principal, &reason, duration).await,
                _ => return Err("give a session id or --caller ARN".into()),
            }
            .map_err(|e| explain(e, None))?;
            output(json, &r, show_revocation)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tvm", &mut std::io::stdout());
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
        }) => policy_test(
            &file,
            &caller,
            org_id.as_deref(),
            at.as_deref(),
            duration,
            &attrs,
        ),
    }
}

fn policy_test(
    file: &str,
    caller: &str,
    org_id: Option<&str>,
    at: Option<&str>,
    duration: Option<u32>,
    attrs: &[String],
) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let profile = parse_profile(&text, None).map_err(|e| format!("{file}: {e}"))?;
    let name = profile.name.clone();
    let set = PolicySet::new([profile]);
    let who = Principal::parse(caller, org_id).map_err(|e| format!("--caller: {e}"))?;
    let now = match at {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|_| format!("--at {t:?} must be RFC 3339, e.g. 2026-11-23T09:00:00+01:00"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let request = VendRequest {
        profile: name,
        duration_seconds: duration,
        attributes: attributes(attrs)?,
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
            let rendered = render(grant.profile, &vars).map_err(|e| format!("rendering: {e}"))?;
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

async fn act(
    endpoint: EndpointArgs,
    id: &str,
    action: &str,
    json: bool,
) -> Result<ExitCode, String> {
    let client = endpoint.client().await?;
    let r = Api(&client)
        .act(id, action)
        .await
        .map_err(|e| explain(e, None))?;
    output(json, &r, show_request)?;
    Ok(ExitCode::SUCCESS)
}

fn token_from_file(path: &std::path::Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 16 => Ok(t.trim().to_string()),
        Ok(_) => Err(format!(
            "{}: the token must be at least 16 characters",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = serve::random_token();
            write_private(path, &token).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(token)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// SIGTERM (how ECS stops sidecars) or Ctrl-C.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::from(1),
    }
}

/// Turn a client error into what the user should do next.
fn explain(e: ClientError, profile: Option<&str>) -> String {
    match &e {
        ClientError::Api { body, .. } => {
            let mut m = e.to_string();
            match body.code {
                ErrorCode::ApprovalRequired => {
                    if let Some(id) = &body.approval_request_id {
                        m.push_str(&format!("\n  pending approval request: {id}"));
                    }
                    m.push_str(&format!(
                        "\n  ask an approver, or create a request: tvm request --profile {} --justification \"...\"",
                        profile.unwrap_or("PROFILE")
                    ));
                }
                ErrorCode::AccessDenied => {
                    m.push_str("\n  `tvm profiles` lists the profiles you can get")
                }
                ErrorCode::Unauthenticated => m.push_str(
                    "\n  check the AWS credentials tvm signs with: `aws sts get-caller-identity`",
                ),
                _ => {}
            }
            m
        }
        ClientError::Credentials(_) => format!(
            "{e}\n  tvm signs with your AWS credentials: set AWS_PROFILE or the AWS_* variables"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(
            time_left(now + chrono::Duration::seconds(14 * 60 + 5), now),
            "14m left"
        );
        assert_eq!(
            time_left(now + chrono::Duration::seconds(2 * 3600 + 300), now),
            "2h 5m left"
        );
        assert_eq!(
            time_left(now - chrono::Duration::seconds(1), now),
            "expired"
        );
    }
}
