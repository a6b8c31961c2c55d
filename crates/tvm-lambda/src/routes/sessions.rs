//! `GET /v1/sessions`: a caller's own sessions; the security team's view of
//! any caller's; an approver's view of its profile's.

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
        let q = match (query(call.req, "caller"), query(call.req, "profile")) {
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
        let now = call.now.timestamp();
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

/// A principal a caller names (to list or revoke): its stable principal.
pub(super) fn principal_param(arn: &str) -> Result<String, ApiError> {
    stable_principal(arn).ok_or_else(|| {
        ApiError::BadRequest(
            "principal must be a caller, user or role ARN, e.g. arn:aws:iam::111122223333:role/orders-task".into(),
        )
    })
}
