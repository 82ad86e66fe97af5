//! A disabled endpoint loses nothing: events raised meanwhile wait, parked,
//! and go out when it is enabled again; resending to it is refused until
//! then; and its backlog stays visible in the gauges.

use super::receiver::{Answer, Receiver};
use crate::api::support::{get, paid_by_notification, post};
use crate::common::{self, eventually, Backend, TestApp, API_KEY};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

async fn app(backend: Backend, delivering: bool) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        for (k, v) in [
            ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
            ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
            ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20"),
            (
                "FINPAY_QRIS__EVENTS__DELIVERY_ENABLED",
                if delivering { "true" } else { "false" },
            ),
        ] {
            common::set_env(env, k, v);
        }
    })
    .await
}

async fn endpoint(app: &TestApp, url: &str) -> String {
    let r = post(app, "/api/v1/webhook-endpoints", &json!({"url": url}), None).await;
    assert_eq!(r.status, 201);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn set_enabled(app: &TestApp, id: &str, enabled: bool) {
    let r = app
        .http
        .patch(app.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(API_KEY)
        .json(&json!({"enabled": enabled}));
    assert_eq!(r.send().await.unwrap().status(), 200);
}

/// The id of the newest event.
async fn newest_event(app: &TestApp) -> String {
    let list = get(app, "/api/v1/events?limit=1").await.json();
    list["items"][0]["id"].as_str().unwrap().to_string()
}

async fn deliveries(app: &TestApp, event: &str) -> Vec<Value> {
    let e = get(app, &format!("/api/v1/events/{event}")).await.json();
    e["deliveries"].as_array().cloned().unwrap_or_default()
}

async fn events_raised_while_an_endpoint_is_disabled_are_delivered_once_it_is_enabled_again(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, true).await;
    let id = endpoint(&app, &receiver.url()).await;
    set_enabled(&app, &id, false).await;
    paid_by_notification(&app, "1000.00").await;
    let event = newest_event(&app).await;
    let parked = deliveries(&app, &event).await;
    assert_eq!(parked.len(), 1, "a disabled endpoint still gets its delivery, parked");
    assert_eq!(parked[0]["status"], "pending");
    assert!(parked[0]["nextAttemptAt"].is_null(), "parked: not due, {parked:?}");

    set_enabled(&app, &id, true).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].headers["webhook-id"].to_str().unwrap(), event);
    eventually("the parked delivery to succeed", Duration::from_secs(20), || async {
        (deliveries(&app, &event).await[0]["status"] == "succeeded").then_some(())
    })
    .await;
    app.stop().await;
}

/// On PostgreSQL an event written by a transaction that read its endpoint
/// just before an enable committed stays parked after the enable scheduled
/// the others: the sender looks for such deliveries (at start, then every
/// minute) and sends them.
async fn a_delivery_left_parked_for_an_enabled_endpoint_is_sent(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, false).await;
    let id = endpoint(&app, &receiver.url()).await;
    set_enabled(&app, &id, false).await;
    paid_by_notification(&app, "1000.00").await;
    let event = newest_event(&app).await;
    // Enabled, as that enable left it: the endpoint on, this delivery still parked.
    crate::with_connection!(&app.db.url, |c| sqlx::query(
        "UPDATE webhook_endpoints SET enabled = TRUE, disabled_by = NULL, disabled_reason = NULL WHERE id = $1"
    )
    .bind(&id)
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected());
    assert!(deliveries(&app, &event).await[0]["nextAttemptAt"].is_null());

    let mut env = common::base_env(&app.db.url);
    super::events_env(&mut env);
    let sender = TestApp::spawn_env(app.db.shared(), env).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].headers["webhook-id"].to_str().unwrap(), event);
    sender.stop().await;
    app.stop().await;
}

/// Failed deliveries resent while the endpoint is disabled (the console
/// allows it) wait parked, as new ones do; enabling the endpoint makes them
/// due since they were written (so they go out at once, oldest first). A
/// delivery being sent when the endpoint is disabled is left to its sender.
async fn parked_deliveries_are_due_since_written_and_one_being_sent_is_left_to_its_sender(backend: Backend) {
    let app = app(backend, false).await;
    let id = endpoint(&app, "http://127.0.0.1:9/h").await;
    paid_by_notification(&app, "1000.00").await;
    let failed = newest_event(&app).await;
    let url = app.db.url.clone();
    crate::with_connection!(&url, |c| sqlx::query(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE event_id = $1"
    )
    .bind(&failed)
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected());
    set_enabled(&app, &id, false).await;
    let since = finpay_qris::store::now() - chrono::Duration::days(1);
    let resent = app
        .state
        .store
        .resend_failed(&id, since, finpay_qris::store::now())
        .await
        .unwrap();
    assert_eq!(resent, 1);
    let d = &deliveries(&app, &failed).await[0];
    assert_eq!(d["status"], "pending");
    assert!(d["nextAttemptAt"].is_null(), "parked: {d}");
    paid_by_notification(&app, "2000.00").await;
    let waiting = newest_event(&app).await;

    set_enabled(&app, &id, true).await;
    let written = get(&app, &format!("/api/v1/events/{waiting}")).await.json();
    assert_eq!(
        written["deliveries"][0]["nextAttemptAt"], written["createdAt"],
        "{written}"
    );
    assert!(deliveries(&app, &failed).await[0]["nextAttemptAt"].is_string());

    // Claimed by a sender (due at its lease's end), then the endpoint is disabled.
    paid_by_notification(&app, "3000.00").await;
    let sending = newest_event(&app).await;
    let until = finpay_qris::store::now() + chrono::Duration::seconds(60);
    crate::with_connection!(&url, |c| sqlx::query(
        "UPDATE deliveries SET lease_owner = 'a-sender', lease_until = $1, next_attempt_at = $1 WHERE event_id = $2"
    )
    .bind(until)
    .bind(&sending)
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected());
    let before = deliveries(&app, &sending).await[0]["nextAttemptAt"].clone();
    set_enabled(&app, &id, false).await;
    assert_eq!(
        deliveries(&app, &sending).await[0]["nextAttemptAt"],
        before,
        "left to its sender"
    );
    app.stop().await;
}

async fn a_resend_to_a_disabled_endpoint_is_refused_until_it_is_enabled(backend: Backend) {
    let app = app(backend, false).await;
    let id = endpoint(&app, "http://127.0.0.1:9/h").await;
    paid_by_notification(&app, "1000.00").await;
    let event = newest_event(&app).await;
    set_enabled(&app, &id, false).await;

    let resend = format!("/api/v1/events/{event}/resend");
    let r = post(&app, &resend, &json!({"endpointId": id}), None).await;
    let p = r.problem(409);
    assert_eq!(p["type"], "urn:finpay-qris:problem:endpoint-disabled");
    assert_eq!(p["field"], "endpointId");
    let failed = format!("/api/v1/webhook-endpoints/{id}/resend-failed");
    let r = post(&app, &failed, &json!({"since": "2020-01-01T00:00:00Z"}), None).await;
    assert_eq!(r.problem(409)["type"], "urn:finpay-qris:problem:endpoint-disabled");

    set_enabled(&app, &id, true).await;
    let r = post(&app, &resend, &json!({"endpointId": id}), None).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["scheduled"], 1);
    app.stop().await;
}

async fn backlog_gauges_cover_disabled_endpoints_and_forget_deleted_ones(backend: Backend) {
    let app = app(backend, false).await;
    let disabled = endpoint(&app, "http://127.0.0.1:9/off").await;
    set_enabled(&app, &disabled, false).await;
    paid_by_notification(&app, "1000.00").await;
    let gauge = |id: &str| {
        app.state
            .metrics
            .gauge("finpay_qris_event_backlog", &[("endpoint", id)])
    };
    let mut reported = BTreeSet::new();
    finpay_qris::events::delivery::record_backlog(&app.state, &mut reported).await;
    assert_eq!(gauge(&disabled), Some(1.0));

    let r = app
        .http
        .delete(app.api_url(&format!("/api/v1/webhook-endpoints/{disabled}")))
        .bearer_auth(API_KEY);
    assert_eq!(r.send().await.unwrap().status(), 204);
    finpay_qris::events::delivery::record_backlog(&app.state, &mut reported).await;
    assert_eq!(gauge(&disabled), None);
    let age = app
        .state
        .metrics
        .gauge("finpay_qris_event_oldest_pending_seconds", &[("endpoint", &disabled)]);
    assert_eq!(age, None);
    app.stop().await;
}

/// On PostgreSQL a sender recording a delivery whose lease has just ended
/// holds that delivery's row, then locks its endpoint. Disabling the endpoint
/// meanwhile skips the row instead of waiting for it (the two would wait for
/// each other); the sender records it scheduled, and the sweep parks it.
#[tokio::test]
async fn disabling_an_endpoint_does_not_wait_for_a_delivery_being_recorded() {
    use sqlx::Connection;
    if !common::postgres_available().await {
        return;
    }
    let app = app(Backend::Postgres, false).await;
    let id = endpoint(&app, "http://127.0.0.1:9/h").await;
    paid_by_notification(&app, "1000.00").await;
    let event = newest_event(&app).await;
    let mut sender = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let mut recording = sender.begin().await.unwrap();
    sqlx::query(
        "UPDATE deliveries SET lease_owner = 'a-sender', lease_until = now() - interval '1 second' \
         WHERE event_id = $1",
    )
    .bind(&event)
    .execute(&mut *recording)
    .await
    .unwrap();

    tokio::time::timeout(Duration::from_secs(10), set_enabled(&app, &id, false))
        .await
        .expect("disabling waited for the sender's delivery");
    sqlx::query("UPDATE webhook_endpoints SET updated_at = updated_at WHERE id = $1")
        .bind(&id)
        .execute(&mut *recording)
        .await
        .unwrap();
    // What the sender's record writes: attempted, due again, its lease given back.
    sqlx::query(
        "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = now() + interval '5 seconds', \
         lease_owner = NULL, lease_until = NULL WHERE event_id = $1",
    )
    .bind(&event)
    .execute(&mut *recording)
    .await
    .unwrap();
    recording.commit().await.unwrap();
    assert!(deliveries(&app, &event).await[0]["nextAttemptAt"].is_string());

    assert_eq!(
        app.state.store.align_stranded(finpay_qris::store::now()).await.unwrap(),
        1
    );
    let d = &deliveries(&app, &event).await[0];
    assert!(d["nextAttemptAt"].is_null(), "parked by the sweep: {d}");
    app.stop().await;
}

on_both_backends!(
    events_raised_while_an_endpoint_is_disabled_are_delivered_once_it_is_enabled_again,
    a_resend_to_a_disabled_endpoint_is_refused_until_it_is_enabled,
    a_delivery_left_parked_for_an_enabled_endpoint_is_sent,
    parked_deliveries_are_due_since_written_and_one_being_sent_is_left_to_its_sender,
    backlog_gauges_cover_disabled_endpoints_and_forget_deleted_ones,
);
