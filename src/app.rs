//! Wiring: `Application::build` opens the store, binds both listeners (port 0
//! in tests) and builds the shared state; `run` serves until the cancellation
//! token fires, then finishes in-flight requests and stops the worker.

use crate::config::Settings;
use crate::inbound::batcher::Batcher;
use crate::inbound::issued::RecentTokens;
use crate::inbound::journal::Journal;
use crate::inbound::suspect::DoctorKeys;
use crate::metrics::Metrics;
use crate::secret::redact_url;
use crate::serve::Limits;
use crate::state::{AppState, Inner};
use crate::store;
use crate::telemetry::clip;
use anyhow::Context;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub struct Application {
    public: TcpListener,
    internal: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let inbound = settings.inbound_credentials()?;
        let finpay_creds = settings.finpay_credentials()?;
        let db = &settings.database;
        tracing::info!(database = %redact_url(db.url.expose()), "opening the store");
        let timeout = Duration::from_secs(db.acquire_timeout_secs.max(1));
        let store = match store::connect(db.url.expose(), db.max_connections, db.acquire_timeout_secs).await {
            Ok(store) => store,
            Err(e) => return Err(store::explain(db.url.expose(), "opening", &e, timeout).await),
        };
        if db.migrate_on_start {
            if let Err(e) = store.migrate().await {
                return Err(store::explain(db.url.expose(), "applying migrations to", &e, timeout).await);
            }
        } else {
            store::ensure_migrated(store.as_ref(), db.url.expose(), timeout).await?;
        }
        if inbound.is_none() {
            tracing::warn!(
                "SNAP endpoints are DISABLED: set FINPAY_QRIS__INBOUND__CLIENT_ID, __CLIENT_SECRET and __PUBLIC_KEY \
                 (token and notify answer 5xx General Error until then)"
            );
        }
        // Off is a valid state (the zero-configuration start): said at WARN,
        // with how to turn it on, never as an ERROR.
        if settings
            .api
            .keys
            .iter()
            .chain(&settings.api.read_keys)
            .all(|k| k.is_empty())
        {
            tracing::warn!(
                "internal API is DISABLED: set FINPAY_QRIS__API__KEYS (comma-separated, at least 32 characters each); \
                 /api/v1 answers 503 until then"
            );
        }
        if finpay_creds.is_none() {
            tracing::warn!(
                "Finpay client is OFF: set FINPAY_QRIS__FINPAY__BASE_URL, __CLIENT_ID, __CLIENT_SECRET, __PRIVATE_KEY and \
                 __MERCHANT_ID to create QR payments and refunds (they answer 503 until then)"
            );
        }
        let metrics = Arc::new(Metrics::new());
        metrics.set_business(settings.metrics.business);
        let observer_metrics = metrics.clone();
        // Stored notifications usually raise events: the sender looks at once
        // after each batch. (On SQLite its claim queues for the one write
        // connection behind the notify writer, in turn.)
        let events_wakeup = Arc::new(tokio::sync::Notify::new());
        let wake_sender = events_wakeup.clone();
        // SQLite takes one writer at a time: a second writer would only queue
        // for its one write connection, so it gets one.
        let writers = match store.backend() {
            store::Backend::Sqlite => 1,
            store::Backend::Postgres => settings.server.writers,
        };
        let batcher = Batcher::start(
            store.clone(),
            writers,
            settings.server.max_batch,
            Some(Arc::new(move |n, took| {
                observer_metrics.observe("finpay_qris_notify_batch_size", &[], n as f64);
                observer_metrics.observe_duration("finpay_qris_notify_batch_duration_seconds", &[], took);
                wake_sender.notify_one();
            })),
        );
        let recent_tokens = Arc::new(RecentTokens::new(settings.refusals.recent_tokens));
        let doctor = DoctorKeys::new(
            inbound.as_ref(),
            finpay_creds.as_ref(),
            &settings,
            recent_tokens.clone(),
        );
        let journal = Journal::start(store.clone(), &settings.refusals, metrics.clone(), doctor);
        let finpay =
            finpay_creds.map(|c| Arc::new(crate::finpay::FinpayClient::new(c, &settings.finpay, metrics.clone())));
        let public = TcpListener::bind(&settings.server.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (FINPAY_QRIS__SERVER__LISTEN)",
                settings.server.listen
            )
        })?;
        let internal = TcpListener::bind(&settings.api.listen)
            .await
            .with_context(|| format!("cannot listen on {} (FINPAY_QRIS__API__LISTEN)", settings.api.listen))?;
        let state = AppState::new(Inner {
            settings,
            store,
            inbound,
            tokens: Default::default(),
            recent_tokens,
            journal,
            batcher,
            metrics,
            finpay,
            events_wakeup,
        });
        Ok(Self {
            public,
            internal,
            state,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().expect("bound listener has an address")
    }

    pub fn internal_addr(&self) -> SocketAddr {
        self.internal.local_addr().expect("bound listener has an address")
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `cancel` fires; then stops accepting, finishes in-flight
    /// requests (bounded by `server.shutdown_grace_secs`) and returns.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let Application {
            public,
            internal,
            state,
        } = self;
        let internal_addr = internal.local_addr()?;
        tracing::info!(
            public = %public.local_addr()?,
            internal = %internal_addr,
            console = %format!("http://{internal_addr}/console"),
            "finpay-qris listening"
        );
        crate::events::apply_configuration(&state)
            .await
            .map_err(|e| anyhow::anyhow!("storing the webhook endpoint from the configuration: {e}"))?;
        let mut workers = crate::worker::spawn(state.clone(), cancel.clone());
        workers.extend(crate::events::delivery::spawn(state.clone(), cancel.clone()));
        tokio::spawn(housekeeping(state.clone(), cancel.clone()));
        tokio::spawn(crate::worker::run_retention(state.clone(), cancel.clone()));
        tokio::spawn(crate::metrics::state::run(state.clone(), cancel.clone()));

        let public_app = with_layers(crate::inbound::router(state.clone()), state.clone(), snap_panic);
        let internal_app = with_layers(crate::api::router(state.clone()), state.clone(), problem_panic);
        let grace = Duration::from_secs(state.settings.shutdown_grace_secs());
        let (public_limits, internal_limits) = connection_limits(&state.settings);
        let both = async {
            tokio::join!(
                crate::serve::serve(public, public_app, cancel.clone(), public_limits),
                crate::serve::serve(internal, internal_app, cancel.clone(), internal_limits),
            )
        };
        tokio::select! {
            _ = both => {}
            _ = async { cancel.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("shutdown grace period over; dropping remaining connections");
            }
        }
        // Side by side: the stop's time is the slowest one's, at most 5 s.
        let _ = tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(workers)).await;
        tracing::info!("finpay-qris stopped");
        Ok(())
    }
}

impl Settings {
    pub fn shutdown_grace_secs(&self) -> u64 {
        self.server.shutdown_grace_secs
    }
}

/// The public listener speaks HTTP/1.1 only (as Finpay does); the internal
/// one also HTTP/2.
fn connection_limits(settings: &Settings) -> (Limits, Limits) {
    let server = &settings.server;
    let public = Limits {
        max_connections: server.max_connections,
        first_byte: Duration::from_millis(server.first_byte_timeout_ms),
        // Slow senders get this long to deliver their request head.
        header: Duration::from_secs(server.request_timeout_secs.max(1)),
        idle: Duration::from_millis(server.idle_timeout_ms),
        http2: false,
    };
    let internal = Limits {
        max_connections: settings.api.max_connections,
        http2: true,
        ..public
    };
    (public, internal)
}

fn with_layers(router: Router, state: AppState, on_panic: fn() -> Response) -> Router {
    let request_id = HeaderName::from_static(crate::serve::request_id::HEADER);
    let hot_paths: Arc<[String]> = state.settings.inbound.notify_paths.clone().into();
    router
        // Innermost: a panic's answer is timed, traced and carries the request id.
        .layer(catch_panics(on_panic))
        .layer(middleware::from_fn_with_state(state, record_latency))
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| request_span(req, &hot_paths)))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::map_request(crate::serve::request_id::keep_usable))
}

/// A handler that panicked is answered as its listener answers any fault of
/// ours (`on_panic`), and logged; nothing it did is acknowledged.
pub(crate) fn catch_panics(
    on_panic: fn() -> Response,
) -> CatchPanicLayer<impl ResponseForPanic<ResponseBody = axum::body::Body>> {
    CatchPanicLayer::custom(move |panic: Box<dyn std::any::Any + Send>| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        tracing::error!(panic = %what, "request handler panicked");
        on_panic()
    })
}

/// The public listener's answer outside the SNAP routes (which answer with
/// their own service code): SNAP's General Error (Finpay retries).
fn snap_panic() -> Response {
    crate::inbound::error::snap_response(&crate::snap::codes::SnapStatus::general_error(0), None)
}

/// The internal API's answer: its `internal` problem.
fn problem_panic() -> Response {
    axum::response::IntoResponse::into_response(crate::api::error::ApiError::internal())
}

/// The span every request runs in. On the notify route it is debug-level:
/// an info span per notification cost about 25 µs of server CPU at load, and
/// the notify handler names the `X-EXTERNAL-ID` in its own events (refusals,
/// storage errors), so nothing an operator needs at info is lost. Field
/// values are only computed when the span is enabled; the client's are clipped.
fn request_span(req: &Request, hot_paths: &[String]) -> tracing::Span {
    let route = || req.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or("");
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
    if hot_paths.iter().any(|p| p == route()) {
        tracing::debug_span!("request", method = %clip(req.method().as_str()), route = route(), request_id = %clip(header("x-request-id")), external_id = %clip(header("x-external-id")))
    } else {
        tracing::info_span!("request", method = %clip(req.method().as_str()), route = route(), request_id = %clip(header("x-request-id")), external_id = %clip(header("x-external-id")))
    }
}

async fn record_latency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    st.metrics.observe_duration(
        "finpay_qris_http_request_duration_seconds",
        &[("route", &route)],
        started.elapsed(),
    );
    resp
}

/// Purges expired tokens and samples pool usage.
async fn housekeeping(state: AppState, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (used, idle) = state.store.pool_usage();
        state
            .metrics
            .set_gauge("finpay_qris_db_pool_connections", &[("state", "in_use")], used as f64);
        state
            .metrics
            .set_gauge("finpay_qris_db_pool_connections", &[("state", "idle")], idle as f64);
        // Keep expired tokens a day for forensics, then drop them.
        if let Err(e) = state
            .store
            .purge_expired_tokens(store::now() - chrono::Duration::days(1))
            .await
        {
            tracing::debug!(error = %e, "token purge skipped");
        }
        // Idempotency keys protect retries for a day; then they are dropped.
        if let Err(e) = state
            .store
            .purge_idempotency(store::now() - chrono::Duration::hours(crate::api::idempotency::KEPT_HOURS))
            .await
        {
            tracing::debug!(error = %e, "idempotency purge skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    /// Answers whether the request's span would be recorded.
    async fn span_recorded() -> &'static str {
        if tracing::Span::current().is_disabled() {
            "off"
        } else {
            "on"
        }
    }

    async fn span_at_info(path: &str) -> String {
        let hot: Arc<[String]> = vec!["/v1.0/qr/qr-mpm-notify".to_string()].into();
        let app = Router::new()
            .route("/v1.0/qr/qr-mpm-notify", post(span_recorded))
            .route("/v1.0/access-token/b2b", post(span_recorded))
            .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| request_span(req, &hot)));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let req = Request::post(path).body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), 64).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_notify_route_creates_no_request_span_at_info() {
        assert_eq!(span_at_info("/v1.0/qr/qr-mpm-notify").await, "off");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn other_routes_keep_their_request_span_at_info() {
        assert_eq!(span_at_info("/v1.0/access-token/b2b").await, "on");
    }

    /// A log sink the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_huge_external_id_adds_a_clipped_value_not_sixty_kilobytes_to_the_log() {
        let hot: Arc<[String]> = Vec::new().into();
        let app = Router::new()
            .route("/v1.0/access-token/b2b", post(|| async { tracing::info!("handled") }))
            .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| request_span(req, &hot)));
        let log = Captured::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let huge = "7".repeat(60_000);
        let req = Request::post("/v1.0/access-token/b2b")
            .header("x-external-id", &huge)
            .header("x-request-id", &huge)
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap();
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("handled"), "{text}");
        assert!(text.contains("…[60000 bytes]"), "{text}");
        assert!(text.len() < 1_000, "{} bytes logged", text.len());
    }

    /// The status, content type and body a panicking handler is answered with.
    async fn panicking(on_panic: fn() -> Response) -> (axum::http::StatusCode, String, serde_json::Value) {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new().route("/", post(boom)).layer(catch_panics(on_panic));
        let resp = app
            .oneshot(Request::post("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ctype = resp.headers()[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        (status, ctype, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panic_on_the_internal_api_is_answered_as_its_internal_problem() {
        let (status, ctype, body) = panicking(problem_panic).await;
        assert_eq!(status, 500);
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(body["status"], 500, "{body}");
    }

    #[tokio::test]
    async fn a_panic_on_the_public_listener_is_answered_with_snaps_general_error() {
        let (status, ctype, body) = panicking(snap_panic).await;
        assert_eq!(status, 500);
        assert_eq!(ctype, "application/json");
        assert_eq!(body["responseCode"], "5000000", "{body}");
    }

    #[tokio::test]
    async fn a_panic_in_a_snap_route_carries_that_routes_service_code() {
        let (status, _, body) = panicking(crate::inbound::notify::on_panic).await;
        assert_eq!(status, 500);
        assert_eq!(body["responseCode"], "5005200", "{body}");
        let (status, _, body) = panicking(crate::inbound::token::on_panic).await;
        assert_eq!(status, 500);
        assert_eq!(body["responseCode"], "5007300", "{body}");
    }
}
