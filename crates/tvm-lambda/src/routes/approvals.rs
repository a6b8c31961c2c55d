//! Approvals (`/v1/requests`) and break-glass (`/v1/breakglass`).

use chrono::Utc;
use tvm_core::api::{
    BreakGlassList, BreakGlassView, CreateRequest, OpenBreakGlass, RequestView, RequestsResponse,
    BREAK_GLASS_REASONS,
};
use tvm_core::decision::match_rules;
use tvm_core::policy::{Profile, MAX_DURATION, MIN_DURATION};
use tvm_core::principal::Principal;

use serde_json::json;

use super::{body_json, notification, App, DecisionLog, Reply};
use crate::aws::gates::PENDING_SECONDS;
use crate::error::ApiError;

/// Shortest justification for an approval request.
pub const MIN_REQUEST_JUSTIFICATION: usize = 10;

pub(super) enum RequestAction {
    Approve,
    Deny,
    Cancel,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn is_approver(profile: &Profile, who: &Principal) -> bool {
    profile
        .approval
        .as_ref()
        .is_some_and(|a| a.approvers.iter().any(|g| g.matches(&who.arn)))
}

impl App {
    /// A pending request for this caller and profile: the one already open, or a new one.
    pub(super) async fn pending_request(
        &self,
        caller: &Principal,
        profile: &Profile,
        duration: Option<u32>,
        justification: &str,
        wait_for_notification: bool,
    ) -> Result<String, ApiError> {
        let approval = profile.approval.as_ref().ok_or_else(|| {
            ApiError::PolicyInvalid(format!("profile {} has no approval block", profile.name))
        })?;
        let now = Utc::now().timestamp();
        let request = RequestView {
            id: new_id(),
            profile: profile.name.clone(),
            caller: caller.stable_id(),
            caller_arn: caller.arn.clone(),
            justification: justification.to_string(),
            duration_seconds: duration
                .unwrap_or(profile.default_duration)
                .min(profile.max_duration),
            status: "pending".into(),
            created_at: now,
            expires_at: now + PENDING_SECONDS,
            required: approval.required,
            approvals: vec![],
            valid_until: None,
            decided_by: None,
        };
        let id = self.gates.open_request(&request, now).await?;
        if id == request.id {
            let details = json!({"justification": justification, "duration_seconds": request.duration_seconds, "required": request.required});
            let n = notification(
                "request.created",
                caller,
                &request.caller,
                Some(&profile.name),
                Some(&id),
                details,
            );
            self.announce(n, wait_for_notification).await;
        }
        Ok(id)
    }

    pub(super) async fn create_request(
        &self,
        req: &http::Request<lambda_http::Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let ask: CreateRequest = body_json(req)?;
        let justification = ask.justification.trim();
        if justification.chars().count() < MIN_REQUEST_JUSTIFICATION
            || justification.chars().count() > 1000
            || justification.chars().any(char::is_control)
        {
            return Err(ApiError::BadRequest(format!(
                "justification must be {MIN_REQUEST_JUSTIFICATION}-1000 characters without control characters"
            )));
        }
        if let Some(d) = ask.duration_seconds {
            if !(MIN_DURATION..=MAX_DURATION).contains(&d) {
                return Err(ApiError::BadRequest(format!(
                    "duration_seconds must be between {MIN_DURATION} and {MAX_DURATION}"
                )));
            }
        }
        log.profile = Some(ask.profile.clone());
        let set = self.policies.get().await?;
        // Only a caller a require_approval rule applies to may ask: anyone
        // else answers as for a profile that does not exist.
        let profile = set.get(&ask.profile).ok_or(ApiError::AccessDenied)?;
        let m = match_rules(profile, &caller, Utc::now());
        if m.deny.is_some() || m.approval.is_none() {
            log.decision = Some("deny");
            return Err(ApiError::AccessDenied);
        }
        let id = self
            .pending_request(&caller, profile, ask.duration_seconds, justification, true)
            .await?;
        let now = Utc::now().timestamp();
        let view = self
            .gates
            .request(&id, now)
            .await?
            .ok_or_else(|| ApiError::Missing(format!("no request {id}")))?;
        log.decision = Some("request");
        Ok(Reply::json(201, &view))
    }

    /// The request, if this caller may see it (its requester, or an approver of its profile).
    async fn visible_request(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<(RequestView, Option<Profile>), ApiError> {
        let not_found = || ApiError::Missing(format!("no request {id}"));
        let now = Utc::now().timestamp();
        let request = self.gates.request(id, now).await?.ok_or_else(not_found)?;
        let set = self.policies.get().await?;
        let profile = set.get(&request.profile).cloned();
        let approver = profile.as_ref().is_some_and(|p| is_approver(p, caller));
        if request.caller != caller.stable_id() && !approver {
            return Err(not_found());
        }
        Ok((request, profile))
    }

    pub(super) async fn get_request(
        &self,
        req: &http::Request<lambda_http::Body>,
        id: &str,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let (request, _) = self.visible_request(&caller, id).await?;
        Ok(Reply::json(200, &request))
    }

    /// `GET /v1/requests?status=pending`: what this caller may approve, and its own.
    pub(super) async fn list_requests(
        &self,
        req: &http::Request<lambda_http::Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        use lambda_http::RequestExt;
        let caller = self.caller(req, log).await?;
        let status = req
            .query_string_parameters_ref()
            .and_then(|q| q.first("status"))
            .unwrap_or("pending")
            .to_string();
        if !["pending", "approved", "denied", "cancelled", "expired"].contains(&status.as_str()) {
            return Err(ApiError::BadRequest(
                "status must be pending, approved, denied, cancelled or expired".into(),
            ));
        }
        let set = self.policies.get().await?;
        let me = caller.stable_id();
        let now = Utc::now().timestamp();
        let requests = self
            .gates
            .requests(&status, now)
            .await?
            .into_iter()
            .filter(|r| {
                r.caller == me || set.get(&r.profile).is_some_and(|p| is_approver(p, &caller))
            })
            .collect();
        Ok(Reply::json(200, &RequestsResponse { requests }))
    }

    pub(super) async fn act_on_request(
        &self,
        req: &http::Request<lambda_http::Body>,
        id: &str,
        action: RequestAction,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let (request, profile) = self.visible_request(&caller, id).await?;
        log.profile = Some(request.profile.clone());
        let now = Utc::now().timestamp();
        let mine = request.caller == caller.stable_id();
        let approver = profile.as_ref().is_some_and(|p| is_approver(p, &caller));
        let mut refuse = |why: &str| {
            log.decision = Some("deny");
            log.reason = Some(why.into());
            ApiError::AccessDenied
        };
        let updated = match action {
            RequestAction::Cancel if mine => {
                self.gates
                    .finish(&request, "cancelled", &caller.arn, now)
                    .await?
            }
            RequestAction::Cancel => return Err(refuse("only the requester may cancel")),
            // Principals, not session names: a requester cannot approve under another session name.
            _ if mine => {
                return Err(refuse(
                    "the requester cannot approve or deny their own request",
                ))
            }
            _ if !approver => return Err(refuse("not an approver of this profile")),
            RequestAction::Deny => {
                self.gates
                    .finish(&request, "denied", &caller.arn, now)
                    .await?
            }
            RequestAction::Approve => {
                let ttl = profile
                    .as_ref()
                    .and_then(|p| p.approval.as_ref())
                    .map_or(3600, |a| a.ttl);
                self.gates
                    .approve(&request, &caller.stable_id(), ttl, now)
                    .await?
            }
        };
        log.decision = Some("ok");
        // Announce the transition once: by whoever made it.
        let kind = match updated.status.as_str() {
            "approved" if updated.decided_by.as_deref() == Some(caller.stable_id().as_str()) => {
                Some("request.approved")
            }
            "denied" => Some("request.denied"),
            "cancelled" => Some("request.cancelled"),
            _ => None,
        };
        if let Some(kind) = kind {
            let details = json!({"status": updated.status, "approvals": updated.approvals, "valid_until": updated.valid_until});
            let n = notification(
                kind,
                &caller,
                &updated.caller,
                Some(&updated.profile),
                Some(&updated.id),
                details,
            );
            self.announce(n, true).await;
        }
        Ok(Reply::json(200, &updated))
    }

    pub(super) async fn open_break_glass(
        &self,
        req: &http::Request<lambda_http::Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let ask: OpenBreakGlass = body_json(req)?;
        log.profile = Some(ask.profile.clone());
        let set = self.policies.get().await?;
        let profile = set.get(&ask.profile).ok_or(ApiError::AccessDenied)?;
        let Some(bg) = profile
            .break_glass
            .as_ref()
            .filter(|b| b.principals.iter().any(|g| g.matches(&caller.arn)))
        else {
            log.decision = Some("deny");
            return Err(ApiError::AccessDenied);
        };
        if !BREAK_GLASS_REASONS.contains(&ask.reason.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "reason must be one of {}",
                BREAK_GLASS_REASONS.join(", ")
            )));
        }
        let justification = ask.justification.trim();
        let length = justification.chars().count();
        if length < bg.min_justification as usize
            || length > 2000
            || justification.chars().any(char::is_control)
        {
            return Err(ApiError::BadRequest(format!(
                "justification must be {}-2000 characters without control characters",
                bg.min_justification
            )));
        }
        let duration = ask.duration_seconds.unwrap_or(bg.max_duration);
        if !(MIN_DURATION..=bg.max_duration).contains(&duration) {
            return Err(ApiError::BadRequest(format!(
                "duration_seconds must be between {MIN_DURATION} and {}",
                bg.max_duration
            )));
        }
        let now = Utc::now().timestamp();
        let event = BreakGlassView {
            id: new_id(),
            profile: profile.name.clone(),
            caller: caller.stable_id(),
            caller_arn: caller.arn.clone(),
            reason: ask.reason,
            justification: justification.to_string(),
            status: "open".into(),
            opened_at: now,
            ends_at: now + i64::from(duration),
            closed_by: None,
        };
        self.gates.open_break_glass(&event, now).await?;
        log.decision = Some("break_glass");
        let details = json!({"reason": event.reason, "justification": event.justification, "ends_at": event.ends_at});
        self.announce(
            notification(
                "breakglass.opened",
                &caller,
                &event.caller,
                Some(&event.profile),
                Some(&event.id),
                details,
            ),
            true,
        )
        .await;
        Ok(Reply::json(201, &event))
    }

    pub(super) async fn list_break_glass(
        &self,
        req: &http::Request<lambda_http::Body>,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let admin = self.is_admin(&caller);
        let me = caller.stable_id();
        let events = self
            .gates
            .open_break_glass_events(Utc::now().timestamp())
            .await?
            .into_iter()
            .filter(|e| admin || e.caller == me)
            .collect();
        Ok(Reply::json(200, &BreakGlassList { events }))
    }

    pub(super) async fn close_break_glass(
        &self,
        req: &http::Request<lambda_http::Body>,
        id: &str,
        log: &mut DecisionLog,
    ) -> Result<Reply, ApiError> {
        let caller = self.caller(req, log).await?;
        let now = Utc::now().timestamp();
        let not_found = || ApiError::Missing(format!("no break-glass event {id}"));
        let event = self
            .gates
            .break_glass(id, now)
            .await?
            .ok_or_else(not_found)?;
        if event.caller != caller.stable_id() && !self.is_admin(&caller) {
            return Err(not_found());
        }
        log.profile = Some(event.profile.clone());
        let closed = self
            .gates
            .close_break_glass(&event, &caller.arn, now)
            .await?;
        log.decision = Some("ok");
        let details = json!({"opened_at": closed.opened_at, "closed_at": closed.ends_at});
        let n = notification(
            "breakglass.closed",
            &caller,
            &closed.caller,
            Some(&closed.profile),
            Some(&closed.id),
            details,
        );
        self.announce(n, true).await;
        Ok(Reply::json(200, &closed))
    }
}
