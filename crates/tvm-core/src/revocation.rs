//! Revocation: the terms a revocation is made on, and the revocation policy
//! tvm keeps on each protected role: an inline policy that denies everything
//! to the sessions it revoked, by `aws:SourceIdentity`. Entries are grouped
//! by the hour their credentials expire, so that whole groups can be dropped
//! once nothing in them can still be used.

use std::collections::BTreeMap;

use serde_json::json;

/// Inline policy name on protected roles.
pub const POLICY_NAME: &str = "tvm-revocations";
/// IAM's limit for all inline policies of a role, in characters; tvm keeps
/// its own policy well under it.
pub const MAX_POLICY_CHARS: usize = 8_000;

/// How long new vends stay refused when a revocation does not say.
pub const DEFAULT_SECONDS: u32 = 3600;
pub const MIN_SECONDS: u32 = 60;
pub const MAX_SECONDS: u32 = 30 * 86_400;

/// Why a session or caller is revoked, and for how long new vends for it
/// are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Trimmed, 3-500 characters, no control characters.
    pub reason: String,
    pub seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("reason must be 3-500 characters without control characters")]
    Reason,
    #[error("duration_seconds must be between {MIN_SECONDS} and {MAX_SECONDS}")]
    Duration,
}

impl Terms {
    pub fn parse(reason: &str, seconds: Option<u32>) -> Result<Self, TermsError> {
        let reason = reason.trim();
        if !(3..=500).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
            return Err(TermsError::Reason);
        }
        let seconds = seconds.unwrap_or(DEFAULT_SECONDS);
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
            return Err(TermsError::Duration);
        }
        Ok(Self {
            reason: reason.to_string(),
            seconds,
        })
    }

    /// Epoch seconds until which new vends are refused.
    pub fn until(&self, now: i64) -> i64 {
        now + i64::from(self.seconds)
    }
}

/// One revoked session: its SourceIdentity and when its credentials expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub source_identity: String,
    pub expires_at: i64,
}

/// The policy document for the entries still live at `now`. When they do not
/// fit, every session issued before `now` is denied instead (over-revoking
/// rather than letting a revoked session through).
pub fn render(entries: &[Revoked], now: i64) -> String {
    let mut buckets: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.expires_at > now) {
        let hour = (e.expires_at + 3599).div_euclid(3600) * 3600;
        buckets.entry(hour).or_default().push(&e.source_identity);
    }
    let mut statements: Vec<serde_json::Value> = buckets
        .into_iter()
        .map(|(hour, mut ids)| {
            ids.sort_unstable();
            ids.dedup();
            json!({
                "Sid": format!("RevokedUntil{hour}"),
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceIdentity": ids}},
            })
        })
        .collect();
    if statements.is_empty() {
        // IAM refuses an empty statement list: deny nothing, explicitly.
        statements.push(json!({
            "Sid": "NothingRevoked",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceIdentity": "tvm-nothing-revoked"}},
        }));
    }
    let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    if doc.len() <= MAX_POLICY_CHARS {
        return doc;
    }
    let cutoff = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "TooManyRevokedSessionsDenyAllIssuedBefore",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
    }]})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, exp: i64) -> Revoked {
        Revoked {
            source_identity: id.into(),
            expires_at: exp,
        }
    }

    #[test]
    fn terms_bound_the_reason_and_the_duration() {
        let t = Terms::parse("  leaked in a log  ", None).unwrap();
        assert_eq!((t.reason.as_str(), t.seconds), ("leaked in a log", 3600));
        assert_eq!(t.until(10), 3610);
        assert_eq!(Terms::parse("no", None), Err(TermsError::Reason));
        assert_eq!(Terms::parse("a\nb c", None), Err(TermsError::Reason));
        assert_eq!(Terms::parse("leaked", Some(59)), Err(TermsError::Duration));
        assert_eq!(
            Terms::parse("leaked", Some(MAX_SECONDS + 1)),
            Err(TermsError::Duration)
        );
        assert!(Terms::parse("leaked", Some(MAX_SECONDS)).is_ok());
    }

    #[test]
    fn live_entries_are_denied_by_source_identity_and_expired_ones_dropped() {
        let doc: serde_json::Value = serde_json::from_str(&render(
            &[r("tvm-a", 5000), r("tvm-b", 100), r("tvm-c", 5100)],
            1000,
        ))
        .unwrap();
        let s = &doc["Statement"];
        assert_eq!(s.as_array().unwrap().len(), 1);
        assert_eq!(s[0]["Effect"], "Deny");
        assert_eq!(
            s[0]["Condition"]["StringEquals"]["aws:SourceIdentity"],
            json!(["tvm-a", "tvm-c"])
        );
    }

    #[test]
    fn nothing_live_still_renders_a_valid_policy() {
        let doc: serde_json::Value =
            serde_json::from_str(&render(&[r("tvm-a", 10)], 1000)).unwrap();
        assert_eq!(doc["Statement"][0]["Sid"], "NothingRevoked");
    }

    #[test]
    fn too_many_entries_fall_back_to_denying_every_older_session() {
        let many: Vec<Revoked> = (0..400)
            .map(|i| r(&format!("tvm-{i:032}"), 5000 + i * 3600))
            .collect();
        let doc = render(&many, 1000);
        assert!(doc.len() <= MAX_POLICY_CHARS);
        assert!(doc.contains("aws:TokenIssueTime") && doc.contains("1970-01-01T00:16:40Z"));
    }
}
