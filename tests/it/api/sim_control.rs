//! The simulator's control API as the README's demo uses it: `pay` and
//! `fail` answer once the service has answered the notification, so the
//! payment read right after is already settled.

use super::support::{get, post};
use crate::common::{self, Backend, TestApp};
use serde_json::{json, Value};

/// A payment created through the API whose settlement only a notification
/// can bring: the worker is off, so it cannot find it by a query first.
async fn setup(backend: Backend, drop_notifications: bool) -> (TestApp, finpay_qris::simulator::SimHandle) {
    let sim = common::spawn_simulator(|c| c.faults.drop_notifications = drop_notifications).await;
    let app = common::spawn_app_with_sim(backend, &sim, |env| {
        common::set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")
    })
    .await;
    (app, sim)
}

async fn create(app: &TestApp, reference: &str) {
    let body = json!({"amount": "25000.00", "partnerReferenceNo": reference});
    let r = post(app, "/api/v1/payments", &body, None).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
}

/// `POST /sim/payments/{reference}/{action}` over HTTP, as a person would.
async fn control(app: &TestApp, sim: &finpay_qris::simulator::SimHandle, reference: &str, action: &str) -> Value {
    let url = format!("{}/sim/payments/{reference}/{action}", sim.base_url());
    let resp = app.http.post(url).send().await.expect("control API");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("JSON")
}

async fn status(app: &TestApp, reference: &str) -> Value {
    get(app, &format!("/api/v1/payments/{reference}")).await.json()["status"].clone()
}

async fn after_pay_returns_the_payment_is_already_paid_through_the_api(backend: Backend) {
    let (app, sim) = setup(backend, false).await;
    create(&app, "INV-SIM-PAY").await;
    let paid = control(&app, &sim, "INV-SIM-PAY", "pay").await;
    assert_eq!(paid["status"], "00", "the simulator's own status: {paid}");
    let n = &paid["notification"];
    assert_eq!(
        (
            n["state"].as_str(),
            n["httpStatus"].as_u64(),
            n["responseCode"].as_str()
        ),
        (Some("answered"), Some(200), Some("2005200")),
        "{paid}"
    );
    assert_eq!(n["responseMessage"], "Successful");
    assert_eq!(status(&app, "INV-SIM-PAY").await, "paid");

    create(&app, "INV-SIM-FAIL").await;
    let failed = control(&app, &sim, "INV-SIM-FAIL", "fail").await;
    assert_eq!(failed["notification"]["responseCode"], "2005200", "{failed}");
    assert_eq!(status(&app, "INV-SIM-FAIL").await, "failed");

    // A QR running out is not notified, and the answer says so.
    create(&app, "INV-SIM-EXPIRE").await;
    let expired = control(&app, &sim, "INV-SIM-EXPIRE", "expire").await;
    assert_eq!(expired["notification"], json!({"state": "none"}));
    sim.shutdown().await;
    app.stop().await;
}

async fn a_dropped_notification_is_reported_and_pay_does_not_wait(backend: Backend) {
    let (app, sim) = setup(backend, true).await;
    create(&app, "INV-SIM-DROP").await;
    let paid = control(&app, &sim, "INV-SIM-DROP", "pay").await;
    assert_eq!(paid["notification"], json!({"state": "dropped"}));
    assert_eq!(status(&app, "INV-SIM-DROP").await, "pending");
    sim.update_faults(|f| {
        f.drop_notifications = false;
        f.notify_delay_ms = 60_000;
    });
    create(&app, "INV-SIM-LATE").await;
    let late = control(&app, &sim, "INV-SIM-LATE", "pay").await;
    assert_eq!(late["notification"], json!({"state": "delayed", "delayMs": 60000}));
    assert_eq!(status(&app, "INV-SIM-LATE").await, "pending");
    sim.shutdown().await;
    app.stop().await;
}

crate::on_both_backends!(
    after_pay_returns_the_payment_is_already_paid_through_the_api,
    a_dropped_notification_is_reported_and_pay_does_not_wait,
);
