//! A delivery's lease is what lets one sender alone send and record it: a
//! record after the lease ended, or after a resend took the delivery back, is
//! refused; and two senders whose cycles outlast one attempt still send each
//! delivery once.

use super::receiver::{Answer, Receiver};
use crate::api::support::{paid_by_notification, post};
use crate::common::{self, eventually, Backend, TestApp};
use chrono::{DateTime, Duration as Span, Utc};
use finpay_qris::store::events::{Attempt, AttemptResult, ClaimedDelivery, EventFilter, Recorded};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// An application that writes events but sends none (the test is the sender).
async fn quiet_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        for (k, v) in [
            ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
            ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
            ("FINPAY_QRIS__EVENTS__DELIVERY_ENABLED", "false"),
        ] {
            common::set_env(env, k, v);
        }
    })
    .await
}

/// One paid payment's event, with a delivery to a new endpoint, claimed by
/// `owner` for 30 s; and when it was claimed.
async fn claimed(app: &TestApp, owner: &str) -> (ClaimedDelivery, DateTime<Utc>) {
    let r = post(
        app,
        "/api/v1/webhook-endpoints",
        &json!({"url": "http://127.0.0.1:9/h"}),
        None,
    )
    .await;
    assert_eq!(r.status, 201);
    paid_by_notification(app, "1000.00").await;
    let now = finpay_qris::store::now();
    let mut claimed = app.state.store.claim_deliveries(owner, now, 30, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    (claimed.pop().unwrap(), now)
}

fn success(d: &ClaimedDelivery, at: DateTime<Utc>) -> AttemptResult {
    AttemptResult {
        attempt: Attempt {
            delivery_id: d.id,
            attempted_at: at,
            status_code: Some(200),
            error: None,
            latency_ms: 5,
            response_excerpt: Some("ok".into()),
        },
        endpoint_id: d.endpoint_id.clone(),
        succeeded: true,
        next_attempt_at: None,
        disable_if_failing_since: at - Span::days(5),
    }
}

async fn a_record_after_the_lease_ended_is_refused_as_lease_lost(backend: Backend) {
    let app = quiet_app(backend).await;
    let (d, now) = claimed(&app, "sender-a").await;
    let store = &app.state.store;

    let late = store
        .record_attempts("sender-a", now + Span::seconds(31), &[success(&d, now)])
        .await;
    assert_eq!(late.unwrap(), vec![Recorded::LeaseLost]);
    let (deliveries, attempts) = store.deliveries_of(&d.event_id).await.unwrap();
    assert_eq!((deliveries[0].status.as_str(), deliveries[0].attempts), ("pending", 0));
    assert!(attempts.is_empty());

    let in_time = store
        .record_attempts("sender-a", now + Span::seconds(29), &[success(&d, now)])
        .await;
    assert!(matches!(in_time.unwrap()[0], Recorded::Recorded { .. }));
    app.stop().await;
}

async fn a_resend_takes_a_delivery_from_its_sender_and_sends_it_after_the_lease(backend: Backend) {
    let app = quiet_app(backend).await;
    let (d, now) = claimed(&app, "sender-a").await;
    let store = &app.state.store;

    let resent = store
        .resend_event(&d.event_id, Some(&d.endpoint_id), now + Span::seconds(1))
        .await;
    assert_eq!(resent.unwrap(), 1);
    let recorded = store
        .record_attempts("sender-a", now + Span::seconds(2), &[success(&d, now)])
        .await;
    assert_eq!(
        recorded.unwrap(),
        vec![Recorded::LeaseLost],
        "the resend must not be overwritten"
    );
    let (deliveries, _) = store.deliveries_of(&d.event_id).await.unwrap();
    assert_eq!(deliveries[0].status, "pending");
    // Not sent again while the first attempt may still be in flight.
    let at_lease_end = now + Span::seconds(30);
    assert!(deliveries[0]
        .next_attempt_at
        .is_some_and(|t| t >= at_lease_end - Span::milliseconds(1)));
    assert!(store
        .claim_deliveries("sender-b", now + Span::seconds(3), 30, 10)
        .await
        .unwrap()
        .is_empty());
    let taken = store
        .claim_deliveries("sender-b", at_lease_end + Span::seconds(1), 30, 10)
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), vec![d.id]);
    app.stop().await;
}

on_both_backends!(
    a_record_after_the_lease_ended_is_refused_as_lease_lost,
    a_resend_takes_a_delivery_from_its_sender_and_sends_it_after_the_lease,
);

/// Sends one at a time, claims 20 per cycle, attempts of at most 1 s.
fn slow_sender(env: &mut Vec<(String, String)>) {
    for (k, v) in [
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20"),
        ("FINPAY_QRIS__EVENTS__BATCH_SIZE", "20"),
        ("FINPAY_QRIS__EVENTS__CONCURRENCY", "1"),
        ("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "1000"),
    ] {
        common::set_env(env, k, v);
    }
}

/// A cycle of 20 attempts of 0.7 s each lasts longer than one attempt's
/// timeout plus any margin: the lease must cover the whole cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_whose_cycle_outlasts_one_attempt_send_each_delivery_once() {
    if !common::postgres_available().await {
        return;
    }
    let receiver = Receiver::start(vec![Answer::Slow(Duration::from_millis(700))]).await;
    let writer = quiet_app(Backend::Postgres).await;
    let r = post(
        &writer,
        "/api/v1/webhook-endpoints",
        &json!({"url": receiver.url()}),
        None,
    )
    .await;
    assert_eq!(r.status, 201);
    let n = 20;
    for _ in 0..n {
        paid_by_notification(&writer, "1000.00").await;
    }
    let mut senders = Vec::new();
    for _ in 0..2 {
        let mut env = common::base_env(&writer.db.url);
        slow_sender(&mut env);
        senders.push(TestApp::spawn_env(writer.db.shared(), env).await);
    }

    let store = &writer.state.store;
    // Done when every delivery is recorded, or as soon as one arrived twice.
    eventually("every delivery recorded", Duration::from_secs(90), || async {
        if receiver.received().len() > n {
            return Some(());
        }
        let events = store
            .list_outbox_events(&EventFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut done = 0;
        for e in &events {
            let (deliveries, _) = store.deliveries_of(&e.id).await.unwrap();
            done += deliveries.iter().filter(|d| d.status == "succeeded").count();
        }
        (done == n).then_some(())
    })
    .await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *per_event
            .entry(r.headers["webhook-id"].to_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_event.len(), n);
    assert!(
        per_event.values().all(|&k| k == 1),
        "sent more than once: {per_event:?}"
    );
    for s in senders {
        s.stop().await;
    }
    writer.stop().await;
}
