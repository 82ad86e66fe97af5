//! Connection limits on both listeners, with raw TCP: silent, idle and
//! HTTP/2-preface-only connections are closed, the public listener speaks
//! HTTP/1.1 only, a cap makes further clients wait, and a slow body on the
//! internal API or the console gets 408. Timeouts are set short here; each read has a
//! generous guard so a missing close fails the test instead of hanging it.

use crate::common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough that only a missing close can exceed it.
const GUARD: Duration = Duration::from_secs(15);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: what a client sends right after the preface.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

async fn spawn(settings: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |env| {
        for (k, v) in settings {
            set_env(env, k, v);
        }
    })
    .await
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open; it sent {:?}",
        String::from_utf8_lossy(&got)
    );
    got
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_first_byte_deadline() {
    let app = spawn(&[("FINPAY_QRIS__SERVER__FIRST_BYTE_TIMEOUT_MS", "300")]).await;
    for addr in [app.addr, app.internal] {
        let mut silent = connect(addr).await;
        assert!(read_until_closed(&mut silent).await.is_empty());
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    // hyper's header timeout also runs between keep-alive requests: made
    // longer than the guard, it cannot be what closes the connection here.
    let app = spawn(&[
        ("FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS", "300"),
        ("FINPAY_QRIS__SERVER__REQUEST_TIMEOUT_SECS", "60"),
    ])
    .await;
    for addr in [app.addr, app.internal] {
        let mut conn = connect(addr).await;
        conn.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let answer = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with(r#"{"status":"ok"}"#),
            "one answer, then the close: {answer}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_that_send_only_the_preface_are_closed_when_idle() {
    let app = spawn(&[("FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS", "300")]).await;
    let mut conn = connect(app.internal).await;
    conn.write_all(H2_PREFACE).await.unwrap();
    conn.write_all(H2_SETTINGS).await.unwrap();
    let got = read_until_closed(&mut conn).await;
    // The server's SETTINGS frame: the internal listener does speak HTTP/2.
    assert_eq!(got.get(3), Some(&4), "{got:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_speaks_only_http1() {
    let app = spawn(&[]).await;
    let mut conn = connect(app.addr).await;
    conn.write_all(H2_PREFACE).await.unwrap();
    conn.write_all(H2_SETTINGS).await.unwrap();
    let got = read_until_closed(&mut conn).await;
    assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 "), "{got:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_clients_wait_until_a_connection_closes() {
    let app = spawn(&[("FINPAY_QRIS__API__MAX_CONNECTIONS", "2")]).await;
    let held = [connect(app.internal).await, connect(app.internal).await];
    let mut third = connect(app.internal).await;
    third
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "answered past the cap: {early:?}");
    drop(held);
    let n = tokio::time::timeout(GUARD, third.read(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_on_the_internal_api_gets_408_and_the_connection_closes() {
    let app = spawn(&[("FINPAY_QRIS__API__BODY_TIMEOUT_MS", "300")]).await;
    let mut conn = connect(app.internal).await;
    let head = format!(
        "POST /api/v1/payments HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"amount\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains(r#""field":"body""#), "{answer}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_console_form_gets_408_before_any_handler_and_the_connection_closes() {
    let app = spawn(&[("FINPAY_QRIS__API__BODY_TIMEOUT_MS", "300")]).await;
    let mut conn = connect(app.internal).await;
    // The sign-in form is open to anyone: no key, no session.
    let head = "POST /console/sign-in HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nkey=";
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    app.stop().await;
}
