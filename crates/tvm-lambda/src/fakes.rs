//! In-memory adapters: the handler's unit tests and its benchmark run over
//! these. Never wired into `bootstrap`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tvm_core::api::{BreakGlassView, RequestView, SessionView};
use tvm_core::revocation::Revoked;

use crate::aws::gates::GateStore;
use crate::aws::{
    AssumeSpec, BoxFut, Gates, Issued, Issuer, PolicyParameter, PolicySource, RevocationMarker,
    RoleRevocations, SessionQuery, SessionRecord, SessionStore,
};
use crate::config::Config;
use crate::error::{ApiError, Dependency};
use crate::policies::PolicyCache;
use crate::routes::App;

pub struct StaticPolicies(pub Vec<PolicyParameter>);

impl PolicySource for StaticPolicies {
    fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, ApiError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// Records what happened, in order.
#[derive(Default)]
pub struct Journal {
    pub steps: Mutex<Vec<String>>,
    pub fail_record: bool,
    pub fail_assume: bool,
    /// STS takes this long.
    pub slow_assume: Option<Duration>,
}

impl SessionStore for Journal {
    fn record<'a>(&'a self, s: &'a SessionRecord, _: Gates) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.steps
                .lock()
                .unwrap()
                .push(format!("record {}", s.profile));
            if self.fail_record {
                return Err(ApiError::dependency(
                    Dependency::DynamoDb,
                    "ProvisionedThroughputExceededException: details",
                ));
            }
            Ok(())
        })
    }

    fn set_status<'a>(&'a self, _: &'a str, status: &'a str) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.steps.lock().unwrap().push(format!("status {status}"));
            Ok(())
        })
    }

    fn get<'a>(&'a self, _: &'a str) -> BoxFut<'a, Result<Option<SessionView>, ApiError>> {
        Box::pin(async move { Ok(None) })
    }

    fn list<'a>(&'a self, _: &'a SessionQuery) -> BoxFut<'a, Result<Vec<SessionView>, ApiError>> {
        Box::pin(async move { Ok(vec![]) })
    }

    fn revoke<'a>(&'a self, _: &'a RevocationMarker) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(()) })
    }
}

impl Issuer for Journal {
    fn assume<'a>(&'a self, spec: &'a AssumeSpec) -> BoxFut<'a, Result<Issued, ApiError>> {
        Box::pin(async move {
            self.steps.lock().unwrap().push(format!(
                "assume {} {}",
                spec.role_arn, spec.duration_seconds
            ));
            if let Some(d) = self.slow_assume {
                tokio::time::sleep(d).await;
            }
            if self.fail_assume {
                return Err(ApiError::dependency(
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

/// No approvals, no break-glass: gated profiles never vend.
pub struct NoGates;

impl GateStore for NoGates {
    fn state<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<tvm_core::decision::GateState, ApiError>> {
        Box::pin(async move { Ok(Default::default()) })
    }
    fn open_request<'a>(
        &'a self,
        r: &'a RequestView,
        _: i64,
    ) -> BoxFut<'a, Result<String, ApiError>> {
        Box::pin(async move { Ok(r.id.clone()) })
    }
    fn request<'a>(
        &'a self,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<Option<RequestView>, ApiError>> {
        Box::pin(async move { Ok(None) })
    }
    fn requests<'a>(
        &'a self,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<Vec<RequestView>, ApiError>> {
        Box::pin(async move { Ok(vec![]) })
    }
    fn approve<'a>(
        &'a self,
        r: &'a RequestView,
        _: &'a str,
        _: u32,
        _: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>> {
        Box::pin(async move { Ok(r.clone()) })
    }
    fn finish<'a>(
        &'a self,
        r: &'a RequestView,
        _: &'a str,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<RequestView, ApiError>> {
        Box::pin(async move { Ok(r.clone()) })
    }
    fn open_break_glass<'a>(
        &'a self,
        _: &'a BreakGlassView,
        _: i64,
    ) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(()) })
    }
    fn break_glass<'a>(
        &'a self,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<Option<BreakGlassView>, ApiError>> {
        Box::pin(async move { Ok(None) })
    }
    fn open_break_glass_events<'a>(
        &'a self,
        _: i64,
    ) -> BoxFut<'a, Result<Vec<BreakGlassView>, ApiError>> {
        Box::pin(async move { Ok(vec![]) })
    }
    fn close_break_glass<'a>(
        &'a self,
        e: &'a BreakGlassView,
        _: &'a str,
        _: i64,
    ) -> BoxFut<'a, Result<BreakGlassView, ApiError>> {
        Box::pin(async move { Ok(e.clone()) })
    }
}

pub struct NoRevocations;

impl RoleRevocations for NoRevocations {
    fn deny<'a>(
        &'a self,
        _: &'a str,
        _: &'a [Revoked],
        _: i64,
    ) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(()) })
    }
}

/// The handler over these fakes, serving `examples/policies/orders-tenant.yaml`.
pub fn app(journal: Arc<Journal>) -> App {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/orders-tenant.yaml"
    ))
    .unwrap();
    let source = Arc::new(StaticPolicies(vec![PolicyParameter {
        name: "/tvm/policies/orders-tenant".into(),
        value: doc,
    }]));
    let config =
        Config::from_lookup(|k| (k == "TVM_SESSIONS_TABLE").then(|| "s".to_string())).unwrap();
    App {
        policies: PolicyCache::new(
            source,
            config.policy_prefix.clone(),
            Duration::from_secs(30),
            Duration::from_secs(300),
        ),
        sessions: journal.clone(),
        issuer: journal,
        verifier: None,
        sts_authority: String::new(),
        revocations: Arc::new(NoRevocations),
        gates: Arc::new(NoGates),
        notifier: None,
        config,
    }
}
