//! One ZooKeeper session and its lease: the latest moment the server is
//! known to have had the session alive, kept fresh by a heartbeat while
//! locks are held on it.
//!
//! The server expires a session when it has heard nothing from it for the
//! session timeout. A request the server answers proves the session was
//! alive when the request was sent, so the session cannot expire before
//! that send time plus the session timeout. A holder whose lease is older
//! than [`Lease::horizon`] can no longer tell that its lock is still held
//! and reports it lost (`ConnectionLost`) — a process resumed after a long
//! pause knows it at its first look, before any message is exchanged.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// A session this process has with the ensemble. Cheap to clone; the session
/// closes when the last clone (and the last client handle in flight) goes.
#[derive(Clone)]
pub(crate) struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    client: zk::Client,
    lease: Arc<Lease>,
}

impl Session {
    /// Wraps a freshly established session (whose connect answer was just
    /// received: its lease starts now) and starts its heartbeat.
    pub(crate) fn start(client: zk::Client) -> Session {
        let lease = Arc::new(Lease::new(client.session_timeout()));
        let session = Session {
            inner: Arc::new(Inner { client, lease }),
        };
        tokio::spawn(heartbeat(Arc::downgrade(&session.inner)));
        session
    }

    pub(crate) fn client(&self) -> &zk::Client {
        &self.inner.client
    }

    pub(crate) fn lease(&self) -> &Arc<Lease> {
        &self.inner.lease
    }

    /// Counts a held lock on this session until the returned value drops:
    /// the heartbeat runs while any is held.
    pub(crate) fn hold(&self) -> HeldOn {
        let lease = &self.inner.lease;
        if lease.holds.fetch_add(1, Ordering::AcqRel) == 0 {
            lease.wake.notify_one();
        }
        HeldOn(self.clone())
    }
}

/// A held lock's share of its session: keeps the session, and its
/// heartbeat, going.
pub(crate) struct HeldOn(Session);

impl HeldOn {
    pub(crate) fn session(&self) -> &Session {
        &self.0
    }
}

impl Drop for HeldOn {
    fn drop(&mut self) {
        self.0.inner.lease.holds.fetch_sub(1, Ordering::AcqRel);
    }
}

/// When the server last proved the session alive.
pub(crate) struct Lease {
    base: Instant,
    /// Send time (nanoseconds after `base`) of the latest request the server
    /// answered.
    renewed: AtomicU64,
    timeout: Duration,
    holds: AtomicUsize,
    wake: tokio::sync::Notify,
}

/// Share of the session timeout after which a lease is too old to rely on.
/// The server waits the whole timeout (rounded up to its tick) after the
/// last message before it expires a session, and the lease lags the last
/// message by at most a heartbeat interval: so a loss is reported before the
/// server can give the lock away.
const HORIZON: (u32, u32) = (4, 5);

/// Heartbeats per session timeout. More often than the client's own pings
/// (3/20 of the timeout when idle), which they replace while locks are held.
const BEATS: u32 = 20;

impl Lease {
    fn new(timeout: Duration) -> Lease {
        let base = Instant::now();
        Lease {
            base,
            renewed: AtomicU64::new(0),
            timeout,
            holds: AtomicUsize::new(0),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Records that the server answered a request sent at `sent`.
    pub(crate) fn renew(&self, sent: Instant) {
        let ns = sent.saturating_duration_since(self.base).as_nanos() as u64;
        self.renewed.fetch_max(ns, Ordering::AcqRel);
    }

    /// The send time of the latest answered request.
    pub(crate) fn renewed(&self) -> Instant {
        self.base + Duration::from_nanos(self.renewed.load(Ordering::Acquire))
    }

    /// How long a lease stays trustworthy: 4/5 of the session timeout.
    pub(crate) fn horizon(&self) -> Duration {
        self.timeout * HORIZON.0 / HORIZON.1
    }

    /// When the lease, as renewed so far, stops being trustworthy.
    pub(crate) fn runs_out(&self) -> Instant {
        self.renewed() + self.horizon()
    }

    /// Whether the lease is too old to rely on the session being alive.
    pub(crate) fn ran_out(&self) -> bool {
        Instant::now() >= self.runs_out()
    }

    fn interval(&self) -> Duration {
        (self.timeout / BEATS).max(Duration::from_millis(10))
    }
}

/// Keeps a session's lease fresh while locks are held on it: a cheap read
/// every 1/20 of the session timeout, sent whether or not earlier ones were
/// answered (a request queued while the connection is down goes out when it
/// is back). Holds the session only weakly, so it never keeps it open.
async fn heartbeat(session: Weak<Inner>) {
    loop {
        let Some(inner) = session.upgrade() else {
            return;
        };
        if inner.client.state().is_terminated() {
            return;
        }
        if inner.lease.holds.load(Ordering::Acquire) == 0 {
            let lease = inner.lease.clone();
            let idle = lease.wake.notified();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            if lease.holds.load(Ordering::Acquire) == 0 {
                let mut states = inner.client.state_watcher();
                drop(inner);
                // Wake on a new hold, or when the session ends (to stop).
                tokio::select! {
                    () = idle => {}
                    _ = states.changed() => {}
                }
                continue;
            }
        }
        let sent = Instant::now();
        let answer = inner.client.check_stat("/");
        let interval = inner.lease.interval();
        let weak = Arc::downgrade(&inner);
        drop(inner);
        tokio::spawn(async move {
            if answer.await.is_ok() {
                if let Some(inner) = weak.upgrade() {
                    inner.lease.renew(sent);
                }
            }
        });
        tokio::time::sleep(interval).await;
    }
}
