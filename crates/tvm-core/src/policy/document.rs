//! The shape of a policy document as written (YAML or JSON). Unknown keys
//! are refused here; meaning is checked in `parse`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::rate::RateLimit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyDoc {
    pub(super) profile: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    pub(super) role_arn: String,
    #[serde(default)]
    pub(super) duration: Option<DurationDoc>,
    #[serde(default)]
    pub(super) session_policy: Option<String>,
    #[serde(default)]
    pub(super) session_tags: BTreeMap<String, String>,
    pub(super) rules: Vec<RuleDoc>,
    #[serde(default)]
    pub(super) approval: Option<ApprovalDoc>,
    #[serde(default)]
    pub(super) break_glass: Option<BreakGlassDoc>,
    #[serde(default)]
    pub(super) rate_limit: Option<RateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DurationDoc {
    pub(super) default: u32,
    pub(super) max: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDoc {
    pub(super) name: String,
    pub(super) effect: String,
    #[serde(default)]
    pub(super) principals: Vec<String>,
    #[serde(default)]
    pub(super) accounts: Vec<String>,
    #[serde(default)]
    pub(super) org_ids: Vec<String>,
    #[serde(default)]
    pub(super) kinds: Vec<String>,
    #[serde(default)]
    pub(super) role_names: Vec<String>,
    #[serde(default)]
    pub(super) user_names: Vec<String>,
    #[serde(default)]
    pub(super) session_names: Vec<String>,
    #[serde(default)]
    pub(super) issuers: Vec<String>,
    #[serde(default)]
    pub(super) subjects: Vec<String>,
    #[serde(default)]
    pub(super) claims: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) time: Option<TimeDoc>,
    #[serde(default)]
    pub(super) bind: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) attributes: BTreeMap<String, AttributeDoc>,
    #[serde(default)]
    pub(super) max_duration: Option<u32>,
    #[serde(default)]
    pub(super) allow_vended_sessions: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeDoc {
    #[serde(default)]
    pub(super) days: Vec<String>,
    #[serde(default)]
    pub(super) hours: Option<String>,
    #[serde(default)]
    pub(super) timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributeDoc {
    pub(super) pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalDoc {
    pub(super) approvers: Vec<String>,
    #[serde(default = "one")]
    pub(super) required: u32,
    #[serde(default = "hour")]
    pub(super) ttl: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BreakGlassDoc {
    pub(super) principals: Vec<String>,
    #[serde(default = "hour")]
    pub(super) max_duration: u32,
    #[serde(default = "twenty")]
    pub(super) min_justification: u32,
}

fn one() -> u32 {
    1
}
fn hour() -> u32 {
    3600
}
fn twenty() -> u32 {
    20
}
