//! Credentials held between vends: fetched from tvm ahead of expiry, one
//! fetch at a time however many callers ask, never handed out past their
//! (margin-adjusted) expiry, and kept while tvm is briefly unreachable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

impl State {
    /// What may be handed out at `now`.
    fn usable(&self, now: DateTime<Utc>) -> Option<&Held> {
        self.held.as_ref().filter(|h| now < h.usable_until)
    }

    /// tvm failed lately: do not call it again before `retry_after`.
    fn backing_off(&self, now: DateTime<Utc>) -> bool {
        self.retry_after.is_some_and(|t| now < t)
    }
}

/// What a caller waiting for the fetch slot needs; checked again once it
/// holds the slot, so a fetch that finished meanwhile (or just before) counts.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Credentials to hand out now: a request with nothing usable held.
    Usable,
    /// A refresh asked for when `seen` fetches had succeeded: done by any
    /// fetch since, and not needed while what is held is outside the window.
    Fresh { seen: u64 },
}

pub struct CredentialCache {
    fetcher: Box<dyn Fetch>,
    policy: RefreshPolicy,
    state: Mutex<State>,
    /// The fetch slot. Every fetch (a request's, a background refresh's,
    /// the refresher's) holds it, so there is one at a time; whoever gets it
    /// next re-checks what is held before fetching again.
    inflight: tokio::sync::Mutex<()>,
    /// A background refresh task has been spawned and has not finished.
    refreshing: AtomicBool,
    fetches: AtomicU64,
}

/// The refresher never wakes more often than this.
const MIN_PAUSE: Duration = Duration::from_millis(200);

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
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many times tvm was called.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, CacheError> {
        self.state
            .lock()
            .map_err(|_| CacheError::Fetch("poisoned".into()))
    }

    /// In the refresh window: less than `window` left before STS's expiry.
    fn in_window(&self, h: &Held, now: DateTime<Utc>) -> bool {
        now >= h.usable_until + secs(self.policy.margin) - secs(self.policy.window)
    }

    /// Usable credentials: from memory while fresh; in the refresh window a
    /// background refresh starts and the held ones are returned; past their
    /// usable time, the caller waits for (one shared) fetch.
    pub async fn get(self: &Arc<Self>) -> Result<Held, CacheError> {
        let now = Utc::now();
        let held = self.state()?.usable(now).cloned();
        if let Some(h) = held {
            if self.in_window(&h, now) {
                self.refresh_in_background();
            }
            return Ok(h);
        }
        self.fetch_unless(Need::Usable).await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let backing_off = self.state.lock().is_ok_and(|s| s.backing_off(Utc::now()));
        if backing_off
            || self.inflight.try_lock().is_err()
            || self.refreshing.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _ = me.refresh().await;
            me.refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// Refresh if still needed once this caller's turn comes: not when a
    /// fetch succeeded since the call, nor while what is held is outside the
    /// refresh window, nor (while tvm is failing) before the backoff is over.
    pub async fn refresh(&self) -> Result<Held, CacheError> {
        let seen = self.state()?.generation;
        self.fetch_unless(Need::Fresh { seen }).await
    }

    /// The background refresher: wake when the next refresh is due, refresh,
    /// report failures to `on_error`; runs until its task is dropped.
    pub async fn refresh_ahead(&self, mut on_error: impl FnMut(&CacheError)) {
        loop {
            let wait = self.next_refresh_in().max(MIN_PAUSE);
            tokio::time::sleep(wait).await;
            if let Err(e) = self.refresh().await {
                on_error(&e);
            }
        }
    }

    /// The single flight: take the fetch slot, then fetch only if `need` is
    /// still unmet.
    async fn fetch_unless(&self, need: Need) -> Result<Held, CacheError> {
        let _slot = self.inflight.lock().await;
        {
            let s = self.state()?;
            let now = Utc::now();
            if let Some(h) = s.usable(now) {
                let met = match need {
                    Need::Usable => true,
                    Need::Fresh { seen } => s.generation != seen || !self.in_window(h, now),
                };
                if met {
                    return Ok(h.clone());
                }
            }
            // Nothing usable (or only a refresh wanted) and tvm just failed:
            // answer with that failure rather than call it again before the
            // backoff is over.
            if s.backing_off(now) {
                if let Some(h) = s.usable(now) {
                    return Ok(h.clone());
                }
                if let Some(err) = &s.last_error {
                    return Err(CacheError::Fetch(err.clone()));
                }
            }
        }
        self.fetch().await
    }

    /// Call tvm (the caller holds the fetch slot) and keep what it answers.
    async fn fetch(&self) -> Result<Held, CacheError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let result = self.fetcher.fetch().await;
        let mut s = self.state()?;
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
                match s.usable(Utc::now()) {
                    // Keep serving what is still usable while tvm is unreachable.
                    Some(h) => Ok(h.clone()),
                    None => Err(e),
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
mod tests;
