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

/// The socket, registered with the runtime's reactor (while the runtime
/// drives it) or not (while callers drive it, so that its traffic does not
/// wake the runtime thread as well).
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    PlainTcp(std::net::TcpStream),
    PlainUnix(std::os::unix::net::UnixStream),
    /// A conversion between the two failed; the connection fails with it.
    Gone,
}

impl Socket {
    /// Out of the reactor, for a caller's plain non-blocking calls.
    fn unregister(&mut self) -> io::Result<()> {
        *self = match std::mem::replace(self, Socket::Gone) {
            Socket::Tcp(s) => Socket::PlainTcp(s.into_std()?),
            Socket::Unix(s) => Socket::PlainUnix(s.into_std()?),
            other => other,
        };
        Ok(())
    }

    /// Into the crate runtime's reactor.
    fn register(&mut self) -> io::Result<()> {
        if matches!(self, Socket::PlainTcp(_) | Socket::PlainUnix(_)) {
            let _runtime = crate::runtime::handle().enter();
            *self = match std::mem::replace(self, Socket::Gone) {
                Socket::PlainTcp(s) => Socket::Tcp(TcpStream::from_std(s)?),
                Socket::PlainUnix(s) => Socket::Unix(UnixStream::from_std(s)?),
                other => other,
            };
        }
        Ok(())
    }

    fn gone() -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, "the session's socket is gone")
    }
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
            Socket::PlainTcp(s) => s.as_fd(),
            Socket::PlainUnix(s) => s.as_fd(),
            Socket::Gone => unreachable!("raw_fd is asked right after connecting"),
        }
    }

    /// Prepares the socket for the current mode: a plain one for callers
    /// (read and written here, with `read`/`write`), else the reactor's.
    fn plain(&mut self) -> io::Result<Option<PlainRef<'_>>> {
        if self.mode.caller_driven() {
            self.socket.unregister()?;
        } else {
            self.socket.register()?;
        }
        Ok(match &self.socket {
            Socket::PlainTcp(s) => Some(PlainRef::Tcp(s)),
            Socket::PlainUnix(s) => Some(PlainRef::Unix(s)),
            Socket::Gone => return Err(Socket::gone()),
            _ => None,
        })
    }
}

enum PlainRef<'a> {
    Tcp(&'a std::net::TcpStream),
    Unix(&'a std::os::unix::net::UnixStream),
}

impl PlainRef<'_> {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PlainRef::Tcp(mut s) => s.read(buf),
            PlainRef::Unix(mut s) => s.read(buf),
        }
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            PlainRef::Tcp(mut s) => s.write(data),
            PlainRef::Unix(mut s) => s.write(data),
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
        let plain = match this.plain() {
            Ok(p) => p,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(sock) = plain {
            // The caller polls the socket itself: nothing to register.
            return match sock.read(buf.initialize_unfilled()) {
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
            _ => Poll::Ready(Err(Socket::gone())),
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
        let plain = match this.plain() {
            Ok(p) => p,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(sock) = plain {
            return match sock.write(data) {
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
            _ => Poll::Ready(Err(Socket::gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets keep no user-space buffer: nothing to flush.
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A `shutdown(2)`, which does not wait.
        match &mut self.get_mut().socket {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::PlainTcp(s) => Poll::Ready(s.shutdown(std::net::Shutdown::Write)),
            Socket::PlainUnix(s) => Poll::Ready(s.shutdown(std::net::Shutdown::Write)),
            Socket::Gone => Poll::Ready(Ok(())),
        }
    }
}
