//! Approval requests and break-glass events: their states, the one-way
//! transitions between them, who may act on them, and the bounds on what a
//! caller may ask for. The function's adapters store them with conditional
//! writes that enforce these transitions; nothing here does I/O.
//!
//! Who is who: the *requester* is the caller that opened a request or event
//! (compared by stable principal, never by session name); *approvers* are the
//! profile's `approval.approvers`; the *security team* is
//! `TVM_ADMIN_PRINCIPALS`, passed in as `admins`.

use crate::api::{BreakGlassView, CreateRequest, OpenBreakGlass, RequestView};
use crate::glob::Glob;
use crate::limits::{MAX_DURATION, MIN_DURATION};
use crate::policy::{PolicySet, Profile};
use crate::principal::{Principal, PrincipalKind};
pub use crate::status::{BreakGlassStatus, RequestStatus};

/// How long a request stays pending, in seconds.
pub const PENDING_SECONDS: i64 = 86_400;
/// An approval's validity when the profile does not say.
pub const DEFAULT_APPROVAL_TTL: u32 = 3600;
/// Bounds of a request's justification, in characters.
pub const MIN_REQUEST_JUSTIFICATION: usize = 10;
pub const MAX_REQUEST_JUSTIFICATION: usize = 1000;
/// Longest break-glass justification, in characters (the shortest is the profile's).
pub const MAX_BREAK_GLASS_JUSTIFICATION: usize = 2000;
/// The reasons a break-glass event may be opened for.
pub const BREAK_GLASS_REASONS: &[&str] = &["incident", "outage", "security", "data-recovery"];
/// What a request opened by a vend (not by `POST /v1/requests`) says.
pub const VEND_JUSTIFICATION: &str = "(requested by a vend)";

/// What may be done to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    Approve,
    Deny,
    Cancel,
}

/// Why a caller may not do what it asked. Each is a 403; the text goes to
/// the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only the requester may cancel")]
    NotRequester,
    #[error("the requester cannot approve or deny their own request")]
    OwnRequest,
    #[error("not an approver of this profile")]
    NotApprover,
    #[error("no require_approval rule of this profile applies to the caller")]
    NoApprovalRule,
    #[error("not a break-glass principal of this profile")]
    NotBreakGlassPrincipal,
}

/// A request or event that asks for something out of bounds: a 400 that
/// says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAsk(pub String);

/// Is `who` one of the profile's approvers?
pub fn is_approver(profile: &Profile, who: &Principal) -> bool {
    profile
        .approval
        .as_ref()
        .is_some_and(|a| named_by(&a.approvers, who))
}

/// Does a list of authority globs (approvers, break-glass principals, the
/// security team) name `who`? Never a federated user: whoever may call
/// GetFederationToken in its account chooses its name, the requester's
/// included.
pub fn named_by(globs: &[Glob], who: &Principal) -> bool {
    who.kind != PrincipalKind::FederatedUser && globs.iter().any(|g| who.matched_by(g))
}

/// Is `who` on the security team?
pub fn is_admin(admins: &[Glob], who: &Principal) -> bool {
    named_by(admins, who)
}

/// The security team manages every profile; approvers manage theirs
/// (their sessions, their revocations).
pub fn manages(set: &PolicySet, admins: &[Glob], who: &Principal, profile: &str) -> bool {
    is_admin(admins, who) || set.get(profile).is_some_and(|p| is_approver(p, who))
}

/// A request is visible to its requester (the exact caller that opened it)
/// and to its profile's approvers.
pub fn may_see_request(request: &RequestView, profile: Option<&Profile>, who: &Principal) -> bool {
    request.caller_arn == who.arn || profile.is_some_and(|p| is_approver(p, who))
}

/// Is `who` the requester of `request`: the same principal (any session of
/// its role), or the same person under another role or account (the same
/// session or user name, see [`Principal::person`]; for an oidc requester
/// its subject's, email's or user name's)?
pub fn is_requester(request: &RequestView, who: &Principal) -> bool {
    request.caller == who.stable_id()
        || request.persons.contains(&who.person())
        || Principal::parse(&request.caller_arn, None).is_ok_and(|r| r.person() == who.person())
}

/// May `who` do `action` to `request`? A requester cannot approve or deny
/// its own request under another session name, another role or another
/// account.
pub fn may_act(
    action: RequestAction,
    request: &RequestView,
    profile: Option<&Profile>,
    who: &Principal,
) -> Result<(), Refusal> {
    match action {
        // Only the exact caller that asked withdraws its request.
        RequestAction::Cancel if request.caller_arn == who.arn => Ok(()),
        RequestAction::Cancel => Err(Refusal::NotRequester),
        _ if is_requester(request, who) => Err(Refusal::OwnRequest),
        _ if !profile.is_some_and(|p| is_approver(p, who)) => Err(Refusal::NotApprover),
        _ => Ok(()),
    }
}

/// `required` distinct approvers: distinct persons (see
/// [`Principal::person`]), however many roles they approve under.
pub fn quorum_reached(distinct_approvals: usize, required: u32) -> bool {
    distinct_approvals >= required as usize
}

/// How long an approval of this profile lets its requester vend.
pub fn approval_ttl(profile: Option<&Profile>) -> u32 {
    profile
        .and_then(|p| p.approval.as_ref())
        .map_or(DEFAULT_APPROVAL_TTL, |a| a.ttl)
}

/// Check `POST /v1/requests`: the justification (trimmed) and the duration.
pub fn check_request(ask: &CreateRequest) -> Result<&str, BadAsk> {
    let justification = ask.justification.trim();
    let length = justification.chars().count();
    if !(MIN_REQUEST_JUSTIFICATION..=MAX_REQUEST_JUSTIFICATION).contains(&length)
        || justification.chars().any(char::is_control)
    {
        return Err(BadAsk(format!(
            "justification must be {MIN_REQUEST_JUSTIFICATION}-{MAX_REQUEST_JUSTIFICATION} characters without control characters"
        )));
    }
    if let Some(d) = ask.duration_seconds {
        if !(MIN_DURATION..=MAX_DURATION).contains(&d) {
            return Err(BadAsk(format!(
                "duration_seconds must be between {MIN_DURATION} and {MAX_DURATION}"
            )));
        }
    }
    Ok(justification)
}

/// What a request asks for beyond its profile: the exact attributes and the
/// bindings they give (see `decision::request_bindings`). A vend under the
/// approval must bring the same.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub attributes: std::collections::BTreeMap<String, String>,
    pub bindings: std::collections::BTreeMap<String, String>,
}

/// A new pending request of `caller` for `profile`. `None` when the profile
/// has no approval block (a policy problem: no rule could have sent it here).
pub fn new_request(
    id: String,
    caller: &Principal,
    profile: &Profile,
    duration: Option<u32>,
    justification: &str,
    asked: Asked,
    now: i64,
) -> Option<RequestView> {
    let approval = profile.approval.as_ref()?;
    Some(RequestView {
        id,
        profile: profile.name.clone(),
        caller: caller.stable_id(),
        caller_arn: caller.arn.clone(),
        persons: caller.persons(),
        justification: if justification.is_empty() {
            VEND_JUSTIFICATION.to_string()
        } else {
            justification.to_string()
        },
        duration_seconds: duration
            .unwrap_or(profile.default_duration)
            .min(profile.max_duration),
        status: RequestStatus::Pending,
        created_at: now,
        expires_at: now + PENDING_SECONDS,
        required: approval.required,
        approvals: vec![],
        approved_by: vec![],
        attributes: asked.attributes,
        bindings: asked.bindings,
        valid_until: None,
        decided_by: None,
    })
}

/// A break-glass event `caller` may open on `profile` with `ask`, or why not.
pub fn open_break_glass(
    id: String,
    caller: &Principal,
    profile: &Profile,
    ask: &OpenBreakGlass,
    now: i64,
) -> Result<BreakGlassView, BreakGlassError> {
    let bg = profile
        .break_glass
        .as_ref()
        .filter(|b| named_by(&b.principals, caller))
        .ok_or(BreakGlassError::Refused(Refusal::NotBreakGlassPrincipal))?;
    let bad = |m: String| BreakGlassError::Bad(BadAsk(m));
    if !BREAK_GLASS_REASONS.contains(&ask.reason.as_str()) {
        return Err(bad(format!(
            "reason must be one of {}",
            BREAK_GLASS_REASONS.join(", ")
        )));
    }
    let justification = ask.justification.trim();
    let length = justification.chars().count();
    if length < bg.min_justification as usize
        || length > MAX_BREAK_GLASS_JUSTIFICATION
        || justification.chars().any(char::is_control)
    {
        return Err(bad(format!(
            "justification must be {}-{MAX_BREAK_GLASS_JUSTIFICATION} characters without control characters",
            bg.min_justification
        )));
    }
    let duration = ask.duration_seconds.unwrap_or(bg.max_duration);
    if !(MIN_DURATION..=bg.max_duration).contains(&duration) {
        return Err(bad(format!(
            "duration_seconds must be between {MIN_DURATION} and {}",
            bg.max_duration
        )));
    }
    Ok(BreakGlassView {
        id,
        profile: profile.name.clone(),
        caller: caller.stable_id(),
        caller_arn: caller.arn.clone(),
        reason: ask.reason.clone(),
        justification: justification.to_string(),
        status: BreakGlassStatus::Open,
        opened_at: now,
        ends_at: now + i64::from(duration),
        closed_by: None,
        vended: false,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakGlassError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Bad(BadAsk),
}

/// Its opener (the exact caller) and the security team see and close an
/// event.
pub fn may_manage_break_glass(event: &BreakGlassView, admins: &[Glob], who: &Principal) -> bool {
    event.caller_arn == who.arn || is_admin(admins, who)
}

#[cfg(test)]
mod tests;
