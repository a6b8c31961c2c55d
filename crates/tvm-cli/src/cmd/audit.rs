//! `tvm audit --since DURATION`: CloudTrail (LookupEvents) in the account
//! and region of the caller's AWS credentials, read for two things (the
//! rules are `tvm_core::audit`):
//!
//! - assumptions of protected roles (the profiles' roles under `--prefix`,
//!   any role under `/tvm/`, any `--role`) that tvm did not make: without a
//!   `tvm-` SourceIdentity, or with one whose session name names no vend tvm
//!   recorded for that role at that time;
//! - calls by sessions tvm revoked, after their revocation.
//!
//! Session records come from tvm's API (`GET /v1/sessions/{id}` and
//! `?revoked_since=`: the security team); the policies from SSM. Exit 0:
//! nothing found; 2: findings; 1: the audit could not be completed.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_cloudtrail::primitives::DateTime as AwsTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::Utc;
use clap::Args;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tvm_client::api::Api;
use tvm_core::api::SessionView;
use tvm_core::audit::{
    after_revocation, assumptions, named_sessions, Bypass, Event, Finding, Outcome, Protected,
    ASSUME_EVENTS,
};
use tvm_core::policy::parse_profile;
use tvm_core::signature;

use crate::cmd::policy_store::Store;
use crate::error::CliError;
use crate::flags::Global;
use crate::output::{output, table};

/// CloudTrail keeps 90 days of management events for LookupEvents.
const MAX_SINCE_SECONDS: i64 = 90 * 86_400;
/// The revoked sessions one audit checks (the API's page).
const MAX_REVOKED: usize = 1000;
/// Session records looked up at once.
const RECORD_CONCURRENCY: usize = 8;

#[derive(Args)]
pub struct Audit {
    /// How far back to read: 90m, 24h, 7d (at most 90d, CloudTrail's window).
    #[arg(long, value_parser = since_seconds)]
    since: i64,
    /// The policies' SSM prefix: their roles are protected.
    #[arg(long, default_value = "/tvm/policies/")]
    prefix: String,
    /// Another protected role (exact ARN); repeatable.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// LookupEvents calls a second (CloudTrail allows 2 per account and region).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    lookups_per_second: u32,
}

/// `90m`, `24h`, `7d`, `3600s`: seconds, within CloudTrail's 90 days.
fn since_seconds(s: &str) -> Result<i64, String> {
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    };
    let (n, u) = s.split_at(s.len().saturating_sub(1));
    let secs = u
        .chars()
        .next()
        .and_then(unit)
        .zip(n.parse::<i64>().ok())
        .map(|(u, n)| u * n)
        .filter(|&t| t > 0)
        .ok_or_else(|| format!("{s:?}: a number and a unit, such as 90m, 24h or 7d"))?;
    if secs > MAX_SINCE_SECONDS {
        return Err(format!(
            "{s}: CloudTrail's LookupEvents reaches back 90 days at most"
        ));
    }
    Ok(secs)
}

/// The report, as `--json` prints it.
#[derive(Serialize)]
struct Report {
    /// Epoch seconds: the window read.
    since: i64,
    until: i64,
    protected_roles: Vec<String>,
    events_read: usize,
    lookups: usize,
    revoked_sessions: usize,
    /// What could not be checked, and why.
    warnings: Vec<String>,
    findings: Vec<Finding>,
}

/// LookupEvents, at most `per_second` calls a second, paged to the end.
struct Trail {
    client: aws_sdk_cloudtrail::Client,
    interval: Duration,
    next: tokio::time::Instant,
    lookups: usize,
    unparsed: usize,
}

impl Trail {
    async fn events(
        &mut self,
        key: LookupAttributeKey,
        value: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<Event>, CliError> {
        let attr = LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut events = Vec::new();
        let mut token = None;
        loop {
            tokio::time::sleep_until(self.next).await;
            self.next = tokio::time::Instant::now() + self.interval;
            self.lookups += 1;
            let out = self
                .client
                .lookup_events()
                .lookup_attributes(attr.clone())
                .start_time(AwsTime::from_secs(since))
                .end_time(AwsTime::from_secs(until))
                .max_results(50)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    CliError::Usage(format!(
                        "CloudTrail LookupEvents failed: {}",
                        aws_sdk_cloudtrail::error::DisplayErrorContext(e)
                    ))
                })?;
            for e in out.events() {
                match e.cloud_trail_event().map(Event::parse) {
                    Some(Ok(event)) => events.push(event),
                    _ => self.unparsed += 1,
                }
            }
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(events)
    }
}

impl Audit {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let until = Utc::now().timestamp();
        let since = until - self.since;
        let mut warnings = Vec::new();

        // The protected roles: the stored profiles', the path's, the named.
        let store = Store::from_env(&self.prefix).await?;
        let mut roles = self.roles.clone();
        for (profile, text) in store.list().await? {
            match parse_profile(&signature::unsigned(&text), None) {
                Ok(p) => roles.push(p.role_arn.to_string()),
                Err(_) => warnings.push(format!(
                    "profile {profile} does not parse: its role is protected only if named with --role or under /tvm/"
                )),
            }
        }
        roles.sort();
        roles.dedup();
        let protected = Protected::new(roles.iter().cloned());

        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(tvm_client::https_client())
            .load()
            .await;
        let mut trail = Trail {
            client: aws_sdk_cloudtrail::Client::new(&sdk),
            interval: Duration::from_secs(1) / self.lookups_per_second,
            next: tokio::time::Instant::now(),
            lookups: 0,
            unparsed: 0,
        };
        let client = global.endpoint.client().await?;
        let api = Api(&client);

        // 1. Assumptions of protected roles, and the records they name.
        let mut assumed = Vec::new();
        for name in ASSUME_EVENTS {
            assumed.extend(
                trail
                    .events(LookupAttributeKey::EventName, name, since, until)
                    .await?,
            );
        }
        let records: HashMap<String, SessionView> =
            stream::iter(named_sessions(&assumed, &protected))
                .map(|id| {
                    let api = &api;
                    async move { api.session(id).await.map_err(CliError::tvm(None)) }
                })
                .buffer_unordered(RECORD_CONCURRENCY)
                .try_filter_map(|s| async move { Ok(s) })
                .map_ok(|s| (s.session_id.clone(), s))
                .try_collect()
                .await?;
        let mut findings = assumptions(&assumed, &protected, |id| records.get(id));
        let mut events_read = assumed.len();

        // 2. Calls by revoked sessions after their revocation.
        let revoked = api
            .revoked_sessions(since, MAX_REVOKED)
            .await
            .map_err(CliError::tvm(None))?
            .sessions;
        if revoked.len() >= MAX_REVOKED {
            warnings.push(format!(
                "{MAX_REVOKED} or more sessions were revoked in the window: only the newest {MAX_REVOKED} were checked; audit a shorter window"
            ));
        }
        for s in &revoked {
            let (Some(name), Some(at)) = (&s.role_session_name, s.revoked_at) else {
                warnings.push(format!(
                    "session {} was recorded without its session name: its calls were not checked",
                    s.session_id
                ));
                continue;
            };
            let calls = trail
                .events(LookupAttributeKey::Username, name, at.max(since), until)
                .await?;
            events_read += calls.len();
            findings.extend(after_revocation(s, &calls));
        }
        if trail.unparsed > 0 {
            warnings.push(format!(
                "{} events were not CloudTrail records and were skipped",
                trail.unparsed
            ));
        }
        findings.sort_by_key(Finding::time);

        let report = Report {
            since,
            until,
            protected_roles: roles,
            events_read,
            lookups: trail.lookups,
            revoked_sessions: revoked.len(),
            warnings,
            findings,
        };
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        output(global.json, &report, show)?;
        Ok(if report.findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    }
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Succeeded => "succeeded".into(),
        Outcome::Refused(code) => format!("refused ({code})"),
    }
}

fn why_text(why: &Bypass) -> String {
    match why {
        Bypass::NoTvmSourceIdentity => "no tvm SourceIdentity".into(),
        Bypass::NoRecord => {
            "a tvm SourceIdentity, but no vend recorded under its session name".into()
        }
        Bypass::Mismatch(what) => format!("not the vend its session name names: {what}"),
        Bypass::Duplicate => "a second assumption under one vend's names".into(),
    }
}

fn show(r: &Report) -> String {
    let rows: Vec<[String; 6]> = r
        .findings
        .iter()
        .map(|f| match f {
            Finding::AssumedWithoutTvm {
                time,
                event_name,
                role_arn,
                caller_arn,
                why,
                outcome: o,
                ..
            } => [
                when(*time),
                "assumed-without-tvm".into(),
                role_arn.clone(),
                caller_arn.clone().unwrap_or_else(|| "?".into()),
                format!("{event_name}: {}", why_text(why)),
                outcome(o),
            ],
            Finding::UsedAfterRevocation {
                time,
                session_id,
                role_arn,
                revoked_at,
                event_source,
                event_name,
                outcome: o,
                ..
            } => [
                when(*time),
                "used-after-revocation".into(),
                role_arn.clone(),
                format!("session {session_id}"),
                format!(
                    "{event_source} {event_name}, {} s after the revocation",
                    time - revoked_at
                ),
                outcome(o),
            ],
        })
        .collect();
    let summary = format!(
        "{} to {}: {} events read in {} lookups, {} protected roles, {} revoked sessions checked",
        when(r.since),
        when(r.until),
        r.events_read,
        r.lookups,
        r.protected_roles.len(),
        r.revoked_sessions
    );
    if rows.is_empty() {
        return format!("{summary}\nno findings");
    }
    format!(
        "{summary}\n{}",
        table(["TIME", "FINDING", "ROLE", "WHO", "WHAT", "OUTCOME"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::since_seconds;

    #[test]
    fn since_reads_like_people_say_it_within_cloudtrails_window() {
        assert_eq!(since_seconds("90m"), Ok(5400));
        assert_eq!(since_seconds("24h"), Ok(86_400));
        assert_eq!(since_seconds("90d"), Ok(90 * 86_400));
        for bad in ["", "h", "0h", "-1h", "10", "1w", "91d", "1.5h"] {
            assert!(since_seconds(bad).is_err(), "{bad}");
        }
    }
}
