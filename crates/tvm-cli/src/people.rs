//! Commands for people: approval requests, break-glass, sessions and
//! revocation, over the API (never writing DynamoDB directly). Tables for
//! reading, `--json` for scripts.

use chrono::{DateTime, Utc};
use serde_json::json;
use tvm_core::api::{
    BreakGlassList, BreakGlassView, RequestView, RequestsResponse, RevocationResponse,
    SessionsResponse,
};

use crate::client::{query_value, ClientError, TvmClient};

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

/// The calls behind the commands.
pub struct Api<'a>(pub &'a TvmClient);

impl Api<'_> {
    pub async fn create_request(
        &self,
        profile: &str,
        justification: &str,
        duration: Option<u32>,
    ) -> Result<RequestView, ClientError> {
        let body = json!({"profile": profile, "justification": justification, "duration_seconds": duration});
        self.0.json("POST", "/v1/requests", Some(&body)).await
    }

    pub async fn requests(&self, status: &str) -> Result<RequestsResponse, ClientError> {
        self.0
            .json(
                "GET",
                &format!("/v1/requests?status={}", query_value(status)),
                None,
            )
            .await
    }

    pub async fn act(&self, id: &str, action: &str) -> Result<RequestView, ClientError> {
        self.0
            .json(
                "POST",
                &format!("/v1/requests/{id}/{action}"),
                Some(&json!({})),
            )
            .await
    }

    pub async fn open_break_glass(
        &self,
        profile: &str,
        reason: &str,
        justification: &str,
        duration: Option<u32>,
    ) -> Result<BreakGlassView, ClientError> {
        let body = json!({"profile": profile, "reason": reason, "justification": justification, "duration_seconds": duration});
        self.0.json("POST", "/v1/breakglass", Some(&body)).await
    }

    pub async fn break_glass(&self) -> Result<BreakGlassList, ClientError> {
        self.0.json("GET", "/v1/breakglass", None).await
    }

    pub async fn close_break_glass(&self, id: &str) -> Result<BreakGlassView, ClientError> {
        self.0
            .json(
                "POST",
                &format!("/v1/breakglass/{id}/close"),
                Some(&json!({})),
            )
            .await
    }

    pub async fn sessions(
        &self,
        caller: Option<&str>,
        profile: Option<&str>,
        active: bool,
    ) -> Result<SessionsResponse, ClientError> {
        let mut q: Vec<String> = Vec::new();
        if let Some(c) = caller {
            q.push(format!("caller={}", query_value(c)));
        }
        if let Some(p) = profile {
            q.push(format!("profile={}", query_value(p)));
        }
        if active {
            q.push("active=true".into());
        }
        let path = if q.is_empty() {
            "/v1/sessions".to_string()
        } else {
            format!("/v1/sessions?{}", q.join("&"))
        };
        self.0.json("GET", &path, None).await
    }

    pub async fn revoke_session(
        &self,
        id: &str,
        reason: &str,
        duration: Option<u32>,
    ) -> Result<RevocationResponse, ClientError> {
        let body = json!({"reason": reason, "duration_seconds": duration});
        self.0
            .json("POST", &format!("/v1/sessions/{id}/revoke"), Some(&body))
            .await
    }

    pub async fn revoke_caller(
        &self,
        principal: &str,
        reason: &str,
        duration: Option<u32>,
    ) -> Result<RevocationResponse, ClientError> {
        let body = json!({"principal": principal, "reason": reason, "duration_seconds": duration});
        self.0.json("POST", "/v1/callers/revoke", Some(&body)).await
    }
}

/// Print for people or for scripts.
pub fn output<T: serde::Serialize>(
    json_out: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<(), String> {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", human(value));
    }
    Ok(())
}
