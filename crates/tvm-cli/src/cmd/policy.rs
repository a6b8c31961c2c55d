//! `tvm policy validate|test`: policy documents checked and tried offline,
//! with the same tvm_core functions the function runs.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use tvm_core::decision::{decide, GateState, VendRequest};
use tvm_core::policy::{parse_profile, PolicySet};
use tvm_core::principal::Principal;
use tvm_core::vend::{plan, VendContext};

use crate::error::CliError;
use crate::flags::attributes;

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
}

impl Policy {
    /// Exit 1 when a document is invalid; `test` exits 2 on a deny.
    pub fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Self::Validate { files } => validate(&files),
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
            // The plan a vend would make, with a placeholder session id.
            let context = VendContext {
                session_id: "00000000000000000000000000000000",
                request_id: "policy-test",
                now,
                retention: chrono::Duration::zero(),
                lineage: None,
            };
            let planned = plan(&grant, &who, context).map_err(|e| format!("rendering: {e}"))?;
            println!("decision: allow");
            println!("rule:     {}", grant.rule.name);
            print!("{}", planned.assume);
            Ok(ExitCode::SUCCESS)
        }
    }
}
