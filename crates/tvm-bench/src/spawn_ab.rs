//! `spawn-ab RUNS BOOTSTRAP...`: exec to first runtime-API poll of each
//! bootstrap, spawned in turn RUNS times (so that the machine's noise falls
//! on all of them alike), with the function's settings and an AWS endpoint
//! that refuses connections (nothing before the first poll waits for AWS).
//! Prints each one's median, quartile and minimum in milliseconds.
//!
//! `cargo run --release -p tvm-bench --bin spawn-ab -- 400 old/bootstrap new/bootstrap`

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const ENV: [(&str, &str); 17] = [
    ("AWS_LAMBDA_FUNCTION_NAME", "tvm"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tvm"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("TVM_SESSIONS_TABLE", "tvm-sessions"),
    ("TVM_APPROVALS_TABLE", "tvm-approvals"),
    ("TVM_BREAKGLASS_TABLE", "tvm-breakglass"),
    ("TVM_IDENTITY_MODES", "apigw,sts"),
    ("TVM_SERVER_ID", "tvm.example.com"),
    (
        "TVM_ADMIN_PRINCIPALS",
        "arn:aws:iam::123456789012:role/security-admin",
    ),
    ("TVM_ALLOWED_ACCOUNTS", "123456789012"),
    ("RUST_LOG", "info"),
];

fn first_poll(bootstrap: &str) -> Result<Duration, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // A bootstrap that never polls: after 5 s the watchdog connects itself,
    // which ends the accept (no spinning beside the measured process).
    let (done, wait) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let timed_out = Arc::clone(&timed_out);
        std::thread::spawn(move || {
            if wait.recv_timeout(Duration::from_secs(5)).is_err() {
                timed_out.store(true, Ordering::SeqCst);
                let _ = TcpStream::connect(addr);
            }
        })
    };
    let started = Instant::now();
    let spawned = Command::new(bootstrap)
        .env_clear()
        .envs(ENV)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let polled = match &spawned {
        Err(e) => Err(format!("{bootstrap}: {e}")),
        Ok(_) => listener
            .accept()
            .map_err(|e| e.to_string())
            .and_then(|(mut conn, _)| {
                if timed_out.load(Ordering::SeqCst) {
                    return Err(format!("{bootstrap} did not poll within 5 s"));
                }
                conn.set_read_timeout(Some(Duration::from_secs(5)))
                    .and_then(|()| conn.read_exact(&mut [0u8; 3]))
                    .map(|()| started.elapsed())
                    .map_err(|e| format!("{bootstrap}: {e}"))
            }),
    };
    let _ = done.send(());
    let _ = watchdog.join();
    if let Ok(mut child) = spawned {
        let _ = child.kill();
        let _ = child.wait();
    }
    polled
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args.first().and_then(|n| n.parse::<usize>().ok());
    let bins = args.get(1..).unwrap_or_default();
    let (Some(runs @ 1..), false) = (runs, bins.is_empty()) else {
        eprintln!("usage: spawn-ab RUNS BOOTSTRAP...");
        std::process::exit(2);
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); bins.len()];
    for _ in 0..runs {
        for (bin, out) in bins.iter().zip(times.iter_mut()) {
            match first_poll(bin) {
                Ok(t) => out.push(t.as_secs_f64() * 1000.0),
                Err(e) => {
                    eprintln!("spawn-ab: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    for (bin, t) in bins.iter().zip(times.iter_mut()) {
        t.sort_by(f64::total_cmp);
        println!(
            "{bin}: median {:.2} ms, p25 {:.2}, min {:.2} ({runs} runs)",
            t[t.len() / 2],
            t[t.len() / 4],
            t[0]
        );
    }
}
