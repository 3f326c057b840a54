//! Blocking callers drive their plaintext sessions from their own threads.
//! Alone in its binary: it counts the wake-ups of the crate's runtime
//! thread, which every other test's sessions would add to. Run against a
//! real server as `postgres.rs` says (scripts/ci-postgres.sh does it).

use std::time::{Duration, Instant};

use lockutils_core::{LockGuard, LockOptions, Registry};
use lockutils_postgres::PgBackend;

#[path = "support/runtime_thread.rs"]
mod runtime_thread;
use runtime_thread::runtime_thread_wakeups;
#[path = "support/server.rs"]
mod server;
use server::{unique, url};

/// The period of the runtime's ticker that hands deferred holds back
/// (`session::deferred::TICK`): it runs while blocking holds come and go,
/// and wakes the runtime thread once a tick whoever drives the sessions.
const TICK: Duration = Duration::from_millis(5);

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn blocking_round_trips_run_on_the_calling_thread() {
    // Plaintext: TLS sessions stay with the runtime.
    let u = url();
    let plain = if u.contains("sslmode=disable") {
        u
    } else {
        let sep = if u.contains('?') { '&' } else { '?' };
        format!("{u}{sep}sslmode=disable")
    };
    let backend = PgBackend::new(&plain).unwrap();
    let registry = Registry::new();
    let name = unique("caller-driven");
    let options = LockOptions::new(&name)
        .registry(&registry)
        .backend(&backend);
    for _ in 0..20 {
        LockGuard::unlock(options.lock().unwrap()).unwrap();
    }
    // Each cycle is two round trips. Served by the runtime thread, each
    // would wake it at least once (it reads the answer and wakes the
    // caller): 600 wake-ups or more. Read by the caller, they leave it
    // asleep but for the ticker's.
    let cycles = 300u32;
    let before = runtime_thread_wakeups();
    let start = Instant::now();
    for _ in 0..cycles {
        LockGuard::unlock(options.lock().unwrap()).unwrap();
    }
    let ticks = (start.elapsed().as_micros() / TICK.as_micros()) as u64 + 1;
    let woke = runtime_thread_wakeups() - before;
    let beyond_ticks = woke.saturating_sub(ticks);
    assert!(
        beyond_ticks < u64::from(cycles) / 2,
        "the runtime thread woke {woke} times in {cycles} lock/unlock cycles, \
         {beyond_ticks} beyond its ticker's {ticks}"
    );
}
