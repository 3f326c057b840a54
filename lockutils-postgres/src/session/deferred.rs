//! Held sessions handed back to the runtime a little later.
//!
//! When a blocking caller's acquisition ends, the session holding the lock
//! goes back to its driver task on the runtime, so that a loss is noticed
//! while the caller does other work. Handing it back registers its socket
//! with the reactor, and the release takes it out again: two `epoll_ctl`
//! calls and a read that finds nothing, per hold, most of a cycle's
//! overhead for a lock held a few microseconds. So the hand-back waits:
//! the session stays out of the reactor, and a ticker on the runtime hands
//! back every hold still deferred after one to two [`TICK`]s. A release
//! before that takes the session over as it is; anyone else who needs the
//! session driven (an async release, the session dropped) ends the
//! deferral at once ([`Link::take_over`], [`Link::unpark`]).
//!
//! What it costs: a session that ends during that window is noticed when
//! the window ends, not at once (at most two ticks later). The ticker runs
//! only while holds are deferred, and stops after [`IDLE_TICKS`] ticks with
//! none.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Link;
use crate::runtime;

/// The ticker's period: a deferred hold is handed back after one to two.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Ticks without a deferred hold before the ticker stops.
const IDLE_TICKS: u32 = 200;

/// Deferred holds: each session with the number of its deferral (see
/// [`Link::hand_back_held`]).
type Deferrals = Vec<(Arc<Link>, u64)>;

struct Deferred {
    /// By the tick they were deferred in: `[fresh, aged]`.
    lists: [Deferrals; 2],
    /// Whether the ticker runs.
    ticking: bool,
}

static DEFERRED: Mutex<Deferred> = Mutex::new(Deferred {
    lists: [Vec::new(), Vec::new()],
    ticking: false,
});

/// Lists a deferral for the ticker, and starts it if it is not running.
pub(super) fn list(link: Arc<Link>, deferral: u64) {
    let mut deferred = DEFERRED.lock();
    deferred.lists[0].push((link, deferral));
    if !std::mem::replace(&mut deferred.ticking, true) {
        drop(deferred);
        runtime::spawn(ticker()).detach();
    }
}

async fn ticker() {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = 0;
    let mut due = Vec::new();
    loop {
        interval.tick().await;
        {
            let mut deferred = DEFERRED.lock();
            let [fresh, aged] = &mut deferred.lists;
            std::mem::swap(&mut due, aged);
            std::mem::swap(aged, fresh);
            if due.is_empty() && aged.is_empty() {
                idle += 1;
                if idle >= IDLE_TICKS {
                    // A deferral listed after this starts another ticker.
                    deferred.ticking = false;
                    return;
                }
            } else {
                idle = 0;
            }
        }
        for (link, deferral) in due.drain(..) {
            link.end_deferral(deferral);
        }
    }
}
