//! Taking a lock: the in-process lock first, then (if external) the file lock,
//! all under one deadline. The blocking form runs here; the async form is the
//! [`Acquire`] future, one state machine over the same parts.

use crate::sync::Arc;
use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::backend::{self, Backend, Capability, HoldFuture, Request};
use crate::error::{Error, Result};
use crate::file::{AsyncWait, Outcome, Step, Target, Unlink, Wait};
use crate::guard::{AsyncLockGuard, Held, LockGuard};
use crate::options::{LockOptions, Selected};
use crate::raw::{self, Mode, Waiter};
use crate::registry::{Registry, Slot, SlotRef};
use crate::{held, lock_path, timer};

impl<'a, 'r> LockOptions<'a, 'r> {
    /// Takes the lock, blocking the thread while it waits (unless
    /// [`blocking(false)`](Self::blocking)), for at most the
    /// [`timeout`](Self::timeout).
    ///
    /// # Errors
    /// - [`Error::WouldBlock`] when not blocking and the lock is held;
    /// - [`Error::Timeout`] when the timeout ran out;
    /// - [`Error::WouldDeadlock`] when this thread already holds the lock, in
    ///   this registry, or (external locks) the lock file it would wait for
    ///   through any registry, or while removing that file;
    /// - [`Error::InvalidName`], [`Error::LockPath`], [`Error::LockFile`] for a
    ///   bad name, lock directory or lock file.
    ///
    /// # Blocking
    /// Waits park the thread. An external wait sleeps in the kernel and wakes
    /// as soon as the holder releases: without a timeout in this thread; with
    /// one on a waiter thread, while this one sleeps until the deadline (see
    /// [`file::waiter_threads`](crate::file::waiter_threads) for what is left
    /// behind when the deadline passes first), or in this thread too once the
    /// program gave lockutils a signal to interrupt it at the deadline
    /// ([`interrupt_timed_waits_with`](crate::interrupt_timed_waits_with),
    /// Linux). Do not call this from async code: use
    /// [`lock_async`](Self::lock_async).
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("doc-lock").lock().unwrap();
    /// assert!(matches!(
    ///     lockutils_core::LockOptions::new("doc-lock").lock(),
    ///     Err(lockutils_core::Error::WouldDeadlock { .. })
    /// ));
    /// drop(g);
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'r>> {
        self.lock_slot(None)
    }

    #[inline]
    pub(crate) fn lock_slot(&self, pinned: Option<&'static Slot>) -> Result<LockGuard<'r>> {
        let deadline = deadline_after(self.timeout);
        if !matches!(self.backend, Selected::None) {
            return self.lock_on_backend(pinned, deadline);
        }
        let mut held = self.acquire_in_process(deadline, pinned)?;
        if self.external {
            let wait = match (self.blocking, deadline) {
                (false, _) => Wait::Never,
                (true, None) => Wait::Forever,
                (true, Some(d)) => Wait::Until(d),
            };
            self.acquire_file(&mut held, wait)?;
        }
        held.log_acquired();
        Ok(LockGuard::new(held))
    }

    /// Takes the lock only if that needs no waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] if the lock is held, plus those of
    /// [`lock`](Self::lock).
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("doc-try").try_lock().unwrap();
    /// # drop(g);
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'r>> {
        self.blocking(false).lock()
    }

    /// Takes the lock from async code. The future waits without blocking the
    /// executor thread, works on any executor, and excludes blocking callers of
    /// the same name too.
    ///
    /// # Errors
    /// As [`lock`](Self::lock), except that async tasks are not tracked per
    /// thread, so re-acquiring a lock the same task holds (in-process, or its
    /// lock file through another registry) is not detected: give such code a
    /// [`timeout`](Self::timeout), which bounds the wait.
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves leaves the wait queue and hands
    /// the lock on if it had just been granted. A wait for the lock file runs
    /// in the kernel on a waiter thread; dropping the future leaves that wait
    /// to be adopted by the next acquirer of the same file, or, if it is
    /// granted first, to release the lock at once: no lock is left held for a
    /// dropped future.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// block_on(async {
    ///     let g = lockutils_core::LockOptions::new("doc-async").lock_async().await.unwrap();
    ///     drop(g);
    /// });
    /// ```
    #[inline(always)]
    pub fn lock_async(&self) -> Acquire<'a, 'r> {
        self.lock_async_slot(None)
    }

    #[inline(always)]
    pub(crate) fn lock_async_slot(&self, pinned: Option<&'static Slot>) -> Acquire<'a, 'r> {
        Acquire {
            opts: *self,
            pinned,
            machine: None,
            done: false,
        }
    }

    /// Removes the lock file safely: takes the lock exclusively (waiting as the
    /// options say), checks that the locked file is still the one at the path
    /// and that no other process has it open, unlinks it while holding it,
    /// then releases. Processes waiting on the old file in the kernel notice
    /// and retry on a new one; a file another process has open (an
    /// oslo.concurrency or fasteners waiter polls on its old descriptor and
    /// would lock the unlinked file) is left in place. What remains is a
    /// process that opens the file between that check and the unlink (see
    /// [`InUse`](crate::InUse)). Returns `false` if there was no file to remove.
    ///
    /// # Errors
    /// As [`lock`](Self::lock); [`Error::LockFile`] with
    /// [`io::ErrorKind::ResourceBusy`](std::io::ErrorKind::ResourceBusy) and
    /// an [`InUse`](crate::InUse) source (see [`InUse::of`](crate::InUse::of)) when another process has the
    /// file open, or might (processes whose descriptors cannot be read count
    /// unless [`REMOVE_UNVERIFIED_ENV`](crate::REMOVE_UNVERIFIED_ENV) is set).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = lockutils_core::LockOptions::new("x").external(true).lock_path(dir.path());
    /// drop(opts.lock().unwrap());
    /// assert!(opts.remove_lock_file().unwrap());
    /// assert!(!dir.path().join("x").exists());
    /// ```
    pub fn remove_lock_file(&self) -> Result<bool> {
        let opts = self.mode(raw::Mode::Exclusive);
        let deadline = deadline_after(opts.timeout);
        let held = opts.acquire_in_process(deadline, None)?;
        let key = held.slot().key.clone();
        let resolved = lock_path::resolve(opts.lock_dir());
        let target = Target {
            name: opts.name,
            dir: &resolved.dir,
            file_name: &key,
            mode: raw::Mode::Exclusive,
            file_mode: opts.file_mode,
            create: false,
            user_default_dir: resolved.user_default,
        };
        let wait = match (opts.blocking, deadline) {
            (false, _) => Wait::Never,
            (true, None) => Wait::Forever,
            (true, Some(d)) => Wait::Until(d),
        };
        match opts.file_outcome(&target, wait)?.0 {
            Outcome::Locked(file) => {
                // Unlinked (or not) while both locks are held; closing the
                // file then dropping `held` releases them in that order.
                let unlink = file.remove_while_held(raw::Mode::Exclusive);
                let error = |source| Error::LockFile {
                    name: opts.name.to_owned(),
                    path: file.path.clone(),
                    action: "remove",
                    source,
                };
                let removed = match unlink {
                    Ok(Unlink::Removed) => Ok(true),
                    Ok(Unlink::NotRemoved) => Ok(false),
                    Ok(Unlink::InUse(in_use)) => Err(error(in_use.into_io())),
                    Err(source) => Err(error(source)),
                };
                drop(file);
                drop(held);
                removed
            }
            Outcome::Busy => Err(opts.busy(deadline)),
            Outcome::Absent => Ok(false),
        }
    }

    /// The blocking acquisition with a backend behind the in-process lock:
    /// the backend is resolved and its capabilities checked before any wait.
    #[cold]
    #[inline(never)]
    fn lock_on_backend(
        &self,
        pinned: Option<&'static Slot>,
        deadline: Option<Instant>,
    ) -> Result<LockGuard<'r>> {
        let backend = self.resolve_backend()?;
        let mut held = self.acquire_in_process(deadline, pinned)?;
        let request = self.request(&held);
        let started = Instant::now();
        match backend.acquire(&request, self.backend_wait(deadline))? {
            Some(hold) => {
                held.attach_backend(hold, started.elapsed());
                held.log_acquired();
                Ok(LockGuard::new(held))
            }
            None => Err(self.busy(deadline)),
        }
    }

    /// The backend these options select, checked for the mode asked.
    pub(crate) fn resolve_backend(&self) -> Result<ResolvedBackend<'a>> {
        let backend = match self.backend {
            Selected::None => {
                return Err(Error::InvalidOptions {
                    name: self.name.to_owned(),
                    reason: "no backend selected",
                })
            }
            Selected::Backend(b) => ResolvedBackend::Borrowed(b),
            Selected::Url(url) => ResolvedBackend::Shared(backend::resolve(url, self.name)?),
            Selected::Default => ResolvedBackend::Shared(backend::resolve_default(self.name)?),
        };
        if self.mode == Mode::Shared && !backend.capabilities().has(Capability::Shared) {
            return Err(backend.unsupported(self.name, Capability::Shared));
        }
        Ok(backend)
    }

    fn request(&self, held: &Held<'r>) -> Request {
        Request {
            name: self.name.to_owned(),
            identity: held.slot().key.to_string(),
            mode: self.mode,
            caller: self.caller,
        }
    }

    fn backend_wait(&self, deadline: Option<Instant>) -> backend::Wait {
        match (self.blocking, deadline) {
            (false, _) => backend::Wait::Never,
            (true, None) => backend::Wait::Forever,
            (true, Some(d)) => backend::Wait::Until(d),
        }
    }

    #[cold]
    fn would_deadlock(&self, slot: SlotRef) -> Error {
        self.registry.checkin(slot);
        Error::WouldDeadlock {
            name: self.name.to_owned(),
        }
    }

    fn busy(&self, deadline: Option<Instant>) -> Error {
        let timed_out = self.blocking && self.timeout.is_some() && deadline.is_some();
        if crate::metrics::ENABLED {
            crate::metrics::busy(self.metrics_backend(), self.mode, self.name, timed_out);
        }
        match (self.blocking, self.timeout, deadline) {
            (true, Some(timeout), Some(_)) => Error::Timeout {
                name: self.name.to_owned(),
                timeout,
            },
            _ => Error::WouldBlock {
                name: self.name.to_owned(),
            },
        }
    }

    /// The `backend` label of this lock's busy counts: the same as its
    /// holds get (the kind of the backend the options select).
    #[cold]
    fn metrics_backend(&self) -> &'static str {
        match self.backend {
            _ if self.external => crate::metrics::backend(true),
            Selected::None => crate::metrics::backend(false),
            Selected::Backend(b) => crate::metrics::backend_of_url(&b.url()),
            Selected::Url(url) => crate::metrics::backend_of_url(url),
            Selected::Default => {
                backend::default_url().map_or("other", |u| crate::metrics::backend_of_url(&u))
            }
        }
    }

    #[inline]
    fn held(&self, slot: SlotRef, waited: Duration) -> Held<'r> {
        Held::new(
            self.registry,
            slot,
            self.mode,
            waited,
            self.caller,
            self.remove_on_release,
        )
    }

    #[inline(always)]
    fn acquire_in_process(
        &self,
        deadline: Option<Instant>,
        pinned: Option<&'static Slot>,
    ) -> Result<Held<'r>> {
        let slot = match pinned {
            Some(slot) => SlotRef::pinned(slot),
            // Taken during the lookup when free: no user count to touch.
            None if self.mode == Mode::Exclusive => {
                match self.registry.checkout_exclusive(&self.file_name()?, self.fair) {
                    Ok(held) => return Ok(self.held(held, Duration::ZERO)),
                    Err(counted) => counted,
                }
            }
            None => self.registry.checkout(&self.file_name()?),
        };
        // A thread that holds the lock exclusively always fails `try_lock` and
        // is caught on the slow path; a shared re-acquisition may succeed only
        // while no writer waits, so it is refused up front, every time.
        if self.mode == Mode::Shared && held::holds(&slot) {
            return Err(self.would_deadlock(slot));
        }
        if slot.lock.try_lock(self.mode, self.fair) {
            return Ok(self.held(slot, Duration::ZERO));
        }
        self.wait_in_process(slot, deadline)
    }

    #[cold]
    fn wait_in_process(&self, slot: SlotRef, deadline: Option<Instant>) -> Result<Held<'r>> {
        // Only a lock that is busy can be one this thread already holds.
        if held::holds(&slot) {
            return Err(self.would_deadlock(slot));
        }
        if !self.blocking {
            self.registry.checkin(slot);
            return Err(self.busy(None));
        }
        // Most contended acquisitions end in the first short spin: the clock
        // is read before it only for someone who listens (metrics, DEBUG
        // logs), since a clock read costs more than a short critical section.
        let spin_started = crate::guard::timed().then(Instant::now);
        if slot.lock.spin_lock(self.mode, self.fair) {
            let spun = spin_started.map_or(Duration::ZERO, |at| at.elapsed());
            return Ok(self.held(slot, spun));
        }
        let started = spin_started.unwrap_or_else(Instant::now);
        tracing::debug!(target: "lockutils", lock = self.name, caller = self.caller, "acquiring lock: waiting for another holder");
        if let Some(waiter) = slot.lock.enqueue_now(self.mode, self.fair, false) {
            if !slot.lock.wait_thread(&waiter, deadline) {
                self.registry.checkin(slot);
                return Err(self.busy(deadline));
            }
        }
        Ok(self.held(slot, started.elapsed()))
    }

    fn acquire_file(&self, held: &mut Held<'r>, wait: Wait) -> Result<()> {
        let resolved = lock_path::resolve(self.lock_dir());
        let target = Target {
            name: self.name,
            dir: &resolved.dir,
            file_name: &held.slot().key,
            mode: self.mode,
            file_mode: self.file_mode,
            create: true,
            user_default_dir: resolved.user_default,
        };
        match self.file_outcome(&target, wait)? {
            (Outcome::Locked(file), waited) => {
                held.attach_file(file, waited);
                Ok(())
            }
            (Outcome::Busy | Outcome::Absent, _) => Err(self.busy(match wait {
                Wait::Until(d) => Some(d),
                _ => None,
            })),
        }
    }

    /// Takes the file lock, waiting as `wait` says, unless the wait would be
    /// on this thread itself: a lock file it holds through another registry
    /// (or while removing it), which the kernel would let it wait on forever.
    /// Also says how long it waited: zero, without reading the clock, when
    /// the first attempt decided.
    fn file_outcome(&self, target: &Target<'_>, wait: Wait) -> Result<(Outcome, Duration)> {
        let first = target.acquire_outcome(Wait::Never)?;
        if !matches!(first, Outcome::Busy) || matches!(wait, Wait::Never) {
            return Ok((first, Duration::ZERO));
        }
        if held::holds_file(&target.dir.join(target.file_name)) {
            return Err(Error::WouldDeadlock {
                name: self.name.to_owned(),
            });
        }
        let started = Instant::now();
        let outcome = target.acquire_outcome(wait)?;
        Ok((outcome, started.elapsed()))
    }
}

/// A backend as the options select it: borrowed from the caller, or the
/// process's backend for a URL.
pub(crate) enum ResolvedBackend<'a> {
    Borrowed(&'a dyn Backend),
    Shared(std::sync::Arc<dyn Backend>),
}

impl<'a> std::ops::Deref for ResolvedBackend<'a> {
    type Target = dyn Backend + 'a;

    fn deref(&self) -> &Self::Target {
        match self {
            ResolvedBackend::Borrowed(b) => *b,
            ResolvedBackend::Shared(b) => &**b,
        }
    }
}

/// The instant a timeout runs out; none for a timeout too long to represent,
/// which is as good as waiting forever.
#[inline]
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The future of [`LockOptions::lock_async`].
///
/// See that method for errors and cancel safety.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a, 'r> {
    opts: LockOptions<'a, 'r>,
    pinned: Option<&'static Slot>,
    /// Everything beyond the first compare-and-swap, boxed on the first poll
    /// that needs it: the uncontended in-process acquisition builds and drops
    /// nothing but the options (its cost is then that of the sync `lock()`).
    machine: Option<Box<Machine<'a, 'r>>>,
    /// Set when the short path returned the guard.
    done: bool,
}

/// The acquisition's state machine: queueing, the lock file, a backend, the
/// deadline. Only waiting, external or backend acquisitions get one.
struct Machine<'a, 'r> {
    opts: LockOptions<'a, 'r>,
    pinned: Option<&'static Slot>,
    state: State<'r>,
    deadline: Option<Instant>,
    /// Wakes the task at the deadline (or at the next file-lock attempt when
    /// no waiter thread can be had).
    sleep: Option<timer::Sleep>,
    started: Option<Instant>,
    /// The backend behind the in-process lock, resolved when polling starts.
    backend: Option<ResolvedBackend<'a>>,
}

enum State<'r> {
    Start,
    Queued(Queued<'r>),
    File {
        held: Held<'r>,
        dir: PathBuf,
        user_default: bool,
        /// The wait for the lock file; dropping it calls the wait off.
        wait: AsyncWait,
    },
    /// Field order is drop order: a cancelled backend wait is called off
    /// before the in-process lock is handed on.
    Backend {
        acquire: SyncFuture,
        held: Held<'r>,
    },
    Done,
}

/// A backend's acquisition future, made `Sync` so that [`Acquire`] stays
/// `Sync`: it is only ever reached through `&mut`.
struct SyncFuture(HoldFuture);

// SAFETY: a `SyncFuture` offers no access through a shared reference (its
// only field is private and used through `&mut self` alone), so sharing
// `&SyncFuture` between threads can reach nothing; sending it needs the
// future to be `Send`, which `HoldFuture` is.
unsafe impl Sync for SyncFuture {}

/// A queued in-process acquisition; dropping it leaves the queue.
struct Queued<'r> {
    registry: &'r Registry,
    slot: Option<SlotRef>,
    waiter: Arc<Waiter>,
}

impl Queued<'_> {
    fn into_slot(mut self) -> SlotRef {
        self.slot.take().expect("slot present")
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.lock.abandon(&self.waiter);
            self.registry.checkin(slot);
        }
    }
}

impl<'r> Acquire<'_, 'r> {
    /// The uncontended in-process case, as cheap as the sync `lock()`: one
    /// lookup (none for a pinned call site) and one compare-and-swap, without
    /// the state machine or the lock directory. `None`: the lock is busy.
    #[inline(always)]
    fn in_process_at_once(&mut self) -> Option<Result<AsyncLockGuard<'r>>> {
        let opts = &self.opts;
        let slot = match self.pinned {
            Some(slot) => SlotRef::pinned(slot),
            None => match opts.file_name() {
                Ok(key) => opts.registry.checkout(&key),
                Err(e) => return Some(Err(e)),
            },
        };
        if !slot.lock.try_lock(opts.mode, opts.fair) {
            // Busy, so in use by someone else: the entry stays for `step`.
            opts.registry.checkin(slot);
            return None;
        }
        let mut held = opts.held(slot, Duration::ZERO);
        held.log_acquired();
        Some(Ok(AsyncLockGuard { held }))
    }
}

impl<'a, 'r> Machine<'a, 'r> {
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn arm_timer(&mut self, cx: &Context<'_>) {
        if let Some(d) = self.deadline {
            match &self.sleep {
                Some(s) => s.update(cx.waker()),
                None => self.sleep = Some(timer::Sleep::new(d, cx.waker())),
            }
        }
    }

    fn waited(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn enter_file_phase(&mut self, held: Held<'r>) -> State<'r> {
        if let Some(backend) = &self.backend {
            let request = self.opts.request(&held);
            let wait = self.opts.backend_wait(self.deadline);
            self.started.get_or_insert_with(Instant::now);
            return State::Backend {
                acquire: SyncFuture(backend.acquire_async(request, wait)),
                held,
            };
        }
        if !self.opts.external {
            // In-process only: no lock directory to resolve (no syscall).
            return State::File {
                held,
                dir: PathBuf::new(),
                user_default: false,
                wait: AsyncWait::default(),
            };
        }
        let resolved = lock_path::resolve(self.opts.lock_dir());
        State::File {
            held,
            dir: resolved.dir.into_owned(),
            user_default: resolved.user_default,
            wait: AsyncWait::default(),
        }
    }

    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<AsyncLockGuard<'r>>> {
        let out = self.step(cx);
        if out.is_ready() {
            self.sleep = None;
        }
        out
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Result<AsyncLockGuard<'r>>> {
        let opts = self.opts;
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Start => {
                    self.deadline = deadline_after(opts.timeout);
                    if !matches!(opts.backend, Selected::None) {
                        self.backend = Some(opts.resolve_backend()?);
                    }
                    let slot = match self.pinned {
                        Some(slot) => SlotRef::pinned(slot),
                        None => {
                            let key: Cow<'_, str> = opts.file_name()?;
                            opts.registry.checkout(&key)
                        }
                    };
                    if slot.lock.try_lock(opts.mode, opts.fair) {
                        let held = opts.held(slot, Duration::ZERO);
                        self.state = self.enter_file_phase(held);
                        continue;
                    }
                    if !opts.blocking {
                        opts.registry.checkin(slot);
                        return Poll::Ready(Err(opts.busy(None)));
                    }
                    self.started = Some(Instant::now());
                    match slot.lock.enqueue(opts.mode, opts.fair, true) {
                        None => {
                            let held = opts.held(slot, self.waited());
                            self.state = self.enter_file_phase(held);
                        }
                        Some(waiter) => {
                            self.state = State::Queued(Queued {
                                registry: opts.registry,
                                slot: Some(slot),
                                waiter,
                            })
                        }
                    }
                }
                State::Queued(q) => {
                    let slot = q.slot.as_ref().expect("slot present");
                    let acquired = match slot.lock.register_waker(&q.waiter, cx.waker()) {
                        raw::Poll::Acquired => true,
                        raw::Poll::Waiting if self.expired() => slot.lock.cancel(&q.waiter),
                        raw::Poll::Waiting => {
                            self.state = State::Queued(q);
                            self.arm_timer(cx);
                            return Poll::Pending;
                        }
                    };
                    let slot = q.into_slot();
                    if !acquired {
                        opts.registry.checkin(slot);
                        return Poll::Ready(Err(opts.busy(self.deadline)));
                    }
                    let held = opts.held(slot, self.waited());
                    self.state = self.enter_file_phase(held);
                }
                State::File {
                    mut held,
                    dir,
                    user_default,
                    mut wait,
                } => {
                    if !opts.external {
                        held.log_acquired();
                        return Poll::Ready(Ok(AsyncLockGuard { held }));
                    }
                    let key = held.slot().key.clone();
                    let target = Target {
                        name: opts.name,
                        dir: &dir,
                        file_name: &key,
                        mode: opts.mode,
                        file_mode: opts.file_mode,
                        create: true,
                        user_default_dir: user_default,
                    };
                    // A deadline already past starts no kernel wait (it
                    // would be orphaned at once): one attempt, then busy.
                    let blocking = opts.blocking && !self.expired();
                    match target.poll_acquire(&mut wait, blocking, cx.waker())? {
                        Step::Ready(Outcome::Locked(file)) => {
                            held.attach_file(file, Duration::ZERO);
                            held.set_waited(self.waited());
                            held.log_acquired();
                            return Poll::Ready(Ok(AsyncLockGuard { held }));
                        }
                        Step::Ready(Outcome::Busy | Outcome::Absent) => {
                            return Poll::Ready(Err(opts.busy(self.deadline)));
                        }
                        Step::Pending { .. } if self.expired() => {
                            return Poll::Ready(Err(opts.busy(self.deadline)));
                        }
                        Step::Pending { retry_at } => {
                            // Woken by the kernel wait (or at the retry), and
                            // at the deadline.
                            self.started.get_or_insert_with(Instant::now);
                            let at = match (retry_at, self.deadline) {
                                (Some(r), Some(d)) => Some(r.min(d)),
                                (r, d) => r.or(d),
                            };
                            self.sleep = at.map(|at| timer::Sleep::new(at, cx.waker()));
                            self.state = State::File {
                                held,
                                dir,
                                user_default,
                                wait,
                            };
                            return Poll::Pending;
                        }
                    }
                }
                State::Backend {
                    mut held,
                    mut acquire,
                } => match acquire.0.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Backend { held, acquire };
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(Some(hold))) => {
                        held.attach_backend(hold, Duration::ZERO);
                        held.set_waited(self.waited());
                        held.log_acquired();
                        return Poll::Ready(Ok(AsyncLockGuard { held }));
                    }
                    Poll::Ready(Ok(None)) => return Poll::Ready(Err(opts.busy(self.deadline))),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                },
                State::Done => panic!("lockutils::Acquire polled after completion"),
            }
        }
    }
}

impl<'r> Future for Acquire<'_, 'r> {
    type Output = Result<AsyncLockGuard<'r>>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Acquire` is `Unpin`: it holds no self-references.
        let this = self.get_mut();
        assert!(!this.done, "lockutils::Acquire polled after completion");
        let machine = match &mut this.machine {
            Some(machine) => machine,
            None => {
                // In-process only (no lock file, no backend): the short path.
                if !this.opts.external && matches!(this.opts.backend, Selected::None) {
                    if let Some(out) = this.in_process_at_once() {
                        this.done = true;
                        return Poll::Ready(out);
                    }
                }
                this.machine.insert(Box::new(Machine {
                    opts: this.opts,
                    pinned: this.pinned,
                    state: State::Start,
                    deadline: None,
                    sleep: None,
                    started: None,
                    backend: None,
                }))
            }
        };
        machine.poll_slow(cx)
    }
}

impl std::fmt::Debug for Acquire<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.machine.as_deref().map(|m| &m.state) {
            None if self.done => "done",
            None | Some(State::Start) => "start",
            Some(State::Queued(_)) => "waiting in-process",
            Some(State::File { .. }) => "waiting for the lock file",
            Some(State::Backend { .. }) => "waiting on the backend",
            Some(State::Done) => "done",
        };
        f.debug_struct("Acquire")
            .field("options", &self.opts)
            .field("state", &state)
            .finish()
    }
}
