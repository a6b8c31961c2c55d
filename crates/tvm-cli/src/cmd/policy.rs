//! `tvm policy validate|test`: policy documents checked and tried offline,
//! with the same tvm_core functions the function runs; `push|pull|diff|sign`
//! move them between files and SSM (`policy_store`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use tvm_core::decision::{decide, GateState, VendRequest};
use tvm_core::policy::{parse_profile, PolicySet, Profile};
use tvm_core::principal::Principal;
use tvm_core::vend::{plan, VendContext};

use crate::cmd::policy_store::{self, Store};
use crate::error::CliError;
use crate::flags::attributes;

const DEFAULT_PREFIX: &str = "/tvm/policies/";

#[derive(Subcommand)]
pub enum Policy {
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
    /// Validate documents, show what changes against SSM, then store them
    /// (all or none: one invalid document stores nothing).
    Push {
        #[arg(required = true)]
        files: Vec<String>,
        /// The parameter path the function reads (TVM_POLICY_PREFIX).
        #[arg(long, env = "TVM_POLICY_PREFIX", default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// Store as SecureString (with the account's aws/ssm key, or --kms-key-id).
        #[arg(long)]
        secure: bool,
        #[arg(long, requires = "secure")]
        kms_key_id: Option<String>,
        /// Sign each document with this KMS asymmetric key before storing.
        #[arg(long, value_name = "KEY")]
        sign_key: Option<String>,
        /// Show what would change; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write stored documents to files (PROFILE.yaml in --dir).
    Pull {
        /// Profiles to pull; every one under the prefix when none is named.
        profiles: Vec<String>,
        #[arg(long, env = "TVM_POLICY_PREFIX", default_value = DEFAULT_PREFIX)]
        prefix: String,
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// Write only documents whose signature verifies with this KMS key
        /// (KMS Verify); exit 1 if any does not.
        #[arg(long, value_name = "KEY")]
        verify_key: Option<String>,
    },
    /// What pushing these documents would change: settings and rules, and
    /// with --caller the decision and session policy before and after.
    Diff {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, env = "TVM_POLICY_PREFIX", default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// A sample caller's ARN to render for, before and after.
        #[arg(long)]
        caller: Option<String>,
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Sign documents in place with a KMS asymmetric key (ECC_NIST_P256 or
    /// RSA, SIGN_VERIFY): a `# tvm-signature:` last line, which the function
    /// verifies when TVM_POLICY_SIGNING_KEY is set.
    Sign {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, env = "TVM_POLICY_SIGNING_KEY", value_name = "KEY")]
        key: String,
        /// The prefix the documents will be stored under: a signature holds
        /// for that deployment's parameter only.
        #[arg(long, env = "TVM_POLICY_PREFIX", default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
}

impl Policy {
    /// Exit 1 when a document is invalid; `test` exits 2 on a deny.
    pub async fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Self::Validate { files } => validate(&files),
            Self::Push {
                files,
                prefix,
                secure,
                kms_key_id,
                sign_key,
                dry_run,
            } => {
                let secure = secure.then_some(kms_key_id.as_deref());
                push(&files, &prefix, secure, sign_key.as_deref(), dry_run).await
            }
            Self::Pull {
                profiles,
                prefix,
                dir,
                verify_key,
            } => pull(&profiles, &prefix, &dir, verify_key.as_deref()).await,
            Self::Diff {
                files,
                prefix,
                caller,
                attributes: attrs,
            } => policy_diff(&files, &prefix, caller.as_deref(), &attrs).await,
            Self::Sign { files, key, prefix } => sign(&files, &key, &prefix).await,
            Self::Test {
                file,
                caller,
                org_id,
                at,
                duration,
                attributes: attrs,
            } => test(
                &file,
                &caller,
                org_id.as_deref(),
                at.as_deref(),
                duration,
                &attrs,
            ),
        }
    }
}

fn validate(files: &[String]) -> Result<ExitCode, CliError> {
    let mut failed = false;
    for file in files {
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

fn test(
    file: &str,
    caller: &str,
    org_id: Option<&str>,
    at: Option<&str>,
    duration: Option<u32>,
    attrs: &[String],
) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let profile = parse_profile(&text, None).map_err(|e| format!("{file}: {e}"))?;
    let name = profile.name.clone();
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
    let (text, allowed) = evaluate(profile, &who, &request, now)?;
    print!("{text}");
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The decision and the plan a vend would make, as `tvm policy test`
/// prints them, and whether it allows.
fn evaluate(
    profile: Profile,
    who: &Principal,
    request: &VendRequest,
    now: DateTime<Utc>,
) -> Result<(String, bool), CliError> {
    let set = PolicySet::new([profile]);
    match decide(&set, who, request, &GateState::default(), now) {
        Err(denial) => Ok((format!("decision: deny\nreason:   {denial}\n"), false)),
        Ok(grant) => {
            // The plan a vend would make, with a placeholder session id.
            let context = VendContext {
                session_id: "00000000000000000000000000000000",
                request_id: "policy-test",
                now,
                retention: chrono::Duration::zero(),
                lineage: None,
            };
            let planned = plan(&grant, who, context).map_err(|e| format!("rendering: {e}"))?;
            Ok((
                format!(
                    "decision: allow\nrule:     {}\n{}",
                    grant.rule.name, planned.assume
                ),
                true,
            ))
        }
    }
}

async fn push(
    files: &[String],
    prefix: &str,
    secure: Option<Option<&str>>,
    sign_key: Option<&str>,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    let locals = policy_store::read_valid(files)?;
    let store = Store::from_env(prefix).await?;
    let mut writes = Vec::new();
    for l in &locals {
        let stored = store.get(&l.profile).await?;
        let document = tvm_core::signature::unsigned(&l.text);
        let value = match (sign_key, &stored) {
            // The same document already stored with a signature this key
            // verifies: unchanged (signing again would only make another
            // ECDSA signature, and another parameter version).
            (Some(key), Some(s))
                if tvm_core::signature::unsigned(s) == document
                    && store.verify(key, &l.profile, s).await?.is_ok() =>
            {
                s.clone()
            }
            (Some(key), _) => store.sign(key, &l.profile, &document).await?,
            (None, _) => l.text.clone(),
        };
        policy_store::check_size(&l.file, &value)?;
        print!(
            "{}",
            policy_store::describe(&l.profile, stored.as_deref(), &value)?
        );
        if stored.as_deref() != Some(value.as_str()) {
            writes.push((l.profile.clone(), value));
        }
    }
    if dry_run {
        println!("dry run: nothing stored ({} would be)", writes.len());
        return Ok(ExitCode::SUCCESS);
    }
    for (profile, value) in &writes {
        store.put(profile, value, secure).await?;
        println!("stored {prefix}{profile}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn pull(
    profiles: &[String],
    prefix: &str,
    dir: &std::path::Path,
    verify_key: Option<&str>,
) -> Result<ExitCode, CliError> {
    let store = Store::from_env(prefix).await?;
    let docs = if profiles.is_empty() {
        store.list().await?
    } else {
        let mut docs = Vec::new();
        for p in profiles {
            let value = store
                .get(p)
                .await?
                .ok_or_else(|| format!("no profile {p} under {prefix}"))?;
            docs.push((p.clone(), value));
        }
        docs
    };
    let mut refused = 0;
    for (profile, value) in &docs {
        if let Some(key) = verify_key {
            if let Err(why) = store.verify(key, profile, value).await? {
                refused += 1;
                println!("{profile}: not written: {why}");
                continue;
            }
        }
        println!("{}", policy_store::write_profile(dir, profile, value)?);
    }
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn policy_diff(
    files: &[String],
    prefix: &str,
    caller: Option<&str>,
    attrs: &[String],
) -> Result<ExitCode, CliError> {
    let locals = policy_store::read_valid(files)?;
    let who = caller
        .map(|c| Principal::parse(c, None).map_err(|e| format!("--caller: {e}")))
        .transpose()?;
    let store = Store::from_env(prefix).await?;
    let now = Utc::now();
    for l in &locals {
        let stored = store.get(&l.profile).await?;
        print!(
            "{}",
            policy_store::describe(&l.profile, stored.as_deref(), &l.text)?
        );
        let Some(who) = &who else { continue };
        let request = VendRequest {
            profile: l.profile.clone(),
            duration_seconds: None,
            attributes: attributes(attrs)?,
        };
        let before = match stored.as_deref().map(|s| parse_profile(s, None)) {
            None => {
                "decision: deny\nreason:   no profile of that name (not stored yet)\n".to_string()
            }
            Some(Err(e)) => format!("the stored document is invalid: {e}\n"),
            Some(Ok(p)) => evaluate(p, who, &request, now)?.0,
        };
        let local = parse_profile(&l.text, None).map_err(|e| format!("{}: {e}", l.file))?;
        let after = evaluate(local, who, &request, now)?.0;
        if before == after {
            println!("  for {}: the same decision and session policy", who.arn);
        } else {
            println!("  for {}, before:", who.arn);
            print!("{}", indent(&before));
            println!("  after:");
            print!("{}", indent(&after));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

async fn sign(files: &[String], key: &str, prefix: &str) -> Result<ExitCode, CliError> {
    let locals = policy_store::read_valid(files)?;
    let store = Store::from_env(prefix).await?;
    for l in &locals {
        let document = tvm_core::signature::unsigned(&l.text);
        let value = store.sign(key, &l.profile, &document).await?;
        policy_store::check_size(&l.file, &value)?;
        std::fs::write(&l.file, &value).map_err(|e| format!("{}: {e}", l.file))?;
        println!("{}: signed for {prefix}{} with {key}", l.file, l.profile);
    }
    Ok(ExitCode::SUCCESS)
}
