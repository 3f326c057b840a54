//! Running an operation on a blocking caller's own thread.
//!
//! [`block_on`] polls the operation (the same future the runtime would
//! run) on the calling thread, inside the crate runtime's context (its
//! timers and spawns work), and drives the sessions the operation uses
//! itself: each session checked out during the run is
//! [taken over](Link::take_over) and its socket read and written here.
//! Between polls the thread sleeps in `poll(2)` on those sockets and on a
//! wake-up pipe that the operation's waker writes to, only when the thread
//! does sleep; so a round trip costs the caller's own wake-up on the
//! socket and nothing else. At the end (a return, an early return or a
//! panic alike) every session is handed back to its driver task on the
//! runtime.
//!
//! Never run on an executor thread: async callers and the runtime itself
//! keep the runtime-driven path.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime;
use crate::session::Link;

thread_local! {
    /// The sessions driven by this thread's [`block_on`], while one runs.
    static DRIVEN: RefCell<Option<Vec<Arc<Link>>>> = const { RefCell::new(None) };
    static NOTIFIER: Arc<Notifier> = Arc::new(Notifier::new());
    /// [`block_on`]'s buffers, kept between calls.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

#[derive(Default)]
struct Scratch {
    driven: Vec<Arc<Link>>,
    links: Vec<Arc<Link>>,
    fds: Vec<libc::pollfd>,
    polled: Vec<usize>,
}

const RUNNING: u8 = 0;
const SLEEPING: u8 = 1;
const NOTIFIED: u8 = 2;

/// The waker of a [`block_on`] thread: a flag, and a pipe written only
/// when the thread sleeps in `poll(2)`.
struct Notifier {
    state: AtomicU8,
    /// Read end (polled, drained) and write end.
    rx: UnixStream,
    tx: UnixStream,
}

impl Notifier {
    fn new() -> Notifier {
        let (rx, tx) = UnixStream::pair().expect("cannot create a wake-up socket pair");
        rx.set_nonblocking(true)
            .expect("non-blocking wake-up socket");
        tx.set_nonblocking(true)
            .expect("non-blocking wake-up socket");
        Notifier {
            state: AtomicU8::new(RUNNING),
            rx,
            tx,
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == SLEEPING {
            // A full pipe already wakes the thread.
            let _ = (&self.tx).write(&[1]);
        }
    }
}

/// Whether a [`block_on`] runs on this thread.
fn active() -> bool {
    DRIVEN.with(|d| d.borrow().is_some())
}

/// Lets this thread's [`block_on`] drive `link`, if one runs here and the
/// session can be (see [`Link::take_over`]); whether it does. If not, the
/// runtime drives it from now on ([`Link::unpark`]: a session parked in the
/// pool or deferred after an acquisition).
pub(crate) fn attach(link: &Arc<Link>) -> bool {
    let attached = DRIVEN.with(|d| {
        let mut driven = d.borrow_mut();
        let Some(links) = driven.as_mut() else {
            return false;
        };
        if links.iter().any(|l| Arc::ptr_eq(l, link)) {
            return true;
        }
        if !link.take_over() {
            return false;
        }
        links.push(link.clone());
        drop(driven);
        // Reads what came while nobody drove it: an end makes the session
        // unusable before anyone uses it.
        let _ = link.poll_by_caller(&mut Context::from_waker(Waker::noop()));
        true
    });
    if !attached {
        link.unpark();
    }
    attached
}

/// Parks `link` now (see [`Link::hand_back`]), if this thread's
/// [`block_on`] drives it: a session going back to the pool, where anyone
/// may take it.
pub(crate) fn detach(link: &Arc<Link>) {
    let found = DRIVEN.with(|d| {
        let mut driven = d.borrow_mut();
        let links = driven.as_mut()?;
        let at = links.iter().position(|l| Arc::ptr_eq(l, link))?;
        Some(links.swap_remove(at))
    });
    if let Some(link) = found {
        link.hand_back(true);
    }
}

/// Hands every driven session back when [`block_on`] ends, however it ends.
struct Driving;

impl Drop for Driving {
    fn drop(&mut self) {
        let Some(mut links) = DRIVEN.with(|d| d.borrow_mut().take()) else {
            return;
        };
        // A session still driven here holds a lock (the others went back to
        // the pool): handed back a little later (see `session::deferred`).
        for link in links.drain(..) {
            link.hand_back_held();
        }
        // The buffer for the next call.
        SCRATCH.with(|s| s.borrow_mut().driven = links);
    }
}

/// Whether [`block_on`] may run here: not on the crate's runtime thread,
/// and not nested in another `block_on`.
pub(crate) fn usable() -> bool {
    !runtime::on_runtime_thread() && !active()
}

/// Runs `fut` to completion on this thread, driving the sessions it checks
/// out (see the module docs). Check [`usable`] first.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let notifier = NOTIFIER.with(Arc::clone);
    let waker = Waker::from(notifier.clone());
    let mut cx = Context::from_waker(&waker);
    let _runtime = runtime::handle().enter();
    let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    DRIVEN.with(|d| *d.borrow_mut() = Some(std::mem::take(&mut scratch.driven)));
    let _driving = Driving;
    let mut fut = std::pin::pin!(fut);
    let Scratch {
        mut links,
        mut fds,
        mut polled,
        ..
    } = scratch;
    loop {
        notifier.state.store(RUNNING, Ordering::Release);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            links.clear();
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                s.links = links;
                s.fds = fds;
                s.polled = polled;
            });
            return v;
        }
        links.clear();
        DRIVEN.with(|d| links.extend(d.borrow().iter().flatten().cloned()));
        // Sends what the operation queued and reads what came.
        for link in &links {
            let _ = link.poll_by_caller(&mut cx);
        }
        if notifier.state.load(Ordering::Acquire) == NOTIFIED {
            continue;
        }
        fds.clear();
        fds.push(libc::pollfd {
            fd: notifier.rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        polled.clear();
        for (i, link) in links.iter().enumerate() {
            if let Some(fd) = link.fd() {
                let write = if link.want_write() { libc::POLLOUT } else { 0 };
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN | write,
                    revents: 0,
                });
                polled.push(i);
            }
        }
        if notifier
            .state
            .compare_exchange(RUNNING, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        // SAFETY: `fds` is a live, initialised array of `fds.len()`
        // `pollfd`s that `poll` only writes `revents` of. The descriptors
        // are this thread's wake-up socket (owned by `notifier`, alive
        // here) and sockets of connections that were alive just above; one
        // closed meanwhile (its connection ended on another caller's
        // thread) is at worst a spurious wake-up, after which it is no
        // longer listed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        notifier.state.store(RUNNING, Ordering::Release);
        if n > 0 && fds[0].revents != 0 {
            notifier.drain();
        }
        for (&i, fd) in polled.iter().zip(&fds[1..]) {
            // Readable, or closed or failed (which a read reports).
            if fd.revents & !libc::POLLOUT != 0 {
                links[i].set_readable();
            }
        }
        for link in &links {
            let _ = link.poll_by_caller(&mut cx);
        }
    }
}
