//! A webhook receiver for tests: records every request and answers each as
//! its script says (the last answer repeats).
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// Answers 200 only after this long (longer than the sender's timeout).
    Slow(Duration),
    /// A redirect to the receiver's own `/elsewhere`.
    Redirect,
    /// 200 with these bytes as the body.
    Body(&'static [u8]),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    script: Vec<Answer>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start(script: Vec<Answer>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            script,
            received: Vec::new(),
        }));
        let app = axum::Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn answer_from_now(&self, a: Answer) {
        let mut i = self.inner.lock().unwrap();
        let n = i.received.len();
        i.script.truncate(n);
        i.script.push(a);
    }

    /// Waits until `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        crate::common::eventually(&format!("{n} deliveries"), Duration::from_secs(20), || async {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut i = inner.lock().unwrap();
        let k = i.received.len();
        i.received.push(Received {
            path: uri.path().to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        i.script
            .get(k)
            .or(i.script.last())
            .cloned()
            .unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(s) => (StatusCode::from_u16(s).unwrap(), "answer from the receiver").into_response(),
        Answer::Slow(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "late").into_response()
        }
        Answer::Redirect => (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")], "").into_response(),
        Answer::Body(b) => (StatusCode::OK, b).into_response(),
    }
}

/// Verifies a received event with the Standard Webhooks reference library
/// (Python `standardwebhooks`), an implementation independent of ours; true
/// (skipped) when the library is missing outside CI.
pub fn verified_by_reference_library(secret: &str, r: &Received) -> bool {
    reference_verdict(secret, r).unwrap_or(true)
}

/// The reference library refuses the event; true (skipped) when the library
/// is missing outside CI.
pub fn refused_by_reference_library(secret: &str, r: &Received) -> bool {
    reference_verdict(secret, r).is_none_or(|verified| !verified)
}

/// The library's verdict, or `None` when it is missing. Under `CI=true` a
/// missing library fails the test instead of skipping the check.
fn reference_verdict(secret: &str, r: &Received) -> Option<bool> {
    let has = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with standardwebhooks is required under CI (pip install standardwebhooks)"
        );
        eprintln!("skipping the reference verification: python3 -m pip install standardwebhooks");
        return None;
    }
    let header = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        a = json.load(sys.stdin)\n\
        Webhook(a['secret']).verify(a['body'].encode(), a['headers'])\n\
        print('verified')\n";
    let input = serde_json::json!({
        "secret": secret,
        "body": r.body,
        "headers": {
            "webhook-id": header("webhook-id"),
            "webhook-timestamp": header("webhook-timestamp"),
            "webhook-signature": header("webhook-signature"),
        },
    });
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        eprintln!("standardwebhooks refused: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "verified")
}
