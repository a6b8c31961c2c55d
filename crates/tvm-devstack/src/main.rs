//! `tvm-local`: the whole stack on loopback until SIGINT/SIGTERM.
//!
//! Writes `<state-dir>/stack.json` (its own pid, endpoint, emulator URL, demo
//! identities) once everything answers; on shutdown writes
//! `<state-dir>/calls.json` (every AWS call the function made, as the proxy saw
//! it) and `<state-dir>/lambda.log`. Each file appears whole (written beside,
//! then renamed), and `pid` tells a reader which run wrote `stack.json`.
//!
//! Beside the SigV4 callers, a local OIDC issuer (`oidc_issuer` in the state):
//! the function also runs the `jwt` mode for it, the front passes bearer
//! tokens through, and `examples/oidc/browser-notes.yaml` is seeded for it.

use std::path::{Path, PathBuf};

use serde_json::json;
use tvm_devstack::gateway::{Auth, Gateway};
use tvm_devstack::oidc::{Issuer, AUDIENCE};
use tvm_devstack::runtime::Lambda;
use tvm_devstack::stack::{repo_root, sdk_config, Stack, REGION, SERVER_ID};

/// Put the oidc example profile into SSM for the local issuer.
async fn seed_oidc_example(stack: &Stack, issuer: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(repo_root().join("examples/oidc/browser-notes.yaml"))
        .map_err(|e| format!("examples/oidc/browser-notes.yaml: {e}"))?
        .replace("https://id.example.com", issuer);
    let sdk = sdk_config(&stack.moto.url(), stack.ids.function.credentials());
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/tvm/policies/browser-notes")
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| format!("seeding the oidc example: {e:?}"))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut state_dir = PathBuf::from(".tvm");
    let mut bind = "127.0.0.1:0".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--state-dir" => state_dir = args.next().ok_or("--state-dir needs a value")?.into(),
            "--bind" => bind = args.next().ok_or("--bind needs a value")?,
            other => return Err(format!("unknown argument {other:?}; usage: tvm-local [--state-dir DIR] [--bind 127.0.0.1:PORT]")),
        }
    }
    if !bind.starts_with("127.0.0.1:") {
        return Err("tvm-local binds loopback only".into());
    }
    std::fs::create_dir_all(&state_dir).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(state_dir.join("stack.json"));

    let stack = Stack::start().await?;
    let issuer = Issuer::start().await?;
    seed_oidc_example(&stack, &issuer.url()).await?;
    let mut env = stack.function_env();
    env.retain(|(k, _)| k != "TVM_IDENTITY_MODES");
    env.extend([
        (
            "TVM_IDENTITY_MODES".to_string(),
            "apigw,sts,jwt".to_string(),
        ),
        ("TVM_JWT_ISSUERS".to_string(), issuer.url()),
        ("TVM_JWT_AUDIENCES".to_string(), AUDIENCE.to_string()),
    ]);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // TVM_BOOTSTRAP runs another build (e.g. the release one) on the same stack.
    let bootstrap = std::env::var_os("TVM_BOOTSTRAP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| exe.with_file_name("bootstrap"));
    let lambda = Lambda::start(&bootstrap, &env)
        .await
        .map_err(|e| format!("starting {}: {e}", bootstrap.display()))?;
    // Like an HTTP API with AWS_IAM: SigV4 checked, the caller in the request context.
    let auth = Auth::Iam {
        moto: stack.moto.addr,
    };
    let gateway = Gateway::start_on(lambda.runtime.clone(), auth, &bind)
        .await
        .map_err(|e| e.to_string())?;

    let state = json!({
        "pid": std::process::id(),
        "endpoint": gateway.url(),
        "bootstrap_pid": lambda.pid(),
        "aws_endpoint": stack.proxy.url(),
        "region": REGION,
        "server_id": SERVER_ID,
        "oidc_issuer": issuer.url(),
        "oidc_audience": AUDIENCE,
        "identities": {
            "account": stack.ids.account,
            "caller": {"arn": stack.ids.caller.arn, "access_key_id": stack.ids.caller.access_key_id, "secret_access_key": stack.ids.caller.secret_access_key},
            "analyst": {"arn": stack.ids.analyst.arn, "access_key_id": stack.ids.analyst.access_key_id, "secret_access_key": stack.ids.analyst.secret_access_key},
            "task_role": stack.ids.task_role,
        },
    });
    write_whole(
        &state_dir.join("stack.json"),
        &serde_json::to_vec_pretty(&state).unwrap(),
    )?;
    eprintln!(
        "tvm-local: tvm at {} (emulator {}); Ctrl-C to stop",
        gateway.url(),
        stack.moto.url()
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let calls: Vec<_> = stack
        .proxy
        .calls()
        .iter()
        .map(|c| json!({"service": c.service, "action": c.action, "status": c.status, "params": if c.service == "sts" { json!(c.params()) } else { json!(null) }}))
        .collect();
    write_whole(
        &state_dir.join("calls.json"),
        &serde_json::to_vec_pretty(&calls).unwrap(),
    )?;
    write_whole(
        &state_dir.join("lambda.log"),
        (lambda.logs().join("\n") + "\n").as_bytes(),
    )?;
    lambda.stop().await;
    eprintln!("tvm-local: stopped");
    Ok(())
}

/// Write `path` so that a reader sees no file or the whole file, never a part:
/// a temporary file beside it (named for this process), then a rename.
fn write_whole(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
