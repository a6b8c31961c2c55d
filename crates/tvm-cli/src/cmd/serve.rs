//! `tvm serve`: the command around `tvm_client::serve` (the endpoint itself):
//! flags, the token, the variables an SDK needs, the optional child, stopping.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tvm_client::cache::{CredentialCache, RefreshPolicy, TvmFetch};
use tvm_client::serve;

use crate::cmd::exec::exit_code;
use crate::error::CliError;
use crate::flags::{Global, VendArgs};

#[derive(Args)]
pub struct Serve {
    #[command(flatten)]
    vend: VendArgs,
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
}

impl Serve {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let listen = self.listen;
        if !listen.ip().is_loopback() && !self.allow_remote {
            return Err(format!("refusing to listen on {listen}: credentials are served on loopback only (pass --allow-remote to override)").into());
        }
        // STS's shortest session is 900 s: a window that long would refresh on every request.
        if self.refresh_window >= 900 || self.expiry_margin > self.refresh_window {
            return Err(
                "--refresh-window must be under 900 seconds and at least --expiry-margin".into(),
            );
        }
        let request = self.vend.request()?;
        let client = global.endpoint.client().await?;
        let cache = CredentialCache::new(
            Box::new(TvmFetch { client, request }),
            RefreshPolicy {
                window: Duration::from_secs(self.refresh_window),
                margin: Duration::from_secs(self.expiry_margin),
                ..RefreshPolicy::default()
            },
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // The token file appears once the port is bound: a workload that
        // waits for it finds the endpoint accepting connections.
        let token = match &self.token_file {
            Some(path) => token_from_file(path)?,
            None => serve::random_token(),
        };
        let addr = listener.local_addr()?;
        let uri = format!("http://{addr}{}", serve::PATH);
        let mut vars = vec![(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
            uri.clone(),
        )];
        match &self.token_file {
            Some(path) => vars.push((
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                path.display().to_string(),
            )),
            None => vars.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), token.clone())),
        }
        if self.print_env {
            for (k, v) in &vars {
                println!("export {k}={v}");
            }
        }
        eprintln!(
            "tvm serve: credentials for profile {} on {uri}",
            self.vend.profile
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve::serve(listener, Arc::clone(&cache), token, async {
            let _ = stop_rx.await;
        }));
        let code = match self.exec {
            Some(cmd) => run_child(&cmd, &vars).await?,
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
}

/// Run `cmd` with the container variables until it exits (its code) or we
/// are told to stop (143, after killing it).
async fn run_child(cmd: &[String], vars: &[(String, String)]) -> Result<ExitCode, CliError> {
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
        .map_err(|source| CliError::Run {
            program: cmd[0].clone(),
            source,
        })?;
    Ok(tokio::select! {
        status = child.wait() => exit_code(status?),
        _ = terminated() => {
            let _ = child.kill().await;
            ExitCode::from(143)
        }
    })
}

/// The token in `path`, or a new random one written there. An existing file
/// is adopted only when it is a regular file of the current user that no one
/// else may read or write (no symlink is followed); a new one is created
/// exclusively with mode 0600.
fn token_from_file(path: &Path) -> Result<String, CliError> {
    let at = |e: String| -> CliError { format!("{}: {e}", path.display()).into() };
    match open_private(path) {
        Ok(text) if text.trim().len() >= 16 => Ok(text.trim().to_string()),
        Ok(_) => Err(at("the token must be at least 16 characters".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = serve::random_token();
            write_private(path, &token).map_err(|e| at(e.to_string()))?;
            Ok(token)
        }
        Err(e) => Err(at(e.to_string())),
    }
}

/// Read a file only if it is a regular file owned by the current user with
/// no group or other permission bits; a symlink is refused, not followed.
fn open_private(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("is a symbolic link; give the token file itself".into()),
            _ => e,
        })?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(format!(
            "is owned by uid {}, not by the current user (uid {me}); the token would be someone else's",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "has mode {:04o}; a token file must not be open to group or others (chmod 600)",
            meta.mode() & 0o7777
        )));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(text)
}

/// Create `path` exclusively (never through an existing file or symlink)
/// with mode 0600.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
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
