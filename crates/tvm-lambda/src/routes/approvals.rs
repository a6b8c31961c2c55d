//! Approvals: `POST /v1/requests`, `GET /v1/requests[/{id}]`,
//! `POST /v1/requests/{id}/approve|deny|cancel`. The rules (who may act,
//! the bounds, the states) are `tvm_core::approval`'s; this file stores and
//! announces.

use serde_json::json;
use std::collections::BTreeMap;
use tvm_core::api::{CreateRequest, RequestView, RequestsResponse};

use tvm_core::approval::{
    approval_ttl, check_request, is_approver, may_act, may_see_request, new_request, Asked,
    RequestAction, RequestStatus,
};
use tvm_core::decision::{match_rules, request_bindings, Denial, VendRequest};
use tvm_core::policy::{PolicySet, Profile};

use super::{new_id, Call, Facts, Failure, Handled, InProfile, Outcome};
use crate::app::{notification, App};
use crate::aws::Approver;
use crate::error::ApiError;
use crate::event::{body_json, query};

impl App {
    /// A pending request for this caller and profile: the one already open, or a new one.
    pub(super) async fn pending_request(
        &self,
        call: &Call<'_>,
        profile: &Profile,
        duration: Option<u32>,
        justification: &str,
        asked: Asked,
        wait_for_notification: bool,
    ) -> Result<String, ApiError> {
        let now = call.now.timestamp();
        let request = new_request(
            new_id(),
            &call.caller,
            profile,
            duration,
            justification,
            asked,
            now,
        )
        .ok_or_else(|| {
            ApiError::PolicyInvalid(format!("profile {} has no approval block", profile.name))
        })?;
        let id = self.approvals.open(&request, now).await?;
        if id == request.id {
            let details = json!({"justification": justification, "duration_seconds": request.duration_seconds, "required": request.required, "caller_arn": request.caller_arn, "attributes": request.attributes, "bindings": request.bindings});
            let n = notification(
                "request.created",
                &call.caller,
                &request.caller,
                Some(&profile.name),
                Some(&id),
                details,
                call.now,
            );
            self.announce(n, wait_for_notification).await;
        }
        Ok(id)
    }

    /// What a request of this caller with these attributes asks for: the
    /// attributes and the bindings the approvers will see.
    pub(super) fn asked(
        &self,
        set: &PolicySet,
        profile: &Profile,
        call: &Call<'_>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Asked, ApiError> {
        let bindings = request_bindings(set, profile, &call.caller, attributes, call.now).map_err(
            |d| match d {
                Denial::Unbindable { .. } => {
                    ApiError::PolicyInvalid(format!("profile {}: {d}", profile.name))
                }
                other => other.into(),
            },
        )?;
        Ok(Asked {
            attributes: attributes.clone(),
            bindings,
        })
    }

    /// The pending request a vend that needs approval opens (or finds):
    /// for its attributes and what they bind (a bad attribute is the
    /// caller's 400 first). The notification is not awaited.
    pub(super) async fn request_for_vend(
        &self,
        call: &Call<'_>,
        set: &PolicySet,
        name: &str,
        request: &VendRequest,
    ) -> Result<String, ApiError> {
        let profile = set.get(name).ok_or(ApiError::AccessDenied)?;
        let asked = self.asked(set, profile, call, &request.attributes)?;
        self.pending_request(call, profile, request.duration_seconds, "", asked, false)
            .await
    }

    pub(super) async fn create_request(&self, call: &Call<'_>) -> Handled {
        let ask: CreateRequest = body_json(call.req)?;
        let justification = check_request(&ask)?;
        let name = ask.profile.as_str();
        let set = self.policies.get().await.in_profile(name)?;
        // Only a caller a require_approval rule applies to may ask: anyone
        // else answers as for a profile that does not exist.
        let profile = set
            .get(name)
            .ok_or(ApiError::AccessDenied)
            .in_profile(name)?;
        let m = match_rules(&set, profile, &call.caller, call.now);
        if m.deny.is_some() || m.approval.is_none() {
            return Err(Failure::denied(ApiError::AccessDenied, None).in_profile(name));
        }
        let asked = self
            .asked(&set, profile, call, &ask.attributes)
            .in_profile(name)?;
        let id = self
            .pending_request(
                call,
                profile,
                ask.duration_seconds,
                justification,
                asked,
                true,
            )
            .await
            .in_profile(name)?;
        let view = self
            .approvals
            .get(&id, call.now.timestamp())
            .await
            .in_profile(name)?
            .ok_or_else(|| ApiError::Missing(format!("no request {id}")))
            .in_profile(name)?;
        Ok(Outcome::json(
            201,
            &view,
            Facts::decided("request").profile(name),
        ))
    }

    /// The request, if this caller may see it (its requester, or an approver of its profile).
    async fn visible_request(
        &self,
        call: &Call<'_>,
        id: &str,
    ) -> Result<(RequestView, Option<Profile>), ApiError> {
        let not_found = || ApiError::Missing(format!("no request {id}"));
        let request = self
            .approvals
            .get(id, call.now.timestamp())
            .await?
            .ok_or_else(not_found)?;
        let set = self.policies.get().await?;
        let profile = set.get(&request.profile).cloned();
        if !may_see_request(&request, profile.as_ref(), &call.caller) {
            return Err(not_found());
        }
        Ok((request, profile))
    }

    pub(super) async fn get_request(&self, call: &Call<'_>, id: &str) -> Handled {
        let (request, _) = self.visible_request(call, id).await?;
        Ok(Outcome::json(200, &request, Facts::default()))
    }

    /// `GET /v1/requests?status=pending`: what this caller may approve, and its own.
    pub(super) async fn list_requests(&self, call: &Call<'_>) -> Handled {
        let status = query(call.req, "status").unwrap_or("pending");
        let status = RequestStatus::parse(status).ok_or_else(|| {
            ApiError::BadRequest(
                "status must be pending, approved, denied, cancelled or expired".into(),
            )
        })?;
        let set = self.policies.get().await?;
        let me = &call.caller.arn;
        let requests = self
            .approvals
            .list(status, call.now.timestamp())
            .await?
            .into_iter()
            .filter(|r| {
                &r.caller_arn == me
                    || set
                        .get(&r.profile)
                        .is_some_and(|p| is_approver(p, &call.caller))
            })
            .collect();
        Ok(Outcome::json(
            200,
            &RequestsResponse { requests },
            Facts::default(),
        ))
    }

    pub(super) async fn act_on_request(
        &self,
        call: &Call<'_>,
        id: &str,
        action: RequestAction,
    ) -> Handled {
        let caller = &call.caller;
        let (request, profile) = self.visible_request(call, id).await?;
        let name = request.profile.as_str();
        if let Err(refusal) = may_act(action, &request, profile.as_ref(), caller) {
            return Err(Failure::denied(refusal, refusal.to_string()).in_profile(name));
        }
        let now = call.now.timestamp();
        let updated = match action {
            RequestAction::Cancel => {
                self.approvals
                    .finish(&request, RequestStatus::Cancelled, &caller.arn, now)
                    .await
            }
            RequestAction::Deny => {
                self.approvals
                    .finish(&request, RequestStatus::Denied, &caller.arn, now)
                    .await
            }
            RequestAction::Approve => {
                let ttl = approval_ttl(profile.as_ref());
                let (person, principal) = (caller.person(), caller.stable_id());
                let approver = Approver {
                    person: &person,
                    principal: &principal,
                    arn: &caller.arn,
                };
                self.approvals.approve(&request, approver, ttl, now).await
            }
        }
        .in_profile(name)?;
        // Announce the transition once: by whoever made it.
        let kind = match updated.status {
            RequestStatus::Approved
                if updated.decided_by.as_deref() == Some(caller.arn.as_str()) =>
            {
                Some("request.approved")
            }
            RequestStatus::Denied => Some("request.denied"),
            RequestStatus::Cancelled => Some("request.cancelled"),
            _ => None,
        };
        if let Some(kind) = kind {
            let details = json!({"status": updated.status, "approvals": updated.approvals, "valid_until": updated.valid_until});
            let n = notification(
                kind,
                caller,
                &updated.caller,
                Some(&updated.profile),
                Some(&updated.id),
                details,
                call.now,
            );
            self.announce(n, true).await;
        }
        Ok(Outcome::json(
            200,
            &updated,
            Facts::decided("ok").profile(name),
        ))
    }
}
