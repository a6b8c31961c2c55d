//! The in-memory policy set: loaded from SSM, served from memory, refreshed
//! in the background once older than the TTL so that no request waits on a
//! refresh. A request waits only when there is nothing servable: before the
//! first load, or when every refresh has failed for longer than max-stale
//! (then it fails closed rather than serve an old policy forever).
//!
//! With a signing key (`TVM_POLICY_SIGNING_KEY`) every document must carry
//! a signature that verifies with its public half: read from KMS on the
//! first load, verified locally on every load after. An unsigned or badly
//! signed document is refused like an invalid one: logged, counted
//! (`PolicySignatureRejections`), and its profile does not vend.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tvm_core::policy::{parse_profile, PolicySet};

use crate::aws::error_chain;
use crate::aws::kms::{PolicyKey, PolicySigning};
use crate::aws::{PolicyParameter, PolicySource};
use crate::error::ApiError;

pub struct PolicyCache {
    source: Arc<dyn PolicySource>,
    prefix: String,
    ttl: Duration,
    max_stale: Duration,
    current: RwLock<Option<Snapshot>>,
    refreshing: AtomicBool,
    last_attempt: RwLock<Option<Instant>>,
    load_lock: tokio::sync::Mutex<()>,
    /// Loads that failed since the decision line last reported them.
    failures: AtomicU64,
    signing: Option<Arc<PolicySigning>>,
    /// Documents refused for their signature since the line last reported them.
    rejections: AtomicU64,
    /// The background refresh in flight, if any.
    inflight: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone)]
struct Snapshot {
    set: Arc<PolicySet>,
    at: Instant,
}

impl PolicyCache {
    pub fn new(
        source: Arc<dyn PolicySource>,
        prefix: String,
        ttl: Duration,
        max_stale: Duration,
        signing: Option<Arc<PolicySigning>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            prefix,
            ttl,
            max_stale,
            current: RwLock::new(None),
            refreshing: AtomicBool::new(false),
            last_attempt: RwLock::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
            signing,
            rejections: AtomicU64::new(0),
            inflight: std::sync::Mutex::new(None),
        })
    }

    fn snapshot(&self) -> Option<Snapshot> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// How old the set being served is (none before the first load).
    pub fn age(&self) -> Option<Duration> {
        self.snapshot().map(|s| s.at.elapsed())
    }

    /// Loads that failed since the last call (each is reported once, on
    /// the next decision line).
    pub fn take_failures(&self) -> u64 {
        self.failures.swap(0, Ordering::AcqRel)
    }

    /// Documents refused for a missing or bad signature since the last call.
    pub fn take_rejections(&self) -> u64 {
        self.rejections.swap(0, Ordering::AcqRel)
    }

    /// Start the first load without waiting for it (at cold start).
    pub fn prime(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _ = me.get().await;
        });
    }

    /// The policy set to decide with.
    pub async fn get(self: &Arc<Self>) -> Result<Arc<PolicySet>, ApiError> {
        if let Some(s) = self.snapshot() {
            let age = s.at.elapsed();
            if age < self.ttl {
                return Ok(s.set);
            }
            if age < self.max_stale {
                self.refresh_in_background();
                return Ok(s.set);
            }
        }
        let _one_loader = self.load_lock.lock().await;
        if let Some(s) = self.snapshot().filter(|s| s.at.elapsed() < self.ttl) {
            return Ok(s.set);
        }
        self.load_now().await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        // After a failure, wait a little before trying again.
        let backoff = self.ttl.min(Duration::from_secs(5));
        let recent = self
            .last_attempt
            .read()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| t.elapsed() < backoff);
        if recent || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _one_loader = me.load_lock.lock().await;
            let _ = me.load_now().await;
            me.refreshing.store(false, Ordering::Release);
        });
        if let Ok(mut inflight) = self.inflight.lock() {
            *inflight = Some(task);
        }
    }

    /// Wait, at most `bound`, for a background refresh in flight. Lambda
    /// freezes the environment once the invocation answers: a refresh left
    /// running would resume at the next invocation and time out there. One
    /// refresh a TTL runs beside the request that started it, so this is
    /// mostly already done.
    pub async fn settle(&self, bound: Duration) {
        let task = self.inflight.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if !task.is_finished() && tokio::time::timeout(bound, task).await.is_err() {
                tracing::warn!(
                    dependency = "ssm",
                    "a policy refresh was still running when the answer went"
                );
            }
        }
    }

    async fn load_now(&self) -> Result<Arc<PolicySet>, ApiError> {
        if let Ok(mut g) = self.last_attempt.write() {
            *g = Some(Instant::now());
        }
        let started = Instant::now();
        let fail = |e: &crate::aws::AwsError| {
            self.failures.fetch_add(1, Ordering::AcqRel);
            let dependency = e.dependency().map_or("unknown", |d| d.as_str());
            tracing::error!(dependency, error = %error_chain(e), "policy load failed; serving the last good set if it is fresh enough");
        };
        // The signing key's first read runs beside the load: no extra round trip.
        let key = async {
            match &self.signing {
                Some(s) => s.key().await.map(Some),
                None => Ok(None),
            }
        };
        let (key, params) = tokio::join!(key, self.source.load());
        let key = key.inspect_err(fail)?;
        let params = params.inspect_err(fail)?;
        let (set, rejected) = build(&self.prefix, &params, key.as_deref());
        self.rejections.fetch_add(rejected, Ordering::AcqRel);
        let set = Arc::new(set);
        tracing::info!(
            profiles = set.len(),
            parameters = params.len(),
            load_ms = started.elapsed().as_millis() as u64,
            "policies loaded"
        );
        if let Ok(mut g) = self.current.write() {
            *g = Some(Snapshot {
                set: Arc::clone(&set),
                at: Instant::now(),
            });
        }
        Ok(set)
    }
}

/// Parse every parameter; an invalid one, or with `key` one whose signature
/// does not verify, is logged and left out, never half-used. Also says how
/// many were refused for their signature.
pub fn build(
    prefix: &str,
    params: &[PolicyParameter],
    key: Option<&PolicyKey>,
) -> (PolicySet, u64) {
    let mut rejected = 0;
    let profiles = params.iter().filter_map(|p| {
        let name = p.name.strip_prefix(prefix).unwrap_or(&p.name);
        let document = match key {
            None => p.value.as_str(),
            // Signed for this parameter: this profile of this deployment.
            Some(k) => match k.verify(&p.name, &p.value) {
                Ok(d) => d,
                Err(e) => {
                    rejected += 1;
                    tracing::error!(parameter = %p.name, error = %e, "policy refused: its signature does not verify with TVM_POLICY_SIGNING_KEY; this profile will not vend until it is signed again");
                    return None;
                }
            },
        };
        match parse_profile(document, Some(name)) {
            Ok(profile) => Some(profile),
            Err(e) => {
                tracing::error!(parameter = %p.name, errors = %e, "invalid policy skipped; this profile will not vend until it is fixed");
                None
            }
        }
    });
    let set = PolicySet::new(profiles);
    (set, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsError, BoxFut};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// Counts loads; can be made to fail or to hang until released.
    struct FakeSource {
        loads: AtomicUsize,
        fail: AtomicBool,
        docs: Mutex<Vec<PolicyParameter>>,
        gate: tokio::sync::Semaphore,
    }

    impl PolicySource for FakeSource {
        fn load(&self) -> BoxFut<'_, Result<Vec<PolicyParameter>, AwsError>> {
            Box::pin(async move {
                let _permit = self.gate.acquire().await;
                self.loads.fetch_add(1, Ordering::SeqCst);
                if self.fail.load(Ordering::SeqCst) {
                    return Err(AwsError::unavailable(crate::aws::Dependency::Ssm, "down"));
                }
                Ok(self.docs.lock().unwrap().clone())
            })
        }
    }

    fn doc(profile: &str) -> PolicyParameter {
        PolicyParameter {
            name: format!("/tvm/policies/{profile}"),
            value: format!("profile: {profile}\nrole_arn: arn:aws:iam::123456789012:role/r\nrules: [{{name: a, effect: allow, accounts: ['123456789012']}}]\n"),
        }
    }

    fn source(docs: Vec<PolicyParameter>) -> Arc<FakeSource> {
        Arc::new(FakeSource {
            loads: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
            docs: Mutex::new(docs),
            gate: tokio::sync::Semaphore::new(1000),
        })
    }

    #[test]
    fn an_invalid_document_is_skipped_and_the_rest_served() {
        let mut bad = doc("bad");
        bad.value.push_str("unknown_key: 1\n");
        let mismatched = PolicyParameter {
            name: "/tvm/policies/other".into(),
            value: doc("good").value,
        };
        let (set, rejected) = build("/tvm/policies/", &[doc("good"), bad, mismatched], None);
        assert_eq!(rejected, 0);
        assert_eq!(
            set.profiles().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["good"]
        );
    }

    #[tokio::test]
    async fn within_the_ttl_requests_are_served_from_memory() {
        let src = source(vec![doc("a")]);
        let cache = PolicyCache::new(
            src.clone(),
            "/tvm/policies/".into(),
            Duration::from_secs(60),
            Duration::from_secs(600),
            None,
        );
        for _ in 0..100 {
            assert_eq!(cache.get().await.unwrap().len(), 1);
        }
        assert_eq!(src.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_set_is_served_while_one_refresh_runs_in_the_background() {
        let src = source(vec![doc("a")]);
        let cache = PolicyCache::new(
            src.clone(),
            "/tvm/policies/".into(),
            Duration::from_millis(20),
            Duration::from_secs(600),
            None,
        );
        cache.get().await.unwrap();
        *src.docs.lock().unwrap() = vec![doc("a"), doc("b")];
        // Hold the source so the refresh cannot finish: requests must not wait for it.
        let hold = src.gate.acquire_many(1000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        for _ in 0..50 {
            let set = tokio::time::timeout(Duration::from_secs(1), cache.get())
                .await
                .expect("a request waited on the refresh")
                .unwrap();
            assert_eq!(set.len(), 1);
        }
        drop(hold);
        // The single background refresh lands; bounded wait for it.
        for _ in 0..200 {
            if cache.get().await.unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(cache.get().await.unwrap().len(), 2);
        assert_eq!(
            src.loads.load(Ordering::SeqCst),
            2,
            "one initial load and one refresh"
        );
    }

    #[tokio::test]
    async fn with_no_set_loaded_a_failing_source_fails_closed() {
        let src = source(vec![doc("a")]);
        src.fail.store(true, Ordering::SeqCst);
        let cache = PolicyCache::new(
            src,
            "/tvm/policies/".into(),
            Duration::from_secs(30),
            Duration::from_secs(300),
            None,
        );
        assert!(matches!(
            cache.get().await,
            Err(ApiError::Dependency { .. })
        ));
    }

    #[tokio::test]
    async fn a_set_older_than_max_stale_is_not_served_when_refreshes_fail() {
        let src = source(vec![doc("a")]);
        let cache = PolicyCache::new(
            src.clone(),
            "/tvm/policies/".into(),
            Duration::from_millis(5),
            Duration::from_millis(40),
            None,
        );
        cache.get().await.unwrap();
        src.fail.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(cache.get().await.is_err());
    }
}
