//! `POST /v1/sessions/{id}/revoke` and `POST /v1/callers/revoke`, and what
//! closing a break-glass event revokes. In this order, each step only once
//! the one before it holds:
//! 1. the revocation policy in every account denies the credentials already
//!    issued (a session by SourceIdentity, a caller by its tag: one entry,
//!    however many sessions);
//! 2. the gate item refuses new vends;
//! 3. the session records are marked revoked (the report).
//!
//! A failure says which step failed; the same request again completes it.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use serde_json::json;
use tvm_core::api::{
    RevocationResponse, RevokeCallerRequest, RevokeSessionRequest, SessionStatus, SessionView,
};
use tvm_core::approval::{is_admin, manages};
use tvm_core::policy::PolicySet;
use tvm_core::principal::Principal;
use tvm_core::revocation::{Adder, Entry, Terms, CHAIN_SECONDS, MARGIN_SECONDS};

use super::sessions::principal_param;
use super::{Call, Facts, Failure, Handled, InProfile, Outcome};
use crate::app::{notification, App};
use crate::aws::{AwsError, RevocationMarker, RevocationScope, SessionQuery};
use crate::error::{ApiError, Stage};
use crate::event::body_json;

/// Live sessions a revocation lists and marks for its report, at most. The
/// credentials of all of them are denied whatever the count.
pub(super) const MAX_MARKED: usize = 10_000;
/// Session records marked at once.
const MARKING_CONCURRENCY: usize = 16;

/// A failure after the revocation policy was written: what it covers is
/// denied already.
fn after_deny(e: AwsError) -> ApiError {
    match e {
        AwsError::Unavailable { .. } => ApiError::NotRevoked {
            stage: Stage::Denied,
            cause: e,
        },
        other => other.into(),
    }
}

/// A failure before anything holds (or, `Stored`, once it is stored).
fn before_deny(e: AwsError) -> ApiError {
    match e {
        AwsError::Unavailable { .. } => ApiError::NotRevoked {
            stage: Stage::Nothing,
            cause: e,
        },
        other => other.into(),
    }
}

/// Whether a stable principal is a profile's role (account and name, as
/// `PolicySet::vended` compares them).
fn is_profile_role(set: &PolicySet, stable_id: &str) -> bool {
    let Some((prefix, name)) = stable_id.split_once(":role/") else {
        return false;
    };
    let account = account_of(prefix);
    set.profiles().any(|p| {
        account_of(p.role_arn.as_str()) == account && p.role_arn.name().eq_ignore_ascii_case(name)
    })
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

impl App {
    /// Every account a revocation is written to: those of every profile's
    /// role, of the sessions at hand, and `TVM_REVOCATION_ACCOUNTS` (where
    /// chains may land). One state, the same policy everywhere.
    pub(super) fn revocation_accounts<'a>(
        &self,
        set: &PolicySet,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut accounts: BTreeSet<String> =
            self.config.revocation_accounts.iter().cloned().collect();
        for p in set.profiles() {
            accounts.extend(account_of(p.role_arn.as_str()).map(str::to_string));
        }
        for role in roles {
            accounts.extend(account_of(role).map(str::to_string));
        }
        accounts.into_iter().collect()
    }

    /// Step 1: the revocation policy in every account holds `entries`,
    /// added by `by`, who is `otherwise` unless the security team (whose
    /// room in the policy differs: `Adder`).
    pub(super) async fn deny(
        &self,
        set: &PolicySet,
        entries: &[Entry],
        sessions: &[SessionView],
        by: (&Principal, Adder),
        now: i64,
    ) -> Result<(), ApiError> {
        let accounts = self.revocation_accounts(set, sessions.iter().map(|s| s.role_arn.as_str()));
        let (who, otherwise) = by;
        let adder = if is_admin(&self.config.admins, who) {
            Adder::SecurityTeam
        } else {
            otherwise
        };
        self.revocations
            .revoke(entries, &accounts, adder, now)
            .await
            .map_err(before_deny)
    }

    /// Step 3: mark these sessions revoked.
    pub(super) async fn mark_revoked(
        &self,
        sessions: &[SessionView],
        now: i64,
    ) -> Result<(), ApiError> {
        let mut marks = futures_util::stream::iter(sessions)
            .map(|s| {
                self.sessions
                    .set_status(&s.session_id, SessionStatus::Revoked, now)
            })
            .buffer_unordered(MARKING_CONCURRENCY);
        while let Some(result) = marks.next().await {
            result.map_err(after_deny)?;
        }
        Ok(())
    }

    /// A caller's sessions still live at `now`, newest first (bounded): only
    /// those issued within the longest credential lifetime can be.
    pub(super) async fn live_sessions(
        &self,
        caller: &str,
        since: i64,
        now: i64,
        keep: impl Fn(&SessionView) -> bool,
    ) -> Result<Vec<SessionView>, ApiError> {
        let query = SessionQuery::Caller {
            caller: caller.to_string(),
            since: Some(since.max(now - CHAIN_SECONDS - MARGIN_SECONDS)),
            limit: MAX_MARKED,
        };
        Ok(self
            .sessions
            .list(&query)
            .await
            .map_err(before_deny)?
            .into_iter()
            .filter(|s| s.status == SessionStatus::Issued && s.expires_at > now && keep(s))
            .collect())
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
        // A vend STS refused issued nothing; it stays `failed`, which the
        // audit reads (a success under its names is someone else's).
        if session.status == SessionStatus::Failed {
            return Err(ApiError::Conflict(format!(
                "session {id} failed at STS: no credentials were issued, so there is nothing to revoke; to stop its caller, revoke the caller"
            ))
            .into());
        }
        let profile = session.profile.clone();
        let now = call.now.timestamp();
        let until = terms.until(now);
        // A vend by a vended session shares the first vend's SourceIdentity:
        // it is revoked by its own tvm-session tag, the chain left alone.
        let entry = match &session.origin {
            Some(_) => Entry::onward(&session.session_id, now),
            None => Entry::session(&session.source_identity, now),
        };
        self.deny(
            &set,
            &[entry],
            std::slice::from_ref(&session),
            (caller, Adder::Approver),
            now,
        )
        .await
        .in_profile(&profile)?;
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
        self.sessions
            .revoke(&marker)
            .await
            .map_err(after_deny)
            .in_profile(&profile)?;
        self.mark_revoked(std::slice::from_ref(&session), now)
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
        let set = self.policies.get().await?;
        let now = call.now.timestamp();
        let until = terms.until(now);
        // The listing is for the report (and adds the accounts of sessions
        // whose profile is gone); the deny needs none of it.
        let live = self.live_sessions(&target, 0, now, |_| true).await?;
        // The caller's statement covers its vends by their tvm-caller tag.
        // A profile's role also vends as sessions tvm vended (rules with
        // allow_vended_sessions): those vends carry the chain's first caller
        // in tvm-caller and this role in tvm-vended-by, one statement more.
        let mut entries = vec![Entry::caller(&target, now, until)];
        if is_profile_role(&set, &target) {
            entries.push(Entry::vended_by(&target, now, until));
        }
        self.deny(&set, &entries, &live, (caller, Adder::SecurityTeam), now)
            .await?;
        let marker = RevocationMarker {
            scope: RevocationScope::Caller(target.clone()),
            until,
            by: caller.arn.clone(),
            reason: terms.reason.clone(),
            at: now,
        };
        self.sessions.revoke(&marker).await.map_err(after_deny)?;
        self.mark_revoked(&live, now).await?;
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
