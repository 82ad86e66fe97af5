//! What a connection is doing, as far as closing it for silence or idleness
//! goes: whether a byte has arrived, when a request last began or ended, and
//! how many are in flight. Bytes after the first do not count as activity, so
//! a peer cannot keep an idle connection open by trickling pings or padding.

use super::Limits;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// `last` before the first byte.
const SILENT: u64 = u64::MAX;

pub struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the first byte or the latest request
    /// start or end; `SILENT` until the first byte.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

/// A request in flight; its end counts as activity.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
        self.0.touch();
    }
}

impl Activity {
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            last: AtomicU64::new(SILENT),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(SILENT - 1);
        self.last.store(ms.min(SILENT - 1), Relaxed);
    }

    /// When the connection becomes idle if nothing happens until then.
    fn idle_at(&self, limits: &Limits) -> Instant {
        match self.last.load(Relaxed) {
            SILENT => self.opened + limits.first_byte,
            ms => self.opened + Duration::from_millis(ms) + limits.idle,
        }
    }

    pub fn is_idle(&self, now: Instant, limits: &Limits) -> bool {
        self.in_flight.load(Relaxed) == 0 && now >= self.idle_at(limits)
    }

    /// When to look again. Activity only moves the deadline later, except a
    /// first byte when `idle` is shorter than `first_byte`: a silent
    /// connection is looked at by then too. A request in flight is bounded by
    /// other timeouts, so it only defers the check.
    pub fn next_check(&self, now: Instant, limits: &Limits) -> Instant {
        if self.in_flight.load(Relaxed) > 0 {
            return now + limits.idle;
        }
        let at = match self.last.load(Relaxed) {
            SILENT => self.opened + limits.first_byte.min(limits.idle),
            _ => self.idle_at(limits),
        };
        at.max(now)
    }
}

/// A TCP stream that reports its first received byte to its [`Activity`].
pub struct Watched {
    stream: TcpStream,
    activity: Option<Arc<Activity>>,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            activity: Some(activity),
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            if let Some(activity) = self.activity.take() {
                activity.touch();
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 1,
            first_byte: Duration::from_secs(1),
            header: Duration::from_secs(5),
            idle: Duration::from_secs(10),
            http2: false,
        }
    }

    #[test]
    fn a_silent_connection_is_idle_after_the_first_byte_deadline_and_a_busy_one_never() {
        let a = Arc::new(Activity::new());
        let l = limits();
        assert!(!a.is_idle(a.opened, &l));
        assert!(a.is_idle(a.opened + Duration::from_secs(1), &l));
        let request = a.begin();
        assert!(!a.is_idle(a.opened + Duration::from_secs(100), &l));
        drop(request);
        // Idle counts from the request's end, with the keep-alive timeout.
        assert!(!a.is_idle(a.opened + Duration::from_secs(9), &l));
        assert!(a.is_idle(a.opened + Duration::from_secs(11), &l));
    }

    #[test]
    fn a_silent_connection_is_looked_at_by_the_idle_timeout_when_that_is_shorter() {
        let a = Arc::new(Activity::new());
        let l = Limits {
            idle: Duration::from_millis(300),
            ..limits()
        };
        assert_eq!(a.next_check(a.opened, &l), a.opened + Duration::from_millis(300));
        assert!(!a.is_idle(a.opened + Duration::from_millis(300), &l));
    }
}
