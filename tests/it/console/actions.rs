//! The console's actions against the Finpay simulator: refresh and refund,
//! each confirmed, carried out by the API's code, recorded with the key's
//! name; a refund Finpay cannot accept is answered with the reason.

use super::support::{roles_env, Console};
use crate::api::support::{paid_through_api, refunds_path};
use crate::common::{self, spawn_app_with_sim, spawn_simulator, Backend, TestApp};
use finpay_qris::simulator::SimHandle;

/// A payment of Rp 25.000 paid through the API, and a console signed in
/// with a key that operates.
async fn paid_in_the_console(backend: Backend) -> (SimHandle, TestApp, Console, String) {
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(backend, &sim, roles_env).await;
    let paid = paid_through_api(&app, &sim, "25000.00").await;
    let c = Console::sign_in(&app, common::API_KEY).await;
    (sim, app, c, paid["id"].as_str().unwrap().to_string())
}

/// The confirmed form of a refund of the whole Rp 25.000, numbered `number`.
fn refund_of_the_whole(number: &str) -> [(&str, &str); 4] {
    [
        ("amount", "25000"),
        ("reason", "cancelled"),
        ("partner_refund_no", number),
        ("confirm", "yes"),
    ]
}

/// Asks the refund of `fields` while Finpay fails: its answer is lost, and
/// the refund stays pending (the simulator still failing refunds).
async fn lose_the_answer_to(sim: &SimHandle, c: &Console, base: &str, fields: &[(&str, &str)]) {
    sim.update_faults(|f| f.fail_refund = true);
    let lost = c.submit(&format!("{base}/refund"), fields).await;
    assert_eq!(lost.status, 502, "{}", lost.body);
}

async fn refresh_and_refund_from_the_console(backend: Backend) {
    let (sim, app, c, id) = paid_in_the_console(backend).await;
    let id = id.as_str();
    let base = format!("/console/payments/{id}");

    let asked = c.submit(&format!("{base}/refresh"), &[]).await;
    assert!(asked.body.contains("Ask Finpay now"), "a confirmation first");
    let refreshed = c.submit(&format!("{base}/refresh"), &[("confirm", "yes")]).await;
    assert_eq!(refreshed.status, 303, "{}", refreshed.body);
    assert_eq!(refreshed.header("location"), format!("{base}?notice=refreshed"));
    assert!(
        !common::events_of(&app, id, "query").await.is_empty(),
        "Finpay was asked"
    );

    let confirm = c
        .submit(
            &format!("{base}/refund"),
            &[("amount", "10.000"), ("reason", "one item")],
        )
        .await;
    assert!(confirm.body.contains("Refund Rp 10.000"), "{}", confirm.body);
    let number = regex::Regex::new(r#"name="partner_refund_no" value="(CON[0-9a-f]+)""#)
        .unwrap()
        .captures(&confirm.body)
        .map(|m| m[1].to_string())
        .expect("the confirmation carries the refund's number");
    let fields = [
        ("amount", "10000"),
        ("reason", "one item"),
        ("partner_refund_no", number.as_str()),
        ("confirm", "yes"),
    ];
    let done = c.submit(&format!("{base}/refund"), &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let again = c.submit(&format!("{base}/refund"), &fields).await;
    assert_eq!(
        again.status, 303,
        "submitting the confirmation twice is the same refund"
    );
    let refunds = crate::api::support::get(&app, &refunds_path(id)).await.json();
    assert_eq!(refunds["items"].as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!(refunds["items"][0]["amount"], "10000.00");

    // Refused before the confirmation, as the API would refuse it, and nothing asked.
    for (amount, reason, says) in [
        ("15001", "too much", "at most 15000.00 can still be refunded"),
        ("100", " ", "reason: 1 to 256 characters"),
    ] {
        let early = c
            .submit(&format!("{base}/refund"), &[("amount", amount), ("reason", reason)])
            .await;
        assert!(early.status == 409 || early.status == 422, "{}", early.status);
        assert!(
            early.body.contains(says) && !early.body.contains("Confirm"),
            "{}",
            early.body
        );
    }

    let over = [("amount", "15001"), ("reason", "too much"), ("confirm", "yes")];
    let refused = c.submit(&format!("{base}/refund"), &over).await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("at most 15000.00 can still be refunded"),
        "{}",
        refused.body
    );

    let actions: Vec<(String, String)> = app
        .state
        .store
        .payment_actions(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.action))
        .collect();
    let by = |a: &str| ("finance".to_string(), a.to_string());
    assert_eq!(
        actions,
        [by("refresh"), by("refund"), by("refund"), by("refund")],
        "every ask is on record"
    );
    app.stop().await;
    sim.shutdown().await;
}

async fn the_payments_page_goes_back_in_pages_of_fifty(backend: Backend) {
    let app = super::support::spawn(backend).await;
    for amount in 1..=52 {
        crate::api::support::insert_payment(&app, amount * 100).await;
    }
    let c = Console::sign_in(&app, common::API_KEY).await;
    let first = c.get("/console/payments?status=pending").await;
    assert_eq!(first.body.matches("<tr><td>").count(), 50, "{}", first.body);
    assert!(
        first.body.contains("Rp 52<") && !first.body.contains("Rp 2<"),
        "newest first"
    );
    let older = regex::Regex::new(r#"href="(/console/payments\?status=pending&amp;cursor=[^"]+)">Older"#)
        .unwrap()
        .captures(&first.body)
        .map(|m| m[1].replace("&amp;", "&"))
        .expect("a link to older payments, keeping the filter");
    let second = c.get(&older).await;
    assert_eq!(second.body.matches("<tr><td>").count(), 2);
    assert!(second.body.contains("Rp 2<") && second.body.contains("Rp 1<"));
    assert!(second.body.contains("← Newest") && !second.body.contains("Older →"));
    // A link naming no payment (16 zero bytes) is a problem, not an empty page.
    let stale = c
        .get("/console/payments?status=pending&cursor=AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(stale.status, 400, "{}", stale.body);
    assert!(
        stale.body.contains("names a payment that is not here"),
        "{}",
        stale.body
    );
    app.stop().await;
}

async fn a_refund_whose_answer_was_lost_is_settled_from_the_console(backend: Backend) {
    let (sim, app, c, id) = paid_in_the_console(backend).await;
    let id = id.as_str();
    let base = format!("/console/payments/{id}");
    let fields = refund_of_the_whole("CONlost1");
    lose_the_answer_to(&sim, &c, &base, &fields).await;
    sim.update_faults(|f| f.fail_refund = false);

    let page = c.get(&base).await;
    assert!(page.body.contains("Ask Finpay again"), "{}", page.body);
    assert!(page.body.contains("Refunded or being refunded"));
    // The refund as stored is confirmed, whatever the form says; an unknown number is no refund.
    let again = c
        .submit(
            &format!("{base}/refund"),
            &[("amount", "1"), ("reason", "forged"), ("partner_refund_no", "CONlost1")],
        )
        .await;
    assert!(again.body.contains("Ask Finpay again about refund"), "{}", again.body);
    assert!(
        again.body.contains(r#"value="CONlost1""#),
        "the same number is confirmed"
    );
    assert!(
        again.body.contains("Rp 25.000") && again.body.contains("cancelled"),
        "{}",
        again.body
    );
    assert!(!again.body.contains("forged"));
    let unknown = c
        .submit(&format!("{base}/refund"), &[("partner_refund_no", "CONnever")])
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let settled = c.submit(&format!("{base}/refund"), &fields).await;
    assert_eq!(settled.status, 303, "{}", settled.body);
    let refunds = crate::api::support::get(&app, &refunds_path(id)).await.json();
    assert_eq!(refunds["items"].as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!(refunds["items"][0]["status"], "succeeded");
    assert!(!c.get(&base).await.body.contains("Ask Finpay again"));
    app.stop().await;
    sim.shutdown().await;
}

async fn a_pending_refund_is_settled_from_the_console_with_what_finpay_says(backend: Backend) {
    let (sim, app, c, id) = paid_in_the_console(backend).await;
    let base = format!("/console/payments/{id}");
    lose_the_answer_to(&sim, &c, &base, &refund_of_the_whole("CONsettle1")).await;
    let refunds = crate::api::support::get(&app, &refunds_path(&id)).await.json();
    let refund_id = refunds["items"][0]["id"].as_str().unwrap().to_string();
    assert!(c.get(&base).await.body.contains("Settle…"));

    let settle = format!("{base}/settle-refund");
    let said = [
        ("refund_id", refund_id.as_str()),
        ("outcome", "failed"),
        ("note", "Finpay: not made"),
    ];
    let asked = c.submit(&settle, &said).await;
    assert!(asked.body.contains("Finpay did not make this refund"), "{}", asked.body);
    let pending = crate::api::support::get(&app, &refunds_path(&id)).await.json();
    assert_eq!(
        pending["items"][0]["status"], "pending",
        "nothing before the confirmation"
    );
    let confirmed: Vec<(&str, &str)> = said.iter().copied().chain([("confirm", "yes")]).collect();
    let done = c.submit(&settle, &confirmed).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let settled = crate::api::support::get(&app, &refunds_path(&id)).await.json();
    assert_eq!(settled["items"][0]["status"], "failed");
    let page = c.get(&base).await.body;
    assert!(page.contains("Pending refund settled by a person"), "in the timeline");
    assert!(!page.contains("Settle…"), "nothing pending any more");
    app.stop().await;
    sim.shutdown().await;
}

on_both_backends!(
    a_pending_refund_is_settled_from_the_console_with_what_finpay_says,
    refresh_and_refund_from_the_console,
    a_refund_whose_answer_was_lost_is_settled_from_the_console,
    the_payments_page_goes_back_in_pages_of_fifty
);
