//! A toy in-memory lock engine, written against the public backend API
//! only: the proof that a new engine is one module. It registers the
//! `memory://NAME` scheme; each URL is one independent lock space.
//!
//! It offers every capability (shared locks, fencing tokens, loss
//! notification, revocation, administration) so tests can exercise all of
//! the generic surface.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use lockutils::backend::{
    register_scheme, Admin, Backend, BackendHold, BoxHold, Capabilities, Capability, ContenderInfo,
    HoldFuture, Location, LockInfo, Loss, LossFuture, LossKind, Removal, Request, Wait,
};
use lockutils::{Mode, Result};

/// One in-memory lock space.
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    locks: Mutex<HashMap<String, Entry>>,
    released: Condvar,
    /// Async waiters, woken on every release.
    wakers: Mutex<Vec<Waker>>,
}

#[derive(Debug, Default)]
struct Entry {
    holders: Vec<Holder>,
    /// The last fencing token given out for this name.
    last_token: u64,
}

#[derive(Debug)]
struct Holder {
    token: u64,
    mode: Mode,
    caller: Option<&'static str>,
    flags: Arc<Flags>,
}

#[derive(Debug, Default)]
struct Flags {
    lost: AtomicBool,
    revoked: AtomicBool,
}

impl MemoryBackend {
    /// A fresh lock space named `name` (URL `memory://name`).
    pub fn new(name: &str) -> Self {
        MemoryBackend {
            inner: Arc::new(Inner {
                url: format!("memory://{name}"),
                locks: Mutex::default(),
                released: Condvar::new(),
                wakers: Mutex::default(),
            }),
        }
    }

    /// Async acquisitions parked on this lock space now (each until the
    /// next release wakes it): lets a test release only once one waits.
    pub fn async_waiters(&self) -> usize {
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Registers the `memory` scheme with lockutils.
    pub fn register() {
        register_scheme("memory", |url| {
            let name = url
                .strip_prefix("memory://")
                .ok_or("expected memory://NAME")?;
            Ok(Arc::new(MemoryBackend::new(name)))
        });
    }
}

impl Inner {
    fn locks(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One attempt: the hold, if the lock is free for `request.mode`.
    fn try_take(self: &Arc<Self>, request: &Request) -> Option<BoxHold> {
        let mut locks = self.locks();
        let entry = locks.entry(request.identity.clone()).or_default();
        let free = match request.mode {
            Mode::Exclusive => entry.holders.is_empty(),
            _ => entry.holders.iter().all(|h| h.mode == Mode::Shared),
        };
        if !free {
            return None;
        }
        entry.last_token += 1;
        let flags = Arc::new(Flags::default());
        entry.holders.push(Holder {
            token: entry.last_token,
            mode: request.mode,
            caller: request.caller,
            flags: flags.clone(),
        });
        Some(Box::new(MemoryHold {
            inner: self.clone(),
            identity: request.identity.clone(),
            token: entry.last_token,
            flags,
        }))
    }

    fn notify(&self) {
        self.released.notify_all();
        for w in self
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            w.wake();
        }
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn url(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with(Capability::Shared)
            .with(Capability::FencingTokens)
            .with(Capability::LossNotification)
            .with(Capability::Revocation)
            .with(Capability::Admin)
    }

    fn acquire(&self, request: &Request, wait: Wait) -> Result<Option<BoxHold>> {
        loop {
            if let Some(hold) = self.inner.try_take(request) {
                return Ok(Some(hold));
            }
            let locks = self.inner.locks();
            match wait {
                Wait::Never => return Ok(None),
                Wait::Forever => drop(self.inner.released.wait(locks)),
                Wait::Until(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    drop(self.inner.released.wait_timeout(locks, d - now));
                }
            }
        }
    }

    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture {
        let inner = self.inner.clone();
        let mut timer_armed = false;
        Box::pin(std::future::poll_fn(move |cx| {
            if let Some(hold) = inner.try_take(&request) {
                return Poll::Ready(Ok(Some(hold)));
            }
            if wait.expired() {
                return Poll::Ready(Ok(None));
            }
            inner
                .wakers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            if let (Some(d), false) = (wait.deadline(), timer_armed) {
                timer_armed = true;
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(d.saturating_duration_since(Instant::now()));
                    waker.wake();
                });
            }
            // A release between the attempt and the registration woke no
            // one: try once more.
            match inner.try_take(&request) {
                Some(hold) => Poll::Ready(Ok(Some(hold))),
                None => Poll::Pending,
            }
        }))
    }

    fn admin(&self) -> Result<&dyn Admin> {
        Ok(self)
    }
}

/// A held in-memory lock; dropping it releases.
#[derive(Debug)]
struct MemoryHold {
    inner: Arc<Inner>,
    identity: String,
    token: u64,
    flags: Arc<Flags>,
}

impl BackendHold for MemoryHold {
    fn backend(&self) -> &str {
        &self.inner.url
    }

    fn location(&self) -> Location<'_> {
        Location::Key(&self.identity)
    }

    fn fencing_token(&self) -> Option<u64> {
        Some(self.token)
    }

    fn loss(&self) -> Option<Loss> {
        self.flags.lost.load(Ordering::Acquire).then(|| Loss {
            kind: LossKind::Cleared,
            detail: "an operator cleared the lock".into(),
        })
    }

    fn lost(&self) -> Option<LossFuture> {
        let flags = self.flags.clone();
        Some(Box::pin(async move {
            // A toy: polls.
            loop {
                if flags.lost.load(Ordering::Acquire) {
                    return Some(Loss {
                        kind: LossKind::Cleared,
                        detail: "an operator cleared the lock".into(),
                    });
                }
                Yield(false).await;
            }
        }))
    }

    fn is_revoked(&self) -> bool {
        self.flags.revoked.load(Ordering::Acquire)
    }
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        let mut locks = self.inner.locks();
        if let Some(entry) = locks.get_mut(&self.identity) {
            entry.holders.retain(|h| h.token != self.token);
        }
        drop(locks);
        self.inner.notify();
    }
}

struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Admin for MemoryBackend {
    fn backend(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.url)
    }

    fn list(&self) -> Result<Vec<LockInfo>> {
        let mut names: Vec<String> = self.inner.locks().keys().cloned().collect();
        names.sort();
        names.iter().map(|n| self.inspect(n)).collect()
    }

    fn inspect(&self, identity: &str) -> Result<LockInfo> {
        let locks = self.inner.locks();
        let mut info = LockInfo::new(identity, format!("{}/{identity}", self.inner.url));
        if let Some(entry) = locks.get(identity) {
            for h in &entry.holders {
                let mut c = ContenderInfo::new(Some(h.mode));
                c.pid = Some(std::process::id());
                c.token = Some(h.token);
                c.detail = h.caller.unwrap_or_default().to_owned();
                info.holders.push(c);
            }
        }
        Ok(info)
    }

    fn remove_if_free(&self, identity: &str) -> Result<Removal> {
        let mut locks = self.inner.locks();
        Ok(match locks.get(identity) {
            None => Removal::Absent,
            Some(e) if !e.holders.is_empty() => Removal::Busy,
            Some(_) => {
                locks.remove(identity);
                Removal::Removed
            }
        })
    }

    fn clear(&self, identity: &str) -> Result<usize> {
        let mut locks = self.inner.locks();
        let n = locks.get_mut(identity).map_or(0, |e| {
            for h in &e.holders {
                h.flags.lost.store(true, Ordering::Release);
            }
            e.holders.drain(..).count()
        });
        drop(locks);
        self.inner.notify();
        Ok(n)
    }

    fn revoke(&self, identity: &str) -> Result<usize> {
        let locks = self.inner.locks();
        Ok(locks.get(identity).map_or(0, |e| {
            for h in &e.holders {
                h.flags.revoked.store(true, Ordering::Release);
            }
            e.holders.len()
        }))
    }
}
