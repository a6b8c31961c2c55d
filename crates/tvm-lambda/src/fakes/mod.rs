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

use tvm_core::revocation::{Adder, Entry, Target};
use tvm_core::vend::{AssumeRole, SessionRecord};

mod gates;

use crate::app::App;
use crate::aws::{
    keys, AwsError, BoxFut, Dependency, GateKind, Gates, Issued, Issuer, PolicyParameter,
    PolicySource, RevocationMarker, RevocationPolicy, SessionQuery, SessionStore,
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
    /// The next revocation write fails (IAM unavailable), once.
    pub fail_deny_once: std::sync::atomic::AtomicBool,
    /// STS takes this long.
    pub slow_assume: Option<Duration>,
    pub state: Mutex<State>,
}

/// What the in-memory stores hold.
#[derive(Default)]
pub struct State {
    pub(crate) sessions: BTreeMap<String, SessionView>,
    /// Revocation markers and rate counters, by their DynamoDB keys.
    pub(crate) until: HashMap<String, i64>,
    pub(crate) counts: HashMap<String, u32>,
    pub(crate) requests: BTreeMap<String, RequestView>,
    pub(crate) events: BTreeMap<String, BreakGlassView>,
    /// `open#caller#profile` -> the request or event that matters.
    pub(crate) request_pointers: HashMap<String, String>,
    pub(crate) event_pointers: HashMap<String, String>,
    pub(crate) denied: Vec<(Vec<String>, Entry)>,
}

impl Memory {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn step(&self, s: String) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    /// Start every rate window afresh: for a benchmark that vends more in a
    /// second than a window allows.
    pub fn forget_rate_counts(&self) {
        self.state().counts.clear();
    }

    /// What was revoked so far, and in which accounts.
    pub fn denied(&self) -> Vec<(Vec<String>, Target)> {
        let s = self.state();
        s.denied
            .iter()
            .map(|(a, e)| (a.clone(), e.target.clone()))
            .collect()
    }
}

pub(crate) fn ready<'a, T: Send + 'a>(v: T) -> BoxFut<'a, T> {
    Box::pin(std::future::ready(v))
}

/// A record as the store returns it.
fn view(r: &SessionRecord, status: SessionStatus) -> SessionView {
    SessionView {
        session_id: r.session_id.clone(),
        caller: r.caller.clone(),
        caller_arn: r.caller_arn.clone(),
        profile: r.profile.clone(),
        role_arn: r.role_arn.clone(),
        rule: r.rule.clone(),
        via: r.via.kind().to_string(),
        via_id: r.via.id().map(str::to_string),
        origin: r.lineage.as_ref().map(|l| l.caller.clone()),
        origin_via: r.lineage.as_ref().map(|l| l.via.clone()),
        duration_seconds: r.duration_seconds,
        issued_at: r.issued_at.timestamp(),
        expires_at: r.expires_at.timestamp(),
        source_identity: r.source_identity.clone(),
        role_session_name: Some(r.role_session_name.clone()),
        status,
        revoked_at: None,
    }
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
        let mut gates = vec![
            keys::revoked_caller(&r.caller),
            keys::revoked_pair(&r.caller, &r.profile),
        ];
        gates.extend(g.parent.iter().flat_map(|p| p.gates(r)));
        let in_state = g.parent.as_ref().is_some_and(|p| {
            s.denied.iter().any(|(_, e)| {
                let key = e.target.key();
                p.absent.contains(&key)
                    || (key == p.caller_entry
                        && e.term.issued_before.is_some_and(|b| b > p.issued_at))
            })
        });
        let revoked = in_state
            || gates
                .iter()
                .any(|k| s.until.get(k).is_some_and(|u| *u > g.now));
        if revoked {
            return ready(Err(AwsError::Revoked));
        }
        if let Some(o) = &g.still_open {
            let pointer = keys::open_pointer(&o.caller_arn, &o.profile);
            let open = match o.gate {
                GateKind::Approval => s
                    .request_pointers
                    .get(&pointer)
                    .filter(|id| **id == o.id)
                    .and_then(|id| s.requests.get(id))
                    .is_some_and(|r| {
                        r.status.at(r.expires_at, g.now)
                            == tvm_core::approval::RequestStatus::Approved
                    }),
                GateKind::BreakGlass => s
                    .event_pointers
                    .get(&pointer)
                    .filter(|id| **id == o.id)
                    .and_then(|id| s.events.get(id))
                    .is_some_and(|e| {
                        e.status.at(e.ends_at, g.now) == tvm_core::approval::BreakGlassStatus::Open
                    }),
            };
            if open && o.gate == GateKind::BreakGlass {
                if let Some(e) = s.events.get_mut(&o.id) {
                    e.vended = true;
                }
            }
            if !open {
                return ready(Err(AwsError::GateClosed));
            }
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
        s.sessions
            .insert(r.session_id.clone(), view(r, SessionStatus::Issued));
        ready(Ok(()))
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: SessionStatus,
        at: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        self.step(format!("status {status}"));
        if let Some(v) = self.state().sessions.get_mut(id) {
            v.status = status;
            if status == SessionStatus::Revoked {
                v.revoked_at = v.revoked_at.or(Some(at));
            }
        }
        ready(Ok(()))
    }

    fn discard<'a>(&'a self, r: &'a SessionRecord, _at: i64) -> BoxFut<'a, Result<(), AwsError>> {
        self.step(format!("discard {}", r.profile));
        if self.fail_record {
            return ready(Err(AwsError::unavailable(
                Dependency::DynamoDb,
                "ProvisionedThroughputExceededException: details",
            )));
        }
        let mut s = self.state();
        let kept = s
            .sessions
            .get(&r.session_id)
            .is_some_and(|v| v.status != SessionStatus::Issued);
        if !kept {
            s.sessions
                .insert(r.session_id.clone(), view(r, SessionStatus::Discarded));
        }
        ready(Ok(()))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<Option<SessionView>, AwsError>> {
        ready(Ok(self.state().sessions.get(id).cloned()))
    }

    fn list<'a>(&'a self, q: &'a SessionQuery) -> BoxFut<'a, Result<Vec<SessionView>, AwsError>> {
        let s = self.state();
        let (SessionQuery::Caller { limit, .. }
        | SessionQuery::Profile { limit, .. }
        | SessionQuery::Revoked { limit, .. }) = q;
        let limit = *limit;
        let keep = |v: &SessionView| match q {
            SessionQuery::Caller { caller, since, .. } => {
                &v.caller == caller && since.is_none_or(|t| v.issued_at >= t)
            }
            SessionQuery::Profile { profile, .. } => &v.profile == profile,
            SessionQuery::Revoked { since, .. } => v.revoked_at.is_some_and(|t| t >= *since),
        };
        let mut list: Vec<SessionView> = s.sessions.values().filter(|v| keep(v)).cloned().collect();
        list.sort_by_key(|v| std::cmp::Reverse(v.revoked_at.unwrap_or(v.issued_at)));
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

impl RevocationPolicy for Memory {
    fn revoke<'a>(
        &'a self,
        entries: &'a [Entry],
        accounts: &'a [String],
        _by: Adder,
        _now: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        if self
            .fail_deny_once
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return ready(Err(AwsError::unavailable(
                Dependency::Iam,
                "ServiceFailure: injected",
            )));
        }
        let mut s = self.state();
        for entry in entries {
            s.denied.push((accounts.to_vec(), entry.clone()));
        }
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
    // The security team: the SSO-like SecAdmin roles.
    let config = Config::from_lookup(|k| match k {
        "TVM_SESSIONS_TABLE" => Some("s".to_string()),
        "TVM_ADMIN_PRINCIPALS" => {
            Some("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_SecAdmin*/*".to_string())
        }
        _ => None,
    })
    .expect("config");
    App {
        policies: PolicyCache::new(
            Arc::new(StaticPolicies(params)),
            config.policy_prefix.clone(),
            Duration::from_secs(30),
            Duration::from_secs(300),
            None,
        ),
        identities: Identities::new(vec![Box::new(ApigwSource::default())]),
        sessions: memory.clone(),
        gate_states: memory.clone(),
        approvals: memory.clone(),
        break_glass: memory.clone(),
        issuer: memory.clone(),
        revocations: memory,
        notifier: None,
        pending: Default::default(),
        remembered: Default::default(),
        config,
    }
}
