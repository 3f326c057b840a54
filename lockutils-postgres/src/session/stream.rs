//! The socket under a session. The crate's runtime reads and writes it
//! through tokio's reactor; a blocking caller running an operation on the
//! session reads and writes it from its own thread instead (plain
//! non-blocking calls, sleeping in `poll(2)` between them, see
//! [`crate::caller`]), so that no second thread sits between the caller and
//! the server on a round trip.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use std::task::ready;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Who reads and writes a session's socket, shared by its stream (inside
/// the `tokio_postgres` connection) and its [`Link`](super::link::Link).
#[derive(Debug, Default)]
pub(crate) struct Mode {
    /// How many blocking callers drive the socket now; the reactor does
    /// while this is zero.
    callers: AtomicUsize,
    /// A caller-driven write found the socket buffer full: the caller waits
    /// for `POLLOUT` as well.
    want_write: AtomicBool,
    /// The socket may have something to read (the caller's `poll(2)` said
    /// so, or a caller just took it over): caller-driven reads skip the
    /// `read(2)` that would only say `EAGAIN` otherwise.
    readable: AtomicBool,
    /// The session runs TLS, whose layer may hold decrypted bytes the
    /// socket no longer shows: only the runtime drives it.
    tls: AtomicBool,
}

impl Mode {
    pub(crate) fn caller_driven(&self) -> bool {
        self.callers.load(Ordering::Acquire) > 0
    }

    pub(crate) fn add_caller(&self) {
        self.readable.store(true, Ordering::Release);
        self.callers.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn set_readable(&self) {
        self.readable.store(true, Ordering::Release);
    }

    /// Whether this was the last caller.
    pub(crate) fn remove_caller(&self) -> bool {
        self.callers.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub(crate) fn want_write(&self) -> bool {
        self.want_write.load(Ordering::Acquire)
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.load(Ordering::Acquire)
    }

    pub(crate) fn set_tls(&self) {
        self.tls.store(true, Ordering::Release);
    }
}

/// The plain non-blocking socket.
enum Plain {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Plain {
    /// Reads into the unfilled part of `buf` without zeroing it first.
    fn read_buf(&self, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
        let sock = match self {
            Plain::Tcp(s) => SockRef::from(s),
            Plain::Unix(s) => SockRef::from(s),
        };
        // SAFETY: `recv` only writes into the slice (it never reads it nor
        // de-initialises any of it).
        let n = sock.recv(unsafe { buf.unfilled_mut() })?;
        // SAFETY: `recv` wrote the first `n` bytes of the unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Ok(n)
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Plain::Tcp(s) => (&*s).write(data),
            Plain::Unix(s) => (&*s).write(data),
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        match self {
            Plain::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Plain::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

impl AsRawFd for Plain {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Plain::Tcp(s) => s.as_raw_fd(),
            Plain::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// The socket, registered with the runtime's reactor (while the runtime
/// drives it) or not (while callers drive it, so that its traffic does not
/// wake the runtime thread as well). Registered for reading only unless a
/// write found the buffer full: a socket registered for writing is
/// reported writable at once, which would wake the runtime thread at every
/// hand-back.
enum Socket {
    Reactor {
        fd: AsyncFd<Plain>,
        writable: bool,
    },
    Plain(Plain),
    /// A registration failed; the connection fails with it.
    Gone,
}

impl Socket {
    /// Out of the reactor, for a caller's plain non-blocking calls.
    fn plain(&mut self) -> io::Result<&Plain> {
        if let Socket::Reactor { .. } = self {
            let Socket::Reactor { fd, .. } = std::mem::replace(self, Socket::Gone) else {
                unreachable!()
            };
            *self = Socket::Plain(fd.into_inner());
        }
        match self {
            Socket::Plain(p) => Ok(p),
            _ => Err(gone()),
        }
    }

    /// Into the crate runtime's reactor, for writing as well if `write`.
    fn reactor(&mut self, write: bool) -> io::Result<&AsyncFd<Plain>> {
        let registered = match self {
            Socket::Reactor { writable, .. } => Some(*writable),
            _ => None,
        };
        if registered.is_none() || (write && registered == Some(false)) {
            let plain = match std::mem::replace(self, Socket::Gone) {
                Socket::Reactor { fd, .. } => fd.into_inner(),
                Socket::Plain(p) => p,
                Socket::Gone => return Err(gone()),
            };
            let interest = if write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _runtime = crate::runtime::handle().enter();
            // SAFETY: `plain` owns its descriptor (a std socket), which
            // stays open while the `AsyncFd` owns `plain` (until it is
            // dropped or `into_inner` hands `plain` back), and
            // `Plain::as_raw_fd` returns that same descriptor every time;
            // nothing swaps the socket behind the `AsyncFd` (no `get_mut`).
            match unsafe { AsyncFd::register_with_interest(plain, interest) } {
                Ok(fd) => {
                    *self = Socket::Reactor {
                        fd,
                        writable: write,
                    }
                }
                Err(e) => {
                    let (plain, cause) = e.into_parts();
                    *self = Socket::Plain(plain);
                    return Err(cause);
                }
            }
        }
        match self {
            Socket::Reactor { fd, .. } => Ok(fd),
            _ => Err(gone()),
        }
    }

    fn get(&self) -> Option<&Plain> {
        match self {
            Socket::Reactor { fd, .. } => Some(fd.get_ref()),
            Socket::Plain(p) => Some(p),
            Socket::Gone => None,
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the session's socket is gone")
}

/// A session's socket with its [`Mode`].
pub(crate) struct SessionStream {
    socket: Socket,
    mode: Arc<Mode>,
}

impl SessionStream {
    /// Connects to `host:port` (a directory for a Unix socket, as libpq's
    /// `host=/run/postgresql`), trying each address in turn, each within
    /// `timeout`, and sets TCP keep-alive: probes after `idle` of silence,
    /// then every second, giving up after three; and data unacknowledged
    /// for `2 * idle` breaks the connection too.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        timeout: Duration,
        idle: Duration,
    ) -> io::Result<SessionStream> {
        let plain = if host.starts_with('/') {
            let path = format!("{host}/.s.PGSQL.{port}");
            Plain::Unix(
                within(timeout, UnixStream::connect(path))
                    .await?
                    .into_std()?,
            )
        } else {
            let mut last = None;
            let mut found = None;
            for addr in tokio::net::lookup_host((host, port)).await? {
                match within(timeout, TcpStream::connect(addr)).await {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let tcp = match (found, last) {
                (Some(s), _) => s,
                (None, Some(e)) => return Err(e),
                (None, None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} has no address"),
                    ))
                }
            };
            tcp.set_nodelay(true)?;
            let sock = SockRef::from(&tcp);
            sock.set_tcp_keepalive(
                &TcpKeepalive::new()
                    .with_time(keepalive_idle(idle))
                    .with_interval(Duration::from_secs(1))
                    .with_retries(3),
            )?;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            sock.set_tcp_user_timeout(Some(user_timeout(idle)))?;
            Plain::Tcp(tcp.into_std()?)
        };
        Ok(SessionStream {
            socket: Socket::Plain(plain),
            mode: Arc::default(),
        })
    }

    pub(crate) fn mode(&self) -> Arc<Mode> {
        self.mode.clone()
    }

    /// The plain socket for a caller, out of the reactor. Leaving the
    /// reactor, its readiness tells whether anything came since the last
    /// read that found nothing: if not, the caller's first read waits for
    /// `poll(2)` (which sees anything that came since, being
    /// level-triggered).
    fn plain_for_caller(&mut self) -> io::Result<&Plain> {
        if let Socket::Reactor { fd, .. } = &self.socket {
            let mut noop = Context::from_waker(Waker::noop());
            if fd.poll_read_ready(&mut noop).is_pending() {
                self.mode.readable.store(false, Ordering::Release);
            }
        }
        self.socket.plain()
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.socket.get().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// The TCP keep-alive idle time for a check interval: TCP_KEEPIDLE counts
/// whole seconds, from 1 to 32767, and refuses others (EINVAL).
pub(crate) fn keepalive_idle(check_interval: Duration) -> Duration {
    check_interval.clamp(Duration::from_secs(1), Duration::from_secs(32767))
}

/// The TCP_USER_TIMEOUT for a check interval: twice it, in milliseconds up
/// to i32::MAX (about 24.8 days; larger ones are refused).
pub(crate) fn user_timeout(check_interval: Duration) -> Duration {
    (check_interval * 2).min(Duration::from_millis(i32::MAX as u64))
}

async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {limit:?}"),
        ))
    })
}

impl AsyncRead for SessionStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.mode.caller_driven() {
            // The caller polls the socket itself: nothing to register.
            if let Err(e) = this.plain_for_caller() {
                return Poll::Ready(Err(e));
            }
            if !this.mode.readable.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            let plain = match this.socket.plain() {
                Ok(p) => p,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let room = buf.remaining();
            return match plain.read_buf(buf) {
                Ok(n) => {
                    if n < room {
                        // Drained: what comes next, `poll(2)` reports.
                        this.mode.readable.store(false, Ordering::Release);
                    }
                    Poll::Ready(Ok(()))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    this.mode.readable.store(false, Ordering::Release);
                    Poll::Pending
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            };
        }
        let fd = match this.socket.reactor(false) {
            Ok(fd) => fd,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            let mut ready = ready!(fd.poll_read_ready(cx))?;
            if let Ok(result) = ready.try_io(|p| p.get_ref().read_buf(buf)) {
                result?;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.mode.caller_driven() {
            let plain = match this.plain_for_caller() {
                Ok(p) => p,
                Err(e) => return Poll::Ready(Err(e)),
            };
            return match plain.write(data) {
                Ok(n) => {
                    this.mode.want_write.store(false, Ordering::Release);
                    Poll::Ready(Ok(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    this.mode.want_write.store(true, Ordering::Release);
                    Poll::Pending
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            };
        }
        // Most writes fit in the socket buffer: try before registering for
        // writing.
        if let Some(p) = this.socket.get() {
            match p.write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
        let fd = match this.socket.reactor(true) {
            Ok(fd) => fd,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            let mut ready = ready!(fd.poll_write_ready(cx))?;
            if let Ok(result) = ready.try_io(|p| p.get_ref().write(data)) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets keep no user-space buffer: nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A `shutdown(2)`, which does not wait.
        Poll::Ready(self.socket.get().map_or(Ok(()), Plain::shutdown))
    }
}
