//! The socket under a session. The crate's runtime reads and writes it
//! through tokio's reactor; a blocking caller running an operation on the
//! session reads and writes it from its own thread instead (plain
//! non-blocking calls, sleeping in `poll(2)` between them, see
//! [`crate::caller`]), so that no second thread sits between the caller and
//! the server on a round trip.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
    /// The session runs TLS, whose layer may hold decrypted bytes the
    /// socket no longer shows: only the runtime drives it.
    tls: AtomicBool,
}

impl Mode {
    pub(crate) fn caller_driven(&self) -> bool {
        self.callers.load(Ordering::Acquire) > 0
    }

    pub(crate) fn add_caller(&self) {
        self.callers.fetch_add(1, Ordering::AcqRel);
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

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
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
        let socket = if host.starts_with('/') {
            let path = format!("{host}/.s.PGSQL.{port}");
            Socket::Unix(within(timeout, UnixStream::connect(path)).await?)
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
                    .with_time(idle)
                    .with_interval(Duration::from_secs(1))
                    .with_retries(3),
            )?;
            sock.set_tcp_user_timeout(Some(idle * 2))?;
            Socket::Tcp(tcp)
        };
        Ok(SessionStream {
            socket,
            mode: Arc::default(),
        })
    }

    pub(crate) fn mode(&self) -> Arc<Mode> {
        self.mode.clone()
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
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
            // tokio's readiness flags may go stale meanwhile, which only
            // costs its next read one `WouldBlock`.
            let fd = this.fd();
            let sock = SockRef::from(&fd);
            return match (&*sock).read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            };
        }
        match &mut this.socket {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
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
            let fd = this.fd();
            let sock = SockRef::from(&fd);
            return match (&*sock).write(data) {
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
        match &mut this.socket {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets keep no user-space buffer: nothing to flush.
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A `shutdown(2)`, which does not wait.
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
