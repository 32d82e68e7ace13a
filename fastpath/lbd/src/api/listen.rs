//! Incoming connections for the API and metrics listeners, bounded so that a flood of idle
//! connections cannot take lbd's file descriptors, and with them every listener, away:
//!
//! - an accept error (EMFILE or ENFILE when descriptors run out, ENOBUFS, ...) never ends the
//!   stream (tonic's `TcpListenerStream` path ends the whole server on the first one): it is
//!   counted, logged at most once a second with how many were not logged, and accepting
//!   resumes after [`ACCEPT_BACKOFF`];
//! - at most `max_connections` are open per listener: one more is accepted and closed at once
//!   (left in the backlog it would hold a kernel slot and time out in the client), counted,
//!   and logged at most once a second;
//! - a connection that moves no byte either way for `idle_timeout` fails its pending read or
//!   write with `TimedOut`, and the server drops it. This also bounds a client that connects
//!   and never sends the HTTP/2 preface, and a peer that stopped reading.
//!
//! The timer is reset lazily (traffic only records the time; an expired timer re-arms itself
//! when there was traffic since), so a busy connection costs no timer-wheel work per read.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use lb_logging::RateLimit;
use tokio::time::{sleep, Instant, Sleep};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

/// Pause after an accept error before accepting again (the error, EMFILE above all, would
/// otherwise repeat at once and spin the API thread).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one line per listener and kind of trouble this often.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// TCP keepalive on accepted connections: probes after this long without traffic, then
/// every [`TCP_KEEPALIVE_INTERVAL`], [`TCP_KEEPALIVE_RETRIES`] times. (tonic's own
/// `Server::tcp_keepalive` applies only to the listener tonic binds itself.)
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const TCP_KEEPALIVE_RETRIES: u32 = 3;
/// Connections accepted (or refused) per poll before yielding: a flood of refusals must not
/// starve the connections served on the same thread.
const ACCEPTS_PER_POLL: usize = 32;

/// Bounds for one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections; one more is closed at once.
    pub max_connections: usize,
    /// Close a connection after this long without a byte read or written (`None`: never).
    pub idle_timeout: Option<Duration>,
}

impl Limits {
    /// No cap and no idle timeout (the Unix socket: local and permission-protected).
    pub const NONE: Limits = Limits { max_connections: usize::MAX, idle_timeout: None };
}

/// One listener's counters, exported as `lbd_listener_*{listener="<name>"}`.
#[derive(Debug)]
pub struct ListenerStats {
    /// The configuration key of the listener (`api_listen`, `metrics_listen`, `api_socket`).
    pub name: &'static str,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub rejected: AtomicU64,
    /// Accept errors (each followed by [`ACCEPT_BACKOFF`]).
    pub accept_errors: AtomicU64,
    /// Connections closed for want of traffic.
    pub idle_closed: AtomicU64,
}

impl ListenerStats {
    pub fn new(name: &'static str) -> Arc<ListenerStats> {
        Arc::new(ListenerStats {
            name,
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
        })
    }
}

/// A listening socket [`Incoming`] can take connections from.
pub trait Accept {
    type Io: AsyncRead + AsyncWrite + Unpin;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>>;
}

impl Accept for TcpListener {
    type Io = TcpStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let (s, _) = ready!(TcpListener::poll_accept(self, cx))?;
        // Best effort: a connection without these options still works.
        let _ = s.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE).with_interval(TCP_KEEPALIVE_INTERVAL).with_retries(TCP_KEEPALIVE_RETRIES);
        let _ = socket2::SockRef::from(&s).set_tcp_keepalive(&keepalive);
        Poll::Ready(Ok(s))
    }
}

impl Accept for UnixListener {
    type Io = UnixStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        UnixListener::poll_accept(self, cx).map_ok(|(s, _)| s)
    }
}

/// Errors that concern one connection only (it went away before it was accepted): try the
/// next one at once, without a log line.
fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock)
}

/// The connections of one listener, within [`Limits`]; the stream never ends and never
/// yields an error (it is dropped when the server stops).
#[derive(Debug)]
pub struct Incoming<A> {
    accept: A,
    limits: Limits,
    stats: Arc<ListenerStats>,
    backoff: Option<Pin<Box<Sleep>>>,
    errors: RateLimit,
    refusals: RateLimit,
}

impl<A: Accept + Unpin> Incoming<A> {
    pub fn new(accept: A, limits: Limits, stats: Arc<ListenerStats>) -> Incoming<A> {
        Incoming { accept, limits, stats, backoff: None, errors: RateLimit::new(LOG_EVERY), refusals: RateLimit::new(LOG_EVERY) }
    }

    fn refused(&mut self) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.refusals.hit(Instant::now().into_std()) {
            tracing::warn!(
                "{}: api_max_connections ({}) connections are open: closed a new one at once{n} (all counted in lbd_listener_rejected_total)",
                self.stats.name,
                self.limits.max_connections,
            );
        }
    }

    fn failed(&mut self, e: &io::Error) {
        self.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.errors.hit(Instant::now().into_std()) {
            tracing::warn!(
                "{}: accept: {e}; retrying every {} ms{n} (all counted in lbd_listener_accept_errors_total)",
                self.stats.name,
                ACCEPT_BACKOFF.as_millis(),
            );
        }
        self.backoff = Some(Box::pin(sleep(ACCEPT_BACKOFF)));
    }
}

impl<A: Accept + Unpin> Stream for Incoming<A> {
    type Item = Result<Conn<A::Io>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        for _ in 0..ACCEPTS_PER_POLL {
            if let Some(b) = &mut this.backoff {
                ready!(b.as_mut().poll(cx));
                this.backoff = None;
            }
            match ready!(this.accept.poll_accept(cx)) {
                Ok(io) => match Slot::take(&this.stats, this.limits.max_connections) {
                    Some(slot) => return Poll::Ready(Some(Ok(Conn::new(io, this.limits.idle_timeout, slot)))),
                    None => {
                        drop(io);
                        this.refused();
                    }
                },
                Err(e) if transient(&e) => {}
                Err(e) => this.failed(&e),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One open connection counted against its listener's cap, until dropped.
#[derive(Debug)]
struct Slot(Arc<ListenerStats>);

impl Slot {
    fn take(stats: &Arc<ListenerStats>, max: usize) -> Option<Slot> {
        // `fetch_update` is `try_update` in Rust newer than the workspace's rust-version.
        #[allow(deprecated)]
        stats.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Slot(Arc::clone(stats)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct Idle {
    after: Duration,
    /// Last byte read or written.
    last: Instant,
    /// Fires at `last + after` or earlier (then it re-arms).
    timer: Pin<Box<Sleep>>,
    expired: bool,
}

/// An accepted connection that fails with `TimedOut` once idle too long. Drive it from one
/// task (hyper and the metrics responder do): the timer wakes the task that polled it last.
#[derive(Debug)]
pub struct Conn<S> {
    io: S,
    idle: Option<Idle>,
    slot: Slot,
}

impl<S> Conn<S> {
    fn new(io: S, idle_timeout: Option<Duration>, slot: Slot) -> Conn<S> {
        let idle = idle_timeout.map(|after| Idle { after, last: Instant::now(), timer: Box::pin(sleep(after)), expired: false });
        Conn { io, idle, slot }
    }

    fn touch(&mut self) {
        if let Some(i) = &mut self.idle {
            i.last = Instant::now();
        }
    }

    /// For when the inner stream is not ready: the error once the connection has been idle
    /// for the timeout, else pending (and woken when the timeout would pass).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(i) = &mut self.idle else { return Poll::Pending };
        while !i.expired {
            ready!(i.timer.as_mut().poll(cx));
            let deadline = i.last + i.after;
            if deadline > i.timer.deadline() {
                i.timer.as_mut().reset(deadline);
            } else {
                i.expired = true;
                self.slot.0.idle_closed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, format!("{}: no traffic for {} s", self.slot.0.name, i.after.as_secs())))
    }

    /// Records traffic when `moved` says bytes went through; pending turns into the idle
    /// error once it is time.
    fn after<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>, moved: impl FnOnce(&T) -> bool) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(Ok(v)) => {
                if moved(&v) {
                    self.touch();
                }
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len() > before;
        this.after(cx, r, |()| read)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        this.after(cx, r, |n| *n > 0)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after(cx, r, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.after(cx, r, |()| false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The inner stream's connect info (tonic's `TcpConnectInfo`: `Request::remote_addr` works).
impl<S: Connected> Connected for Conn<S> {
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> S::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
