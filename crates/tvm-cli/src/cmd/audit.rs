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
//! `?revoked_since=`: the security team); the policies from SSM; the roles
//! under `/tvm/` from IAM. Exit 2: findings (even if the audit is also
//! incomplete); 1: an error, or nothing found but less covered than asked
//! (the report says what was left out: never a clean result for what was
//! not read); 0: nothing found in everything asked for.

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
    ASSUME_EVENTS, ISSUE_SKEW_SECONDS,
};
use tvm_core::policy::parse_profile;
use tvm_core::signature;

use crate::cmd::policy_store::Store;
use crate::error::CliError;
use crate::flags::Global;
use crate::output::{output, table};

/// CloudTrail keeps 90 days of management events for LookupEvents.
const MAX_SINCE_SECONDS: i64 = 90 * 86_400;
/// STS's longest credential lifetime (AssumeRole's 12 hours).
const MAX_SESSION_SECONDS: i64 = 12 * 3600;
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
    /// Another protected role (its ARN); repeatable.
    #[arg(long = "role", value_parser = role_arn)]
    roles: Vec<String>,
    /// LookupEvents calls a second (CloudTrail allows 2 per account and region).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    lookups_per_second: u32,
    /// Regions to read (comma-separated): STS records an assumption in the
    /// region of the endpoint it was called at, IAM in us-east-1. Default:
    /// the AWS config's region and us-east-1.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// Leave out the newest events, which CloudTrail may not have delivered
    /// yet (typically within 15 minutes): the window ends this long ago.
    #[arg(long, default_value = "15m", value_parser = lag_seconds)]
    lag: i64,
    /// At most this many LookupEvents calls (50 events each); past it the
    /// audit is incomplete (exit 1): use CloudTrail Lake or Athena.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    max_lookups: u32,
}

/// `90m`, `24h`, `7d`, `3600s`: seconds, within CloudTrail's 90 days.
fn since_seconds(s: &str) -> Result<i64, String> {
    let unit = |c: char| -> Option<i64> {
        match c {
            's' => Some(1),
            'm' => Some(60),
            'h' => Some(3600),
            'd' => Some(86_400),
            _ => None,
        }
    };
    let mut chars = s.chars();
    let u = chars.next_back();
    let n = chars.as_str();
    let secs = u
        .and_then(unit)
        .zip(n.parse::<i64>().ok())
        .and_then(|(u, n)| u.checked_mul(n))
        .filter(|&t| t > 0)
        .ok_or_else(|| format!("{s:?}: a number and a unit, such as 90m, 24h or 7d"))?;
    if secs > MAX_SINCE_SECONDS {
        return Err(format!(
            "{s}: CloudTrail's LookupEvents reaches back 90 days at most"
        ));
    }
    Ok(secs)
}

/// `--role`: a role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
fn role_arn(s: &str) -> Result<String, String> {
    tvm_core::principal::RoleArn::parse(s)
        .map(|r| r.to_string())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// `--lag`: like `--since`, and 0 allowed, at most a day.
fn lag_seconds(s: &str) -> Result<i64, String> {
    if s == "0" || s == "0s" {
        return Ok(0);
    }
    since_seconds(s).and_then(|t| {
        if t <= 86_400 {
            Ok(t)
        } else {
            Err(format!("{s}: at most a day"))
        }
    })
}

/// The report, as `--json` prints it.
#[derive(Serialize)]
struct Report {
    /// Epoch seconds: the window read.
    since: i64,
    until: i64,
    regions: Vec<String>,
    protected_roles: Vec<String>,
    events_read: usize,
    lookups: usize,
    revoked_sessions: usize,
    /// Everything asked for was read and checked.
    complete: bool,
    /// What could not be checked, and why.
    warnings: Vec<String>,
    findings: Vec<Finding>,
}

/// LookupEvents, at most `per_second` calls a second, paged to the end.
/// One region's CloudTrail, and when its next lookup may go (the quota is
/// per account and region).
struct Region {
    name: String,
    client: aws_sdk_cloudtrail::Client,
    next: tokio::time::Instant,
}

/// LookupEvents in every audited region, at most `per_second` calls a
/// second in each, paged to the end.
struct Trail {
    regions: Vec<Region>,
    interval: Duration,
    lookups: usize,
    max_lookups: usize,
    unparsed: usize,
    /// Successful assume events that name no role.
    no_role: usize,
}

/// What one lookup read; `exhausted`: `--max-lookups` ran out before the
/// events did (what was read is still checked).
struct Read {
    events: Vec<Event>,
    exhausted: bool,
}

impl Trail {
    async fn events(
        &mut self,
        key: LookupAttributeKey,
        value: &str,
        since: i64,
        until: i64,
    ) -> Result<Read, CliError> {
        let attr = LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut events = Vec::new();
        for region in &mut self.regions {
            let mut token = None;
            loop {
                if self.lookups >= self.max_lookups {
                    return Ok(Read {
                        events,
                        exhausted: true,
                    });
                }
                tokio::time::sleep_until(region.next).await;
                region.next = tokio::time::Instant::now() + self.interval;
                self.lookups += 1;
                let out = region
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
                            "CloudTrail LookupEvents in {} failed: {}",
                            region.name,
                            aws_sdk_cloudtrail::error::DisplayErrorContext(e)
                        ))
                    })?;
                for e in out.events() {
                    match e.cloud_trail_event().map(Event::parse) {
                        Some(Ok(event)) => {
                            if event.is_assume()
                                && event.role_arn.is_none()
                                && event.error_code.is_none()
                            {
                                self.no_role += 1;
                            }
                            events.push(event);
                        }
                        _ => self.unparsed += 1,
                    }
                }
                match out.next_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
        }
        Ok(Read {
            events,
            exhausted: false,
        })
    }
}

impl Audit {
    pub async fn run(self, global: &Global) -> Result<ExitCode, CliError> {
        let now = Utc::now().timestamp();
        let until = now - self.lag;
        let since = until - self.since;
        let mut warnings = Vec::new();

        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(tvm_client::https_client())
            .load()
            .await;
        let roles = self.protected_roles(&sdk, &mut warnings).await?;
        let protected = Protected::new(roles.iter().cloned());
        let (names, mut trail) = self.trail(&sdk);
        let out_of_lookups = |warnings: &mut Vec<String>, what: &str| {
            warnings.push(format!(
                "--max-lookups ({}) ran out while reading {what}: the rest was not read",
                self.max_lookups
            ))
        };
        let client = global.endpoint.client().await?;
        let api = Api(&client);

        // 1. Assumptions of protected roles, and the records they name. From
        // a little before the window: a replay early in it is a duplicate of
        // the vend it copies only if that vend is read too.
        let mut assumed = Vec::new();
        for name in ASSUME_EVENTS {
            let read = trail
                .events(
                    LookupAttributeKey::EventName,
                    name,
                    since - ISSUE_SKEW_SECONDS,
                    until,
                )
                .await?;
            if read.exhausted {
                out_of_lookups(&mut warnings, name);
            }
            assumed.extend(read.events);
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
        let mut findings: Vec<Finding> = assumptions(&assumed, &protected, |id| records.get(id))
            .into_iter()
            .filter(|f| f.time() >= since)
            .collect();
        let mut events_read = assumed.len();

        // 2. Calls by revoked sessions after their revocation.
        // Sessions revoked before the window whose credentials were still
        // valid in it count too: back by the longest credential lifetime.
        // The API takes 90 days back from its own clock: a minute's margin.
        let reach = (since - MAX_SESSION_SECONDS).max(now - MAX_SINCE_SECONDS + 60);
        let revoked: Vec<SessionView> = api
            .revoked_sessions(reach, MAX_REVOKED)
            .await
            .map_err(CliError::tvm(None))?
            .sessions;
        let listed = revoked.len();
        let revoked: Vec<SessionView> = revoked
            .into_iter()
            .filter(|s| s.expires_at >= since || s.revoked_at.is_some_and(|t| t >= since))
            .collect();
        if listed >= MAX_REVOKED {
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
            // Revoked after the window's end: the next window covers it.
            if at > until {
                continue;
            }
            let read = trail
                .events(LookupAttributeKey::Username, name, at.max(since), until)
                .await?;
            events_read += read.events.len();
            findings.extend(after_revocation(s, &read.events));
            if read.exhausted {
                out_of_lookups(&mut warnings, &format!("session {}'s calls", s.session_id));
                break;
            }
        }
        if trail.no_role > 0 {
            warnings.push(format!(
                "{} successful assume events name no role: they were not checked",
                trail.no_role
            ));
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
            regions: names,
            protected_roles: roles,
            events_read,
            lookups: trail.lookups,
            revoked_sessions: revoked.len(),
            complete: warnings.is_empty(),
            warnings,
            findings,
        };
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        output(global.json, &report, show)?;
        // Findings first (what alerting watches), even in an incomplete audit.
        Ok(if !report.findings.is_empty() {
            ExitCode::from(2)
        } else if !report.complete {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The protected roles: the stored profiles', those under `/tvm/`, the
    /// named; a warning for each source that could not be read.
    async fn protected_roles(
        &self,
        sdk: &aws_config::SdkConfig,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<String>, CliError> {
        let store = Store::from_env(&self.prefix).await?;
        let mut roles = self.roles.clone();
        let stored = store.list().await?;
        if stored.is_empty() {
            warnings.push(format!(
                "no policy documents under {} in this account and region: the profiles' roles were not protected (run with the AWS region of tvm's deployment, or name them with --role)",
                self.prefix
            ));
        }
        for (profile, text) in stored {
            match parse_profile(&signature::unsigned(&text), None) {
                Ok(p) => roles.push(p.role_arn.to_string()),
                Err(_) => warnings.push(format!(
                    "profile {profile} does not parse: its role is protected only if named with --role or under /tvm/"
                )),
            }
        }
        match roles_under_tvm(&aws_sdk_iam::Client::new(sdk)).await {
            Ok(found) => roles.extend(found),
            Err(e) => warnings.push(format!(
                "the roles under /tvm/ could not be listed ({e}): only the profiles' and --role roles were protected"
            )),
        }
        roles.sort();
        roles.dedup();
        Ok(roles)
    }

    /// The regions to read (default: the configured one and us-east-1, said
    /// on stderr) and their CloudTrail clients.
    fn trail(&self, sdk: &aws_config::SdkConfig) -> (Vec<String>, Trail) {
        let mut names = self.regions.clone();
        let defaulted = names.is_empty();
        if defaulted {
            names.extend(sdk.region().map(|r| r.to_string()));
            names.push("us-east-1".into());
        }
        names.sort();
        names.dedup();
        if defaulted {
            eprintln!(
                "note: reading CloudTrail in {} only: STS records an assumption in the region of the endpoint called; pass --regions with every enabled region, or deny STS elsewhere with an SCP on aws:RequestedRegion",
                names.join(", ")
            );
        }
        let regions = names
            .iter()
            .map(|name| Region {
                name: name.clone(),
                // LookupEvents' quota (2 a second per account and region) is
                // shared with whoever else reads it: more retries than the
                // SDK's 3 before a throttled lookup fails the audit.
                client: aws_sdk_cloudtrail::Client::from_conf(
                    aws_sdk_cloudtrail::config::Builder::from(sdk)
                        .region(aws_config::Region::new(name.clone()))
                        .retry_config(
                            aws_config::retry::RetryConfig::standard().with_max_attempts(8),
                        )
                        .build(),
                ),
                next: tokio::time::Instant::now(),
            })
            .collect();
        let trail = Trail {
            regions,
            interval: Duration::from_secs(1) / self.lookups_per_second,
            lookups: 0,
            max_lookups: self.max_lookups as usize,
            unparsed: 0,
            no_role: 0,
        };
        (names, trail)
    }
}

/// Every role under `/tvm/` in the account (where the infra modules create
/// the protected roles).
async fn roles_under_tvm(iam: &aws_sdk_iam::Client) -> Result<Vec<String>, String> {
    let mut roles = Vec::new();
    let mut marker = None;
    // Bounded: 1,000 pages of 1,000 is beyond IAM's role quota.
    for _ in 0..1000 {
        let out = iam
            .list_roles()
            .path_prefix(tvm_core::audit::PROTECTED_PATH)
            .max_items(1000)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_sdk_iam::error::DisplayErrorContext(e).to_string())?;
        roles.extend(out.roles().iter().map(|r| r.arn().to_string()));
        match out.marker {
            Some(m) if out.is_truncated => marker = Some(m),
            _ => return Ok(roles),
        }
    }
    Ok(roles)
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
    use super::{lag_seconds, role_arn, since_seconds};

    #[test]
    fn a_role_is_a_role_arn() {
        assert!(role_arn("arn:aws:iam::111122223333:role/legacy-admin").is_ok());
        assert!(role_arn("arn:aws:iam::111122223333:role/ops/legacy-admin").is_ok());
        for bad in [
            "legacy-admin",
            "arn:aws:iam::111122223333:user/dev",
            "arn:aws:iam::1111:role/x",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:sts::111122223333:assumed-role/x/y",
        ] {
            assert!(role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_reads_like_people_say_it_within_cloudtrails_window() {
        assert_eq!(since_seconds("90m"), Ok(5400));
        assert_eq!(since_seconds("24h"), Ok(86_400));
        assert_eq!(since_seconds("90d"), Ok(90 * 86_400));
        for bad in ["", "h", "0h", "-1h", "10", "1w", "91d", "1.5h"] {
            assert!(since_seconds(bad).is_err(), "{bad}");
        }
        assert!(since_seconds("1é").is_err() && since_seconds("999999999999999999d").is_err());
        assert_eq!(lag_seconds("0"), Ok(0));
        assert_eq!(lag_seconds("15m"), Ok(900));
        assert!(lag_seconds("2d").is_err());
    }
}
