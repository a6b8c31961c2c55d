//! `POST /v1/sessions/{id}/revoke` and `POST /v1/callers/revoke`: refuse new
//! vends at once (a marker the vend transaction checks) and deny the
//! credentials already issued (the revocation policy on their roles).

use std::collections::BTreeMap;

use serde_json::json;
use tvm_core::api::{
    RevocationResponse, RevokeCallerRequest, RevokeSessionRequest, SessionStatus, SessionView,
};
use tvm_core::approval::{is_admin, manages};
use tvm_core::revocation::{Revoked, Terms};

use super::sessions::principal_param;
use super::{Call, Facts, Failure, Handled, InProfile, Outcome};
use crate::app::{notification, App};
use crate::aws::{RevocationMarker, RevocationScope, SessionQuery};
use crate::error::ApiError;
use crate::event::body_json;

/// Live sessions a caller revocation looks at, at most.
pub(super) const MAX_LISTED: usize = 1000;

fn revoked(s: &SessionView) -> Revoked {
    Revoked {
        source_identity: s.source_identity.clone(),
        expires_at: s.expires_at,
    }
}

impl App {
    /// Deny `live` sessions on their roles, then mark them revoked.
    pub(super) async fn deny_sessions(
        &self,
        live: &[SessionView],
        now: i64,
    ) -> Result<(), ApiError> {
        let mut by_role: BTreeMap<&str, Vec<Revoked>> = BTreeMap::new();
        for s in live {
            by_role.entry(&s.role_arn).or_default().push(revoked(s));
        }
        for (role, sessions) in &by_role {
            self.revocations.deny(role, sessions, now).await?;
        }
        for s in live {
            self.sessions
                .set_status(&s.session_id, SessionStatus::Revoked)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn revoke_session(&self, call: &Call<'_>, id: &str) -> Handled {
        let caller = &call.caller;
        let ask: RevokeSessionRequest = body_json(call.req)?;
        let terms = Terms::parse(&ask.reason, ask.duration_seconds)?;
        let set = self.policies.get().await?;
        let not_found = || ApiError::Missing(format!("no session {id}"));
        let session = self.sessions.get(id).await?.ok_or_else(not_found)?;
        // A session the caller may not manage answers like one that does not exist.
        if !manages(&set, &self.config.admins, caller, &session.profile) {
            return Err(Failure::denied(not_found(), None));
        }
        let profile = session.profile.clone();
        let now = call.now.timestamp();
        let until = terms.until(now);
        let marker = RevocationMarker {
            scope: RevocationScope::Pair {
                caller: session.caller.clone(),
                profile: profile.clone(),
            },
            until,
            by: caller.arn.clone(),
            reason: terms.reason.clone(),
            at: now,
        };
        self.sessions.revoke(&marker).await.in_profile(&profile)?;
        self.sessions
            .set_status(&session.session_id, SessionStatus::Revoked)
            .await
            .in_profile(&profile)?;
        self.revocations
            .deny(&session.role_arn, &[revoked(&session)], now)
            .await
            .in_profile(&profile)?;
        let details = json!({"reason": terms.reason, "until": until, "role_arn": session.role_arn});
        let n = notification(
            "session.revoked",
            caller,
            &session.caller,
            Some(&profile),
            Some(&session.session_id),
            details,
            call.now,
        );
        self.announce(n, true).await;
        let facts = Facts {
            session_id: Some(session.session_id.clone()),
            ..Facts::decided("revoke").profile(&profile)
        };
        let answer = RevocationResponse {
            caller: session.caller,
            profile: Some(profile),
            until,
            sessions_revoked: vec![session.session_id],
        };
        Ok(Outcome::json(200, &answer, facts))
    }

    pub(super) async fn revoke_caller(&self, call: &Call<'_>) -> Handled {
        let caller = &call.caller;
        if !is_admin(&self.config.admins, caller) {
            return Err(Failure::denied(ApiError::AccessDenied, None));
        }
        let ask: RevokeCallerRequest = body_json(call.req)?;
        let terms = Terms::parse(&ask.reason, ask.duration_seconds)?;
        let target = principal_param(&ask.principal)?;
        let now = call.now.timestamp();
        let until = terms.until(now);
        let marker = RevocationMarker {
            scope: RevocationScope::Caller(target.clone()),
            until,
            by: caller.arn.clone(),
            reason: terms.reason.clone(),
            at: now,
        };
        self.sessions.revoke(&marker).await?;
        let query = SessionQuery::Caller {
            caller: target.clone(),
            since: None,
            limit: MAX_LISTED,
        };
        let live: Vec<SessionView> = self
            .sessions
            .list(&query)
            .await?
            .into_iter()
            .filter(|s| s.status == SessionStatus::Issued && s.expires_at > now)
            .collect();
        self.deny_sessions(&live, now).await?;
        let details = json!({"reason": terms.reason, "until": until, "sessions": live.len()});
        let n = notification(
            "caller.revoked",
            caller,
            &target,
            None,
            None,
            details,
            call.now,
        );
        self.announce(n, true).await;
        let answer = RevocationResponse {
            caller: target,
            profile: None,
            until,
            sessions_revoked: live.into_iter().map(|s| s.session_id).collect(),
        };
        Ok(Outcome::json(200, &answer, Facts::decided("revoke")))
    }
}
