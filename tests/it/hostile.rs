//! Hostile input against a live server: arbitrary headers and bodies, signed
//! or not, never produce a 5xx or a panic; every answer is a SNAP body.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ -~]{0,80}",
        "[0-9]{1,40}",
        Just("2024-02-30T25:61:61+07:00".to_string()),
        Just("9999-12-31T23:59:59.999999999-00:00".to_string()),
        Just("Bearer ".to_string()),
        "Bearer [A-Za-z0-9_-]{0,60}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let sample = notify_body("INV-H", "FP-H", "00", "1.00");
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        "\\PC{0,300}".prop_map(String::into_bytes),
        // A genuine notification with one byte changed somewhere.
        (0..sample.len(), any::<u8>()).prop_map(move |(i, b)| {
            let mut v = sample.clone().into_bytes();
            v[i] = b;
            v
        }),
        // Plausible JSON with odd values in the mandatory fields.
        (header_value(), header_value(), header_value()).prop_map(|(r, s, a)| {
            serde_json::json!({"originalReferenceNo": r, "latestTransactionStatus": s,
                "amount": {"value": a, "currency": "IDR"}})
            .to_string()
            .into_bytes()
        }),
        Just(b"{\"amount\":{\"value\":\"99999999999999999999.00\",\"currency\":\"IDR\"},\"originalReferenceNo\":\"x\",\"latestTransactionStatus\":\"00\"}".to_vec()),
        Just(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    body: Vec<u8>,
    sign: bool,
    broken: Vec<(usize, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        body(),
        any::<bool>(),
        proptest::collection::vec((0usize..7, header_value()), 0..3),
    )
        .prop_map(|(body, sign, broken)| Case { body, sign, broken })
}

#[test]
fn arbitrary_requests_never_get_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(TestApp::spawn(Backend::Sqlite));
    let token = rt.block_on(app.token());
    let names = [
        "Content-Type",
        "Authorization",
        "X-TIMESTAMP",
        "X-SIGNATURE",
        "X-PARTNER-ID",
        "X-EXTERNAL-ID",
        "CHANNEL-ID",
    ];
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |c| {
            let ts = now_ts();
            let hash = finpay_qris::snap::body::body_hash(&c.body);
            let sts = finpay_qris::snap::signature::symmetric_string_to_sign("POST", NOTIFY_PATH, &token, &hash, &ts);
            let sig = if c.sign {
                finpay_qris::snap::signature::HmacKey::new(CLIENT_SECRET.as_bytes()).sign(&sts)
            } else {
                "c2lnbmF0dXJl".to_string()
            };
            let mut headers: Vec<(&str, String)> = vec![
                ("Content-Type", "application/json".into()),
                ("Authorization", format!("Bearer {token}")),
                ("X-TIMESTAMP", ts),
                ("X-SIGNATURE", sig),
                ("X-PARTNER-ID", CLIENT_ID.into()),
                ("X-EXTERNAL-ID", unique_digits()),
                ("CHANNEL-ID", "95221".into()),
            ];
            for (i, v) in &c.broken {
                headers[*i].1 = v.clone();
            }
            let (status, v) = rt.block_on(async {
                let mut req = app.http.post(app.url(NOTIFY_PATH));
                for (k, v) in &headers {
                    if let Ok(hv) = reqwest::header::HeaderValue::from_str(v) {
                        req = req.header(*k, hv);
                    }
                }
                let r = req.body(c.body.clone()).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            });
            prop_assert!(status < 500, "{status} {v} for {c:?} {names:?}");
            let code = v["responseCode"].as_str().unwrap_or("");
            prop_assert_eq!(code.len(), 7, "not a SNAP answer: {}", v);
            prop_assert_eq!(&code[..3], status.to_string());
            Ok(())
        })
        .unwrap();
    rt.block_on(app.stop());
}

#[test]
fn a_slow_body_is_cut_off_by_the_request_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = TestApp::spawn_with(Backend::Sqlite, |env| {
            env.push(("FINPAY_QRIS__SERVER__REQUEST_TIMEOUT_SECS".into(), "1".into()))
        })
        .await;
        let token = app.token().await;
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {NOTIFY_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
             X-TIMESTAMP: {}\r\nX-SIGNATURE: AAAA\r\nX-PARTNER-ID: {CLIENT_ID}\r\nX-EXTERNAL-ID: 123\r\nCHANNEL-ID: 1\r\n\
             Content-Length: 1000\r\n\r\n{{",
            now_ts()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // Never send the rest: the server answers on its own once the deadline passes.
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(text.contains("4005200") && text.contains("not received in time"), "{text}");
        app.stop().await;
    });
}

/// Sends a notify request head with `framing` (its body-length headers) and
/// `body` on a raw connection; the answer's start, which must come within
/// 3 s (the request deadline is 10 s).
async fn answer_to_raw_notify(app: &TestApp, framing: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let token = app.token().await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {NOTIFY_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\n\
         X-TIMESTAMP: {}\r\nX-SIGNATURE: AAAA\r\nX-PARTNER-ID: {CLIENT_ID}\r\nX-EXTERNAL-ID: 123\r\nCHANNEL-ID: 1\r\n\
         {framing}\r\n{body}",
        now_ts()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("answered before the request deadline")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A `Content-Length` past `server.body_limit_bytes` is refused at once,
/// not after the request deadline spent waiting for the bytes.
#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let text = answer_to_raw_notify(&app, "Content-Length: 100000000\r\n", "{").await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("4005200") && text.contains("Body larger than"), "{text}");
    app.stop().await;
}

/// A body whose framing is broken (declared chunked, sent plain) is answered
/// as unreadable at once, not as late.
#[tokio::test]
async fn a_body_with_broken_framing_is_answered_as_unreadable() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = r#"{"originalReferenceNo":"FP-1"}"#;
    let framing = format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", body.len());
    let text = answer_to_raw_notify(&app, &framing, body).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("4005200") && text.contains("could not be read"), "{text}");
    app.stop().await;
}

#[test]
fn a_client_trickling_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = TestApp::spawn_with(Backend::Sqlite, |env| {
            env.push(("FINPAY_QRIS__SERVER__REQUEST_TIMEOUT_SECS".into(), "1".into()))
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"POST /v1.0/qr/qr-mpm-notify HTTP/1.1\r\nHost: x\r\nX-TIMESTAMP: 2")
            .await
            .unwrap();
        // The head never completes: the server hangs up on its own.
        let mut buf = vec![0u8; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await;
        let n = read.expect("the server must not wait forever").unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
        app.stop().await;
    });
}

/// A head over 64 KiB is refused with 431 on both listeners, though hyper's
/// read buffer could hold it, and a head just under the bound is served.
#[tokio::test]
async fn a_request_head_over_64_kib_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    for url in [app.url("/health/live"), app.api_url("/health/live")] {
        let big = client
            .get(&url)
            .header("x-filler", "a".repeat(70_000))
            .send()
            .await
            .unwrap();
        assert_eq!(big.status(), 431, "{url}");
        let fits = client
            .get(&url)
            .header("x-filler", "a".repeat(60_000))
            .send()
            .await
            .unwrap();
        assert_ne!(fits.status(), 431, "{url}");
    }
    app.stop().await;
}
