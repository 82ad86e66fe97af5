//! `finpay-qris listen` receives events from the endpoint the configuration
//! names, verifies them, prints them, refuses a forged one, and sums up on exit.

use crate::api::support::paid_by_notification;
use crate::common::{self, Backend, TestApp};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn listen_prints_each_verified_event_and_refuses_a_forged_one(backend: Backend) {
    let port = common::free_port();
    let mut listener = Command::new(env!("CARGO_BIN_EXE_finpay-qris"))
        .args(["listen", "--listen", &format!("127.0.0.1:{port}"), "--secret", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let out = BufReader::new(listener.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |what: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no {what} line"));
        if line.contains(what) {
            return line;
        }
    };
    next("listening on");

    let app = TestApp::spawn_with(backend, |env| {
        common::set_env(
            env,
            "FINPAY_QRIS__EVENTS__ENDPOINT_URL",
            &format!("http://127.0.0.1:{port}/"),
        );
        common::set_env(env, "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET", SECRET);
        common::set_env(env, "FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true");
        common::set_env(env, "FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true");
        common::set_env(env, "FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20");
    })
    .await;
    let paid = paid_by_notification(&app, "25000.00").await;
    let line = next("payment.paid");
    assert!(
        line.contains(&format!("payment={}", paid["id"].as_str().unwrap())),
        "{line}"
    );
    assert!(
        line.contains("status=paid amount=25000.00 sequence=1 cause=notification"),
        "{line}"
    );
    // A refund's event names the refund's amount beside the payment's.
    let asked = finpay_qris::store::NewRefund {
        id: uuid::Uuid::now_v7().to_string(),
        payment_id: paid["id"].as_str().unwrap().to_string(),
        partner_refund_no: format!("RF{}", common::unique_digits()),
        amount_minor: 400_000,
        reason: "returned".into(),
        created_at: finpay_qris::store::now(),
    };
    app.state.store.reserve_refund(&asked, None).await.unwrap();
    let line = next("refund.pending");
    assert!(line.contains("amount=25000.00 refund=4000.00"), "{line}");

    let forged = app
        .http
        .post(format!("http://127.0.0.1:{port}/"))
        .header("webhook-id", "evt_forged")
        .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJlIGF0IGFsbCwgbm90IG9uZQ==")
        .body(r#"{"type":"payment.paid"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    app.stop().await;

    let stopped = Command::new("kill")
        .args(["-INT", &listener.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let summary = next("events verified");
    assert!(summary.starts_with("events verified: 2, refused: 1,"), "{summary}");
    let _ = listener.wait();
}

on_both_backends!(listen_prints_each_verified_event_and_refuses_a_forged_one);
