//! In-memory adapters that really store: the handler's unit tests (vend,
//! approval and break-glass flows) and its benchmark run over these, beside
//! the emulator tests of the real adapters. Never wired into `bootstrap`.
//! They keep the same rules as the DynamoDB adapters: one-way transitions,
//! one open request or event per caller and profile, gates checked with the
//! record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tvm_core::api::{BreakGlassView, RequestView, SessionStatus, SessionView};
use tvm_core::approval::{quorum_reached, BreakGlassStatus, RequestStatus};
use tvm_core::decision::{ActiveBreakGlass, ApprovedRequest, GateState};
use tvm_core::revocation::Revoked;
use tvm_core::vend::{AssumeRole, SessionRecord};

use crate::app::App;
use crate::aws::{
    keys, ApprovalStore, AwsError, BoxFut, BreakGlassStore, Dependency, GateStates, Gates, Issued,
    Issuer, PolicyParameter, PolicySource, RevocationMarker, RoleRevocations, SessionQuery,
    SessionStore,
};
use crate::config::Config;
use crate::identity::apigw::ApigwSource;
use crate::identity::Identities;
use crate::policies::PolicyCache;

pub struct StaticPolicies(pub Vec<PolicyParameter>);

impl PolicySource for StaticPolicies {
    fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, AwsError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// Every store and STS, in memory. `steps` records the calls that matter
/// to a vend's order; the `fail_*` and `slow_assume` knobs inject faults.
#[derive(Default)]
pub struct Memory {
    pub steps: Mutex<Vec<String>>,
    pub fail_record: bool,
    pub fail_assume: bool,
    /// STS takes this long.
    pub slow_assume: Option<Duration>,
    pub state: Mutex<State>,
}

/// What the in-memory stores hold.
#[derive(Default)]
pub struct State {
    sessions: BTreeMap<String, SessionView>,
    /// Revocation markers and rate counters, by their DynamoDB keys.
    until: HashMap<String, i64>,
    counts: HashMap<String, u32>,
    requests: BTreeMap<String, RequestView>,
    events: BTreeMap<String, BreakGlassView>,
    /// `open#caller#profile` -> the request or event that matters.
    request_pointers: HashMap<String, String>,
    event_pointers: HashMap<String, String>,
    denied: Vec<(String, Revoked)>,
}

impl Memory {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn step(&self, s: String) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    /// The sessions denied on their roles so far: (role, SourceIdentity).
    pub fn denied(&self) -> Vec<(String, String)> {
        let s = self.state();
        s.denied
            .iter()
            .map(|(r, d)| (r.clone(), d.source_identity.clone()))
            .collect()
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFut<'a, T> {
    Box::pin(std::future::ready(v))
}

impl SessionStore for Memory {
    fn record<'a>(&'a self, r: &'a SessionRecord, g: Gates) -> BoxFut<'a, Result<(), AwsError>> {
        self.step(format!("record {}", r.profile));
        if self.fail_record {
            return ready(Err(AwsError::unavailable(
                Dependency::DynamoDb,
                "ProvisionedThroughputExceededException: details",
            )));
        }
        let mut s = self.state();
        let revoked = [
            keys::revoked_caller(&r.caller),
            keys::revoked_pair(&r.caller, &r.profile),
        ]
        .iter()
        .any(|k| s.until.get(k).is_some_and(|u| *u > g.now));
        if revoked {
            return ready(Err(AwsError::Revoked));
        }
        let window = g.rate_limit.window(g.now);
        let count = s
            .counts
            .entry(keys::rate(&r.caller, &r.profile, window.start))
            .or_default();
        if *count >= g.rate_limit.requests {
            return ready(Err(AwsError::RateLimited {
                retry_after: window.retry_after(g.now),
            }));
        }
        *count += 1;
        let view = SessionView {
            session_id: r.session_id.clone(),
            caller: r.caller.clone(),
            caller_arn: r.caller_arn.clone(),
            profile: r.profile.clone(),
            role_arn: r.role_arn.clone(),
            rule: r.rule.clone(),
            via: r.via.kind().to_string(),
            duration_seconds: r.duration_seconds,
            issued_at: r.issued_at.timestamp(),
            expires_at: r.expires_at.timestamp(),
            source_identity: r.source_identity.clone(),
            status: SessionStatus::Issued,
        };
        s.sessions.insert(r.session_id.clone(), view);
        ready(Ok(()))
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: SessionStatus,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        self.step(format!("status {status}"));
        if let Some(v) = self.state().sessions.get_mut(id) {
            v.status = status;
        }
        ready(Ok(()))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<SessionView>, AwsError>> {
        ready(Ok(self.state().sessions.get(id).cloned()))
    }

    fn list<'a>(&'a self, q: &'a SessionQuery) -> BoxFut<'a, Result<Vec<SessionView>, AwsError>> {
        let s = self.state();
        let (by_caller, key, limit) = match q {
            SessionQuery::Caller { caller, limit } => (true, caller, *limit),
            SessionQuery::Profile { profile, limit } => (false, profile, *limit),
        };
        let mut list: Vec<SessionView> = s
            .sessions
            .values()
            .filter(|v| {
                if by_caller {
                    &v.caller == key
                } else {
                    &v.profile == key
                }
            })
            .cloned()
            .collect();
        list.sort_by_key(|v| std::cmp::Reverse(v.issued_at));
        list.truncate(limit);
        ready(Ok(list))
    }

    fn revoke<'a>(&'a self, m: &'a RevocationMarker) -> BoxFut<'a, Result<(), AwsError>> {
        let mut s = self.state();
        let until = s.until.entry(keys::revoked(&m.scope)).or_default();
        *until = (*until).max(m.until);
        ready(Ok(()))
    }
}

impl Issuer for Memory {
    fn assume<'a>(&'a self, spec: &'a AssumeRole) -> BoxFut<'a, Result<Issued, AwsError>> {
        Box::pin(async move {
            self.step(format!(
                "assume {} {}",
                spec.role_arn, spec.duration_seconds
            ));
            if let Some(d) = self.slow_assume {
                tokio::time::sleep(d).await;
            }
            if self.fail_assume {
                return Err(AwsError::unavailable(
                    Dependency::Sts,
                    "AccessDenied: not authorized",
                ));
            }
            Ok(Issued {
                access_key_id: "ASIAFAKE".into(),
                secret_access_key: "secret".into(),
                session_token: "token".into(),
                expiration: Utc::now()
                    + chrono::Duration::seconds(i64::from(spec.duration_seconds)),
            })
        })
    }
}

impl GateStates for Memory {
    fn state<'a>(
        &'a self,
        caller: &'a str,
        profile: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<GateState, AwsError>> {
        let s = self.state();
        let pointer = keys::open_pointer(caller, profile);
        let approval = s
            .request_pointers
            .get(&pointer)
            .and_then(|id| s.requests.get(id))
            .filter(|r| r.status.at(r.expires_at, now) == RequestStatus::Approved)
            .map(|r| ApprovedRequest {
                id: r.id.clone(),
                duration_seconds: r.duration_seconds,
                valid_until: chrono::DateTime::from_timestamp(r.expires_at, 0).unwrap_or_default(),
            });
        let break_glass = s
            .event_pointers
            .get(&pointer)
            .and_then(|id| s.events.get(id))
            .filter(|e| e.status.at(e.ends_at, now) == BreakGlassStatus::Open)
            .map(|e| ActiveBreakGlass {
                id: e.id.clone(),
                ends_at: chrono::DateTime::from_timestamp(e.ends_at, 0).unwrap_or_default(),
            });
        ready(Ok(GateState {
            approval,
            break_glass,
        }))
    }
}

fn seen(r: &RequestView, now: i64) -> RequestView {
    RequestView {
        status: r.status.at(r.expires_at, now),
        ..r.clone()
    }
}

impl ApprovalStore for Memory {
    fn open<'a>(&'a self, r: &'a RequestView, now: i64) -> BoxFut<'a, Result<String, AwsError>> {
        let mut s = self.state();
        let pointer = keys::open_pointer(&r.caller, &r.profile);
        let current = s
            .request_pointers
            .get(&pointer)
            .and_then(|id| s.requests.get(id));
        if let Some(open) = current.filter(|o| o.expires_at > now) {
            return ready(Ok(open.id.clone()));
        }
        s.request_pointers.insert(pointer, r.id.clone());
        s.requests.insert(r.id.clone(), r.clone());
        ready(Ok(r.id.clone()))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, AwsError>> {
        ready(Ok(self.state().requests.get(id).map(|r| seen(r, now))))
    }

    fn list<'a>(
        &'a self,
        status: RequestStatus,
        now: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, AwsError>> {
        let s = self.state();
        let mut list: Vec<RequestView> = s
            .requests
            .values()
            .map(|r| seen(r, now))
            .filter(|r| r.status == status)
            .collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        ready(Ok(list))
    }

    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        approver: &'a str,
        ttl: u32,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        let mut s = self.state();
        let Some(stored) = s.requests.get_mut(&r.id) else {
            return ready(Err(AwsError::unavailable(
                Dependency::DynamoDb,
                "the request vanished",
            )));
        };
        let status = stored.status.at(stored.expires_at, now);
        if status != RequestStatus::Pending {
            return ready(Err(AwsError::Conflict(format!(
                "request {} is {status}; only pending requests can be approved",
                r.id
            ))));
        }
        if stored.approvals.iter().any(|a| a == approver) {
            return ready(Err(AwsError::Conflict(format!(
                "you already approved request {}; it needs {} distinct approvers",
                r.id, r.required
            ))));
        }
        stored.approvals.push(approver.to_string());
        stored.approvals.sort();
        if quorum_reached(stored.approvals.len(), stored.required) {
            let valid_until = now + i64::from(ttl);
            stored.status = RequestStatus::Approved;
            stored.valid_until = Some(valid_until);
            stored.expires_at = valid_until;
            stored.decided_by = Some(approver.to_string());
        }
        ready(Ok(seen(stored, now)))
    }

    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        status: RequestStatus,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<RequestView, AwsError>> {
        let mut guard = self.state();
        let s = &mut *guard;
        let Some(stored) = s.requests.get_mut(&r.id) else {
            return ready(Err(AwsError::unavailable(
                Dependency::DynamoDb,
                "the request vanished",
            )));
        };
        let current = stored.status.at(stored.expires_at, now);
        if !current.may_become(status) {
            return ready(Err(AwsError::Conflict(format!(
                "request {} is {current}; transitions are one-way",
                r.id
            ))));
        }
        stored.status = status;
        stored.decided_by = Some(by.to_string());
        let done = seen(stored, now);
        let pointer = keys::open_pointer(&r.caller, &r.profile);
        if s.request_pointers.get(&pointer) == Some(&r.id) {
            s.request_pointers.remove(&pointer);
        }
        ready(Ok(done))
    }
}

impl BreakGlassStore for Memory {
    fn open<'a>(&'a self, e: &'a BreakGlassView, now: i64) -> BoxFut<'a, Result<(), AwsError>> {
        let mut s = self.state();
        let pointer = keys::open_pointer(&e.caller, &e.profile);
        let current = s
            .event_pointers
            .get(&pointer)
            .and_then(|id| s.events.get(id));
        if current.is_some_and(|c| c.status.at(c.ends_at, now) == BreakGlassStatus::Open) {
            return ready(Err(AwsError::Conflict(format!(
                "a break-glass event is already open for you on {}; close it first",
                e.profile
            ))));
        }
        s.event_pointers.insert(pointer, e.id.clone());
        s.events.insert(e.id.clone(), e.clone());
        ready(Ok(()))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, AwsError>> {
        let s = self.state();
        let e = s.events.get(id).map(|e| BreakGlassView {
            status: e.status.at(e.ends_at, now),
            ..e.clone()
        });
        ready(Ok(e))
    }

    fn open_events<'a>(&'a self, now: i64) -> BoxFut<'a, Result<Vec<BreakGlassView>, AwsError>> {
        let s = self.state();
        let open = s
            .events
            .values()
            .filter(|e| e.status.at(e.ends_at, now) == BreakGlassStatus::Open)
            .cloned()
            .collect();
        ready(Ok(open))
    }

    fn close<'a>(
        &'a self,
        e: &'a BreakGlassView,
        by: &'a str,
        now: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, AwsError>> {
        let mut guard = self.state();
        let s = &mut *guard;
        let Some(stored) = s.events.get_mut(&e.id) else {
            return ready(Err(AwsError::unavailable(
                Dependency::DynamoDb,
                "the event vanished",
            )));
        };
        if stored.status.at(stored.ends_at, now) != BreakGlassStatus::Open {
            return ready(Err(AwsError::Conflict(format!(
                "break-glass event {} is not open",
                e.id
            ))));
        }
        stored.status = BreakGlassStatus::Closed;
        stored.closed_by = Some(by.to_string());
        stored.ends_at = now;
        let closed = stored.clone();
        let pointer = keys::open_pointer(&e.caller, &e.profile);
        if s.event_pointers.get(&pointer) == Some(&e.id) {
            s.event_pointers.remove(&pointer);
        }
        ready(Ok(closed))
    }
}

impl RoleRevocations for Memory {
    fn deny<'a>(
        &'a self,
        role_arn: &'a str,
        sessions: &'a [Revoked],
        _now: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        let mut s = self.state();
        s.denied
            .extend(sessions.iter().map(|r| (role_arn.to_string(), r.clone())));
        ready(Ok(()))
    }
}

/// The handler over one in-memory world, serving
/// `examples/policies/orders-tenant.yaml`, API Gateway identity mode.
pub fn app(memory: Arc<Memory>) -> App {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/orders-tenant.yaml"
    ))
    .expect("examples/policies/orders-tenant.yaml");
    app_with(memory, &[&doc])
}

/// The handler over one in-memory world, serving these policy documents.
pub fn app_with(memory: Arc<Memory>, docs: &[&str]) -> App {
    let params = docs
        .iter()
        .map(|doc| {
            let name = doc
                .lines()
                .find_map(|l| l.strip_prefix("profile: "))
                .unwrap_or_default()
                .trim();
            PolicyParameter {
                name: format!("/tvm/policies/{name}"),
                value: doc.to_string(),
            }
        })
        .collect();
    let config = Config::from_lookup(|k| (k == "TVM_SESSIONS_TABLE").then(|| "s".to_string()))
        .expect("config");
    App {
        policies: PolicyCache::new(
            Arc::new(StaticPolicies(params)),
            config.policy_prefix.clone(),
            Duration::from_secs(30),
            Duration::from_secs(300),
        ),
        identities: Identities::new(vec![Box::new(ApigwSource)]),
        sessions: memory.clone(),
        gate_states: memory.clone(),
        approvals: memory.clone(),
        break_glass: memory.clone(),
        issuer: memory.clone(),
        revocations: memory,
        notifier: None,
        config,
    }
}
