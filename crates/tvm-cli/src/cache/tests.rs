//! The cache against a fake tvm: sharing, refreshing ahead, outages, and
//! the start-up race of `tvm serve`.

use super::*;

struct Fake {
    lifetime: i64,
    down: AtomicBool,
    calls: AtomicU64,
    /// Fetches begun (`calls` counts the finished ones).
    started: AtomicU64,
    delay: Duration,
}

impl Fetch for Fake {
    fn fetch(&self) -> BoxFut<'_, Result<CredentialsResponse, ClientError>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
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
                expiration: (Utc::now() + chrono::Duration::seconds(self.lifetime)).to_rfc3339(),
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
        started: AtomicU64::new(0),
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

#[tokio::test(start_paused = true)]
async fn while_tvm_is_down_concurrent_callers_share_one_failed_fetch() {
    let (c, fake) = cache(900, 300, 60, 100);
    fake.down.store(true, Ordering::SeqCst);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.get().await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("could not reach tvm"), "{err}");
    }
    assert_eq!(fake.started.load(Ordering::SeqCst), 1, "the backoff holds");
}

/// GIVEN a `tvm serve` starting up: its refresher starts with nothing
/// held, and requests arrive before, during or after the refresher's
/// first fetch, each fetch taking some time.
/// THEN tvm is called exactly once, whatever the order.
/// (Paused time: every interleaving below is the same on every run.)
#[tokio::test(start_paused = true)]
async fn one_vend_at_start_up_whatever_the_timing() {
    let ms = Duration::from_millis;
    let mut wrong = Vec::new();
    for fetch in [0, 50, 150, 199, 200, 201, 250, 400, 1000] {
        for requests_at in [0, 1, 100, 199, 200, 201, 300, 500, 1500] {
            for refresher_at in [0, 100, 300] {
                let (c, fake) = cache(900, 300, 60, fetch);
                let refresher = {
                    let c = Arc::clone(&c);
                    tokio::spawn(async move {
                        tokio::time::sleep(ms(refresher_at)).await;
                        c.refresh_ahead(|_| {}).await
                    })
                };
                let requests: Vec<_> = (0..10)
                    .map(|_| {
                        let c = Arc::clone(&c);
                        tokio::spawn(async move {
                            tokio::time::sleep(ms(requests_at)).await;
                            c.get().await.map(|h| h.credentials.access_key_id)
                        })
                    })
                    .collect();
                for r in requests {
                    assert_eq!(r.await.unwrap().unwrap(), "ASIA0");
                }
                // Long past the refresher's first turn and any fetch it started.
                tokio::time::sleep(ms(refresher_at + 200 + fetch + 1000)).await;
                refresher.abort();
                let vends = fake.started.load(Ordering::SeqCst);
                if vends != 1 {
                    wrong.push(format!("{vends} vends when the fetch takes {fetch} ms, requests come at {requests_at} ms, the refresher starts at {refresher_at} ms"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 243 orders:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
