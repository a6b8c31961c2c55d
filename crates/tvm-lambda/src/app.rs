//! The function's state, built once at cold start, and one invocation: an
//! event in, bounded by Lambda's deadline, an HTTP answer event out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tvm_core::api::Notification;
use tvm_core::principal::Principal;

use crate::aws::{
    ApprovalStore, BreakGlassStore, GateStates, Issuer, Notifier, RoleRevocations, SessionStore,
};
use crate::config::Config;
use crate::error::{error_chain, ApiError};
use crate::event::{parse_event, raw_request_id, truncate};
use crate::identity::Identities;
use crate::policies::PolicyCache;
use crate::routes::log::DecisionLog;

/// Everything the handler needs, built once at cold start.
pub struct App {
    pub config: Config,
    pub policies: Arc<PolicyCache>,
    /// Who is calling: the sources of `TVM_IDENTITY_MODES`, in order.
    pub identities: Identities,
    pub sessions: Arc<dyn SessionStore>,
    pub gate_states: Arc<dyn GateStates>,
    pub approvals: Arc<dyn ApprovalStore>,
    pub break_glass: Arc<dyn BreakGlassStore>,
    pub issuer: Arc<dyn Issuer>,
    pub revocations: Arc<dyn RoleRevocations>,
    /// Present when `TVM_NOTIFY_TOPIC_ARN` is set.
    pub notifier: Option<Arc<dyn Notifier>>,
}

/// How long before Lambda's deadline tvm gives up and answers.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);
/// Longest wait for SNS when a notification is awaited.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

impl App {
    /// One Lambda invocation: any JSON event in, an HTTP response event out.
    /// A payload that is not an API Gateway or function URL event gets a 400.
    /// `deadline`: when Lambda stops the invocation. Retries and waits are
    /// bounded by it: a little before, the answer is 503 and no credentials.
    pub async fn invoke(
        &self,
        event: Value,
        lambda_request_id: &str,
        deadline: Option<SystemTime>,
    ) -> Value {
        // For a malformed event, still answer with API Gateway's id when it has one.
        let request_id = raw_request_id(&event)
            .unwrap_or(lambda_request_id)
            .to_string();
        let started = Instant::now();
        let req = match parse_event(event) {
            Ok(req) => req,
            Err(e) => {
                let err = ApiError::BadRequest(
                    "the event is not an API Gateway or function URL HTTP request".into(),
                );
                let reason = format!("malformed event: {}", truncate(&e, 200));
                return DecisionLog::failed(&request_id, &err, reason, started).to_event_response();
            }
        };
        let work = self.handle(req, lambda_request_id, started);
        let budget = deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN)
        });
        match budget {
            None => work.await,
            Some(budget) => match tokio::time::timeout(budget, work).await {
                Ok(reply) => reply,
                Err(_) => {
                    tracing::error!(request_id = %request_id, dependency = "aws", "the Lambda deadline came before AWS answered; no credentials issued");
                    DecisionLog::failed(
                        &request_id,
                        &ApiError::OutOfTime,
                        "the Lambda deadline came first".into(),
                        started,
                    )
                }
            },
        }
        .to_event_response()
    }

    /// Publish after the state change is stored; a failure is logged, never
    /// undoes it or fails the request. `wait: false` keeps it off the
    /// caller's path entirely (the vend path).
    pub(crate) async fn announce(&self, n: Notification, wait: bool) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        let publish = async move {
            let result = tokio::time::timeout(NOTIFY_TIMEOUT, notifier.publish(&n)).await;
            let failure = match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => error_chain(&e),
                Err(_) => "timed out".to_string(),
            };
            tracing::error!(dependency = "sns", kind = %n.kind, error = %failure, "notification not published; the state change stands");
        };
        if wait {
            publish.await;
        } else {
            tokio::spawn(publish);
        }
    }
}

/// The announcement of a state change, at the request's `now`.
pub(crate) fn notification(
    kind: &str,
    actor: &Principal,
    subject: &str,
    profile: Option<&str>,
    id: Option<&str>,
    details: Value,
    now: DateTime<Utc>,
) -> Notification {
    Notification {
        version: 1,
        kind: kind.to_string(),
        at: now.timestamp(),
        actor: actor.arn.clone(),
        subject: subject.to_string(),
        profile: profile.map(str::to_string),
        id: id.map(str::to_string),
        details: match details {
            Value::Object(m) => m,
            _ => Default::default(),
        },
    }
}
