//! Credentials held between vends: fetched from tvm ahead of expiry, one
//! fetch at a time however many callers ask, never handed out past their
//! (margin-adjusted) expiry, and kept while tvm is briefly unreachable.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tvm_core::api::{CredentialsRequest, CredentialsResponse};

use crate::client::{ClientError, TvmClient};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where fresh credentials come from (tvm; a fake in unit tests).
pub trait Fetch: Send + Sync {
    fn fetch(&self) -> BoxFut<'_, Result<CredentialsResponse, ClientError>>;
}

/// Fetches one profile from tvm.
pub struct TvmFetch {
    pub client: TvmClient,
    pub request: CredentialsRequest,
}

impl Fetch for TvmFetch {
    fn fetch(&self) -> BoxFut<'_, Result<CredentialsResponse, ClientError>> {
        Box::pin(self.client.credentials(&self.request))
    }
}

/// When to refresh and when to stop serving.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Start refreshing when less than this is left.
    pub window: Duration,
    /// Treat credentials as expired this long before STS says they are.
    pub margin: Duration,
    /// Retry delays after a failed refresh: doubling from `min_backoff` up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            margin: Duration::from_secs(60),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Credentials and the instant they stop being handed out.
#[derive(Clone)]
pub struct Held {
    pub credentials: CredentialsResponse,
    /// STS expiry minus the margin.
    pub usable_until: DateTime<Utc>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("usable_until", &self.usable_until)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Fetch(String),
    #[error("tvm answered with an unreadable Expiration")]
    BadExpiration,
    #[error("the credentials from tvm are already within the expiry margin")]
    TooShort,
}

struct State {
    held: Option<Held>,
    /// Bumped on every successful fetch.
    generation: u64,
    failures: u32,
    retry_after: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

pub struct CredentialCache {
    fetcher: Box<dyn Fetch>,
    policy: RefreshPolicy,
    state: Mutex<State>,
    /// Held during a fetch: one fetch at a time, the others wait for it.
    inflight: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

fn secs(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl CredentialCache {
    pub fn new(fetcher: Box<dyn Fetch>, policy: RefreshPolicy) -> Arc<Self> {
        Arc::new(Self {
            fetcher,
            policy,
            state: Mutex::new(State {
                held: None,
                generation: 0,
                failures: 0,
                retry_after: None,
                last_error: None,
            }),
            inflight: tokio::sync::Mutex::new(()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many times tvm was called.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn held(&self) -> Option<Held> {
        self.state.lock().ok().and_then(|s| s.held.clone())
    }

    /// Usable credentials: from memory while fresh; in the refresh window a
    /// background refresh starts and the held ones are returned; past their
    /// usable time, the caller waits for (one shared) fetch.
    pub async fn get(self: &Arc<Self>) -> Result<Held, CacheError> {
        let now = Utc::now();
        if let Some(h) = self.held() {
            if now < h.usable_until {
                if now >= h.usable_until + secs(self.policy.margin) - secs(self.policy.window) {
                    self.refresh_in_background();
                }
                return Ok(h);
            }
        }
        // Nothing usable and tvm just failed: answer with that failure rather
        // than call it again before the backoff is over.
        if let Ok(s) = self.state.lock() {
            if let (Some(until), Some(err)) = (s.retry_after, &s.last_error) {
                if now < until {
                    return Err(CacheError::Fetch(err.clone()));
                }
            }
        }
        self.refresh_now().await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let backing_off = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.retry_after)
            .is_some_and(|t| Utc::now() < t);
        if backing_off || self.inflight.try_lock().is_err() {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _ = me.refresh_now().await;
        });
    }

    /// Fetch now, unless another caller's fetch finished while this one
    /// waited for its turn (then share that result).
    pub async fn refresh_now(&self) -> Result<Held, CacheError> {
        let seen = self.state.lock().map(|s| s.generation).unwrap_or_default();
        let _one = self.inflight.lock().await;
        if let Ok(s) = self.state.lock() {
            if let Some(h) = s
                .held
                .as_ref()
                .filter(|h| s.generation != seen && Utc::now() < h.usable_until)
            {
                return Ok(h.clone());
            }
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let result = self.fetcher.fetch().await;
        let mut s = self
            .state
            .lock()
            .map_err(|_| CacheError::Fetch("poisoned".into()))?;
        match result
            .map_err(|e| CacheError::Fetch(e.to_string()))
            .and_then(|c| self.hold(c))
        {
            Ok(h) => {
                s.held = Some(h.clone());
                s.generation += 1;
                s.failures = 0;
                s.retry_after = None;
                s.last_error = None;
                Ok(h)
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                let backoff = self.backoff(s.failures);
                s.retry_after = Some(Utc::now() + secs(backoff));
                s.last_error = Some(e.to_string());
                match &s.held {
                    // Keep serving what is still usable while tvm is unreachable.
                    Some(h) if Utc::now() < h.usable_until => Ok(h.clone()),
                    _ => Err(e),
                }
            }
        }
    }

    fn hold(&self, credentials: CredentialsResponse) -> Result<Held, CacheError> {
        let expires: DateTime<Utc> = credentials
            .expiration
            .parse()
            .map_err(|_| CacheError::BadExpiration)?;
        let usable_until = expires - secs(self.policy.margin);
        if usable_until <= Utc::now() {
            return Err(CacheError::TooShort);
        }
        Ok(Held {
            credentials,
            usable_until,
        })
    }

    /// Exponential backoff with up to 25% jitter.
    fn backoff(&self, failures: u32) -> Duration {
        let base = self
            .policy
            .min_backoff
            .saturating_mul(1u32 << failures.min(16).saturating_sub(1));
        let capped = base.min(self.policy.max_backoff);
        capped + capped.mul_f64(jitter() * 0.25)
    }

    /// How long until the next refresh is due (for a background refresher).
    pub fn next_refresh_in(&self) -> Duration {
        let s = match self.state.lock() {
            Ok(s) => s,
            Err(_) => return self.policy.min_backoff,
        };
        let now = Utc::now();
        let due = match (&s.held, s.retry_after) {
            (_, Some(retry)) => retry,
            (Some(h), None) => {
                let due = h.usable_until + secs(self.policy.margin) - secs(self.policy.window);
                // Spread the refreshes of many sidecars, but stay well before the usable end.
                let spread = secs(self.policy.window / 10).min((h.usable_until - due) / 2);
                due + chrono::Duration::milliseconds(
                    (spread.num_milliseconds() as f64 * jitter()) as i64,
                )
            }
            (None, None) => now,
        };
        (due - now).to_std().unwrap_or(Duration::ZERO)
    }

    /// The last refresh error, if the last refresh failed.
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }
}

/// A number in [0, 1) from the OS's randomness (no PRNG dependency).
fn jitter() -> f64 {
    let id = uuid_bits();
    (id % 1_000_000) as f64 / 1_000_000.0
}

fn uuid_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Fake {
        lifetime: i64,
        down: AtomicBool,
        calls: AtomicU64,
        delay: Duration,
    }

    impl Fetch for Fake {
        fn fetch(&self) -> BoxFut<'_, Result<CredentialsResponse, ClientError>> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    return Err(ClientError::Unreachable {
                        endpoint: "tvm".into(),
                        reason: "down".into(),
                    });
                }
                Ok(CredentialsResponse {
                    version: 1,
                    access_key_id: format!("ASIA{n}"),
                    secret_access_key: "s".into(),
                    session_token: "t".into(),
                    expiration: (Utc::now() + chrono::Duration::seconds(self.lifetime))
                        .to_rfc3339(),
                    session_id: "x".into(),
                    profile: "p".into(),
                    role_arn: "r".into(),
                })
            })
        }
    }

    fn cache(
        lifetime: i64,
        window: u64,
        margin: u64,
        delay_ms: u64,
    ) -> (Arc<CredentialCache>, &'static Fake) {
        let fake: &'static Fake = Box::leak(Box::new(Fake {
            lifetime,
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            delay: Duration::from_millis(delay_ms),
        }));
        struct Ref(&'static Fake);
        impl Fetch for Ref {
            fn fetch(&self) -> BoxFut<'_, Result<CredentialsResponse, ClientError>> {
                self.0.fetch()
            }
        }
        let policy = RefreshPolicy {
            window: Duration::from_secs(window),
            margin: Duration::from_secs(margin),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        };
        (CredentialCache::new(Box::new(Ref(fake)), policy), fake)
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let (c, fake) = cache(900, 300, 60, 100);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let c = Arc::clone(&c);
                tokio::spawn(async move { c.get().await.unwrap().credentials.access_key_id })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "ASIA0");
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn in_the_window_the_held_credentials_are_served_while_one_refresh_runs() {
        // 900 s credentials, a window of 900 s: due for refresh at once.
        let (c, fake) = cache(900, 900, 60, 50);
        assert_eq!(c.get().await.unwrap().credentials.access_key_id, "ASIA0");
        for _ in 0..20 {
            assert_eq!(
                c.get().await.unwrap().credentials.access_key_id,
                "ASIA0",
                "no caller waits for the refresh"
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(c.get().await.unwrap().credentials.access_key_id, "ASIA1");
        assert!(fake.calls.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn while_tvm_is_down_unexpired_credentials_are_served_then_an_error() {
        // Usable for 1 s (900 s minus an 899 s margin).
        let (c, fake) = cache(900, 899, 899, 0);
        c.get().await.unwrap();
        fake.down.store(true, Ordering::SeqCst);
        assert_eq!(c.get().await.unwrap().credentials.access_key_id, "ASIA0");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let err = c.get().await.unwrap_err();
        assert!(err.to_string().contains("could not reach tvm"), "{err}");
        assert!(c.last_error().is_some());
    }

    #[tokio::test]
    async fn failures_back_off() {
        let (c, fake) = cache(900, 300, 60, 0);
        fake.down.store(true, Ordering::SeqCst);
        assert!(c.get().await.is_err());
        assert!(
            c.next_refresh_in() >= Duration::from_millis(40),
            "{:?}",
            c.next_refresh_in()
        );
    }
}
