//! The whole local stack: moto server from the project's venv, seeded by
//! `scripts/bootstrap.py`, with IAM auth enforced, behind the recording proxy.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::proxy::Proxy;

/// The repository root (this crate lives in `crates/tvm-devstack`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The Python venv `make` installs (`TVM_VENV` overrides).
pub fn venv() -> PathBuf {
    std::env::var_os("TVM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// A workspace binary built next to the running executable (tests run from
/// `target/debug/deps`). `make test` builds every binary first.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; `make test` does)",
        path.display()
    );
    path
}

/// Make a child die with the thread that started it, so that no emulator or
/// bootstrap outlives a test binary that exits without dropping it.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A moto server on a free loopback port; stopped on drop.
pub struct Moto {
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl Moto {
    pub fn start() -> Result<Self, String> {
        let python = venv().join("bin/python");
        if !python.exists() {
            return Err(format!(
                "{} is missing: run `make venv` (make test does)",
                python.display()
            ));
        }
        // moto, one request at a time: conditional writes atomic, as in DynamoDB.
        let launcher = repo_root().join("scripts/moto_serial.py");
        // A port picked free can be taken before moto binds it: try again.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = std::process::Command::new(&python);
            die_with_parent(&mut cmd);
            let child = cmd
                .arg(&launcher)
                .args(["127.0.0.1", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting moto: {e}"))?;
            let mut moto = Moto {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
            };
            match moto.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(moto),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto exited: {status}"));
            }
            if http_get(self.addr, "/moto-api/").is_ok_and(|s| s == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("moto did not answer within {limit:?}"))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, moto checks every signature, key and IAM policy.
    pub fn enforce_auth(&self) -> Result<(), String> {
        let status = http_post(self.addr, "/moto-api/reset-auth", "0")?;
        (status == 200)
            .then_some(())
            .ok_or_else(|| format!("reset-auth answered {status}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a plain GET on loopback (readiness polls).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<u16, String> {
    raw_http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A tiny blocking HTTP/1.1 exchange for readiness and admin calls.
fn raw_http(addr: SocketAddr, request: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "no status line".to_string())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Keys {
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Keys {
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "devstack",
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identities {
    pub account: String,
    pub function: Keys,
    pub caller: Keys,
    pub analyst: Keys,
    pub task_role: String,
    pub protected_roles: Vec<String>,
    /// A role tvm sessions may chain into (it carries the revocation policy).
    pub chain_target: String,
    pub other_account: Option<OtherAccount>,
}

/// The second account of the local stack (moto serves any account).
#[derive(Debug, Clone, Deserialize)]
pub struct OtherAccount {
    pub account: String,
    /// Named like one of the first account's protected roles.
    pub protected_role: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Seeded {
    identities: Identities,
}

pub const REGION: &str = "us-east-1";
pub const SERVER_ID: &str = "tvm-local-devstack";
/// The local stack's security team.
/// moto's account: the only one the local function serves.
pub const ACCOUNT: &str = "123456789012";
/// A second account, with its own revoker, revocation policy and a protected
/// role named like the first account's `orders-tenant`.
pub const OTHER_ACCOUNT: &str = "210987654321";
pub const ADMINS: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_SecAdmin*/*";

/// moto, seeded, auth enforced, behind the recording proxy.
pub struct Stack {
    pub moto: Moto,
    pub proxy: Proxy,
    pub ids: Identities,
}

impl Stack {
    pub async fn start() -> Result<Self, String> {
        let moto = Moto::start()?;
        let out = std::process::Command::new(venv().join("bin/python"))
            .arg(repo_root().join("scripts/bootstrap.py"))
            .arg("all")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", moto.url())
            .env("AWS_ACCESS_KEY_ID", "bootstrap")
            .env("AWS_SECRET_ACCESS_KEY", "bootstrap")
            .env("AWS_REGION", REGION)
            .env("TVM_DEMO_OTHER_ACCOUNT", OTHER_ACCOUNT)
            // moto treats every IAM condition as satisfied: an attached
            // revocation policy would deny every vended credential once
            // anything is revoked. Tests evaluate the policy instead.
            .env("TVM_DEMO_ATTACH_REVOCATIONS", "0")
            .output()
            .map_err(|e| format!("running bootstrap.py: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bootstrap.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let seeded: Seeded =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("bootstrap.py output: {e}"))?;
        moto.enforce_auth()?;
        let proxy = Proxy::start(moto.addr).await.map_err(|e| e.to_string())?;
        Ok(Self {
            moto,
            proxy,
            ids: seeded.identities,
        })
    }

    /// The function's environment: its own keys, every AWS call through the proxy.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let f = &self.ids.function;
        [
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", f.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", f.secret_access_key.clone()),
            ("AWS_ENDPOINT_URL", self.proxy.url()),
            ("TVM_SESSIONS_TABLE", "tvm-sessions".to_string()),
            ("TVM_APPROVALS_TABLE", "tvm-approvals".to_string()),
            ("TVM_BREAKGLASS_TABLE", "tvm-breakglass".to_string()),
            ("TVM_IDENTITY_MODES", "apigw,sts".to_string()),
            ("TVM_SERVER_ID", SERVER_ID.to_string()),
            ("TVM_ADMIN_PRINCIPALS", ADMINS.to_string()),
            ("TVM_ALLOWED_ACCOUNTS", ACCOUNT.to_string()),
            ("RUST_LOG", "info".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Credentials of the demo caller playing an ECS task for `tenant`
    /// (AssumeRole on the task role with the tenant as session name).
    pub async fn task_credentials(&self, tenant: &str) -> Result<Credentials, String> {
        let sdk = sdk_config(&self.moto.url(), self.ids.caller.credentials());
        let out = aws_sdk_sts::Client::new(&sdk)
            .assume_role()
            .role_arn(&self.ids.task_role)
            .role_session_name(tenant)
            .send()
            .await
            .map_err(|e| format!("assume task role: {e:?}"))?;
        let c = out.credentials().ok_or("no credentials")?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "devstack-task",
        ))
    }
}

/// SDK config for the emulator at `endpoint`, signing with `credentials`.
pub fn sdk_config(endpoint: &str, credentials: Credentials) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .build()
}
