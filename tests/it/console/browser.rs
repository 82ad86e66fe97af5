//! The console in a real browser (headless Chromium over WebDriver): sign
//! in with the demo's kind of key, find a payment paid through the
//! simulator, read its timeline, refund part of it; a post without the CSRF
//! token and a `read` key's refund are refused. The run saves screenshots
//! of the main pages into target/screenshots/, or into the folder
//! `SCREENSHOTS_DIR` names (`docs/screenshots` renews the README's). A
//! notification signed over a Python-spaced body is refused and explained
//! on the Refused requests pages; the events pushed to an order service
//! are on the Endpoints pages.

use super::deliveries::subscribe;
use super::support::{client, flagged_payment, form_body, roles_env, READ_KEY};
use super::webdriver::Browser;
use crate::api::support::{get, paid_through_api, post, refunds_path};
use crate::common::{self, spawn_app_with_sim, spawn_simulator, Backend};
use crate::events::events_env;
use crate::events::receiver::{Answer, Receiver};
use crate::refusals::{raw_hash, refuse_one};
use serde_json::json;
use std::path::PathBuf;

/// Posts a form to the console as a browser would, with `cookie` and nothing else.
async fn post_form(url: String, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(url)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields))
        .send()
        .await
        .unwrap()
}

/// A notification as sent, and the same JSON as Python's `json.dumps` writes
/// it by default (the bytes its sender hashed).
const SENT: &str = r#"{"originalPartnerReferenceNo":"ORDER-1042","originalReferenceNo":"2026120600001042","latestTransactionStatus":"00","amount":{"value":"25000.00","currency":"IDR"}}"#;
const PY_SPACED: &str = r#"{"originalPartnerReferenceNo": "ORDER-1042", "originalReferenceNo": "2026120600001042", "latestTransactionStatus": "00", "amount": {"value": "25000.00", "currency": "IDR"}}"#;

/// Where a screenshot goes: a test run leaves the working tree as it was
/// unless asked to renew the README's pictures.
fn shot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("SCREENSHOTS_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target/screenshots"),
    };
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir.join(format!("{name}.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_followed_from_qr_to_paid_to_refunded_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(Backend::Sqlite, &sim, |env| {
        roles_env(env);
        events_env(env);
    })
    .await;
    // The merchant's order service, told of every payment change.
    let orders = Receiver::start(vec![Answer::Status(200)]).await;
    let (endpoint, _) = subscribe(&app, &orders.url()).await;
    // A few payments, as a morning at the till: two paid, one waiting, one flagged.
    let paid = paid_through_api(&app, &sim, "25000.00").await;
    paid_through_api(&app, &sim, "18500.00").await;
    let waiting = post(&app, "/api/v1/payments", &json!({"amount": "42000.00"}), None).await;
    assert_eq!(waiting.status, 201);
    flagged_payment(&app).await;
    let reference = paid["partnerReferenceNo"].as_str().unwrap().to_string();
    let id = paid["id"].as_str().unwrap().to_string();
    let base = format!("http://{}", app.internal);

    // Signing in.
    browser.goto(&format!("{base}/console")).await;
    assert!(browser.url().await.contains("/console/sign-in"), "a session is needed");
    browser.screenshot(&shot("sign-in")).await;
    browser.fill("#key", common::API_KEY).await;
    browser.click_through("form button[type=submit]").await;
    let overview = browser.text().await;
    assert!(overview.contains("Signed in as finance (operate)"), "{overview}");
    assert!(overview.contains("Payments created today, by status"));
    browser.screenshot(&shot("overview")).await;

    // Finding the payment by its reference.
    browser.goto(&format!("{base}/console/payments")).await;
    browser.screenshot(&shot("payments")).await;
    browser.fill("#reference", &reference).await;
    browser.click_through("form.filters button[type=submit]").await;
    assert_eq!(browser.all("table.payments tbody tr").await.len(), 1);
    browser.click_through("table.payments tbody a").await;
    let page = browser.text().await;
    assert!(page.contains(&format!("Payment {reference}")), "{page}");
    assert!(page.contains("Rp 25.000"));
    assert!(
        page.contains("Notification from Finpay") && page.contains("Status changed"),
        "{page}"
    );
    assert!(page.contains("Body as received"), "the notification's body is shown");
    browser.screenshot(&shot("payment")).await;
    browser.screenshot_at(&shot("payment-phone"), 390).await;

    // Refunding part of it: the form, the confirmation, the result.
    browser.fill("#amount", "10.000").await;
    browser.fill("#reason", "Customer returned one item").await;
    browser.click_through("form[action$='/refund'] button").await;
    let confirm = browser.text().await;
    assert!(confirm.contains("Refund Rp 10.000 of payment"), "{confirm}");
    browser.screenshot(&shot("refund-confirm")).await;
    browser.click_through("button.primary").await;
    let after = browser.text().await;
    assert!(after.contains("Refund done"), "{after}");
    assert!(
        after.contains("Refund asked by finance") && after.contains("Refund succeeded"),
        "{after}"
    );
    browser.screenshot(&shot("payment-refunded")).await;
    let refunds = get(&app, &refunds_path(&id)).await.json();
    assert_eq!(refunds["items"].as_array().unwrap().len(), 1);
    assert_eq!(refunds["items"][0]["amount"], "10000.00");

    // The browser's session, posting without the page's CSRF token: refused.
    let cookie = format!("finpay_console={}", browser.cookie("finpay_console").await);
    let refund_url = format!("{base}/console/payments/{id}/refund");
    let forged = post_form(
        refund_url.clone(),
        &cookie,
        &[("amount", "1000"), ("reason", "forged"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(forged.status(), 403);
    let refunds = get(&app, &refunds_path(&id)).await.json();
    assert_eq!(
        refunds["items"].as_array().unwrap().len(),
        1,
        "nothing more was refunded"
    );

    browser.goto(&format!("{base}/console/flagged")).await;
    assert_eq!(browser.all("table.payments tbody tr").await.len(), 1);
    browser.screenshot(&shot("flagged")).await;
    browser.goto(&format!("{base}/console/export")).await;
    browser.screenshot(&shot("export")).await;

    // A notification signed over another body than it carries: refused, and the page says why.
    let refused = refuse_one(&app, SENT, "python", |s| s.body_hash = raw_hash(PY_SPACED)).await;
    assert_eq!(refused["dialects"], json!(["body-spaced-separators"]));
    browser.goto(&format!("{base}/console/refusals")).await;
    assert_eq!(browser.all("table.refusals tbody tr").await.len(), 1);
    browser.screenshot(&shot("refused-requests")).await;
    browser.click_through("table.refusals tbody a").await;
    let explained = browser.text().await;
    assert!(
        explained.contains("body-spaced-separators") && explained.contains("Python's json.dumps default"),
        "{explained}"
    );
    assert!(explained.contains("ORDER-1042"), "the body as received");
    browser.screenshot(&shot("refused-request")).await;

    // The events pushed to the order service, and their deliveries.
    orders.wait_for(4).await;
    browser.goto(&format!("{base}/console/endpoints")).await;
    assert_eq!(browser.all("table.endpoints tbody tr").await.len(), 1);
    browser.screenshot(&shot("endpoints")).await;
    browser.click_through("table.endpoints tbody a").await;
    assert!(browser.url().await.ends_with(&format!("/console/endpoints/{endpoint}")));
    let deliveries = browser.text().await;
    assert!(
        deliveries.contains("payment.paid") && deliveries.contains("HTTP 200"),
        "{deliveries}"
    );
    browser.screenshot(&shot("endpoint")).await;

    // A key of the read role: sees the payment, has no actions, cannot refund.
    browser.click_through(".who button").await;
    assert!(browser.url().await.ends_with("/console/sign-in"));
    browser.fill("#key", READ_KEY).await;
    browser.click_through("form button[type=submit]").await;
    browser.goto(&format!("{base}/console/payments/{reference}")).await;
    let read = browser.text().await;
    assert!(read.contains("has the read role"), "{read}");
    assert!(browser.all("#amount").await.is_empty(), "no refund form");
    browser.screenshot(&shot("payment-read-only")).await;
    let csrf = regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#)
        .unwrap()
        .captures(&browser.source().await)
        .map(|c| c[1].to_string())
        .expect("the page carries its CSRF token");
    let cookie = format!("finpay_console={}", browser.cookie("finpay_console").await);
    let fields = [
        ("csrf", csrf.as_str()),
        ("amount", "1000"),
        ("reason", "x"),
        ("confirm", "yes"),
    ];
    let refused = post_form(refund_url, &cookie, &fields).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("read role"));
    let refunds = get(&app, &refunds_path(&id)).await.json();
    assert_eq!(refunds["items"].as_array().unwrap().len(), 1);

    browser.quit().await;
    app.stop().await;
    sim.shutdown().await;
}
