//! For test binaries that share one stack: a runtime that lives as long as
//! the binary, so servers and children started once outlive each test.

use std::future::Future;
use std::sync::OnceLock;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime")
    })
}

/// Run `f` on a runtime worker (not the calling thread) and wait for it.
/// Children spawned there die with the binary, not with the test thread.
pub fn block_on_spawned<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().block_on(async { runtime().spawn(f).await.expect("task panicked") })
}
