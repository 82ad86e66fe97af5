//! Operating the service: the business metrics and state gauges on
//! `/metrics`, after real traffic, on both backends.

use crate::common::*;
use finpay_qris::domain::PaymentStatus;
use std::time::Duration;

on_both_backends!(
    notifications_count_payments_amounts_flags_and_delay,
    the_state_gauges_count_open_and_flagged_payments,
    a_payment_the_worker_finds_paid_counts_as_settled_by_query,
);

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// The state gauges as read at `at`, scraped.
async fn gauges_at(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> String {
    finpay_qris::metrics::state::sample(app.state.store.as_ref(), &app.state.metrics, at).await;
    scrape(app).await
}

fn open(text: &str, age: &str) -> Option<f64> {
    sample(text, &format!(r#"finpay_qris_open_payments{{age="{age}"}}"#))
}

async fn scrape(app: &TestApp) -> String {
    let resp = app.http.get(app.api_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

async fn notifications_count_payments_amounts_flags_and_delay(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    // A static-QR payment learnt as paid, its replay, then a contradicting amount.
    let paid = notify_body("INV-OPS1", "FP-OPS1", "00", "15000.00");
    let ext = unique_digits();
    assert_eq!(app.notify(&token, &ext, &paid).await.0, 200);
    assert_eq!(app.notify(&token, &ext, &paid).await.0, 200);
    let pending = notify_body("INV-OPS2", "FP-OPS2", "03", "5000.00");
    assert_eq!(app.notify(&token, &unique_digits(), &pending).await.0, 200);
    let contradicting = notify_body("INV-OPS2", "FP-OPS2", "00", "4000.00");
    assert_eq!(app.notify(&token, &unique_digits(), &contradicting).await.0, 200);

    let text = scrape(&app).await;
    let series = |event: &str| format!(r#"finpay_qris_payments_total{{event="{event}",origin="static"}}"#);
    assert_eq!(sample(&text, &series("created")), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, &series("paid")),
        Some(1.0),
        "the replay counts once: {text}"
    );
    assert_eq!(sample(&text, &series("flagged")), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_payments_rupiah_total{event="paid",origin="static"}"#
        ),
        Some(15_000.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_payments_rupiah_total{event="created",origin="static"}"#
        ),
        Some(20_000.0),
        "{text}"
    );
    // Three notifications were stored first-hand, each with a paidTime.
    assert_eq!(
        sample(&text, "finpay_qris_notification_delay_seconds_count"),
        Some(3.0),
        "{text}"
    );
    app.stop().await;
}

async fn the_state_gauges_count_open_and_flagged_payments(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    for (n, status) in [(1, "03"), (2, "03"), (3, "00")] {
        let body = notify_body(&format!("INV-ST{n}"), &format!("FP-ST{n}"), status, "100.00");
        assert_eq!(app.notify(&token, &unique_digits(), &body).await.0, 200);
    }
    let flag = notify_body("INV-ST1", "FP-ST1", "00", "99.00");
    assert_eq!(app.notify(&token, &unique_digits(), &flag).await.0, 200);

    let now = finpay_qris::store::now();
    let text = gauges_at(&app, now).await;
    assert_eq!(open(&text, "under_5m"), Some(2.0), "{text}");
    assert_eq!(open(&text, "over_24h"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "finpay_qris_flagged_payments"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "finpay_qris_database_up"), Some(1.0), "{text}");
    // A day later the same payments are old, and the flag has waited a day.
    let later = now + chrono::Duration::days(1) + chrono::Duration::seconds(1);
    let text = gauges_at(&app, later).await;
    assert_eq!(open(&text, "over_24h"), Some(2.0), "{text}");
    assert_eq!(open(&text, "under_5m"), Some(0.0), "{text}");
    let waited = sample(&text, "finpay_qris_flagged_payment_oldest_seconds").unwrap();
    assert!((86_400.0..86_500.0).contains(&waited), "{text}");
    app.stop().await;
}

async fn a_payment_the_worker_finds_paid_counts_as_settled_by_query(b: Backend) {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let app = spawn_app_with_sim(b, &sim, |_| {}).await;
    let p = create_payment(&app, 1_000_000, Duration::from_secs(300), Duration::from_secs(1)).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
    wait_for_status(&app, &p.id, PaymentStatus::Paid, Duration::from_secs(10)).await;

    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_payments_settled_by_query_total{status="paid",origin="generated"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_payments_rupiah_total{event="paid",origin="generated"}"#
        ),
        Some(10_000.0),
        "{text}"
    );
    app.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_database_that_does_not_answer_shows_as_down() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = finpay_qris::store::SqliteStore::connect(&db.url, 1, 1).await.unwrap();
    finpay_qris::store::Store::migrate(&store).await.unwrap();
    let metrics = finpay_qris::metrics::Metrics::default();
    finpay_qris::metrics::state::sample(&store, &metrics, finpay_qris::store::now()).await;
    assert_eq!(sample(&metrics.render(), "finpay_qris_database_up"), Some(1.0));
    store.pool().close().await;
    finpay_qris::metrics::state::sample(&store, &metrics, finpay_qris::store::now()).await;
    let text = metrics.render();
    assert_eq!(sample(&text, "finpay_qris_database_up"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "finpay_qris_flagged_payments"),
        Some(0.0),
        "the last good reading stays"
    );
}
