//! The browser test: headless Chromium (Debian's `chromium`, driven by
//! playwright-core) loads `browser/`'s page, built with esbuild on the AWS
//! SDK for JavaScript v3. The page signs in at the local OIDC issuer, gets
//! credentials from the real bootstrap with its ID token (CORS for the
//! page's origin), calls DynamoDB on the emulator with them (IAM auth
//! enforced: a forged or stale key is refused), and, once the page's clock
//! says they expire within the SDK's five-minute window, refreshes them.
//!
//! It needs Chromium, Node.js and `browser/`'s npm packages, which
//! `make test` installs (`make browser`). Without them it says SKIPPED,
//! unless `TVM_REQUIRE_BROWSER=1` (CI), where it fails.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tvm_devstack::gateway::{Auth, Gateway};
use tvm_devstack::oidc::{Issuer, AUDIENCE};
use tvm_devstack::pages::Pages;
use tvm_devstack::proxy::Proxy;

use crate::aws_rules::beyond_aws_limits;
use crate::harness::*;
use crate::oidc::{notes_policy, policy_of, NOTES};

const PROFILE: &str = "browser-page";
const USERS: [&str; 2] = ["page-ana", "page-ben"];
/// The whole drive (browser start, two pages), bounded.
const DRIVE_TIMEOUT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    tvm_devstack::stack::repo_root().join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing for the browser test, if anything.
fn missing() -> Option<String> {
    let dir = browser_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("no `node` on PATH".into());
    }
    if !chromium().exists() {
        return Some(format!(
            "no Chromium at {} (`make browser` installs Debian's)",
            chromium().display()
        ));
    }
    for (path, how) in [
        ("node_modules/playwright-core", "npm ci"),
        ("dist/app.js", "npm run build"),
    ] {
        if !dir.join(path).exists() {
            return Some(format!("no browser/{path} (`make browser` runs {how})"));
        }
    }
    None
}

/// The page's URL for one user.
fn page_url(page: &Pages, issuer: &Issuer, tvm: &str, aws: &str, sub: &str) -> String {
    let q = [
        ("issuer", issuer.url()),
        ("audience", AUDIENCE.to_string()),
        ("tvm", tvm.to_string()),
        ("aws", aws.to_string()),
        ("region", tvm_devstack::stack::REGION.to_string()),
        ("sub", sub.to_string()),
        ("profile", PROFILE.to_string()),
        ("table", "notes".to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('/', "%2F")))
    .collect::<Vec<_>>()
    .join("&");
    format!("{}/?{q}", page.origin())
}

/// Run the driver over `urls`: what each page saw.
async fn drive(urls: &[String]) -> Vec<Value> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(browser_dir())
        .arg("drive.mjs")
        .arg(DRIVE_TIMEOUT.as_millis().to_string())
        .args(urls)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true);
    let out = tokio::time::timeout(DRIVE_TIMEOUT, cmd.output())
        .await
        .expect("the browser drive finished in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "the driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the driver's JSON")
}

/// The one statement of a notes policy and the partition keys it allows.
fn leading_keys(policy: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(policy).expect("policy JSON");
    let statements = doc["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{policy}");
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow", "{policy}");
    assert_eq!(
        s["Resource"], "arn:aws:dynamodb:*:123456789012:table/notes",
        "{policy}"
    );
    s["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        .as_array()
        .expect("LeadingKeys")
        .iter()
        .map(|v| v.as_str().expect("a key").to_string())
        .collect()
}

#[test]
fn a_browser_signs_in_vends_with_its_id_token_calls_dynamodb_and_refreshes_before_expiry() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("TVM_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "TVM_REQUIRE_BROWSER=1 but the browser test cannot run: {why}"
        );
        eprintln!("SKIPPED: browser test: {why}");
        return;
    }
    run(async {
        let issuer = Issuer::start().await.expect("issuer");
        let page = Pages::start(&browser_dir(), &["index.html", "dist/app.js"])
            .await
            .expect("the page's server");
        let policy = notes_policy(&issuer.url())
            .replace(&format!("profile: {NOTES}"), &format!("profile: {PROFILE}"));
        put_policy(PROFILE, &policy, aws_sdk_ssm::types::ParameterType::String).await;
        let (lambda, sts) = counted_lambda(&[
            ("TVM_IDENTITY_MODES", "jwt"),
            ("TVM_JWT_ISSUERS", &issuer.url()),
            ("TVM_JWT_AUDIENCES", AUDIENCE),
            ("TVM_CORS_ORIGINS", page.origin()),
        ])
        .await;
        let front = Gateway::start(lambda.runtime.clone(), Auth::None)
            .await
            .expect("front");
        // The page's own DynamoDB calls, recorded with the key that signed each.
        let aws = Proxy::for_browsers(shared().stack.moto.addr)
            .await
            .expect("proxy");
        let urls: Vec<String> = USERS
            .iter()
            .map(|sub| page_url(&page, &issuer, &front.url(), &aws.url(), sub))
            .collect();

        let seen = drive(&urls).await;

        assert_eq!(seen.len(), USERS.len());
        let mut policies = Vec::new();
        for (sub, page) in USERS.iter().zip(&seen) {
            assert_eq!(page["errors"], serde_json::json!([]), "{sub}: {page:#}");
            let note = format!("note of {sub}");
            assert_eq!(page["note"], note.as_str(), "{sub}");
            assert_eq!(page["noteAgain"], note.as_str(), "{sub}");
            // One vend at sign-in, one refresh after the clock moved on.
            let vends = page["vends"].as_array().expect("vends");
            assert_eq!(vends.len(), 2, "{sub}: {vends:?}");
            let (first, refreshed) = (&vends[0], &vends[1]);
            assert_ne!(first["session"], refreshed["session"]);
            // The SDK signed the first calls with the first credentials and
            // the call after the clock moved with the refreshed ones.
            let signed_with = |v: &Value| -> Vec<String> {
                let key = v["accessKeyId"].as_str().expect("a key");
                aws.calls()
                    .into_iter()
                    .filter(|c| c.service == "dynamodb" && c.access_key.as_deref() == Some(key))
                    .map(|c| format!("{} {}", c.action, c.status))
                    .collect()
            };
            assert_eq!(signed_with(first), ["PutItem 200", "GetItem 200"], "{sub}");
            assert_eq!(signed_with(refreshed), ["GetItem 200"], "{sub}");
            // The recorded AssumeRole policy: this user's partition key only,
            // the same for the refresh.
            let sessions = [first, refreshed].map(|v| v["session"].as_str().unwrap().to_string());
            let policy = policy_of(&sts, &sessions[0]);
            assert_eq!(policy_of(&sts, &sessions[1]), policy, "{sub}");
            assert_eq!(leading_keys(&policy), [sub.to_string()], "{sub}");
            // The item is in the emulator, under the user's key.
            let item = aws_sdk_dynamodb::Client::new(&sdk())
                .get_item()
                .table_name("notes")
                .key(
                    "user",
                    aws_sdk_dynamodb::types::AttributeValue::S(sub.to_string()),
                )
                .send()
                .await
                .expect("get_item")
                .item
                .expect("the page's item");
            assert_eq!(item["note"].as_s().ok(), Some(&note));
            policies.push(policy);
            eprintln!(
                "browser: {sub}: first credentials {:.0} ms after the page started (sign-in, then a vend of {:.0} ms), first DynamoDB answer at {:.0} ms; refresh: a vend of {:.0} ms in a call of {:.0} ms",
                page["firstCredentialsMs"].as_f64().unwrap_or(f64::NAN),
                first["ms"].as_f64().unwrap_or(f64::NAN),
                page["firstCallMs"].as_f64().unwrap_or(f64::NAN),
                refreshed["ms"].as_f64().unwrap_or(f64::NAN),
                page["againMs"].as_f64().unwrap_or(f64::NAN),
            );
        }
        // A second user's policy differs only in its id.
        assert_eq!(policies[0].replace(USERS[0], USERS[1]), policies[1]);
        assert_ne!(policies[0], policies[1]);
        assert_eq!(beyond_aws_limits(&sts.calls()), Vec::<String>::new());
        front.stop();
        lambda.stop().await;
    });
}
