//! The function's state, built once at cold start, and the announcements
//! of state changes (SNS, off the critical path).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tvm_core::api::Notification;
use tvm_core::principal::Principal;

use crate::aws::error_chain;
use crate::aws::{
    ApprovalStore, BreakGlassStore, GateStates, Issuer, Notifier, RevocationPolicy, SessionStore,
};
use crate::config::Config;
use crate::identity::Identities;
use crate::policies::PolicyCache;

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
    /// The revocation policy in every account tvm vends into.
    pub revocations: Arc<dyn RevocationPolicy>,
    /// Present when `TVM_NOTIFY_TOPIC_ARN` is set.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Notifications started without waiting, finished before the answer.
    pub pending: Pending,
    /// What this container remembers between vends to take them in one
    /// round trip (`tvm_core::overlap`).
    pub remembered: std::sync::Mutex<Remembered>,
}

/// Refused callers (sequential for a while) and the open gates vends were
/// granted from.
#[derive(Debug, Default)]
pub struct Remembered {
    pub refusals: tvm_core::overlap::Refusals,
    pub open_gates: tvm_core::overlap::OpenGates,
}

impl App {
    /// The container's memory, held only between awaits.
    pub(crate) fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Publishes a request started without waiting for them. Lambda freezes the
/// environment once the invocation answers, and a publish left running would
/// resume (and time out) only at the next invocation, if any: the handler
/// flushes them before it answers.
#[derive(Default)]
pub struct Pending(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Pending {
    fn push(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.0.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Wait for every pending publish, at most `bound` in all.
    pub async fn flush(&self, bound: Duration) {
        let tasks = match self.0.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => return,
        };
        if tasks.is_empty() {
            return;
        }
        let n = tasks.len();
        if tokio::time::timeout(bound, futures_util::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                dependency = "sns",
                pending = n,
                "notifications still publishing when the answer went; they may be lost"
            );
        }
    }
}

/// Longest wait for SNS when a notification is awaited.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

impl App {
    /// Publish after the state change is stored; a failure is logged, never
    /// undoes it or fails the request. `wait: false` runs it beside the rest
    /// of the request (the vend path); the handler waits for it, bounded,
    /// only before answering ([`Pending`]).
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
            self.pending.push(tokio::spawn(publish));
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
