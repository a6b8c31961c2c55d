//! Break-glass: `POST /v1/breakglass`, `GET /v1/breakglass`,
//! `POST /v1/breakglass/{id}/close`. Every event notifies.

use serde_json::json;
use tvm_core::api::{BreakGlassList, BreakGlassView, OpenBreakGlass};
use tvm_core::approval::{
    self, is_admin, may_manage_break_glass, BreakGlassError, BreakGlassStatus,
};
use tvm_core::decision::Via;
use tvm_core::principal::Principal;
use tvm_core::revocation::{via_tag, Adder, Entry};

use super::{new_id, Call, Facts, Failure, Handled, InProfile, Outcome};
use crate::app::{notification, App};
use crate::aws::AwsError;

/// A failure after the event was closed says so first.
fn closed_but(e: ApiError) -> ApiError {
    ApiError::After {
        done: "the break-glass event is closed (close it again to retry what follows)",
        error: Box::new(e),
    }
}
use crate::error::ApiError;
use crate::event::body_json;

impl App {
    pub(super) async fn open_break_glass(&self, call: &Call<'_>) -> Handled {
        let caller = &call.caller;
        let ask: OpenBreakGlass = body_json(call.req)?;
        let name = ask.profile.as_str();
        let set = self.policies.get().await.in_profile(name)?;
        let profile = set
            .get(name)
            .ok_or(ApiError::AccessDenied)
            .in_profile(name)?;
        let now = call.now.timestamp();
        let event = match approval::open_break_glass(new_id(), caller, profile, &ask, now) {
            Ok(event) => event,
            Err(BreakGlassError::Refused(r)) => {
                return Err(Failure::denied(r, None).in_profile(name))
            }
            Err(e) => return Err(Failure::from(e).in_profile(name)),
        };
        self.break_glass.open(&event, now).await.in_profile(name)?;
        let details = json!({"reason": event.reason, "justification": event.justification, "ends_at": event.ends_at});
        let n = notification(
            "breakglass.opened",
            caller,
            &event.caller,
            Some(&event.profile),
            Some(&event.id),
            details,
            call.now,
        );
        self.announce(n, true).await;
        Ok(Outcome::json(
            201,
            &event,
            Facts::decided("break_glass").profile(name),
        ))
    }

    pub(super) async fn list_break_glass(&self, call: &Call<'_>) -> Handled {
        let admin = is_admin(&self.config.admins, &call.caller);
        let me = &call.caller.arn;
        let events = self
            .break_glass
            .open_events(call.now.timestamp())
            .await?
            .into_iter()
            .filter(|e| admin || &e.caller_arn == me)
            .collect();
        Ok(Outcome::json(
            200,
            &BreakGlassList { events },
            Facts::default(),
        ))
    }

    pub(super) async fn close_break_glass(&self, call: &Call<'_>, id: &str) -> Handled {
        let caller = &call.caller;
        let now = call.now.timestamp();
        let not_found = || ApiError::Missing(format!("no break-glass event {id}"));
        let event = self.break_glass.get(id, now).await?.ok_or_else(not_found)?;
        if !may_manage_break_glass(&event, &self.config.admins, caller) {
            return Err(not_found().into());
        }
        let name = event.profile.clone();
        let closed = match self.break_glass.close(&event, &caller.arn, now).await {
            Ok(closed) => closed,
            Err(AwsError::Conflict(m)) => {
                // Already closed: a close whose revocation failed is retried
                // here, so that what the event vended never outlives it.
                if let Some(done) = self.break_glass.get(id, now).await.in_profile(&name)? {
                    if done.status == BreakGlassStatus::Closed {
                        self.revoke_vended_under(&done, caller)
                            .await
                            .map_err(closed_but)
                            .in_profile(&name)?;
                    }
                }
                return Err(ApiError::Conflict(m)).in_profile(&name);
            }
            Err(e) => return Err(ApiError::from(e)).in_profile(&name),
        };
        // The grant ends with its reason: what the event vended is revoked.
        let revoked = self
            .revoke_vended_under(&closed, caller)
            .await
            .map_err(closed_but)
            .in_profile(&name)?;
        let details = json!({"opened_at": closed.opened_at, "closed_at": closed.ends_at, "sessions_revoked": revoked});
        let n = notification(
            "breakglass.closed",
            caller,
            &closed.caller,
            Some(&closed.profile),
            Some(&closed.id),
            details,
            call.now,
        );
        self.announce(n, true).await;
        Ok(Outcome::json(
            200,
            &closed,
            Facts::decided("ok").profile(&name),
        ))
    }

    /// Deny whatever was vended under a closed event (one entry on its
    /// `tvm-via` tag, in every account), then mark the sessions listed. The
    /// sessions are its opener's (events are bound to the exact caller).
    async fn revoke_vended_under(
        &self,
        event: &BreakGlassView,
        by: &Principal,
    ) -> Result<Vec<String>, ApiError> {
        // Every vend under the event marked it in its own transaction, and
        // none can follow the close: nothing vended, nothing to revoke (and
        // no entry taking room in the revocation policy).
        if !event.vended {
            return Ok(Vec::new());
        }
        let now = event.ends_at;
        let set = self.policies.get().await?;
        let live = self
            .live_sessions(&event.caller, event.opened_at, now, |s| {
                s.via == "break_glass" && s.via_id.as_deref() == Some(event.id.as_str())
            })
            .await?;
        let via = Via::BreakGlass(event.id.clone());
        let entry = Entry::grant(&via_tag(via.kind(), via.id()), now);
        self.deny(&set, &[entry], &live, (by, Adder::Opener), now)
            .await?;
        self.mark_revoked(&live, now).await?;
        Ok(live.into_iter().map(|s| s.session_id).collect())
    }
}
