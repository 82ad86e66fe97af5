//! A delivery's lease is what lets one sender alone send and record it: a
//! record after the lease ended, or after a resend took the delivery back, is
//! refused (the attempt itself is still listed: it was sent); and two senders
//! whose cycles outlast one attempt still send each delivery once.

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
    assert_eq!(attempts.len(), 1, "the attempt was sent: it is listed");

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
    // A second resend while the first attempt may still be in flight does
    // not bring the next one forward either.
    let again = store
        .resend_event(&d.event_id, Some(&d.endpoint_id), now + Span::milliseconds(1500))
        .await;
    assert_eq!(again.unwrap(), 1);
    let recorded = store
        .record_attempts("sender-a", now + Span::seconds(2), &[success(&d, now)])
        .await;
    assert_eq!(
        recorded.unwrap(),
        vec![Recorded::LeaseLost],
        "the resend must not be overwritten"
    );
    let (deliveries, attempts) = store.deliveries_of(&d.event_id).await.unwrap();
    assert_eq!(deliveries[0].status, "pending");
    assert_eq!(attempts.len(), 1, "the attempt taken back was sent: it is listed");
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

async fn a_cycle_records_each_attempt_on_its_own_delivery_and_refuses_only_the_one_taken_back(backend: Backend) {
    let app = quiet_app(backend).await;
    let (first, now) = claimed(&app, "sender-a").await;
    paid_by_notification(&app, "2000.00").await;
    let store = &app.state.store;
    let later = finpay_qris::store::now();
    let mut second = store.claim_deliveries("sender-a", later, 30, 10).await.unwrap();
    assert_eq!(second.len(), 1, "only the new delivery is due");
    let second = second.pop().unwrap();
    store
        .resend_event(&first.event_id, Some(&first.endpoint_id), now + Span::seconds(1))
        .await
        .unwrap();
    let mut failed = success(&second, now);
    failed.succeeded = false;
    failed.attempt.status_code = Some(503);
    failed.next_attempt_at = Some(now + Span::seconds(5));

    let recorded = store
        .record_attempts("sender-a", now + Span::seconds(2), &[success(&first, now), failed])
        .await
        .unwrap();

    assert_eq!(
        recorded,
        vec![
            Recorded::LeaseLost,
            Recorded::Recorded {
                failed: false,
                endpoint_disabled: false
            }
        ]
    );
    let (deliveries, attempts) = store.deliveries_of(&second.event_id).await.unwrap();
    assert_eq!((deliveries[0].status.as_str(), deliveries[0].attempts), ("pending", 1));
    assert_eq!(deliveries[0].next_attempt_at, Some(now + Span::seconds(5)));
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        vec![Some(503)]
    );
    let (taken_back, sent) = store.deliveries_of(&first.event_id).await.unwrap();
    assert_eq!((taken_back[0].attempts, sent.len()), (0, 1), "listed, not counted");
    app.stop().await;
}

/// A sender may still hold a delivery whose endpoint was deleted: the next
/// delivery made must not take its id, or that sender's record would land on
/// another endpoint's delivery.
async fn a_deleted_endpoints_delivery_id_is_not_given_again(backend: Backend) {
    let app = quiet_app(backend).await;
    let (first, _) = claimed(&app, "sender-a").await;
    let deleted = app
        .http
        .delete(app.api_url(&format!("/api/v1/webhook-endpoints/{}", first.endpoint_id)))
        .bearer_auth(common::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (next, _) = claimed(&app, "sender-b").await;
    assert!(next.id > first.id, "{} after {}", next.id, first.id);
    app.stop().await;
}

/// A failing streak belongs to an address: another URL starts afresh, as a
/// configured endpoint's does, while enabling an enabled endpoint leaves the
/// streak that would disable it as it is.
async fn another_url_starts_a_new_failing_streak_and_enabling_what_is_enabled_does_not(backend: Backend) {
    let app = quiet_app(backend).await;
    let (d, now) = claimed(&app, "sender-a").await;
    app.state
        .store
        .record_attempts("sender-a", now, &[failure(d.id, &d.endpoint_id, now)])
        .await
        .unwrap();
    let patch = |body: serde_json::Value| {
        let req = app
            .http
            .patch(app.api_url(&format!("/api/v1/webhook-endpoints/{}", d.endpoint_id)))
            .bearer_auth(common::API_KEY)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let same = patch(json!({"enabled": true, "url": "http://127.0.0.1:9/h"})).await;
    assert!(same["failingSince"].is_string(), "{same}");
    let moved = patch(json!({"url": "http://127.0.0.1:9/elsewhere"})).await;
    assert!(moved["failingSince"].is_null(), "{moved}");
    app.stop().await;
}

on_both_backends!(
    a_deleted_endpoints_delivery_id_is_not_given_again,
    another_url_starts_a_new_failing_streak_and_enabling_what_is_enabled_does_not,
    a_record_after_the_lease_ended_is_refused_as_lease_lost,
    a_resend_takes_a_delivery_from_its_sender_and_sends_it_after_the_lease,
    a_cycle_records_each_attempt_on_its_own_delivery_and_refuses_only_the_one_taken_back,
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

/// A failed attempt, to be tried again in a minute.
fn failure(delivery_id: i64, endpoint_id: &str, at: DateTime<Utc>) -> AttemptResult {
    AttemptResult {
        attempt: Attempt {
            delivery_id,
            attempted_at: at,
            status_code: Some(500),
            error: None,
            latency_ms: 5,
            response_excerpt: Some("down".into()),
        },
        endpoint_id: endpoint_id.to_string(),
        succeeded: false,
        next_attempt_at: Some(at + Span::seconds(60)),
        disable_if_failing_since: at - Span::days(5),
    }
}

/// Two senders recording failures for the same two endpoints, their deliveries
/// in opposite endpoint order by id, both succeed: records lock endpoints in
/// one order. (A third transaction holds one endpoint so that both records are
/// under way at once, each holding what the other will need if the order
/// were the deliveries'.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_recording_failures_for_two_endpoints_do_not_deadlock() {
    if !common::postgres_available().await {
        return;
    }
    use sqlx::Connection;
    let app = quiet_app(Backend::Postgres).await;
    let mut endpoints = Vec::new();
    for url in ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"] {
        let r = post(&app, "/api/v1/webhook-endpoints", &json!({ "url": url }), None).await;
        assert_eq!(r.status, 201);
        endpoints.push(r.json()["id"].as_str().unwrap().to_string());
    }
    endpoints.sort();
    let (lo, hi) = (endpoints[0].clone(), endpoints[1].clone());
    paid_by_notification(&app, "1000.00").await;
    paid_by_notification(&app, "2000.00").await;

    let mut db = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, endpoint_id FROM deliveries ORDER BY id")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let of = |e: &str| {
        rows.iter()
            .filter(|(_, ep)| ep == e)
            .map(|(id, _)| *id)
            .collect::<Vec<_>>()
    };
    let (l, h) = (of(&lo), of(&hi));
    assert_eq!((l.len(), h.len()), (2, 2), "{rows:?}");
    // By id, sender-b's come endpoint hi first, sender-a's endpoint lo first.
    let now = finpay_qris::store::now();
    for (owner, ids) in [("sender-a", [l[0], h[1]]), ("sender-b", [h[0], l[1]])] {
        sqlx::query("UPDATE deliveries SET lease_owner = $1, lease_until = $2 WHERE id = ANY($3)")
            .bind(owner)
            .bind(now + Span::seconds(30))
            .bind(&ids[..])
            .execute(&mut db)
            .await
            .unwrap();
    }
    assert!(h[0] < l[1] && l[0] < h[1], "{rows:?}");

    let mut holder = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
        .bind(&hi)
        .execute(&mut holder)
        .await
        .unwrap();
    let record = |owner: &'static str, results: Vec<AttemptResult>| {
        let store = app.state.store.clone();
        tokio::spawn(async move { store.record_attempts(owner, now, &results).await })
    };
    let b = record("sender-b", vec![failure(h[0], &hi, now), failure(l[1], &lo, now)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = record("sender-a", vec![failure(l[0], &lo, now), failure(h[1], &hi, now)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    for (who, r) in [("sender-a", a.await.unwrap()), ("sender-b", b.await.unwrap())] {
        let recorded = r.unwrap_or_else(|e| panic!("{who}: {e}"));
        assert!(
            recorded.iter().all(|r| matches!(r, Recorded::Recorded { .. })),
            "{who}: {recorded:?}"
        );
    }
    app.stop().await;
}
