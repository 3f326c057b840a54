//! A session's connection (the `tokio_postgres` future that reads and
//! writes its socket) in a slot that either the crate's runtime or a
//! blocking caller polls.
//!
//! A driver task on the runtime polls it while no blocking caller does:
//! that is what notices a held lock's session end while the caller does
//! other work, and what serves async callers. A blocking caller running an
//! operation on the session [takes it over](Link::take_over): it polls the
//! connection on its own thread (the socket in caller-driven [`Mode`], out
//! of the reactor) while the driver task only keeps its waker, and
//! [hands it back](Link::hand_back) when done: polling it once on the
//! driver task's behalf (which puts the socket back in the reactor), or,
//! for an idle session going into the pool, parking it until its next use.
//! Whoever sees the connection end tells the session's watchers.
//!
//! While the session holds a lock, its [`Watch`] lives here too: the
//! driver task checks the session every check interval (a timer that runs
//! for the session's life, so taking and releasing a lock arms nothing on
//! the runtime) and whoever sees the connection end reports the loss.

use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_postgres::error::Severity;
use tokio_postgres::Client;

use super::stream::Mode;
use super::{describe, reason_of, Ended};
use crate::coordinator::PgCoordinator;
use crate::hold::LossReason;

type Connection = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;
type Check = Pin<Box<dyn Future<Output = Result<(), (LossReason, String)>> + Send>>;

/// What a held lock asks of its session's driver: periodic checks, and its
/// loss reported (logged at `ERROR`, target `lockutils`, and sent to the
/// hold's status).
pub(crate) struct Watch {
    pub(crate) status: watch::Sender<Option<LossReason>>,
    pub(crate) client: Weak<Client>,
    /// The lock's [`tag`](crate::key::tag) and when it was taken, for the
    /// check's statement.
    pub(crate) tag: Arc<str>,
    pub(crate) since: u128,
    pub(crate) name: Arc<str>,
    /// For the URL shown in the log.
    pub(crate) backend: PgCoordinator,
    pub(crate) pid: i32,
}

impl Watch {
    fn lose(&self, reason: LossReason, detail: &str) {
        tracing::error!(
            target: "lockutils",
            lock = %self.name,
            backend = %self.backend.shown(),
            backend_pid = self.pid,
            "PostgreSQL lock lost: {reason} ({detail}); another holder may have it now"
        );
        let _ = self.status.send(Some(reason));
    }
}

pub(crate) struct Link {
    state: Mutex<State>,
    mode: Arc<Mode>,
    fd: RawFd,
    ended: watch::Sender<Ended>,
}

struct State {
    /// `None` once the connection has ended.
    connection: Option<Connection>,
    /// The driver task's waker.
    driver: Option<Waker>,
    /// Handed back idle (into the pool) without registering the socket
    /// with the reactor: nobody drives the connection until
    /// [`Link::take_over`] or [`Link::unpark`].
    parked: bool,
    /// Ticks every check interval for the session's life.
    interval: Pin<Box<Interval>>,
    check_interval: Duration,
    /// Set while the session holds a lock.
    watch: Option<Watch>,
    /// Left caller-driven after a blocking caller's acquisition, until this
    /// deferral ends (see [`deferred`](super::deferred)); it keeps that
    /// caller's place in the mode's count.
    deferred: Option<u64>,
    /// The number of the last deferral, so that the ticker never ends a
    /// later deferral of this session early.
    deferrals: u64,
    /// A check running.
    check: Option<Check>,
}

impl Link {
    /// Wraps a new connection and starts its driver task on the current
    /// runtime (the crate's).
    pub(crate) fn start(
        connection: Connection,
        mode: Arc<Mode>,
        fd: RawFd,
        check_interval: Duration,
    ) -> (Arc<Link>, watch::Receiver<Ended>) {
        let (ended, watch) = watch::channel(None);
        let mut interval =
            tokio::time::interval_at(Instant::now() + check_interval, check_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let link = Arc::new(Link {
            state: Mutex::new(State {
                connection: Some(connection),
                driver: None,
                parked: false,
                interval: Box::pin(interval),
                check_interval,
                watch: None,
                deferred: None,
                deferrals: 0,
                check: None,
            }),
            mode,
            fd,
            ended,
        });
        let driver = link.clone();
        tokio::spawn(std::future::poll_fn(move |cx| driver.poll_by_driver(cx)));
        (link, watch)
    }

    fn poll_by_driver(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock();
        // Kept whatever the mode, so that a hand-back always finds it: a
        // caller's polls leave the connection's wakers pointing at the
        // caller, and only a poll by the driver points them back.
        if !state
            .driver
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.driver = Some(cx.waker().clone());
        }
        self.poll_driven(&mut state, cx)
    }

    /// The driver task's work: the checks of a held lock, and the
    /// connection unless callers drive it or it is parked.
    fn poll_driven(&self, state: &mut State, cx: &mut Context<'_>) -> Poll<()> {
        if state.connection.is_none() {
            return Poll::Ready(());
        }
        let tick = state.interval.as_mut().poll_tick(cx).is_ready();
        if self.mode.caller_driven() || state.parked {
            return Poll::Pending;
        }
        if tick && state.check.is_none() {
            state.check = state
                .watch
                .as_ref()
                .and_then(|w| check(w, state.check_interval));
        }
        if let Some(check) = state.check.as_mut() {
            if let Poll::Ready(result) = check.as_mut().poll(cx) {
                state.check = None;
                if let Err((reason, detail)) = result {
                    if let Some(w) = state.watch.take() {
                        w.lose(reason, &detail);
                    }
                    // Closing the connection ends the session, and the
                    // lock with it, on the server too.
                    state.connection = None;
                    let _ = self.ended.send(Some((reason, Arc::from(detail))));
                    return Poll::Ready(());
                }
            }
        }
        self.poll_connection(state, cx)
    }

    /// Starts watching a held lock's session.
    pub(crate) fn watch(&self, watch: Watch) {
        self.state.lock().watch = Some(watch);
    }

    /// Stops watching (the lock is being released): no loss is reported
    /// from now on, and a running check is dropped.
    pub(crate) fn unwatch(&self) {
        let mut state = self.state.lock();
        state.watch = None;
        state.check = None;
    }

    /// Polls the connection on the blocking caller's thread; `Ready` once
    /// it has ended.
    pub(crate) fn poll_by_caller(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock();
        self.poll_connection(&mut state, cx)
    }

    fn poll_connection(&self, state: &mut State, cx: &mut Context<'_>) -> Poll<()> {
        let Some(connection) = state.connection.as_mut() else {
            return Poll::Ready(());
        };
        let Poll::Ready(result) = connection.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        // Dropping the connection closes the socket.
        state.connection = None;
        let why: (LossReason, Arc<str>) = match result {
            Ok(()) => (
                LossReason::ConnectionLost,
                Arc::from("the server closed the connection"),
            ),
            Err(e) => (reason_of(&e), Arc::from(describe(&e))),
        };
        if let Some(w) = state.watch.take() {
            w.lose(why.0, &why.1);
        }
        state.check = None;
        let _ = self.ended.send(Some(why));
        Poll::Ready(())
    }

    /// A blocking caller drives the connection from now on, until
    /// [`hand_back`](Self::hand_back). `false` (and nothing changes) for a
    /// TLS session or an ended one, which the runtime keeps driving.
    pub(crate) fn take_over(&self) -> bool {
        let mut state = self.state.lock();
        if state.deferred.take().is_some() {
            // The deferred caller's place passes to this one.
            return true;
        }
        if self.mode.is_tls() || state.connection.is_none() {
            return false;
        }
        self.mode.add_caller();
        state.parked = false;
        true
    }

    /// Lets the driver task drive a [parked](Self::hand_back) connection
    /// again.
    pub(crate) fn unpark(&self) {
        let mut state = self.state.lock();
        if state.deferred.take().is_some() {
            self.caller_leaves(&mut state);
            return;
        }
        if state.parked && !self.mode.caller_driven() {
            state.parked = false;
            if let Some(driver) = &state.driver {
                driver.wake_by_ref();
            }
        }
    }

    /// Ends a [`take_over`](Self::take_over). The last caller to hand back
    /// polls the connection once more in the runtime-driven mode on the
    /// driver task's behalf (with its waker), which registers the socket
    /// with the reactor and the client's requests for the driver task
    /// (the first registration wakes the runtime thread once).
    ///
    /// With `park`, for an idle session going into the pool, it does not:
    /// the connection stays undriven, its socket out of the reactor, until
    /// the next caller takes it over (and reads whatever came meanwhile, an
    /// end included, before using it) or [`unpark`](Self::unpark) hands it
    /// to the driver task (a checkout on the runtime, or the session
    /// dropped).
    pub(crate) fn hand_back(&self, park: bool) {
        let mut state = self.state.lock();
        if !self.mode.remove_caller() {
            return;
        }
        if park && state.connection.is_some() {
            state.parked = true;
            return;
        }
        self.driver_takes_over(&mut state);
    }

    /// A blocking caller's acquisition ends with the lock held: like
    /// [`hand_back`](Self::hand_back), but [deferred](super::deferred) so
    /// that a short hold costs the reactor nothing. Sessions holding no lock
    /// are handed back at once.
    pub(crate) fn hand_back_held(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if state.watch.is_none() || state.connection.is_none() || state.deferred.is_some() {
            self.caller_leaves(&mut state);
            return;
        }
        state.deferrals += 1;
        let deferral = state.deferrals;
        state.deferred = Some(deferral);
        drop(state);
        super::deferred::list(self.clone(), deferral);
    }

    /// Ends a deferral (the ticker's), unless a caller took the session over
    /// or a later deferral replaced it.
    pub(crate) fn end_deferral(&self, deferral: u64) {
        let mut state = self.state.lock();
        if state.deferred == Some(deferral) {
            state.deferred = None;
            self.caller_leaves(&mut state);
        }
    }

    /// A caller stops driving the connection; the last one to leave polls
    /// it once on the driver task's behalf (see [`hand_back`](Self::hand_back)).
    fn caller_leaves(&self, state: &mut State) {
        if self.mode.remove_caller() {
            self.driver_takes_over(state);
        }
    }

    /// Polls the connection once in the runtime-driven mode on the driver
    /// task's behalf, which registers the socket and the client's requests
    /// for the driver task.
    fn driver_takes_over(&self, state: &mut State) {
        // Not polled yet, the driver task registers all on its first poll.
        if let Some(driver) = state.driver.clone() {
            if self
                .poll_driven(state, &mut Context::from_waker(&driver))
                .is_ready()
            {
                // Ended: the driver task sees it and ends too.
                driver.wake();
            }
        }
    }

    /// Whether the socket holds something unread, or its end. The server
    /// sends an idle session nothing unasked but, mostly, its end (a
    /// restart, `pg_terminate_backend`, `idle_session_timeout`), which
    /// nobody has read yet if the session was [parked](Self::hand_back).
    /// Peeked under the state lock, which keeps the descriptor open.
    pub(crate) fn has_unread(&self) -> bool {
        let state = self.state.lock();
        if state.connection.is_none() {
            return true;
        }
        let mut byte = 0u8;
        // SAFETY: `self.fd` is the connection's socket, open while the
        // connection is (held above); `recv` writes at most one byte into
        // `byte`, and MSG_DONTWAIT keeps it from blocking.
        let n = unsafe {
            libc::recv(
                self.fd,
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock
    }

    /// The socket to wait on, while the connection lasts.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.state.lock().connection.as_ref().map(|_| self.fd)
    }

    /// The caller's `poll(2)` found the socket readable (or closed).
    pub(crate) fn set_readable(&self) {
        self.mode.set_readable();
    }

    /// A write is waiting for room in the socket buffer.
    pub(crate) fn want_write(&self) -> bool {
        self.mode.want_write()
    }
}

/// A check of a held lock's session: its statement answered within the
/// check interval. `None` once the client is gone.
fn check(watch: &Watch, limit: Duration) -> Option<Check> {
    let client = watch.client.upgrade()?;
    let sql = crate::hold::check_statement(&watch.tag, watch.since);
    Some(Box::pin(async move {
        match tokio::time::timeout(limit, client.simple_query(&sql)).await {
            Ok(Ok(_)) => Ok(()),
            // The server answered with an error that ends the statement
            // only (a `pg_cancel_backend` landing on the check): the
            // session, and its lock, live on.
            Ok(Err(e))
                if e.as_db_error()
                    .is_some_and(|db| db.parsed_severity() == Some(Severity::Error)) =>
            {
                Ok(())
            }
            Ok(Err(e)) => Err((reason_of(&e), describe(&e))),
            Err(_) => Err((
                LossReason::CheckTimedOut,
                format!("no answer within {limit:?}"),
            )),
        }
    }))
}
