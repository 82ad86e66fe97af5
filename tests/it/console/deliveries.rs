//! Endpoints and deliveries in the console: the endpoints with their state
//! and backlog, an endpoint's deliveries and attempts, a payment's pushed
//! events in its timeline, never a secret; and the `operate` role's
//! actions (disable/enable, resend the failed events created since a time, resend one
//! event), each with its CSRF token and a confirmation, refused to `read`.

use super::support::{roles_env, Console, READ_KEY};
use crate::api::support::{get, paid_by_notification, post};
use crate::common::{self, eventually, Backend, TestApp};
use crate::events::events_env;
use crate::events::receiver::{Answer, Receiver};
use serde_json::{json, Value};
use std::time::Duration;

/// Events delivered at test speed to local receivers, with the console's keys.
async fn spawn(backend: Backend) -> TestApp {
    spawn_retrying(backend, "0,0").await
}

/// The same, retrying on this schedule (seconds).
async fn spawn_retrying(backend: Backend, schedule: &str) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        roles_env(env);
        events_env(env);
        common::set_env(env, "FINPAY_QRIS__EVENTS__RETRY_SCHEDULE", schedule);
    })
    .await
}

/// Subscribes `url` to every type; the endpoint's id and secret.
pub async fn subscribe(app: &TestApp, url: &str) -> (String, String) {
    let r = post(app, "/api/v1/webhook-endpoints", &json!({"url": url}), None).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let e = r.json();
    (e["id"].as_str().unwrap().into(), e["secret"].as_str().unwrap().into())
}

/// The payment's only event (`payment.paid`) once its delivery is `status`.
async fn paid_event_when(app: &TestApp, payment_id: &str, status: &str) -> Value {
    eventually(
        &format!("the delivery to be {status}"),
        Duration::from_secs(20),
        || async {
            let events = get(app, &format!("/api/v1/events?paymentId={payment_id}")).await.json();
            let id = events["items"][0]["id"].as_str()?.to_string();
            let e = get(app, &format!("/api/v1/events/{id}")).await.json();
            (e["deliveries"][0]["status"] == status).then_some(e)
        },
    )
    .await
}

async fn enabled(app: &TestApp, endpoint: &str) -> bool {
    let e = get(app, &format!("/api/v1/webhook-endpoints/{endpoint}")).await.json();
    e["enabled"].as_bool().unwrap()
}

async fn endpoints_deliveries_and_a_payments_events_are_shown_without_secrets(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let (endpoint, secret) = subscribe(&app, &receiver.url()).await;
    let paid = paid_by_notification(&app, "25000.00").await;
    let payment_id = paid["id"].as_str().unwrap();
    let event = paid_event_when(&app, payment_id, "succeeded").await;
    let event_id = event["id"].as_str().unwrap();
    let c = Console::sign_in(&app, READ_KEY).await;

    let list = c.get("/console/endpoints").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(&receiver.url()) && list.body.contains("enabled") && list.body.contains("every type"));
    let one = c.get(&format!("/console/endpoints/{endpoint}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert!(
        one.body.contains("payment.paid") && one.body.contains(event_id),
        "{}",
        one.body
    );
    assert!(one.body.contains("succeeded") && one.body.contains("HTTP 200"));
    assert!(one.body.contains("has the read role") && !one.body.contains("Disable…"));
    let timeline = c.get(&format!("/console/payments/{payment_id}")).await;
    assert!(timeline.body.contains("Event payment.paid pushed"), "{}", timeline.body);
    assert!(timeline.body.contains(&format!("to {}", receiver.url())));
    assert!(timeline.body.contains("succeeded (1 attempt; last: HTTP 200"));
    assert!(
        !timeline.body.contains("Resend this event"),
        "a read key has no actions"
    );
    let overview = c.get("/console").await;
    assert!(
        overview.body.contains("none: everything was delivered"),
        "{}",
        overview.body
    );
    for page in [&list, &one, &timeline, &overview] {
        assert!(
            !page.body.contains(&secret) && !page.body.contains("whsec_"),
            "a secret was shown"
        );
    }
    let unknown = c.get("/console/endpoints/nope").await;
    assert_eq!(unknown.status, 404);
    app.stop().await;
}

async fn an_operator_disables_enables_and_resends_after_confirming(backend: Backend) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn(backend).await;
    let (endpoint, _) = subscribe(&app, &format!("http://{closed}/hooks")).await;
    let paid = paid_by_notification(&app, "1000.00").await;
    let payment_id = paid["id"].as_str().unwrap();
    let event = paid_event_when(&app, payment_id, "failed").await;
    let event_id = event["id"].as_str().unwrap();
    let c = Console::sign_in(&app, common::API_KEY).await;
    let page = format!("/console/endpoints/{endpoint}");

    // The failed delivery and each of its attempts.
    let one = c.get(&page).await;
    assert!(one.body.contains("✕</span> failed"), "{}", one.body);
    let attempts = one.body.split("<ol class=\"attempts\">").nth(1).unwrap_or_default();
    let attempts = attempts.split("</ol>").next().unwrap_or_default();
    assert_eq!(
        attempts.matches("<li>").count(),
        3,
        "the first attempt and two retries: {attempts}"
    );

    // Disable: without the CSRF token nothing changes; with it, a confirmation first.
    let forged = c
        .post(&format!("{page}/enabled"), &[("enabled", "false"), ("confirm", "yes")])
        .await;
    assert_eq!(forged.status, 403);
    let asked = c.submit(&format!("{page}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("Disable this endpoint?"));
    assert!(
        enabled(&app, &endpoint).await,
        "nothing changed before the confirmation"
    );
    let done = c
        .submit(&format!("{page}/enabled"), &[("enabled", "false"), ("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303);
    assert!(!enabled(&app, &endpoint).await);
    assert!(c.get(&page).await.body.contains("disabled by "), "who disabled it");
    let while_disabled = c
        .submit(
            &format!("{page}/resend-failed"),
            &[("since", "2020-01-01T07:00"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(while_disabled.status, 409, "as the API answers: enable it first");
    assert!(while_disabled.body.contains("enable it"), "{}", while_disabled.body);
    c.submit(&format!("{page}/enabled"), &[("enabled", "true"), ("confirm", "yes")])
        .await;
    assert!(enabled(&app, &endpoint).await);

    // Point the endpoint at a receiver, then resend the failed events created since a time (Jakarta).
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let r = app
        .http
        .patch(app.api_url(&format!("/api/v1/webhook-endpoints/{endpoint}")))
        .bearer_auth(common::API_KEY)
        .json(&json!({"url": receiver.url()}));
    assert_eq!(r.send().await.unwrap().status(), 200);
    let resend = format!("{page}/resend-failed");
    let asked = c.submit(&resend, &[("since", "2020-01-01T07:00")]).await;
    assert!(asked.body.contains("Resend failed deliveries?") && asked.body.contains("2020-01-01 07:00:00 +07:00"));
    assert!(receiver.received().is_empty(), "nothing before the confirmation");
    let done = c
        .submit(&resend, &[("since", "2020-01-01T07:00"), ("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(receiver.wait_for(1).await[0].headers["webhook-id"], event_id);

    // Resend the event from the payment's timeline: on record with the key's name.
    let timeline = c.get(&format!("/console/payments/{payment_id}")).await;
    assert!(timeline
        .body
        .contains(&format!("action=\"/console/events/{event_id}/resend\"")));
    let path = format!("/console/events/{event_id}/resend");
    let asked = c.submit(&path, &[]).await;
    assert!(asked.body.contains("Resend this event?"));
    let done = c.submit(&path, &[("confirm", "yes")]).await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.header("location"),
        format!("/console/payments/{payment_id}?notice=resent")
    );
    assert_eq!(receiver.wait_for(2).await[1].headers["webhook-id"], event_id);
    let after = c.get(&format!("/console/payments/{payment_id}")).await;
    assert!(after.body.contains("by <strong>finance</strong>"), "{}", after.body);

    // A read key is refused every action, with its valid CSRF token.
    let reader = Console::sign_in(&app, READ_KEY).await;
    for (path, fields) in [
        (
            format!("{page}/enabled"),
            vec![("enabled", "false"), ("confirm", "yes")],
        ),
        (resend.clone(), vec![("since", "2020-01-01T07:00"), ("confirm", "yes")]),
        (path.clone(), vec![("confirm", "yes")]),
    ] {
        let refused = reader.submit(&path, &fields).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.body.contains("read role"));
    }
    assert!(enabled(&app, &endpoint).await);
    assert_eq!(receiver.received().len(), 2);
    app.stop().await;
}

async fn the_overview_says_how_old_the_oldest_undelivered_event_is(backend: Backend) {
    // The first attempt fails; the next is an hour away: the event waits. (A
    // receiver answering 500, not a closed port: another test may bind it.)
    let receiver = Receiver::start(vec![Answer::Status(500)]).await;
    let app = spawn_retrying(backend, "3600").await;
    subscribe(&app, &receiver.url()).await;
    let paid = paid_by_notification(&app, "1000.00").await;
    let event = eventually("a failed first attempt", Duration::from_secs(20), || async {
        let events = get(
            &app,
            &format!("/api/v1/events?paymentId={}", paid["id"].as_str().unwrap()),
        )
        .await
        .json();
        let id = events["items"][0]["id"].as_str()?.to_string();
        let e = get(&app, &format!("/api/v1/events/{id}")).await.json();
        (e["deliveries"][0]["attempts"].as_array()?.len() == 1).then_some(e)
    })
    .await;
    assert_eq!(event["deliveries"][0]["status"], "pending");
    let c = Console::sign_in(&app, READ_KEY).await;
    let overview = c.get("/console").await;
    let waiting =
        regex::Regex::new(r"<dt>Deliveries waiting</dt><dd>1</dd><dt>Oldest undelivered event</dt><dd>\d+ s old")
            .unwrap();
    assert!(waiting.is_match(&overview.body), "{}", overview.body);
    let list = c.get("/console/endpoints").await;
    assert!(
        list.body.contains("<td class=\"num\">1</td>"),
        "one waiting: {}",
        list.body
    );
    app.stop().await;
}

async fn an_endpoint_whose_url_the_settings_now_refuse_is_not_enabled_from_the_console(backend: Backend) {
    let app = TestApp::spawn_with(backend, roles_env).await;
    let id = crate::events::disabled_http_endpoint(&app).await;
    let c = Console::sign_in(&app, common::API_KEY).await;
    let refused = c
        .submit(
            &format!("/console/endpoints/{id}/enabled"),
            &[("enabled", "true"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("https"), "{}", refused.body);
    assert!(!enabled(&app, id).await);
    app.stop().await;
}

on_both_backends!(
    an_endpoint_whose_url_the_settings_now_refuse_is_not_enabled_from_the_console,
    the_overview_says_how_old_the_oldest_undelivered_event_is,
    endpoints_deliveries_and_a_payments_events_are_shown_without_secrets,
    an_operator_disables_enables_and_resends_after_confirming
);
