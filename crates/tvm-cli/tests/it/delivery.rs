//! Client delivery: `tvm serve` for any SDK's container provider, `tvm exec`,
//! the Rust provider, and a SigV4 client nobody here wrote (awscurl).
//! Over 400 lines on purpose: each test is a whole delivery path against the
//! one served stack the file sets up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use serde_json::Value;
use tvm_devstack::stack::{venv, workspace_bin, REGION};
use tvm_devstack::testing::block_on_spawned;

use super::*;

/// A running `tvm serve`, stopped on drop.
struct Serve {
    child: Child,
    uri: String,
    token: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(creds: &Credentials, endpoint: &str, extra: &[&str]) -> Serve {
        let mut cmd = Command::new(tvm());
        clean(&mut cmd);
        let mut child = with_creds(&mut cmd, creds)
            .args([
                "serve",
                "--profile",
                "orders-tenant",
                "--print-env",
                "--endpoint",
                endpoint,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tvm serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut uri, mut token) = (String::new(), String::new());
        while uri.is_empty() || token.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("tvm serve printed its environment");
            if let Some(v) = line.strip_prefix("export AWS_CONTAINER_CREDENTIALS_FULL_URI=") {
                uri = v.to_string();
            } else if let Some(v) = line.strip_prefix("export AWS_CONTAINER_AUTHORIZATION_TOKEN=") {
                token = v.to_string();
            } else if let Some(v) =
                line.strip_prefix("export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=")
            {
                token = std::fs::read_to_string(v).unwrap();
            }
        }
        Serve { child, uri, token }
    }

    /// What an SDK's container provider would get: status and body.
    fn get(&self, headers: &[(&str, &str)]) -> (u16, Value) {
        raw_get(&self.uri, headers)
    }

    fn credentials(&self) -> (u16, Value) {
        self.get(&[("Authorization", &self.token)])
    }

    /// The environment an SDK needs, and nothing else.
    fn sdk_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        clean(cmd)
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &self.uri)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &self.token)
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
    }
}

fn raw_get(uri: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let rest = uri.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

const BOTO3_SCRIPT: &str = r#"
import boto3, json, sys
tenant = sys.argv[1]
arn = boto3.client("sts").get_caller_identity()["Arn"]
ddb = boto3.client("dynamodb")
ddb.put_item(TableName="orders", Item={"tenant": {"S": tenant}, "order_id": {"S": "boto3"}})
item = ddb.get_item(TableName="orders", Key={"tenant": {"S": tenant}, "order_id": {"S": "boto3"}})["Item"]
print(json.dumps({"arn": arn, "order": item["order_id"]["S"]}))
"#;

fn python(serve: &Serve, script: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(venv().join("bin/python"));
    serve
        .sdk_env(&mut cmd)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn boto3_runs_unchanged_on_credentials_from_tvm_serve() {
    let serve = Serve::start(&task("initrode"), &shared().gateway.url(), &[]);
    let out = python(&serve, BOTO3_SCRIPT, &["initrode"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/orders-tenant/initrode."),
        "{v}"
    );
    assert_eq!(v["order"], "boto3");
}

#[test]
fn the_aws_cli_runs_on_the_container_variables_with_a_token_file() {
    let dir = std::env::temp_dir().join(format!("tvm-serve-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    let _ = std::fs::remove_file(&token_file);
    let serve = Serve::start(
        &task("acme"),
        &shared().gateway.url(),
        &["--token-file", token_file.to_str().unwrap()],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut cmd = Command::new(venv().join("bin/aws"));
    serve
        .sdk_env(&mut cmd)
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file);
    let out = cmd
        .args(["sts", "get-caller-identity", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["Arn"]
        .as_str()
        .unwrap()
        .contains(":assumed-role/orders-tenant/acme."));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tvm_serve_guards_its_endpoint() {
    let serve = Serve::start(&task("acme"), &shared().gateway.url(), &[]);
    let (status, body) = serve.credentials();
    assert_eq!(status, 200, "{body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "RoleArn",
            "SecretAccessKey",
            "Token"
        ]
    );
    assert_eq!(serve.get(&[]).0, 401);
    assert_eq!(serve.get(&[("Authorization", "not-the-token")]).0, 403);
    let (status, body) = serve.get(&[
        ("Authorization", &serve.token),
        ("X-Forwarded-For", "10.0.0.9"),
    ]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        raw_get(
            &serve.uri.replace("/credentials", "/other"),
            &[("Authorization", &serve.token)]
        )
        .0,
        404
    );
    assert!(serve.uri.starts_with("http://127.0.0.1:"));
    assert_eq!(serve.token.len(), 64);

    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    let out = cmd
        .args([
            "serve",
            "--profile",
            "orders-tenant",
            "--listen",
            "0.0.0.0:0",
        ])
        .args(endpoint_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
}

#[test]
fn tvm_serve_refreshes_ahead_and_serves_until_expiry_while_tvm_is_down() {
    // A deployment of its own, so it can be taken down.
    let (lambda, gateway) = own_deployment();
    // 900 s credentials, usable for 6 s (margin 894 s), refreshed after 3 s.
    let serve = Serve::start(
        &task("acme"),
        &gateway.url(),
        &["--refresh-window", "897", "--expiry-margin", "894"],
    );
    let (status, first) = serve.credentials();
    assert_eq!(status, 200, "{first}");
    let first_key = first["AccessKeyId"].as_str().unwrap().to_string();

    let deadline = Instant::now() + Duration::from_secs(20);
    let refreshed = loop {
        assert!(Instant::now() < deadline, "no refresh before expiry");
        let (status, body) = serve.credentials();
        assert_eq!(status, 200, "{body}");
        if body["AccessKeyId"] != first_key.as_str() {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let refreshed_until: chrono::DateTime<chrono::Utc> =
        refreshed["Expiration"].as_str().unwrap().parse().unwrap();
    assert!(
        refreshed_until > chrono::Utc::now(),
        "the refresh came before the old credentials' end"
    );

    gateway.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut served_while_down = 0;
    let error = loop {
        assert!(
            Instant::now() < deadline,
            "credentials were served past their expiry"
        );
        let (status, body) = serve.credentials();
        if status != 200 {
            break (status, body);
        }
        let until: chrono::DateTime<chrono::Utc> =
            body["Expiration"].as_str().unwrap().parse().unwrap();
        assert!(
            until > chrono::Utc::now() - chrono::Duration::seconds(1),
            "handed out expired credentials"
        );
        served_while_down += 1;
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        served_while_down > 0,
        "unexpired credentials are served while tvm is unreachable"
    );
    assert_eq!(error.0, 503);
    assert!(
        error.1["message"]
            .as_str()
            .unwrap()
            .contains("could not reach tvm"),
        "{}",
        error.1
    );

    // An SDK surfaces that error.
    let out = python(
        &serve,
        "import boto3; boto3.client('sts').get_caller_identity()",
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error") && stderr.contains("credentials"),
        "{stderr}"
    );
    block_on_spawned(async move { lambda.stop().await });
}

/// The credential requests a function instance has answered (its decision lines).
fn vends(lambda: &tvm_devstack::runtime::Lambda) -> usize {
    lambda
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "decision" && v["path"] == "/v1/credentials")
        .count()
}

#[test]
fn tvm_serve_vends_once_at_start_up() {
    // GIVEN `tvm serve` on a deployment of its own (nobody else vends there)
    // and an SDK asking as soon as it is up,
    let (lambda, gateway) = own_deployment();
    let serve = Serve::start(&task("acme"), &gateway.url(), &[]);
    for _ in 0..5 {
        let (status, body) = serve.credentials();
        assert_eq!(status, 200, "{body}");
    }
    // THEN the background refresher (first turn 200 ms after start) shares
    // that fetch instead of vending again: watch well past its first turn.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(vends(&lambda) <= 1, "vended {} times", vends(&lambda));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(vends(&lambda), 1);
    drop(serve);
    gateway.stop();
    block_on_spawned(async move { lambda.stop().await });
}

#[test]
fn tvm_serve_exec_runs_the_child_and_sigterm_stops_cleanly() {
    let creds = task("acme");
    let mut cmd = Command::new(tvm());
    clean(&mut cmd);
    let out = with_creds(&mut cmd, &creds)
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        // What ECS injects for the task role; SDKs would prefer it to tvm serve's.
        .env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-role")
        .args(["serve", "--profile", "orders-tenant"])
        .args(endpoint_args())
        .arg("--exec")
        .arg(venv().join("bin/python"))
        .args(["-c", "import boto3, sys; print(boto3.client('sts').get_caller_identity()['Arn']); sys.exit(7)"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(":assumed-role/orders-tenant/acme."));

    let serve = Serve::start(&creds, &shared().gateway.url(), &[]);
    assert_eq!(serve.credentials().0, 200);
    let mut serve = serve;
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(serve.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tvm serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn tvm_exec_runs_a_command_with_the_credentials_and_passes_its_exit_code() {
    let creds = task("acme");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(tvm());
        clean(&mut cmd);
        with_creds(&mut cmd, &creds)
            .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
            .args(["exec", "--profile", "orders-tenant"])
            .args(endpoint_args())
            .arg("--")
            .args(args)
            .output()
            .unwrap()
    };
    let aws = venv().join("bin/aws");
    let out = run(&[
        aws.to_str().unwrap(),
        "sts",
        "get-caller-identity",
        "--output",
        "text",
        "--query",
        "Arn",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(":assumed-role/orders-tenant/acme."));
    assert_eq!(run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
}

#[test]
fn awscurl_signs_a_request_tvm_accepts() {
    let creds = task("acme");
    let mut cmd = Command::new(venv().join("bin/awscurl"));
    clean(&mut cmd);
    let out = with_creds(&mut cmd, &creds)
        .args([
            "--service",
            "execute-api",
            "--region",
            REGION,
            "-X",
            "POST",
            "-d",
            r#"{"profile":"orders-tenant"}"#,
        ])
        .arg(format!("{}/v1/credentials", shared().gateway.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{v}"
    );
    assert_eq!(v["Profile"], "orders-tenant");
}

#[test]
fn the_rust_provider_example_runs_on_tvm_credentials() {
    let creds = task("acme");
    let example = workspace_bin("examples/provider");
    let mut cmd = Command::new(example);
    clean(&mut cmd);
    let out = with_creds(&mut cmd, &creds)
        .env("TVM_ENDPOINT", shared().gateway.url())
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        .args(["orders-tenant", "acme"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("running as arn:aws:sts::123456789012:assumed-role/orders-tenant/acme."),
        "{stdout}"
    );
    assert!(stdout.contains("stored an order for tenant acme"));
}

#[test]
fn whoami_and_profiles_read_the_endpoint_from_the_aws_config() {
    let creds = task("acme");
    let dir = std::env::temp_dir().join(format!("tvm-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = {REGION}\n\n[tvm]\nendpoint = {}\n",
            shared().gateway.url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(tvm());
        clean(&mut cmd);
        with_creds(&mut cmd, &creds)
            .env("AWS_CONFIG_FILE", &config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["whoami"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("arn:     arn:aws:sts::123456789012:assumed-role/orders-task/acme"),
        "{text}"
    );
    assert!(text.contains("session: acme"));
    let out = run(&["profiles"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().nth(1).unwrap().starts_with("PROFILE"),
        "{text}"
    );
    assert!(text.contains("orders-tenant") && text.contains("allow"));
    assert!(!text.contains('\x1b'), "no colours when not on a terminal");
    let out = run(&["profiles", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["profile"] == "orders-tenant"));
    let out = run(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("credential-process"));
    std::fs::remove_dir_all(dir).ok();
}

/// Run `tvm serve --token-file PATH` for at most 10 s: its exit code (`None`
/// if it was still serving, i.e. it adopted the file), stdout and stderr.
fn serve_with_token_file(path: &Path) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(tvm());
    let mut child = clean(&mut cmd)
        .args(["serve", "--profile", "orders-tenant", "--print-env"])
        .args(["--endpoint", "http://127.0.0.1:9", "--token-file"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out.0);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut out.1);
    }
    (code, out.0, out.1)
}

/// `tvm serve --token-file` adopts a token only from a regular file of the
/// current user that nobody else may read or write, never through a
/// symlink; each refusal names the file and what to fix, before anything is
/// served. (On main before the trust model v2, all three were adopted.)
#[test]
fn a_token_file_someone_else_could_read_or_plant_is_refused() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("tvm-serve-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let planted = "planted-token-0123456789abcdef";
    let write = |name: &str, mode: u32| {
        let p = dir.join(name);
        std::fs::write(&p, planted).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let readable = write("readable", 0o644);
    let group_writable = write("group-writable", 0o620);
    let mine = write("mine", 0o600);
    let link = dir.join("link");
    symlink(&mine, &link).unwrap();
    let mut cases = vec![
        (readable, "mode 0644"),
        (group_writable, "mode 0620"),
        (link, "symbolic link"),
    ];
    // Someone else's file with a private mode: as root (CI) a file given to
    // `nobody`; as another user, a file root owns.
    let me = unsafe { libc::geteuid() };
    if me == 0 {
        let theirs = write("theirs", 0o600);
        chown(&theirs, Some(65534), Some(65534)).unwrap();
        cases.push((theirs, "not by the current user"));
    } else if Path::new("/etc/hostname").exists() {
        cases.push(("/etc/hostname".into(), "not by the current user"));
    }
    for (path, why) in cases {
        let (code, stdout, stderr) = serve_with_token_file(&path);
        assert_ne!(code, Some(0), "{} was adopted", path.display());
        assert!(
            code.is_some(),
            "{} was adopted: tvm serve kept running",
            path.display()
        );
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(why),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stdout.contains(planted));
    }
    // A dangling symlink where a new token would go is not written through.
    let target = dir.join("elsewhere");
    let dangling = dir.join("dangling");
    symlink(&target, &dangling).unwrap();
    let (code, _, _) = serve_with_token_file(&dangling);
    assert!(code.is_some_and(|c| c != 0), "tvm serve took {dangling:?}");
    assert!(!target.exists(), "the token was written through a symlink");
    std::fs::remove_dir_all(dir).ok();
}

/// The Lambda layer `make layer` builds (here from the debug binary):
/// extracted as Lambda extracts layers, its wrapper runs the function's
/// runtime as `tvm serve`'s child, with the profile's credentials and
/// none of the function role's.
#[test]
fn the_lambda_layers_exec_wrapper_runs_the_runtime_under_tvm_serve() {
    let root = tvm_devstack::stack::repo_root();
    let dir = std::env::temp_dir().join(format!("tvm-layer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (zip, opt) = (dir.join("layer.zip"), dir.join("opt"));
    let py = venv().join("bin/python");
    let ok = Command::new(&py)
        .arg(root.join("scripts/layer.py"))
        .arg(&zip)
        .arg(tvm())
        .status()
        .unwrap()
        .success();
    assert!(ok, "layer.py");
    let extract = "import os, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor i in z.infolist():\n    p = z.extract(i, sys.argv[2])\n    os.chmod(p, (i.external_attr >> 16) & 0o777)\n    print(i.filename, oct((i.external_attr >> 16) & 0o777))\n";
    let listed = Command::new(&py)
        .args(["-c", extract])
        .arg(&zip)
        .arg(&opt)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(listed, "bin/tvm 0o755\ntvm-wrapper 0o755\n");

    let wrapper = opt.join("tvm-wrapper");
    let creds = task("acme");
    let mut cmd = Command::new(&wrapper);
    clean(&mut cmd);
    let unset = with_creds(&mut cmd, &creds).arg("true").output().unwrap();
    assert_eq!(unset.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("set TVM_PROFILE"));

    let mut cmd = Command::new(&wrapper);
    clean(&mut cmd);
    let out = with_creds(&mut cmd, &creds)
        .env("TVM_PROFILE", "orders-tenant")
        .env("TVM_ENDPOINT", shared().gateway.url())
        .env("AWS_ENDPOINT_URL", shared().stack.moto.url())
        // The runtime's own command line, as Lambda passes it to the wrapper.
        .arg(&py)
        .args(["-c", "import boto3, os; print(boto3.client('sts').get_caller_identity()['Arn']); print('AWS_ACCESS_KEY_ID' in os.environ)"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(":assumed-role/orders-tenant/acme."),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("False"),
        "the function role's keys are gone: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
