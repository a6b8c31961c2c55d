//! `POST /v1/credentials`: decide, plan, record with the gates, assume.

use chrono::SecondsFormat;
use tvm_core::api::{CredentialsRequest, CredentialsResponse, SessionStatus, SessionView};
use tvm_core::decision::{decide, match_rules, Denial, GateState, VendRequest, Via};
use tvm_core::policy::valid_profile_name;
use tvm_core::principal::{Principal, PrincipalKind, RoleArn};
use tvm_core::render::vended_session_id;
use tvm_core::revocation::{caller_tag, via_tag, Target};
use tvm_core::vend::{plan, Lineage, SessionRecord, SessionRecordView, VendContext};

use super::{new_id, Call, Facts, Failure, Handled, InProfile, Outcome};
use crate::app::{notification, App};
use crate::aws::error_chain;
use crate::aws::{AwsError, GateKind, Gates, ParentGate, StillOpen};
use crate::error::ApiError;
use crate::event::truncate;

/// A caller whose gate closed vends sequentially in this container this
/// long; one rate limited, until its window ends. When the gates fail,
/// every caller does, this long.
const SEQUENTIAL_SECONDS: i64 = 60;

/// A revoked caller vends sequentially in this container this long: a
/// revocation outlasts the 300 s its deny covers new sessions for
/// (`tvm_core::revocation::MARGIN_SECONDS`), so a revoked caller's retries
/// mint once per container per quarter hour, and those mints never leave.
const REVOKED_SEQUENTIAL_SECONDS: i64 = 900;

/// A session STS may have issued beside its gate transaction, not yet
/// accounted for (recorded, or discarded and logged). Dropped armed, when the
/// request is dropped before both answered (the Lambda deadline), it logs
/// the session's names: nothing was sent, and this line is its record.
struct Unaccounted<'a> {
    session: &'a SessionRecord,
    armed: bool,
}

impl Drop for Unaccounted<'_> {
    fn drop(&mut self) {
        if self.armed {
            let s = self.session;
            tracing::error!(
                session_id = %s.session_id,
                source_identity = %s.source_identity,
                role_session_name = %s.role_session_name,
                role_arn = %s.role_arn,
                caller = %s.caller,
                "the request ended before its gate transaction and AssumeRole both answered: STS may have issued this session; nothing was sent (discarded), and this line is its record"
            );
        }
    }
}

impl App {
    pub(super) async fn vend(&self, call: &Call<'_>) -> Handled {
        let mut stale = false;
        let answer = self.vend_once(call, true, &mut stale).await;
        if stale {
            // The approval or break-glass event this container remembered
            // closed meanwhile: nothing was issued; decide again on what
            // the store holds now (a new request, another open gate).
            return self.vend_once(call, false, &mut stale).await;
        }
        answer
    }

    /// One vend; `remember`: may it grant from a remembered open gate.
    /// Sets `stale` when it did and the gates found that gate closed.
    async fn vend_once(&self, call: &Call<'_>, remember: bool, stale: &mut bool) -> Handled {
        let caller = &call.caller;
        let ask: CredentialsRequest = serde_json::from_slice(call.req.body().as_ref()).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be JSON {{\"profile\": NAME, \"duration_seconds\"?: 900..3600, \"attributes\"?: {{...}}}}: {}",
                truncate(&e.to_string(), 160)
            ))
        })?;
        if !valid_profile_name(&ask.profile) {
            return Err(ApiError::BadRequest(
                "profile must be 1-64 letters, digits, '-', '_' or '.'".into(),
            )
            .into());
        }
        let name = ask.profile.clone();
        let set = self.policies.get().await.in_profile(&name)?;
        let now = call.now;
        let request = VendRequest {
            profile: ask.profile,
            duration_seconds: ask.duration_seconds,
            attributes: ask.attributes,
        };
        // Approval and break-glass state is read only when they could
        // matter, and not again while the one a vend was granted from is
        // open (the gate transaction checks it still is).
        let mut from_memory = false;
        let state = match set.get(&name) {
            Some(profile) => {
                let m = match_rules(&set, profile, caller, now);
                let gated = m.approval.is_some() || m.break_glass.is_some();
                if m.deny.is_none() && m.allow.is_none() && gated {
                    let remembered = remember
                        .then(|| {
                            self.remembered()
                                .open_gates
                                .get(&caller.arn, &name, now.timestamp())
                        })
                        .flatten();
                    from_memory = remembered.is_some();
                    match remembered {
                        Some(state) => state,
                        None => self
                            .gate_states
                            .state(&caller.arn, &profile.name, now.timestamp())
                            .await
                            .in_profile(&name)?,
                    }
                } else {
                    GateState::default()
                }
            }
            None => GateState::default(),
        };
        let grant = match decide(&set, caller, &request, &state, now) {
            Ok(grant) => grant,
            // A remembered state only ever grants (the transaction checks
            // it): any refusal is decided again on what the store holds (an
            // event reopened elsewhere, a rule that changed with the hour).
            Err(_) if from_memory => {
                *stale = true;
                return Err(ApiError::AccessDenied.into());
            }
            Err(d) => {
                let mut refused = Failure::denied(ApiError::AccessDenied, d.to_string());
                refused.facts.rule = d.rule().map(str::to_string);
                refused.error = match &d {
                    Denial::ApprovalRequired { .. } => {
                        match self.request_for_vend(call, &set, &name, &request).await {
                            Ok(id) => ApiError::ApprovalRequired {
                                request_id: Some(id),
                            },
                            Err(e) => e,
                        }
                    }
                    Denial::Unbindable { .. } => {
                        ApiError::PolicyInvalid(format!("profile {name}: {d}"))
                    }
                    _ => d.into(),
                };
                return Err(refused.in_profile(&name));
            }
        };
        // A vended session vends only where a rule opted in; the vend then
        // belongs to the chain that session belongs to, for revocation.
        let parent = if set.vended(caller) {
            Some(
                self.parent_of(caller, now.timestamp())
                    .await
                    .in_profile(&name)?,
            )
        } else if self
            .recorded_vend(caller)
            .await
            .in_profile(&name)?
            .is_some()
        {
            // A session whose name names a vend on record, but whose role is
            // no loaded profile's: a session tvm vended for a profile no
            // longer served (removed, renamed, invalid), or a session chained
            // from a vended one that took its name. Neither vends.
            return Err(Failure::denied(
                ApiError::AccessDenied,
                "a session named after a vend tvm made, of a role no profile vends".to_string(),
            )
            .in_profile(&name));
        } else {
            None
        };
        let session_id = new_id();
        let context = VendContext {
            session_id: &session_id,
            request_id: call.request_id,
            now,
            retention: chrono::Duration::from_std(self.config.session_retention)
                .unwrap_or_default(),
            lineage: parent.as_ref().map(|(lineage, _)| lineage),
        };
        let facts = Facts {
            rule: Some(grant.rule.name.clone()),
            via: Some(grant.via.kind()),
            via_id: grant.via.id().map(str::to_string),
            duration_seconds: Some(grant.duration_seconds),
            session_id: Some(session_id.clone()),
            ..Facts::default().profile(&name)
        };
        // After the decision, a failure keeps what was decided (and is an error, not a deny).
        let failed = |e: ApiError| Failure {
            error: e,
            facts: Box::new(facts.clone()),
        };
        let planned = plan(&grant, caller, context).map_err(|e| {
            failed(if e.from_caller() {
                e.into()
            } else {
                ApiError::PolicyInvalid(format!("profile {name}: {e}"))
            })
        })?;
        // The record, in one transaction with the revocation and rate gates;
        // no credentials ever leave without it committed.
        let still_open = |gate, id: &str| StillOpen {
            gate,
            caller_arn: caller.arn.clone(),
            profile: name.clone(),
            id: id.to_string(),
        };
        let rate_limit = grant.profile.rate_limit.unwrap_or(self.config.rate_limit);
        let gates = Gates {
            rate_limit,
            now: now.timestamp(),
            still_open: match &grant.via {
                Via::Rule => None,
                Via::Approval(id) => Some(still_open(GateKind::Approval, id)),
                Via::BreakGlass(id) => Some(still_open(GateKind::BreakGlass, id)),
            },
            parent: parent.map(|(_, gate)| gate),
        };
        // AssumeRole needs nothing the transaction answers, so it is sent
        // beside it, unless the gates refused this caller lately.
        let overlap = self
            .remembered()
            .refusals
            .may_overlap(&planned.session.caller, now.timestamp());
        // Until the session is accounted for, a request dropped midway (the
        // Lambda deadline) names it in the log as it goes.
        let mut unaccounted = Unaccounted {
            session: &planned.session,
            armed: overlap,
        };
        let (recorded, minted) = if overlap {
            let (recorded, minted) = tokio::join!(
                self.sessions.record(&planned.session, gates),
                self.issuer.assume(&planned.assume)
            );
            (recorded, Some(minted))
        } else {
            (self.sessions.record(&planned.session, gates).await, None)
        };
        if let Err(e) = recorded {
            {
                let mut remembered = self.remembered();
                remembered.open_gates.forget(&caller.arn, &name);
                let t = now.timestamp();
                let sequential_until = match e {
                    AwsError::RateLimited { .. } => Some(rate_limit.window(t).end),
                    AwsError::Revoked => Some(t + REVOKED_SEQUENTIAL_SECONDS),
                    AwsError::GateClosed => Some(t + SEQUENTIAL_SECONDS),
                    _ => None,
                };
                match sequential_until {
                    Some(until) => remembered
                        .refusals
                        .refused(&planned.session.caller, until, t),
                    None => remembered.refusals.failed(t + SEQUENTIAL_SECONDS),
                }
            }
            let closed = matches!(e, AwsError::GateClosed);
            let mut failure = failed(e.into());
            if let Some(minted) = minted {
                self.discard(&planned.session, minted.is_ok(), call.now.timestamp())
                    .await;
                failure.facts.discarded = Some(true);
            }
            unaccounted.armed = false;
            *stale = from_memory && closed;
            return Err(failure);
        }
        // Recorded: the session item accounts for whatever STS answers.
        unaccounted.armed = false;
        drop(unaccounted);
        let minted = match minted {
            Some(minted) => minted,
            None => self.issuer.assume(&planned.assume).await,
        };
        let issued = match minted {
            Ok(issued) => issued,
            Err(e) => {
                if let Err(mark) = self
                    .sessions
                    .set_status(&session_id, SessionStatus::Failed, call.now.timestamp())
                    .await
                {
                    tracing::warn!(session_id = %session_id, error = %error_chain(&mark), "could not mark the session as failed");
                }
                return Err(failed(e.into()));
            }
        };
        if !matches!(grant.via, Via::Rule) {
            self.remembered()
                .open_gates
                .granted(&caller.arn, &name, &state, now.timestamp());
        }
        if let Via::BreakGlass(event_id) = &grant.via {
            // Every vend under break-glass is announced, off the caller's path.
            let details = serde_json::json!({
                "session_id": session_id,
                "role_arn": planned.session.role_arn,
                "duration_seconds": grant.duration_seconds,
            });
            let n = notification(
                "breakglass.vended",
                caller,
                &caller.stable_id(),
                Some(&name),
                Some(event_id),
                details,
                now,
            );
            self.announce(n, false).await;
        }
        let answer = CredentialsResponse {
            version: 1,
            access_key_id: issued.access_key_id,
            secret_access_key: issued.secret_access_key,
            session_token: issued.session_token,
            expiration: issued.expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
            session_id,
            profile: planned.session.profile,
            role_arn: planned.session.role_arn,
        };
        Ok(Outcome::json(
            200,
            &answer,
            Facts {
                decision: Some("allow"),
                ..facts
            },
        ))
    }

    /// Account for credentials STS issued beside a gate transaction that
    /// refused or failed: they are dropped here, unsent; the record says so
    /// (`discarded`), or, when it cannot be written, this log line is the
    /// record. Never fails the request further.
    async fn discard(&self, session: &SessionRecord, minted: bool, at: i64) {
        let written = self.sessions.discard(session, at).await;
        match written {
            Ok(()) => tracing::warn!(
                session_id = %session.session_id,
                source_identity = %session.source_identity,
                minted,
                "credentials issued while the gates were checked were discarded; recorded as discarded"
            ),
            Err(e) => tracing::error!(
                session_id = %session.session_id,
                source_identity = %session.source_identity,
                role_session_name = %session.role_session_name,
                role_arn = %session.role_arn,
                caller = %session.caller,
                minted,
                error = %error_chain(&e),
                "credentials issued while the gates were checked were discarded; the record could not be written, this line is its record"
            ),
        }
    }

    /// What a vend for a vended session inherits and must check: from the
    /// record of the vend that session came from, whose id its name carries.
    /// A vended session whose vend is not on record for its role, or is no
    /// longer live, vends nothing.
    async fn parent_of(
        &self,
        caller: &Principal,
        now: i64,
    ) -> Result<(Lineage, ParentGate), Failure> {
        let refused = |why: &str| Failure::denied(ApiError::AccessDenied, why.to_string());
        let same_role = |role_arn: &str| {
            RoleArn::parse(role_arn).is_ok_and(|r| {
                r.account() == caller.account && r.name().eq_ignore_ascii_case(&caller.name)
            })
        };
        let record = self.recorded_vend(caller).await?;
        let Some(r) = record.filter(|r| same_role(&r.role_arn)) else {
            return Err(refused("a vended session tvm holds no record of"));
        };
        if r.status != SessionStatus::Issued || r.expires_at <= now {
            return Err(refused("a vended session that is revoked or over"));
        }
        // One step: a vend made by a vended session vends nothing onward
        // (its own revocation, by its tvm-session tag, reaches no further).
        if r.origin.is_some() {
            return Err(refused(
                "a session vended to a vended session vends nothing onward",
            ));
        }
        let lineage = Lineage::of(&SessionRecordView {
            caller: &r.caller,
            source_identity: &r.source_identity,
            via_kind: &r.via,
            via_id: r.via_id.as_deref(),
        });
        let mut absent = vec![Target::Session(lineage.source_identity.clone()).key()];
        if lineage.via != via_tag(Via::Rule.kind(), None) {
            absent.push(Target::Grant(lineage.via.clone()).key());
        }
        let gate = ParentGate {
            origin: lineage.caller.clone(),
            caller: r.caller,
            profile: r.profile,
            absent,
            caller_entry: Target::Caller(caller_tag(&lineage.caller)).key(),
            issued_at: r.issued_at,
        };
        Ok((lineage, gate))
    }

    /// The record of the vend an assumed-role caller's session name names
    /// (its last `.`-part a session id), of whatever role.
    pub(super) async fn recorded_vend(
        &self,
        caller: &Principal,
    ) -> Result<Option<SessionView>, ApiError> {
        let Some(id) = vended_session_id(caller) else {
            return Ok(None);
        };
        if caller.kind != PrincipalKind::AssumedRole {
            return Ok(None);
        }
        Ok(self.sessions.get(id).await?)
    }
}
