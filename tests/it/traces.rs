//! Traces and structured logs, end to end: the service runs as its own
//! process (the OpenTelemetry variables are read as in production) and
//! exports to an OTLP/HTTP receiver in this test, which decodes what it gets
//! with `opentelemetry-proto`. One notification and one payment created
//! through the API must show up as the documented spans, and the JSON log
//! must carry the documented fields and no secret.

use crate::common::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REQUEST_ID: &str = "req-otlp-0001";

/// Spans received, with the `service.name` of their resource.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// Keeps the spans of one OTLP export request.
fn record(got: &Received, export: &[u8]) {
    let req = ExportTraceServiceRequest::decode(export).expect("an OTLP protobuf export request");
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| string(kv.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                got.lock().unwrap().push((service.clone(), span));
            }
        }
    }
}

/// An OTLP/HTTP receiver on port 0: `POST /v1/traces`, protobuf.
async fn otlp_http_receiver() -> (String, Received) {
    async fn traces(State(got): State<Received>, body: Bytes) -> ([(&'static str, &'static str); 1], Vec<u8>) {
        record(&got, &body);
        ([("content-type", "application/x-protobuf")], Vec::new())
    }
    let got = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

/// An OTLP/gRPC receiver on port 0 (plain-text HTTP/2): the trace service's
/// `Export`, each message length-prefixed as gRPC frames it, answered with an
/// empty message and `grpc-status: 0`.
async fn otlp_grpc_receiver() -> (String, Received) {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    type Frames = Vec<Result<Frame<Bytes>, std::convert::Infallible>>;
    async fn export(
        got: Received,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<
        hyper::Response<
            StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>>>,
        >,
        std::convert::Infallible,
    > {
        assert_eq!(
            req.uri().path(),
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        );
        let body = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body[0], 0, "uncompressed");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        record(&got, &body[5..5 + len]);
        let mut trailers = axum::http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames: Frames = vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ];
        let resp = hyper::Response::builder()
            .header("content-type", "application/grpc")
            .body(StreamBody::new(futures::stream::iter(frames)))
            .unwrap();
        Ok(resp)
    }
    let got = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = got.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let got = accepted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| export(got.clone(), req));
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), got)
}

fn string(v: &AnyValue) -> Option<String> {
    match v {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| string(kv.value.as_ref()?.value.as_ref()?))
}

struct Server {
    child: Child,
    public: u16,
    internal: u16,
    log: tempfile::NamedTempFile,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: Vec<(String, String)>, endpoint: &str, protocol: &str) -> Server {
    let (public, internal) = (free_port(), free_port());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpay-qris"));
    cmd.arg("serve").stdout(Stdio::null()).stderr(log.reopen().unwrap());
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("FINPAY_QRIS__SERVER__LISTEN", format!("127.0.0.1:{public}"))
        .env("FINPAY_QRIS__API__LISTEN", format!("127.0.0.1:{internal}"))
        .env("FINPAY_QRIS__LOG__FORMAT", "json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_SERVICE_NAME", "finpay-qris-under-test")
        // Export within a tenth of a second instead of five.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let child = cmd.spawn().expect("start finpay-qris");
    Server {
        child,
        public,
        internal,
        log,
    }
}

async fn wait_ready(http: &reqwest::Client, port: u16) {
    eventually("the server to be ready", Duration::from_secs(30), || async {
        let r = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await
}

fn spans_named(got: &Received, name: &str) -> Vec<Span> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.name == name)
        .map(|(_, s)| s.clone())
        .collect()
}

/// Sends a static-QR notification with [`REQUEST_ID`]; returns the token used.
async fn notify_with_request_id(http: &reqwest::Client, server: &Server) -> String {
    let token = token_request_at(
        http,
        &format!("http://127.0.0.1:{}{TOKEN_PATH}", server.public),
        CLIENT_ID,
        &now_ts(),
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = notify_body("INV-OTLP", "FP-OTLP", "00", "100.00");
    let url = format!("http://127.0.0.1:{}{NOTIFY_PATH}", server.public);
    let resp = signed_notify(http, &url, NOTIFY_PATH, &token, &unique_digits(), &body, &now_ts())
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    token
}

/// The notification's `request` span, once its trace has its `commit` too.
async fn notify_trace(got: &Received) -> Span {
    eventually("the notify request's spans", Duration::from_secs(20), || async {
        let requests = spans_named(got, "request");
        let request = requests
            .into_iter()
            .find(|s| attribute(s, "request_id").as_deref() == Some(REQUEST_ID))?;
        let commit = spans_named(got, "commit")
            .into_iter()
            .any(|s| s.trace_id == request.trace_id);
        commit.then_some(request)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_exported_over_grpc_when_the_protocol_says_so() {
    let (otlp, got) = otlp_grpc_receiver().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = start(base_env(&db.url), &otlp, "grpc");
    let http = reqwest::Client::new();
    wait_ready(&http, server.public).await;
    notify_with_request_id(&http, &server).await;
    let request = notify_trace(&got).await;
    assert_eq!(attribute(&request, "route").as_deref(), Some(NOTIFY_PATH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_and_a_finpay_call_are_exported_as_otlp_spans_and_logged_with_their_ids() {
    let (otlp, got) = otlp_http_receiver().await;
    let sim = spawn_simulator(|_| {}).await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut env = base_env(&db.url);
    finpay_env(&mut env, sim.base_url());
    let mut server = start(env, &otlp, "http/protobuf");
    let http = reqwest::Client::new();
    wait_ready(&http, server.public).await;

    let token = notify_with_request_id(&http, &server).await;
    // A payment through the API: Finpay is called to generate its QR, and
    // the worker checks it a second later.
    let created = http
        .post(format!("http://127.0.0.1:{}/api/v1/payments", server.internal))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({"amount": "25000.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    let request = notify_trace(&got).await;
    let in_trace = |name: &str| {
        spans_named(&got, name)
            .into_iter()
            .find(|s| s.trace_id == request.trace_id)
            .unwrap_or_else(|| panic!("no {name} span in the notification's trace"))
    };
    let (verify, wait, commit) = (in_trace("verify"), in_trace("batch_wait"), in_trace("commit"));
    assert_eq!(
        verify.parent_span_id, request.span_id,
        "verify is a step of the request"
    );
    assert_eq!(
        wait.parent_span_id, request.span_id,
        "batch_wait is a step of the request"
    );
    assert_eq!(
        commit.parent_span_id, wait.span_id,
        "the commit is what the request waited for"
    );
    assert!(commit.start_time_unix_nano >= wait.start_time_unix_nano);
    assert!(commit.end_time_unix_nano <= request.end_time_unix_nano);
    assert_eq!(attribute(&request, "route").as_deref(), Some(NOTIFY_PATH));

    let reconcile = eventually(
        "a Finpay call under a worker check",
        Duration::from_secs(20),
        || async {
            let checks = spans_named(&got, "reconcile");
            spans_named(&got, "finpay_call")
                .into_iter()
                .find(|call| checks.iter().any(|c| c.span_id == call.parent_span_id))
        },
    )
    .await;
    assert_eq!(attribute(&reconcile, "op").as_deref(), Some("query"));
    assert!(
        spans_named(&got, "finpay_call")
            .iter()
            .any(|s| attribute(s, "op").as_deref() == Some("generate")),
        "the QR generation is traced too"
    );
    let services: Vec<String> = got.lock().unwrap().iter().map(|(svc, _)| svc.clone()).collect();
    assert!(services.iter().all(|s| s == "finpay-qris-under-test"), "{services:?}");

    // A refused notification: its log line keeps its message and names the SNAP answer.
    let url = format!("http://127.0.0.1:{}{NOTIFY_PATH}", server.public);
    let body = notify_body("INV-OTLP", "FP-OTLP", "00", "100.00");
    let refused = signed_notify(
        &http,
        &url,
        NOTIFY_PATH,
        "not-a-token-we-issued",
        &unique_digits(),
        &body,
        &now_ts(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);

    // The JSON log: the status change names the request, the payment and the SNAP code.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let log = std::fs::read_to_string(server.log.path()).unwrap();
    let change = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "payment status changed" && l["by"] == "notification")
        .unwrap_or_else(|| panic!("no status change in the log:\n{log}"));
    assert_eq!(change["request_id"], REQUEST_ID, "{change}");
    assert_eq!(change["partner_reference_no"], "INV-OTLP", "{change}");
    assert_eq!(change["response_code"], "2005200", "{change}");
    assert!(
        change["payment_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{change}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("\"notification refused\""))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{log}"));
    let refusal: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        refusal["message"], "notification refused",
        "one `message` per line: {line}"
    );
    assert!(
        refusal["response_code"].as_str().is_some_and(|c| c.starts_with("401")),
        "{line}"
    );
    assert!(
        refusal["response_message"].as_str().is_some_and(|m| !m.is_empty()),
        "{line}"
    );
    for secret in [CLIENT_SECRET, token.as_str(), API_KEY, MERCHANT_CLIENT_SECRET] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    sim.shutdown().await;
}
