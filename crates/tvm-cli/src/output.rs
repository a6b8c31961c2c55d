//! Everything the `tvm` binary shows: aligned tables and key/value blocks for
//! people, pretty JSON for scripts (`--json`), colour only on a terminal.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use tvm_core::api::{
    BreakGlassList, BreakGlassView, ProfilesResponse, RequestView, RequestsResponse,
    RevocationResponse, SessionsResponse,
};
use tvm_core::decision::Access;
use tvm_core::principal::Principal;

use crate::error::CliError;

/// Print for people or for scripts.
pub fn output<T: serde::Serialize>(
    json_out: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", human(value));
    }
    Ok(())
}

/// ANSI colour only when stderr is a terminal and NO_COLOR is unset.
pub fn paint(text: &str, code: &str) -> String {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// "14m left", "2h 5m left", "expired".
pub fn time_left(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (until - now).num_seconds();
    match secs {
        s if s <= 0 => "expired".into(),
        s if s < 60 => format!("{s}s left"),
        s if s < 3600 => format!("{}m left", s / 60),
        s => format!("{}h {}m left", s / 3600, (s % 3600) / 60),
    }
}

fn left(epoch: i64) -> String {
    DateTime::from_timestamp(epoch, 0).map_or_else(|| "?".into(), |t| time_left(t, Utc::now()))
}

/// Aligned columns, header first.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

fn short_role(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `tvm profiles`: the caller, then one row a profile.
pub fn profiles_table(answer: &ProfilesResponse) -> String {
    let rows: Vec<[String; 4]> = answer
        .profiles
        .iter()
        .map(|p| {
            let how = match p.access {
                Access::Allow => "allow",
                Access::Approval => "approval",
                Access::BreakGlass => "break-glass",
            };
            [
                p.profile.clone(),
                how.into(),
                format!("{}m", p.max_duration / 60),
                p.role_arn.clone(),
            ]
        })
        .collect();
    format!(
        "caller: {}\n{}",
        answer.caller,
        table(["PROFILE", "ACCESS", "MAX", "ROLE"], &rows)
    )
}

/// `tvm whoami`: the caller as tvm parses it.
pub fn show_caller(caller: &Principal, profiles: usize) -> String {
    let mut lines = vec![
        format!("arn:     {}", caller.arn),
        format!("account: {}", caller.account),
        format!("kind:    {}", caller.kind.as_str()),
        format!("name:    {}", caller.name),
    ];
    if let Some(s) = &caller.session_name {
        lines.push(format!("session: {s}"));
    }
    lines.push(format!("profiles available: {profiles}"));
    lines.join("\n")
}

pub fn show_request(r: &RequestView) -> String {
    let mut lines = vec![
        format!("request:  {}", r.id),
        format!("profile:  {}", r.profile),
        format!("caller:   {}", r.caller_arn),
        format!("status:   {}", r.status),
        format!(
            "approvals: {}/{} {}",
            r.approvals.len(),
            r.required,
            r.approvals
                .iter()
                .map(|a| short_role(a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("duration: {}s", r.duration_seconds),
        format!("why:      {}", r.justification),
    ];
    // What the approvers approve: this caller, with these bindings.
    for (k, v) in &r.bindings {
        lines.push(format!("binds:    {k}={v}"));
    }
    for (k, v) in &r.attributes {
        lines.push(format!("attr:     {k}={v}"));
    }
    match (r.status.as_str(), r.valid_until) {
        ("approved", Some(v)) => lines.push(format!("vends:    {}", left(v))),
        ("pending", _) => lines.push(format!("pending:  {}", left(r.expires_at))),
        _ => {}
    }
    lines.join("\n")
}

pub fn requests_table(list: &RequestsResponse) -> String {
    let rows: Vec<[String; 5]> = list
        .requests
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.profile.clone(),
                r.caller_arn.clone(),
                format!("{} {}/{}", r.status, r.approvals.len(), r.required),
                left(r.expires_at),
            ]
        })
        .collect();
    table(["REQUEST", "PROFILE", "CALLER", "STATUS", "TIME"], &rows)
}

pub fn sessions_table(list: &SessionsResponse) -> String {
    let rows: Vec<[String; 5]> = list
        .sessions
        .iter()
        .map(|s| {
            [
                s.session_id.clone(),
                s.profile.clone(),
                s.caller_arn.clone(),
                s.status.to_string(),
                left(s.expires_at),
            ]
        })
        .collect();
    table(["SESSION", "PROFILE", "CALLER", "STATUS", "EXPIRES"], &rows)
}

pub fn break_glass_table(list: &BreakGlassList) -> String {
    let rows: Vec<[String; 5]> = list
        .events
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                e.profile.clone(),
                e.caller_arn.clone(),
                e.reason.clone(),
                left(e.ends_at),
            ]
        })
        .collect();
    table(["EVENT", "PROFILE", "CALLER", "REASON", "ENDS"], &rows)
}

pub fn show_break_glass(e: &BreakGlassView) -> String {
    format!(
        "break-glass: {}\nprofile:     {}\ncaller:      {}\nstatus:      {}\nreason:      {}\nends:        {}",
        e.id,
        e.profile,
        e.caller_arn,
        e.status,
        e.reason,
        left(e.ends_at)
    )
}

pub fn show_revocation(r: &RevocationResponse) -> String {
    format!(
        "revoked:  {}{}\nnew vends refused for {}\ncredentials denied on their roles: {}",
        r.caller,
        r.profile
            .as_deref()
            .map(|p| format!(" on {p}"))
            .unwrap_or_default(),
        left(r.until).replace(" left", ""),
        if r.sessions_revoked.is_empty() {
            "none live".to_string()
        } else {
            r.sessions_revoked.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(
            time_left(now + chrono::Duration::seconds(14 * 60 + 5), now),
            "14m left"
        );
        assert_eq!(
            time_left(now + chrono::Duration::seconds(2 * 3600 + 300), now),
            "2h 5m left"
        );
        assert_eq!(
            time_left(now - chrono::Duration::seconds(1), now),
            "expired"
        );
    }

    #[test]
    fn columns_line_up_under_their_header() {
        let rows = [["orders-tenant".to_string(), "allow".to_string()]];
        assert_eq!(
            table(["PROFILE", "ACCESS"], &rows),
            "PROFILE        ACCESS\norders-tenant  allow"
        );
    }
}
