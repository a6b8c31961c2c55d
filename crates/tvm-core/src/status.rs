//! The states of sessions, approval requests and break-glass events, as
//! they go over the wire and into the tables, and their one-way
//! transitions. `approval` holds who may move them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A session's state: `issued`, `failed` (STS refused, no credentials left
/// tvm), `discarded` (STS issued them while the gates were checked, the
/// gates refused or failed, and tvm dropped them unsent) or `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Issued,
    Failed,
    Discarded,
    Revoked,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Failed => "failed",
            Self::Discarded => "discarded",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Issued, Self::Failed, Self::Discarded, Self::Revoked]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An approval request's state. `Expired` is never stored: a pending or
/// approved request past its time reads as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    Cancelled,
    Expired,
}

impl RequestStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Cancelled,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The state as it reads at `now`, for a stored state and its end.
    pub fn at(self, expires_at: i64, now: i64) -> Self {
        match self {
            Self::Pending | Self::Approved if expires_at <= now => Self::Expired,
            other => other,
        }
    }

    /// The state a listing of this state is stored under.
    pub fn stored(self) -> Self {
        match self {
            Self::Expired => Self::Pending,
            other => other,
        }
    }

    /// The one-way transitions: pending -> approved | denied | cancelled.
    pub fn may_become(self, next: Self) -> bool {
        self == Self::Pending && matches!(next, Self::Approved | Self::Denied | Self::Cancelled)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A break-glass event's state. `Expired` is never stored: an open event
/// past its end reads as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakGlassStatus {
    Open,
    Closed,
    Expired,
}

impl BreakGlassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Closed, Self::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    pub fn at(self, ends_at: i64, now: i64) -> Self {
        match self {
            Self::Open if ends_at <= now => Self::Expired,
            other => other,
        }
    }
}

impl fmt::Display for BreakGlassStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
