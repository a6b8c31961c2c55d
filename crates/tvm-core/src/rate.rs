//! Rate limits: at most N vends per window, per caller principal and
//! profile. The arithmetic, with time passed in; the counters live in
//! DynamoDB (the function's adapter).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// At most `requests` vends per `per_seconds`, per caller principal and profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

pub const MAX_REQUESTS: u32 = 100_000;
pub const MAX_WINDOW: u32 = 86_400;

impl RateLimit {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            return Err(format!("requests must be between 1 and {MAX_REQUESTS}"));
        }
        if !(1..=MAX_WINDOW).contains(&self.per_seconds) {
            return Err(format!("per_seconds must be between 1 and {MAX_WINDOW}"));
        }
        Ok(())
    }

    /// The fixed window `now` falls in: `[start, end)` in epoch seconds.
    pub fn window(&self, now: i64) -> Window {
        let w = i64::from(self.per_seconds);
        let start = now.div_euclid(w) * w;
        Window {
            start,
            end: start + w,
        }
    }
}

/// `"60/60"`: requests / seconds (`TVM_RATE_LIMIT`).
impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (r, p) = s
            .split_once('/')
            .ok_or("must be REQUESTS/SECONDS, e.g. 60/60")?;
        let limit = RateLimit {
            requests: r
                .trim()
                .parse()
                .map_err(|_| "REQUESTS must be a whole number")?,
            per_seconds: p
                .trim()
                .parse()
                .map_err(|_| "SECONDS must be a whole number")?,
        };
        limit.check()?;
        Ok(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.requests, self.per_seconds)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// Seconds until the window ends (for `Retry-After`), at least 1.
    pub fn retry_after(&self, now: i64) -> u64 {
        (self.end - now).max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_retry_after_points_at_their_end() {
        let l: RateLimit = "10/60".parse().unwrap();
        assert_eq!(
            l.window(125),
            Window {
                start: 120,
                end: 180
            }
        );
        assert_eq!(l.window(120).retry_after(120), 60);
        assert_eq!(l.window(179).retry_after(179), 1);
    }

    #[test]
    fn bad_limits_are_refused() {
        for bad in ["", "10", "0/60", "10/0", "x/60", "10/100000"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        assert_eq!("5 / 1".parse::<RateLimit>().unwrap().to_string(), "5/1");
    }
}
