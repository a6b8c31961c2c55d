//! `GET /v1/sessions`: a caller's own sessions; the security team's view of
//! any caller's, and of every session revoked since a time (`tvm audit`);
//! an approver's view of its profile's. `GET /v1/sessions/{id}`: one.

use tvm_core::api::{SessionStatus, SessionsResponse};
use tvm_core::approval::{is_admin, manages};
use tvm_core::principal::stable_principal;

use super::{Call, Facts, Failure, Handled, Outcome};
use crate::app::App;
use crate::aws::SessionQuery;
use crate::error::ApiError;
use crate::event::query;

/// Sessions listed when the caller does not say, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
/// How far back `revoked_since` may reach: CloudTrail's lookup window.
const MAX_REVOKED_AGE_SECONDS: i64 = 90 * 86_400;

impl App {
    pub(super) async fn list_sessions(&self, call: &Call<'_>) -> Handled {
        let caller = &call.caller;
        let limit = match query(call.req, "limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1..{MAX_LIMIT}")))?,
        };
        let active = query(call.req, "active") == Some("true");
        let admins = &self.config.admins;
        let now = call.now.timestamp();
        let revoked_since = query(call.req, "revoked_since")
            .map(|t| revoked_since(t, now))
            .transpose()?;
        let q = match (query(call.req, "caller"), query(call.req, "profile")) {
            _ if revoked_since.is_some() && !is_admin(admins, caller) => {
                return Err(Failure::denied(ApiError::AccessDenied, None))
            }
            (None, None) if revoked_since.is_some() => SessionQuery::Revoked {
                since: revoked_since.unwrap_or(now),
                now,
                limit,
            },
            _ if revoked_since.is_some() => {
                return Err(ApiError::BadRequest(
                    "revoked_since lists every revoked session: not with caller or profile".into(),
                )
                .into())
            }
            (Some(_), Some(_)) => {
                return Err(
                    ApiError::BadRequest("filter by caller or by profile, not both".into()).into(),
                )
            }
            (None, Some(profile)) => {
                let set = self.policies.get().await?;
                if !manages(&set, admins, caller, profile) {
                    return Err(Failure::denied(ApiError::AccessDenied, None));
                }
                SessionQuery::Profile {
                    profile: profile.to_string(),
                    limit,
                }
            }
            (Some(who), None) => {
                let who = principal_param(who)?;
                if who != caller.stable_id() && !is_admin(admins, caller) {
                    return Err(Failure::denied(ApiError::AccessDenied, None));
                }
                SessionQuery::Caller {
                    caller: who,
                    since: None,
                    limit,
                }
            }
            (None, None) => SessionQuery::Caller {
                caller: caller.stable_id(),
                since: None,
                limit,
            },
        };
        // A caller's own listing is its own sessions: not those of another
        // person in the same role (the stable principal the index is keyed
        // by), unless it is on the security team.
        let own = matches!(&q, SessionQuery::Caller { caller: who, .. } if *who == caller.stable_id())
            && !is_admin(admins, caller);
        let sessions = self
            .sessions
            .list(&q)
            .await?
            .into_iter()
            .filter(|s| !own || s.caller_arn == caller.arn)
            .filter(|s| !active || (s.status == SessionStatus::Issued && s.expires_at > now))
            .collect();
        Ok(Outcome::json(
            200,
            &SessionsResponse { sessions },
            Facts::default(),
        ))
    }
}

impl App {
    /// One session, to its caller, its profile's approvers and the security
    /// team; to anyone else like one that does not exist.
    pub(super) async fn get_session(&self, call: &Call<'_>, id: &str) -> Handled {
        let caller = &call.caller;
        let not_found = || ApiError::Missing(format!("no session {id}"));
        let session = self.sessions.get(id).await?.ok_or_else(not_found)?;
        let own = session.caller_arn == caller.arn;
        if !own {
            let set = self.policies.get().await?;
            if !manages(&set, &self.config.admins, caller, &session.profile) {
                return Err(Failure::denied(not_found(), None));
            }
        }
        Ok(Outcome::json(200, &session, Facts::default()))
    }
}

/// `revoked_since`: epoch seconds, within CloudTrail's 90 days.
fn revoked_since(t: &str, now: i64) -> Result<i64, ApiError> {
    t.parse::<i64>()
        .ok()
        .filter(|t| (now - MAX_REVOKED_AGE_SECONDS..=now).contains(t))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "revoked_since must be epoch seconds within the last 90 days (CloudTrail's lookup window)".into(),
            )
        })
}

/// A principal a caller names (to list or revoke): its stable principal.
pub(super) fn principal_param(arn: &str) -> Result<String, ApiError> {
    stable_principal(arn).ok_or_else(|| {
        ApiError::BadRequest(
            "principal must be a caller, user or role ARN, e.g. arn:aws:iam::111122223333:role/orders-task".into(),
        )
    })
}
