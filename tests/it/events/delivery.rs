use super::receiver::{refused_by_reference_library, verified_by_reference_library, Answer, Receiver};
use crate::api::support::{get, paid_by_notification, post};
use crate::common::{self, eventually, Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

/// An application delivering events at test speed to local receivers.
async fn app(backend: Backend, tweak: impl FnOnce(&mut Vec<(String, String)>)) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        super::events_env(env);
        tweak(env);
    })
    .await
}

/// Subscribes `url`; the endpoint's id and secret.
async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let r = post(
        app,
        "/api/v1/webhook-endpoints",
        &json!({"url": url, "eventTypes": types}),
        None,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let e = r.json();
    (
        e["id"].as_str().unwrap().to_string(),
        e["secret"].as_str().unwrap().to_string(),
    )
}

async fn event_detail(app: &TestApp, id: &str) -> Value {
    let r = get(app, &format!("/api/v1/events/{id}")).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// Waits until the event's only delivery is `status`; returns the event.
async fn delivery_becomes(app: &TestApp, event_id: &str, status: &str) -> Value {
    eventually(
        &format!("delivery of {event_id} to be {status}"),
        Duration::from_secs(20),
        || async {
            let e = event_detail(app, event_id).await;
            (e["deliveries"][0]["status"] == status).then_some(e)
        },
    )
    .await
}

fn body(r: &super::receiver::Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

async fn a_paid_payment_is_delivered_signed_and_the_reference_library_verifies_it(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, |_| {}).await;
    let (endpoint, secret) = subscribe(&app, &receiver.url(), &[]).await;
    let (_, _) = subscribe(&app, "http://127.0.0.1:9/never", &["payment.expired"]).await;
    let paid = paid_by_notification(&app, "15000.00").await;

    let got = receiver.wait_for(1).await;
    let event = body(&got[0]);
    assert_eq!(event["type"], "payment.paid");
    assert_eq!(event["data"]["id"], paid["id"]);
    assert_eq!(event["data"]["cause"], "notification");
    assert_eq!(event["data"]["sequence"], 1);
    // `data` is the payment as the API shows it, plus cause and sequence.
    let mut data = event["data"].clone();
    data.as_object_mut()
        .unwrap()
        .retain(|k, _| k != "cause" && k != "sequence");
    assert_eq!(data, paid);
    assert!(verified_by_reference_library(&secret, &got[0]));
    let mut tampered = got[0].clone();
    tampered.body = tampered.body.replace("15000.00", "15.00");
    assert!(refused_by_reference_library(&secret, &tampered));

    let id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    let detail = delivery_becomes(&app, &id, "succeeded").await;
    assert_eq!(detail["type"], "payment.paid");
    assert_eq!(detail["paymentId"], paid["id"]);
    // Only the endpoint subscribed to the type received it.
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(detail["deliveries"][0]["endpointId"], endpoint);
    let attempt = &detail["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["statusCode"], 200);
    assert_eq!(attempt["responseExcerpt"], "answer from the receiver");
    let listed = get(
        &app,
        &format!("/api/v1/events?paymentId={}", paid["id"].as_str().unwrap()),
    )
    .await
    .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], id.as_str());
    app.stop().await;
}

async fn an_answer_holding_a_nul_byte_is_recorded_and_the_delivery_succeeds(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Body(b"ok\0\xffdone")]).await;
    let app = app(backend, |_| {}).await;
    subscribe(&app, &receiver.url(), &["payment.paid"]).await;
    paid_by_notification(&app, "1000.00").await;
    let got = receiver.wait_for(1).await;
    let id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    let detail = delivery_becomes(&app, &id, "succeeded").await;
    let attempts = detail["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["responseExcerpt"], "ok\u{FFFD}\u{FFFD}done");
    app.stop().await;
}

async fn failed_attempts_are_retried_until_the_endpoint_answers_2xx(backend: Backend) {
    let receiver = Receiver::start(vec![
        Answer::Status(500),
        Answer::Slow(Duration::from_secs(2)),
        Answer::Status(204),
    ])
    .await;
    let app = app(backend, |_| {}).await;
    subscribe(&app, &receiver.url(), &["payment.paid"]).await;
    paid_by_notification(&app, "1000.00").await;
    let got = receiver.wait_for(3).await;
    let id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    assert!(
        got.iter().all(|r| r.headers["webhook-id"] == id.as_str()),
        "one event, three attempts"
    );
    let detail = delivery_becomes(&app, &id, "succeeded").await;
    let attempts = detail["deliveries"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(attempts[0]["statusCode"], 500);
    assert!(
        attempts[1]["error"].as_str().unwrap().contains("timeout"),
        "{attempts:?}"
    );
    assert_eq!(attempts[2]["statusCode"], 204);
    let m = &app.state.metrics;
    assert_eq!(
        m.counter("finpay_qris_event_deliveries_total", &[("outcome", "delivered")]),
        1
    );
    assert_eq!(
        m.counter("finpay_qris_event_deliveries_total", &[("outcome", "rejected")]),
        1
    );
    assert_eq!(
        m.counter("finpay_qris_event_deliveries_total", &[("outcome", "timeout")]),
        1
    );
    app.stop().await;
}

async fn a_refused_connection_is_retried_then_failed_and_resending_what_failed_delivers_it(backend: Backend) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = app(backend, |_| {}).await;
    let (endpoint, _) = subscribe(&app, &format!("http://{closed}/hooks"), &[]).await;
    let paid = paid_by_notification(&app, "1000.00").await;
    let events = get(
        &app,
        &format!("/api/v1/events?paymentId={}", paid["id"].as_str().unwrap()),
    )
    .await
    .json();
    let id = events["items"][0]["id"].as_str().unwrap().to_string();
    let detail = delivery_becomes(&app, &id, "failed").await;
    let attempts = detail["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "the first attempt and two retries: {attempts:?}");
    assert!(attempts
        .iter()
        .all(|a| a["statusCode"].is_null() && a["error"].is_string()));
    let failed = app
        .state
        .metrics
        .counter("finpay_qris_event_deliveries_failed_total", &[]);
    let unreachable = app
        .state
        .metrics
        .counter("finpay_qris_event_deliveries_total", &[("outcome", "unreachable")]);
    assert_eq!(unreachable, 3);
    assert_eq!(failed, 1);

    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let path = format!("/api/v1/webhook-endpoints/{endpoint}");
    let r = app
        .http
        .patch(app.api_url(&path))
        .bearer_auth(common::API_KEY)
        .json(&json!({"url": receiver.url()}));
    assert_eq!(r.send().await.unwrap().status(), 200);
    // Year 10000 in UTC: refused, as the list filters refuse it.
    let r = post(
        &app,
        &format!("{path}/resend-failed"),
        &json!({"since": "9999-12-31T23:30:00-01:00"}),
        None,
    )
    .await;
    assert_eq!(r.problem(422)["field"], "since");
    let r = post(
        &app,
        &format!("{path}/resend-failed"),
        &json!({"since": "2020-01-01T00:00:00Z"}),
        None,
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["scheduled"], 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].headers["webhook-id"], id.as_str());
    delivery_becomes(&app, &id, "succeeded").await;
    app.stop().await;
}

async fn a_redirect_is_not_followed(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Redirect, Answer::Status(200)]).await;
    let app = app(backend, |_| {}).await;
    subscribe(&app, &receiver.url(), &[]).await;
    paid_by_notification(&app, "1000.00").await;
    let got = receiver.wait_for(2).await;
    let id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    let detail = delivery_becomes(&app, &id, "succeeded").await;
    assert!(
        got.iter().all(|r| r.path == "/hooks"),
        "the redirect was followed: {got:?}"
    );
    assert_eq!(detail["deliveries"][0]["attempts"][0]["statusCode"], 307);
    app.stop().await;
}

async fn an_endpoint_failing_too_long_is_disabled_and_that_is_an_event(backend: Backend) {
    let failing = Receiver::start(vec![Answer::Status(503)]).await;
    let watching = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, |env| {
        common::set_env(env, "FINPAY_QRIS__EVENTS__DISABLE_AFTER_SECS", "0")
    })
    .await;
    let (bad, _) = subscribe(&app, &failing.url(), &["payment.paid"]).await;
    let (_, secret) = subscribe(&app, &watching.url(), &["endpoint.disabled"]).await;
    paid_by_notification(&app, "1000.00").await;
    let got = watching.wait_for(1).await;
    let event = body(&got[0]);
    assert_eq!(event["type"], "endpoint.disabled");
    assert_eq!(event["data"]["endpointId"], bad.as_str());
    assert!(verified_by_reference_library(&secret, &got[0]));
    let e = get(&app, &format!("/api/v1/webhook-endpoints/{bad}")).await.json();
    assert_eq!(e["enabled"], false);
    assert!(e["disabledReason"].as_str().unwrap().contains("no successful delivery"));
    assert_eq!(failing.received().len(), 1, "a disabled endpoint is not tried again");
    // Its retry is parked: pending, with no next attempt, until it is enabled.
    let paid = failing.received()[0].headers["webhook-id"]
        .to_str()
        .unwrap()
        .to_string();
    let delivery = &event_detail(&app, &paid).await["deliveries"][0];
    assert_eq!(delivery["status"], "pending", "{delivery}");
    assert!(delivery["nextAttemptAt"].is_null(), "{delivery}");
    assert_eq!(
        app.state
            .metrics
            .counter("finpay_qris_event_endpoints_disabled_total", &[]),
        1
    );
    app.stop().await;
}

async fn a_resent_event_arrives_again_with_its_id_and_a_rotated_secret_signs_alongside(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, |_| {}).await;
    let (endpoint, old) = subscribe(&app, &receiver.url(), &[]).await;
    paid_by_notification(&app, "1000.00").await;
    let first = receiver.wait_for(1).await;
    let id = first[0].headers["webhook-id"].to_str().unwrap().to_string();
    delivery_becomes(&app, &id, "succeeded").await;
    let rotated = post(
        &app,
        &format!("/api/v1/webhook-endpoints/{endpoint}/rotate-secret"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(rotated.status, 200);
    let new = rotated.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let r = post(&app, &format!("/api/v1/events/{id}/resend"), &json!({}), None).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let payment: serde_json::Value = serde_json::from_str(&first[0].body).unwrap();
    let actions = app
        .state
        .store
        .payment_actions(payment["data"]["id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a.action == "resend_event" && a.detail["event"] == id.as_str()),
        "the resend is on the payment's record: {actions:?}"
    );
    let again = receiver.wait_for(2).await;
    assert_eq!(again[1].headers["webhook-id"], id.as_str());
    assert_eq!(again[1].body, first[0].body);
    let signatures = again[1].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(verified_by_reference_library(&new, &again[1]));
    assert!(verified_by_reference_library(&old, &again[1]));
    // The secret is never shown again.
    let shown = get(&app, &format!("/api/v1/webhook-endpoints/{endpoint}")).await;
    assert!(!String::from_utf8_lossy(&shown.bytes).contains("whsec_"));
    app.stop().await;
}

async fn endpoints_refuse_http_and_private_addresses_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (url, says) in [
        ("http://orders.example.com/hooks", "https"),
        ("https://10.0.0.7/hooks", "private"),
    ] {
        let r = post(&app, "/api/v1/webhook-endpoints", &json!({"url": url}), None).await;
        let p = r.problem(422);
        assert_eq!(p["field"], "url");
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let r = post(
        &app,
        "/api/v1/webhook-endpoints",
        &json!({"url": "https://orders.example.com/h", "eventTypes": ["payment.paying"]}),
        None,
    )
    .await;
    assert_eq!(r.problem(422)["field"], "eventTypes");
    // A NUL byte is refused by name, never passed to the database.
    let r = post(
        &app,
        "/api/v1/webhook-endpoints",
        &json!({"url": "https://orders.example.com/h", "description": "orders\u{0}"}),
        None,
    )
    .await;
    assert_eq!(r.problem(422)["field"], "description");
    app.stop().await;
}

async fn an_endpoint_whose_url_the_settings_now_refuse_is_not_enabled_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = super::disabled_http_endpoint(&app).await;
    let enable = app
        .http
        .patch(app.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(common::API_KEY)
        .json(&json!({"enabled": true}));
    let r = crate::api::support::send(enable).await;
    let p = r.problem(422);
    assert_eq!(p["field"], "url");
    assert!(p["detail"].as_str().unwrap().contains("https"), "{p}");
    app.stop().await;
}

async fn an_endpoint_that_does_not_answer_is_not_tried_again_in_the_same_cycle(backend: Backend) {
    let app = app(backend, |env| {
        for (k, v) in [
            ("FINPAY_QRIS__EVENTS__SENDERS", "1"),
            ("FINPAY_QRIS__EVENTS__CONCURRENCY", "1"),
            ("FINPAY_QRIS__EVENTS__RETRY_SCHEDULE", "60"),
        ] {
            common::set_env(env, k, v);
        }
    })
    .await;
    let receiver = Receiver::start(vec![Answer::Slow(Duration::from_secs(5))]).await;
    let (endpoint, _) = subscribe(&app, &receiver.url(), &[]).await;
    let toggle = |enabled: bool| {
        app.http
            .patch(app.api_url(&format!("/api/v1/webhook-endpoints/{endpoint}")))
            .bearer_auth(common::API_KEY)
            .json(&json!({"enabled": enabled}))
            .send()
    };
    assert_eq!(toggle(false).await.unwrap().status(), 200);
    for _ in 0..4 {
        paid_by_notification(&app, "1000.00").await;
    }
    // Enabled with four waiting: one cycle claims them all, and the first
    // times out (500 ms); one at a time, the others would follow it.
    assert_eq!(toggle(true).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received().len(), 1, "the rest wait for their lease's end");
    app.stop().await;
}

/// As if the process died after its request's commit, before the answer was
/// stored with `key`: the key is unfinished and its holder gone.
async fn answer_lost(app: &TestApp, key: &str) {
    let unfinished = format!(
        "UPDATE api_idempotency SET status_code = NULL, response_body = NULL, locked_until = NULL \
         WHERE \"key\" = '{key}'"
    );
    let rows = crate::with_connection!(&app.db.url, |c| sqlx::query(&unfinished)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected());
    assert_eq!(rows, 1, "{key} is held");
}

async fn a_retry_after_the_first_creation_died_unanswered_gets_the_endpoint_it_made(backend: Backend) {
    let app = app(backend, |_| {}).await;
    let body = json!({"url": "http://127.0.0.1:9/orders"});
    let first = post(&app, "/api/v1/webhook-endpoints", &body, Some("ep-0002")).await;
    assert_eq!(first.status, 201);
    // As if the process died after the endpoint's commit, before the answer
    // was stored with the key: the key is unfinished and its holder gone.
    answer_lost(&app, "ep-0002").await;
    let again = post(&app, "/api/v1/webhook-endpoints", &body, Some("ep-0002")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["id"], first.json()["id"], "not a second endpoint");
    assert_eq!(again.json()["secret"], first.json()["secret"]);
    let listed = get(&app, "/api/v1/webhook-endpoints").await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    app.stop().await;
}

async fn a_retried_creation_with_its_idempotency_key_makes_one_endpoint(backend: Backend) {
    let app = app(backend, |_| {}).await;
    let body = json!({"url": "http://127.0.0.1:9/orders", "eventTypes": ["payment.paid"]});
    let first = post(&app, "/api/v1/webhook-endpoints", &body, Some("ep-0001")).await;
    assert_eq!(first.status, 201);
    let again = post(&app, "/api/v1/webhook-endpoints", &body, Some("ep-0001")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(
        again.json()["secret"],
        first.json()["secret"],
        "the retry can sign with what it was given"
    );
    let other = json!({"url": "http://127.0.0.1:9/elsewhere"});
    let misused = post(&app, "/api/v1/webhook-endpoints", &other, Some("ep-0001")).await;
    assert_eq!(misused.problem(422)["field"], "Idempotency-Key");
    let listed = get(&app, "/api/v1/webhook-endpoints").await.json();
    let urls: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert_eq!(urls.iter().filter(|u| u.ends_with("/orders")).count(), 1, "{urls:?}");
    app.stop().await;
}

async fn a_retried_rotation_with_its_idempotency_key_rotates_once(backend: Backend) {
    let app = app(backend, |_| {}).await;
    let (endpoint, first_secret) = subscribe(&app, "http://127.0.0.1:9/orders", &[]).await;
    let path = format!("/api/v1/webhook-endpoints/{endpoint}/rotate-secret");
    let rotated = post(&app, &path, &json!({}), Some("rot-0001")).await;
    assert_eq!(rotated.status, 200);
    let again = post(&app, &path, &json!({}), Some("rot-0001")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json()["secret"], rotated.json()["secret"], "the same new secret");
    let stored = app.state.store.get_endpoint(&endpoint).await.unwrap().unwrap();
    assert_eq!(
        stored.previous_secret.as_deref(),
        Some(first_secret.as_str()),
        "the secret the receiver holds still signs alongside"
    );
    let misused = post(&app, &path, &json!({"previousSecretSeconds": 0}), Some("rot-0001")).await;
    assert_eq!(misused.problem(422)["field"], "Idempotency-Key");

    // As if the process died after the next rotation's commit, before its
    // answer was stored with the key: the retry gets that rotation's secret.
    let second = post(&app, &path, &json!({}), Some("rot-0002")).await;
    assert_eq!(second.status, 200);
    answer_lost(&app, "rot-0002").await;
    let resumed = post(&app, &path, &json!({}), Some("rot-0002")).await;
    assert_eq!(resumed.status, 200);
    assert_eq!(
        resumed.json()["secret"],
        second.json()["secret"],
        "not a third rotation"
    );
    let stored = app.state.store.get_endpoint(&endpoint).await.unwrap().unwrap();
    assert_eq!(stored.previous_secret.as_deref(), rotated.json()["secret"].as_str());
    app.stop().await;
}

async fn undelivered_events_are_counted_per_endpoint_with_the_oldest_ones_age(backend: Backend) {
    let app = app(backend, |env| {
        common::set_env(env, "FINPAY_QRIS__EVENTS__DELIVERY_ENABLED", "false")
    })
    .await;
    let (endpoint, _) = subscribe(&app, "http://127.0.0.1:9/never", &[]).await;
    let (other, _) = subscribe(&app, "http://127.0.0.1:9/other", &["payment.expired"]).await;
    let before = finpay_qris::store::now();
    paid_by_notification(&app, "1000.00").await;
    paid_by_notification(&app, "2000.00").await;
    let backlog = app.state.store.delivery_backlog().await.unwrap();
    let of = |id: &str| backlog.iter().find(|(e, _, _)| e == id).cloned().unwrap();
    let (_, pending, oldest) = of(&endpoint);
    assert_eq!(pending, 2);
    assert!(oldest.is_some_and(|t| t >= before), "{oldest:?}");
    assert_eq!(of(&other), (other.clone(), 0, None));
    app.stop().await;
}

/// The configured endpoint as a start on `db` with `url` leaves it.
async fn configured_endpoint_after_a_start(db: common::TestDb, url: &str) -> (TestApp, Value) {
    let mut env = common::base_env(&db.url);
    super::events_env(&mut env);
    common::set_env(&mut env, "FINPAY_QRIS__EVENTS__ENDPOINT_URL", url);
    common::set_env(
        &mut env,
        "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    let app = TestApp::spawn_env(db, env).await;
    let endpoint = eventually("the configured endpoint", Duration::from_secs(10), || async {
        let listed = get(&app, "/api/v1/webhook-endpoints").await.json();
        listed["items"].as_array().and_then(|items| items.first().cloned())
    })
    .await;
    (app, endpoint)
}

/// A start applies the configured endpoint's URL and secret, but does not
/// undo a disable (a person's, or the sender's) unless the URL changed.
async fn a_restart_keeps_the_configured_endpoint_disabled_unless_its_url_changed(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let url = "http://127.0.0.1:9/hooks";
    let (first, endpoint) = configured_endpoint_after_a_start(db.shared(), url).await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let r = first
        .http
        .patch(first.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(common::API_KEY)
        .json(&json!({"enabled": false}));
    assert_eq!(r.send().await.unwrap().status(), 200);
    first.stop().await;

    let (second, endpoint) = configured_endpoint_after_a_start(db.shared(), url).await;
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    let reason = endpoint["disabledReason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("disabled by key-"), "who disabled it: {reason}");
    second.stop().await;

    let (third, endpoint) = configured_endpoint_after_a_start(db.shared(), "http://127.0.0.1:9/moved").await;
    assert_eq!(endpoint["enabled"], true, "a new URL is a fresh start: {endpoint}");
    assert_eq!(endpoint["url"], "http://127.0.0.1:9/moved");
    third.stop().await;

    // Removed from the configuration: disabled, and enabled only by configuring it again.
    let mut env = common::base_env(&db.url);
    super::events_env(&mut env);
    let fourth = TestApp::spawn_env(db.shared(), env).await;
    let enable = fourth
        .http
        .patch(fourth.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(common::API_KEY)
        .json(&json!({"enabled": true}));
    let refused = enable.send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:finpay-qris:problem:configured-endpoint",
        "{problem}"
    );
    let with_a_url = fourth
        .http
        .patch(fourth.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(common::API_KEY)
        .json(&json!({"enabled": true, "url": "http://127.0.0.1:9/moved"}));
    assert_eq!(
        with_a_url.send().await.unwrap().status(),
        409,
        "naming its own URL changes nothing"
    );
    fourth.stop().await;
    drop(db);
}

async fn a_secret_changed_in_the_configuration_signs_alongside_the_old_one(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let configured = |secret: &'static str| {
        let url = receiver.url();
        move |env: &mut Vec<(String, String)>| {
            common::set_env(env, "FINPAY_QRIS__EVENTS__ENDPOINT_URL", &url);
            common::set_env(env, "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET", secret);
        }
    };
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = "whsec_c2Vjb25kIHNlY3JldCBvZiB0aGUgdGVzdHMgaGVyZQ==";
    let first = app(backend, configured(old)).await;
    // The first start has stored its endpoint before the second start reads it
    // (each applies the configuration as it starts serving).
    for _ in 0..200 {
        let listed = get(&first, "/api/v1/webhook-endpoints").await.json();
        if listed["items"].as_array().is_some_and(|items| !items.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let db = first.db.shared();
    let mut env = common::base_env(&db.url);
    for (k, v) in [
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20"),
    ] {
        common::set_env(&mut env, k, v);
    }
    configured(new)(&mut env);
    // The configuration changed: the same database, started again with the new secret.
    let second = TestApp::spawn_env(db, env).await;
    let endpoints = get(&second, "/api/v1/webhook-endpoints").await.json();
    let endpoint = &endpoints["items"][0];
    assert_eq!(endpoint["source"], "config");
    assert!(endpoint["previousSecretUntil"].is_string(), "{endpoint}");
    paid_by_notification(&second, "1000.00").await;
    let got = receiver.wait_for(1).await;
    assert!(verified_by_reference_library(new, &got[0]));
    assert!(verified_by_reference_library(old, &got[0]));
    let id = endpoint["id"].as_str().unwrap();
    let r = post(
        &second,
        &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(r.problem(409)["type"], "urn:finpay-qris:problem:configured-endpoint");
    // Its URL is the configuration's too (a restart would put it back); a
    // description can be changed, and removed with null.
    let patch = |body: serde_json::Value| {
        second
            .http
            .patch(second.api_url(&format!("/api/v1/webhook-endpoints/{id}")))
            .bearer_auth(common::API_KEY)
            .json(&body)
            .send()
    };
    let moved = patch(json!({"url": "http://127.0.0.1:9/elsewhere"})).await.unwrap();
    assert_eq!(moved.status(), 409);
    let problem: serde_json::Value = moved.json().await.unwrap();
    assert_eq!(problem["type"], "urn:finpay-qris:problem:configured-endpoint");
    assert_eq!(problem["field"], "url");
    // It receives every event type, as the configuration says.
    let narrowed = patch(json!({"eventTypes": ["payment.paid"]})).await.unwrap();
    assert_eq!(narrowed.status(), 409);
    assert_eq!(
        narrowed.json::<serde_json::Value>().await.unwrap()["field"],
        "eventTypes"
    );
    let every = patch(json!({"eventTypes": []})).await.unwrap();
    assert_eq!(every.status(), 200, "every type is what it has");
    let unchanged = patch(json!({"url": endpoint["url"]})).await.unwrap();
    assert_eq!(unchanged.status(), 200, "the same URL sent back changes nothing");
    let changed = patch(json!({"description": "orders"})).await.unwrap();
    assert_eq!(
        changed.json::<serde_json::Value>().await.unwrap()["description"],
        "orders"
    );
    let cleared = patch(json!({"description": null})).await.unwrap();
    assert_eq!(cleared.status(), 200);
    let cleared: serde_json::Value = cleared.json().await.unwrap();
    assert!(cleared["description"].is_null(), "{cleared}");
    assert_eq!(cleared["url"], endpoint["url"]);
    second.stop().await;
    first.stop().await;
}

/// Each sending loop claims and sends cycles of its own: with two loops that
/// send one delivery at a time, two slow attempts are under way at once (one
/// loop would start the second only after the first timed out, 10 s later).
async fn two_sending_loops_have_two_attempts_under_way_at_once(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Slow(Duration::from_secs(30))]).await;
    let app = app(backend, |env| {
        for (k, v) in [
            ("FINPAY_QRIS__EVENTS__SENDERS", "2"),
            ("FINPAY_QRIS__EVENTS__CONCURRENCY", "1"),
            ("FINPAY_QRIS__EVENTS__BATCH_SIZE", "1"),
            ("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "10000"),
        ] {
            common::set_env(env, k, v);
        }
    })
    .await;
    subscribe(&app, &receiver.url(), &["payment.paid"]).await;
    paid_by_notification(&app, "1000.00").await;
    paid_by_notification(&app, "2000.00").await;

    let both = tokio::time::timeout(Duration::from_secs(5), receiver.wait_for(2))
        .await
        .expect("the second attempt started while the first was under way");
    assert_ne!(both[0].headers["webhook-id"], both[1].headers["webhook-id"]);
    app.stop().await;
}

/// A stored batch of notifications ends the sender's pause: the event of a
/// paid payment arrives long before the next poll would have found it.
async fn a_stored_notification_wakes_the_sender_before_its_poll_interval(backend: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let app = app(backend, |env| {
        common::set_env(env, "FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "120000");
    })
    .await;
    subscribe(&app, &receiver.url(), &["payment.paid"]).await;
    paid_by_notification(&app, "1000.00").await;

    let got = tokio::time::timeout(Duration::from_secs(10), receiver.wait_for(1))
        .await
        .expect("the paid event arrived without waiting for the two-minute poll");
    assert_eq!(body(&got[0])["type"], "payment.paid");
    app.stop().await;
}

on_both_backends!(
    a_stored_notification_wakes_the_sender_before_its_poll_interval,
    two_sending_loops_have_two_attempts_under_way_at_once,
    a_secret_changed_in_the_configuration_signs_alongside_the_old_one,
    a_restart_keeps_the_configured_endpoint_disabled_unless_its_url_changed,
    undelivered_events_are_counted_per_endpoint_with_the_oldest_ones_age,
    a_paid_payment_is_delivered_signed_and_the_reference_library_verifies_it,
    an_answer_holding_a_nul_byte_is_recorded_and_the_delivery_succeeds,
    failed_attempts_are_retried_until_the_endpoint_answers_2xx,
    a_refused_connection_is_retried_then_failed_and_resending_what_failed_delivers_it,
    a_redirect_is_not_followed,
    an_endpoint_failing_too_long_is_disabled_and_that_is_an_event,
    a_resent_event_arrives_again_with_its_id_and_a_rotated_secret_signs_alongside,
    endpoints_refuse_http_and_private_addresses_by_default,
    a_retried_creation_with_its_idempotency_key_makes_one_endpoint,
    a_retried_rotation_with_its_idempotency_key_rotates_once,
    a_retry_after_the_first_creation_died_unanswered_gets_the_endpoint_it_made,
    an_endpoint_whose_url_the_settings_now_refuse_is_not_enabled_again,
    an_endpoint_that_does_not_answer_is_not_tried_again_in_the_same_cycle,
);
