//! `async fn`: the lock is taken with `.await` (no thread blocked), held
//! across the body's awaits, excludes tasks on other worker threads and
//! blocking callers alike, and the future stays `Send`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{rendezvous_async, Section};
use lockutils::synchronized;

const HOLD: Duration = Duration::from_millis(20);

fn assert_send<T: Send>(_: &T) {}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `f()` as `tasks` spawned tasks, `rounds` times each.
fn spawn_all<F, Fut>(tasks: usize, rounds: usize, f: F)
where
    F: Fn() -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    multi_thread().block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        f().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
}

static UNLOCKED: Section = Section::new();

async fn unlocked() {
    UNLOCKED.visit_async(HOLD).await;
}

#[test]
fn the_counter_sees_overlap_without_a_lock() {
    spawn_all(2, 2, unlocked);
    assert_eq!(UNLOCKED.max(), 2, "the check would prove nothing");
}

static LOCKED: Section = Section::new();

#[synchronized("async-excl")]
async fn locked() {
    LOCKED.visit_async(HOLD).await;
}

#[test]
fn two_tasks_on_a_multi_thread_runtime_exclude_each_other() {
    let fut = locked();
    assert_send(&fut);
    drop(fut);
    spawn_all(2, 3, locked);
    assert_eq!(LOCKED.visits(), 6);
    assert_eq!(LOCKED.max(), 1, "two tasks were inside at once");
}

static MIXED: Section = Section::new();

#[synchronized("async-mixed")]
async fn mixed_async() {
    MIXED.visit_async(HOLD).await;
}

#[synchronized("async-mixed")]
fn mixed_blocking() {
    MIXED.visit(HOLD);
}

#[test]
fn async_and_blocking_callers_exclude_each_other() {
    let thread = std::thread::spawn(|| (0..3).for_each(|_| mixed_blocking()));
    spawn_all(2, 3, mixed_async);
    thread.join().unwrap();
    assert_eq!(MIXED.visits(), 9);
    assert_eq!(MIXED.max(), 1);
}

struct Instance {
    uuid: String,
    rebooting: Section,
    migrating: Section,
}

impl Instance {
    #[synchronized("async-instance-{id}")]
    async fn reboot(&self, id: u32) -> u32 {
        self.rebooting.visit_async(HOLD).await;
        id
    }

    #[synchronized(name = self.uuid.as_str(), external)]
    async fn migrate(self: Arc<Self>) -> usize {
        self.migrating.visit_async(HOLD).await;
        self.uuid.len()
    }
}

#[test]
fn async_methods_with_dynamic_names_are_send_and_exclude() {
    let dir = tempfile::tempdir().unwrap();
    lockutils::set_defaults(dir.path());
    let instance = Arc::new(Instance {
        uuid: "async-uuid-1".into(),
        rebooting: Section::new(),
        migrating: Section::new(),
    });
    assert_send(&instance.reboot(1));
    assert_send(&instance.clone().migrate());
    multi_thread().block_on(async {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let instance = instance.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        assert_eq!(instance.reboot(9).await, 9);
                    } else {
                        assert_eq!(instance.migrate().await, 12);
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert!(dir.path().join("async-uuid-1").exists());
    assert_eq!(
        (instance.rebooting.visits(), instance.migrating.visits()),
        (2, 2)
    );
    assert_eq!(instance.rebooting.max(), 1);
    assert_eq!(instance.migrating.max(), 1);
}

static TOGETHER: AtomicUsize = AtomicUsize::new(0);

#[synchronized("async-read", mode = read)]
async fn read_together() -> bool {
    TOGETHER.fetch_add(1, SeqCst);
    rendezvous_async(&TOGETHER, 2).await
}

#[test]
fn async_readers_share() {
    let rt = multi_thread();
    let ok = rt.block_on(async {
        let a = tokio::spawn(read_together());
        let b = tokio::spawn(read_together());
        a.await.unwrap() && b.await.unwrap()
    });
    assert!(ok);
}

/// The lock is awaited, not blocked on: on a single-threaded runtime another
/// task (the holder) keeps running and releases it.
#[test]
fn waiting_does_not_block_the_executor() {
    #[synchronized("async-single")]
    async fn hold_for(d: Duration) {
        tokio::time::sleep(d).await;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let first = tokio::spawn(hold_for(Duration::from_millis(30)));
        tokio::task::yield_now().await;
        let second = tokio::spawn(hold_for(Duration::from_millis(1)));
        first.await.unwrap();
        second.await.unwrap();
    });
}
