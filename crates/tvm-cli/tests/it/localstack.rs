//! LocalStack that vends: LocalStack in host mode (STS, SSM, IAM, SNS; its
//! DynamoDB needs a download, so moto serves the tables), seeded by the
//! compose hook's own steps (scripts/bootstrap.py, then the hook's block that
//! writes the function's environment), the real bootstrap run with that
//! environment behind a function-URL style front, and `tvm
//! credential-process` vending in the `sts` identity mode. LocalStack
//! reports account 000000000000: the vend works only if the seeding followed
//! it. Without `.venv-localstack` (no Python 3.13) the test says so and passes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tvm_devstack::gateway::{Auth, Gateway};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::{
    die_with_parent, free_port, http_get, repo_root, venv, workspace_bin, Moto,
};
use tvm_devstack::testing::block_on_spawned;

use super::*;

struct LocalStack {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn health(addr: SocketAddr) -> bool {
    http_get(addr, "/_localstack/health").is_ok_and(|status| status == 200)
}

fn start_localstack(python: &Path) -> LocalStack {
    let dir = TempDir(std::env::temp_dir().join(format!("tvm-localstack-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = Command::new(python);
    die_with_parent(&mut cmd);
    let child = cmd
        .args(["-m", "localstack.runtime.main"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &dir.0)
        .env("OVERRIDE_IN_DOCKER", "0")
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("DNS_ADDRESS", "0")
        .env("DISABLE_EVENTS", "1")
        .env("SERVICES", "sts,ssm,iam,sns")
        .env("LOCALSTACK_VOLUME_DIR", dir.0.join("volume"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("LocalStack starts");
    let mut ls = LocalStack {
        child,
        addr,
        _dir: dir,
    };
    let until = Instant::now() + Duration::from_secs(90);
    while !health(addr) {
        if let Ok(Some(status)) = ls.child.try_wait() {
            panic!("LocalStack exited: {status}");
        }
        assert!(Instant::now() < until, "LocalStack not ready within 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    ls
}

/// A command against the emulators, with nothing of the developer's AWS setup.
fn on_emulators(mut cmd: Command, ls: &str, moto: &str) -> Command {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", ls)
        .env("AWS_ENDPOINT_URL_DYNAMODB", moto)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1");
    cmd
}

/// The compose hook's block that writes the function's environment, taken
/// from the hook itself.
fn hook_env_block() -> String {
    let hook =
        std::fs::read_to_string(repo_root().join("localstack/init/ready.d/10-tvm.sh")).unwrap();
    let start = hook.find("<<'PYTHON'\n").expect("the hook's python block") + "<<'PYTHON'\n".len();
    let end = start + hook[start..].find("\nPYTHON\n").expect("its end");
    hook[start..end].to_string()
}

#[test]
fn the_localstack_hooks_seeding_vends_through_the_real_bootstrap() {
    let ls_python = repo_root().join(".venv-localstack/bin/python");
    if !ls_python.exists() {
        eprintln!(
            "SKIPPED: LocalStack check: {} is missing (make venv-localstack; it needs Python 3.13)",
            ls_python.display()
        );
        return;
    }
    let ls = start_localstack(&ls_python);
    let ls_url = format!("http://{}", ls.addr);
    let moto = Moto::start().expect("moto for the tables");
    let work = std::env::temp_dir().join(format!("tvm-localstack-seed-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let _work = TempDir(work.clone());

    // The hook's steps: bootstrap.py all, then its environment block.
    let moto_url = moto.url();
    let aws = |cmd: Command| on_emulators(cmd, &ls_url, &moto_url);
    let seeded = aws(Command::new(venv().join("bin/python")))
        .arg(repo_root().join("scripts/bootstrap.py"))
        .arg("all")
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let seeded_path = work.join("bootstrap.json");
    std::fs::write(&seeded_path, &seeded.stdout).unwrap();
    let seeded: Value = serde_json::from_slice(&seeded.stdout).unwrap();
    assert_eq!(
        seeded["identities"]["account"], "000000000000",
        "LocalStack's account"
    );
    let env_path = work.join("function-env.json");
    let wrote = aws(Command::new(venv().join("bin/python")))
        .args(["-c", &hook_env_block()])
        .arg(&env_path)
        .arg(&seeded_path)
        .output()
        .unwrap();
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&env_path).unwrap()).unwrap();
    let mut env: Vec<(String, String)> = written["Variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert!(env.contains(&("TVM_ALLOWED_ACCOUNTS".into(), "000000000000".into())));
    // Inside LocalStack's containers the hook's endpoint name resolves to
    // LocalStack; on this host it is the published port. Tables: moto.
    for (k, v) in env.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            assert_eq!(v, "http://localhost.localstack.cloud:4566");
            *v = ls_url.clone();
        }
    }
    let function = &seeded["identities"]["function"];
    env.extend([
        ("AWS_ENDPOINT_URL_DYNAMODB".to_string(), moto.url()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            function["access_key_id"].as_str().unwrap().to_string(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            function["secret_access_key"].as_str().unwrap().to_string(),
        ),
    ]);

    let (lambda, front) = block_on_spawned(async move {
        let lambda = Lambda::start(&workspace_bin("bootstrap"), &env)
            .await
            .expect("bootstrap");
        let front = Gateway::start(lambda.runtime.clone(), Auth::None)
            .await
            .expect("front");
        (lambda, front)
    });

    // An ECS task of tenant acme, in LocalStack's account.
    let caller = &seeded["identities"]["caller"];
    let assumed = aws(Command::new(venv().join("bin/aws")))
        .env(
            "AWS_ACCESS_KEY_ID",
            caller["access_key_id"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            caller["secret_access_key"].as_str().unwrap(),
        )
        .args([
            "sts",
            "assume-role",
            "--role-session-name",
            "acme",
            "--output",
            "json",
            "--role-arn",
        ])
        .arg(seeded["identities"]["task_role"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        assumed.status.success(),
        "{}",
        String::from_utf8_lossy(&assumed.stderr)
    );
    let task: Value = serde_json::from_slice(&assumed.stdout).unwrap();
    let c = &task["Credentials"];

    let mut cmd = Command::new(tvm());
    let vended = clean(&mut cmd)
        .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            c["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", &ls_url)
        .args([
            "credential-process",
            "--profile",
            "orders-tenant",
            "--server-id",
            "tvm-localstack",
            "--endpoint",
        ])
        .arg(front.url())
        .output()
        .unwrap();
    assert!(
        vended.status.success(),
        "{}",
        String::from_utf8_lossy(&vended.stderr)
    );
    let v: Value = serde_json::from_slice(&vended.stdout).unwrap();

    // The credentials work against LocalStack, as the profile's role.
    let who = aws(Command::new(venv().join("bin/aws")))
        .env("AWS_ACCESS_KEY_ID", v["AccessKeyId"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            v["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", v["SessionToken"].as_str().unwrap())
        .args([
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        ])
        .output()
        .unwrap();
    let arn = String::from_utf8_lossy(&who.stdout).trim().to_string();
    assert!(
        arn.starts_with("arn:aws:sts::000000000000:assumed-role/orders-tenant/acme."),
        "{arn} {}",
        String::from_utf8_lossy(&who.stderr)
    );
    front.stop();
    block_on_spawned(async move { lambda.stop().await });
}
