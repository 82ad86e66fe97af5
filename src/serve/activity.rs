//! What a connection is doing, as far as closing it for silence or idleness
//! goes: whether a byte has arrived, when a request last began or ended, and
//! how many are in flight (an answer being sent counts, while the peer takes
//! its bytes). Bytes received after the first do not count as activity, so a
//! peer cannot keep an idle connection open by trickling pings or padding.

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
    /// Requests in flight whose handler has answered: their body is being sent.
    sending: AtomicUsize,
    /// Milliseconds after `opened` of the latest byte the peer took (or of
    /// the latest answer's start).
    last_write: AtomicU64,
}

/// A request in flight, from its head until its answer's body is sent; its
/// end counts as activity.
pub struct InFlight {
    activity: Arc<Activity>,
    sending: bool,
}

impl InFlight {
    /// The handler has answered: the request stays in flight while its body
    /// is sent (a long streamed export is not idleness).
    pub fn sending(mut self) -> Self {
        self.activity.sending.fetch_add(1, Relaxed);
        self.activity.wrote();
        self.sending = true;
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.sending {
            self.activity.sending.fetch_sub(1, Relaxed);
        }
        self.activity.in_flight.fetch_sub(1, Relaxed);
        self.activity.touch();
    }
}

impl Activity {
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            last: AtomicU64::new(SILENT),
            in_flight: AtomicUsize::new(0),
            sending: AtomicUsize::new(0),
            last_write: AtomicU64::new(0),
        }
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.touch();
        InFlight {
            activity: self.clone(),
            sending: false,
        }
    }

    fn since_opened(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis())
            .unwrap_or(SILENT - 1)
            .min(SILENT - 1)
    }

    fn touch(&self) {
        self.last.store(self.since_opened(), Relaxed);
    }

    fn wrote(&self) {
        self.last_write.store(self.since_opened(), Relaxed);
    }

    /// When the connection becomes idle if nothing happens until then.
    fn idle_at(&self, limits: &Limits) -> Instant {
        match self.last.load(Relaxed) {
            SILENT => self.opened + limits.first_byte,
            ms => self.opened + Duration::from_millis(ms) + limits.idle,
        }
    }

    /// Idle: nothing in flight for `idle`; or every request in flight is
    /// sending its answer and the peer has taken none of it for `idle` (it
    /// stopped reading, and would otherwise hold the connection, and what
    /// the answer streams from, for good).
    pub fn is_idle(&self, now: Instant, limits: &Limits) -> bool {
        let in_flight = self.in_flight.load(Relaxed);
        if in_flight == 0 {
            return now >= self.idle_at(limits);
        }
        let stalled_since = self.opened + Duration::from_millis(self.last_write.load(Relaxed));
        in_flight == self.sending.load(Relaxed) && now >= stalled_since + limits.idle
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

/// A TCP stream that reports its first received byte, and each write the
/// peer takes, to its [`Activity`].
pub struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// Whether the first byte has arrived (later ones are not activity).
    heard: bool,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            activity,
            heard: false,
        }
    }

    fn took(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.wrote();
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && !self.heard {
            self.heard = true;
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.took(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.took(&polled);
        polled
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

    #[test]
    fn an_answer_being_sent_keeps_the_connection_until_the_peer_stops_reading() {
        let a = Arc::new(Activity::new());
        let l = limits();
        let sending = a.begin().sending();
        a.last_write.store(50_000, Relaxed);
        let at = |secs| a.opened + Duration::from_secs(secs);
        assert!(!a.is_idle(at(59), &l), "the peer took a byte 9 s ago");
        assert!(a.is_idle(at(61), &l), "nothing taken for the idle timeout");
        // A second request whose handler is still running keeps it open.
        let handling = a.begin();
        assert!(!a.is_idle(at(61), &l));
        drop((handling, sending));
        // Both ended just now (the real clock): idle counts from then again.
        assert!(!a.is_idle(at(9), &l));
        assert!(a.is_idle(at(11), &l));
    }
}
