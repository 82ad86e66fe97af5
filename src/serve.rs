//! The HTTP accept loop: `axum::serve` plus the limits it lacks. Without them
//! a client that connects and says nothing, or stays idle between requests,
//! holds a connection (and a file descriptor) forever, and enough of them
//! starve everyone else. Here:
//!
//! - a connection that sends nothing within `first_byte` is closed;
//! - hyper's header read timeout bounds a request head once it has started;
//! - a connection with no request in flight for `idle` is closed (HTTP/1.1
//!   keep-alive and HTTP/2 alike; HTTP/2 also pings to find dead peers); an
//!   answer being sent (a streamed export) keeps its request in flight while
//!   the peer takes its bytes, and one the peer stops taking for `idle`
//!   closes the connection;
//! - at most `max_connections` are open: past that the loop stops accepting
//!   and new clients wait in the kernel's backlog;
//! - failed accepts (out of file descriptors) back off instead of spinning.

mod activity;
pub mod request_id;

use activity::{Activity, Watched};
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Largest request head (request line + headers) a request may have.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a connection closed for idleness may take to say goodbye (an
/// HTTP/2 peer acknowledges the GOAWAY's ping) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// From accept to the first byte received.
    pub first_byte: Duration,
    /// From a request head's first byte to its end.
    pub header: Duration,
    /// With no request in flight, from the last request's end (or the first byte).
    pub idle: Duration,
    /// Off: HTTP/1.1 only (an HTTP/2 preface is refused as a bad request).
    pub http2: bool,
}

/// Serves `app` until `cancel` fires, then waits for open connections to
/// finish their in-flight requests (the caller bounds that wait).
pub async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken, limits: Limits) {
    let app = app.layer(axum::middleware::from_fn(head_within_bound));
    let builder = builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        // A slot before accepting: at the cap, clients wait in the backlog.
        let slot = tokio::select! {
            _ = cancel.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    (stream, peer)
                }
                Err(e) => {
                    tokio::time::sleep(backoff.failed(&e)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let tracked = activity.clone();
        // The peer's address, for handlers that record it (the refusal journal).
        let with_peer = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            req
        });
        let service = ServiceExt::<Request<Incoming>>::map_future(with_peer, move |response| {
            let in_flight = tracked.begin();
            async move {
                let r = response.await;
                r.map(|answer| {
                    let in_flight = in_flight.sending();
                    answer.map(|body| {
                        axum::body::Body::new(Sending {
                            body,
                            _in_flight: in_flight,
                        })
                    })
                })
            }
        });
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let conn = builder
            .serve_connection(io, TowerToHyperService::new(service))
            .into_owned();
        connections.spawn(drive(conn, activity, limits, cancel.clone(), slot));
    }
    // Closed before the wait: a new connection during shutdown is refused at
    // once (and goes to another replica) instead of hanging in the backlog.
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// hyper bounds a head by its read buffer, which can hold more than
/// `MAX_HEAD_BYTES` by the time a head is parsed: a larger head is refused
/// here, before any handler sees (or stores) it.
async fn head_within_bound(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    if head_bytes(&req) > MAX_HEAD_BYTES {
        return axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.into_response();
    }
    next.run(req).await
}

/// A request head's size as HTTP/1.1 sends it: `METHOD target HTTP/1.1`
/// and each `name: value`, each line with its CRLF.
fn head_bytes<B>(req: &axum::http::Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    req.headers()
        .iter()
        .fold(line, |n, (name, value)| n + name.as_str().len() + 2 + value.len() + 2)
}

fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    if !limits.http2 {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(limits.idle)
        .keep_alive_timeout(limits.header);
    builder
}

/// Runs one connection to its end, closing it when silent or idle too long
/// or when the server shuts down. Holds its slot until then.
async fn drive<C>(
    conn: C,
    activity: Arc<Activity>,
    limits: Limits,
    cancel: CancellationToken,
    _slot: OwnedSemaphorePermit,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    // Set when closed for idleness: a peer that ignores the close is dropped.
    let mut drop_at: Option<Instant> = None;
    loop {
        let wake = drop_at.unwrap_or_else(|| activity.next_check(Instant::now(), &limits));
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = cancel.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(wake), if !closing || drop_at.is_some() => {
                if drop_at.is_some() {
                    return;
                }
                if activity.is_idle(Instant::now(), &limits) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    drop_at = Some(Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}

/// An answer's body, holding its request in flight until it is sent (or
/// dropped with its connection).
struct Sending {
    body: axum::body::Body,
    _in_flight: activity::InFlight,
}

impl hyper::body::Body for Sending {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Pauses after failed accepts (usually: out of file descriptors, which only
/// closing connections cures): doubling from 10 ms to 1 s, and a warning for
/// the 1st, 2nd, 4th, 8th... failure in a row rather than one per attempt.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if self.failures.is_power_of_two() {
            tracing::warn!(error = %e, failures = self.failures, "accept failed; backing off");
        }
        Self::pause(self.failures)
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting again");
            self.failures = 0;
        }
    }

    fn pause(failures: u32) -> Duration {
        Duration::from_millis(10u64 << failures.saturating_sub(1).min(7)).min(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_doubling_up_to_a_second() {
        let mut b = AcceptBackoff::default();
        let e = std::io::Error::other("Too many open files");
        let pauses: Vec<u64> = (0..10).map(|_| b.failed(&e).as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(&e), Duration::from_millis(10));
    }

    /// Four connections, 5 s for the first byte and the head, `idle` after that.
    fn limits(idle: Duration) -> Limits {
        Limits {
            max_connections: 4,
            first_byte: Duration::from_secs(5),
            header: Duration::from_secs(5),
            idle,
            http2: false,
        }
    }

    /// Ten chunks, 150 ms apart: 1.5 s of answer on a listener idle after 300 ms.
    async fn slow_answer() -> axum::body::Body {
        use futures::StreamExt as _;
        let chunks = futures::stream::iter(0..10).then(|_| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(b"0123456789"))
        });
        axum::body::Body::from_stream(chunks)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_streamed_for_longer_than_the_idle_timeout_arrives_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = limits(Duration::from_millis(300));
        let app = Router::new().route("/", axum::routing::get(slow_answer));
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, cancel.clone(), limits));
        let body = reqwest::get(format!("http://{addr}/")).await.unwrap().bytes().await;
        assert_eq!(body.expect("the whole answer").len(), 100);
        cancel.cancel();
        server.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_shutting_down_a_new_connection_is_refused_not_left_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = limits(Duration::from_secs(5));
        let app = Router::new().route("/", axum::routing::get(slow_answer));
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, cancel.clone(), limits));
        // A request in flight keeps the server draining for 1.5 s.
        let in_flight =
            tokio::spawn(async move { reqwest::get(format!("http://{addr}/")).await.unwrap().bytes().await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await;
        assert!(
            matches!(refused, Ok(Err(_))),
            "connecting must fail at once: {refused:?}"
        );
        assert_eq!(in_flight.await.unwrap().expect("the answer in flight").len(), 100);
        server.await.unwrap();
    }
}
