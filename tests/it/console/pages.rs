//! What the console's pages show: payments found by the REST list's
//! filters, a payment's timeline with its notifications' bodies as inert
//! text, money in rupiah and times in Jakarta.

use super::support::{spawn, Console};
use crate::api::support::paid_by_notification;
use crate::common::{self, Backend};

async fn a_notification_body_with_markup_is_shown_as_text(backend: Backend) {
    let app = spawn(backend).await;
    let token = app.token().await;
    let partner_ref = format!("S{}", common::unique_digits());
    let body = common::notify_body(&partner_ref, &format!("R{}", common::unique_digits()), "00", "25000.00").replace(
        "\"success\"",
        "\"<script>alert('x')</script><img src=x onerror=alert(1)>\"",
    );
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let c = Console::sign_in(&app, common::API_KEY).await;
    let page = c.get(&format!("/console/payments/{partner_ref}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Notification from Finpay"));
    assert!(
        page.body.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<script") && !page.body.contains("<img src=x"),
        "rendered inert"
    );
    assert!(page.body.contains("Rp 25.000"));
    assert!(page.body.contains("+07:00"), "times in Jakarta with the offset");
    app.stop().await;
}

async fn the_payments_page_filters_like_the_rest_list(backend: Backend) {
    let app = spawn(backend).await;
    let small = paid_by_notification(&app, "10000.00").await;
    let large = paid_by_notification(&app, "25000.00").await;
    let c = Console::sign_in(&app, common::API_KEY).await;
    let all = c.get("/console/payments").await;
    let (s, l) = (
        small["partnerReferenceNo"].as_str().unwrap(),
        large["partnerReferenceNo"].as_str().unwrap(),
    );
    assert!(all.body.find(l).unwrap() < all.body.find(s).unwrap(), "newest first");
    let by_amount = c.get("/console/payments?amount=25.000").await;
    assert!(by_amount.body.contains(l) && !by_amount.body.contains(s));
    let by_finpay_ref = c
        .get(&format!(
            "/console/payments?reference={}",
            small["referenceNo"].as_str().unwrap()
        ))
        .await;
    assert!(by_finpay_ref.body.contains(s) && !by_finpay_ref.body.contains(l));
    let pending = c.get("/console/payments?status=pending").await;
    assert!(pending.body.contains("No payments match."));
    let bad = c.get("/console/payments?status=%3Cb%3E&createdFrom=soon").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Status: not a status.") && !bad.body.contains("<b>"));
    // Filters the console cannot read are said so, never dropped for a list of everything.
    for path in [
        "/console/payments?status=paid&status=pending",
        "/console/payments?createdFrom=-5000-01-01T00:00",
        "/console/payments?flagged=maybe",
        "/console/refusals?reason=a&reason=b",
        "/console/refusals?from=-5000-01-01T00:00",
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("role=\"alert\""), "{path}: the problem is shown");
        assert!(!r.body.contains(s), "{path}: nothing is listed");
    }
    app.stop().await;
}

async fn the_overview_counts_todays_payments_by_status(backend: Backend) {
    let app = spawn(backend).await;
    paid_by_notification(&app, "10000.00").await;
    paid_by_notification(&app, "2500.50").await;
    // Paid in dollars: counted, but its amount is not rupiah and is left out.
    let token = app.token().await;
    let body = common::notify_body("INV-USD", "FP-USD", "00", "700.00").replace("\"IDR\"", "\"USD\"");
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let c = Console::sign_in(&app, common::API_KEY).await;
    let page = c.get("/console").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Rp 12.500,50"), "{}", page.body);
    let paid_row = r#"<td class="num">3</td><td class="num">Rp 12.500,50</td>"#;
    assert!(
        page.body.contains(paid_row),
        "three paid, only the rupiah added: {}",
        page.body
    );
    assert!(page.body.contains("<svg"), "the hourly chart");
    assert!(page.body.contains("Notifications received"));
    app.stop().await;
}

async fn the_overview_adds_up_the_largest_amounts_without_failing(backend: Backend) {
    let app = spawn(backend).await;
    // 99,999,999,999,999.99 rupiah, the most the API accepts: 923 of them pass
    // i64::MAX minor units, where one sum in SQL overflowed and the page failed.
    let largest = 9_999_999_999_999_999;
    for _ in 0..(923 / 13) + 1 {
        futures::future::join_all((0..13).map(|_| crate::api::support::insert_payment(&app, largest))).await;
    }
    let c = Console::sign_in(&app, common::API_KEY).await;
    let page = c.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Rp 92.233.720.368.547.758,07"),
        "the total is held at the largest it can show: {}",
        page.body
    );
    app.stop().await;
}

async fn a_time_range_pages_newest_first_without_repeats(backend: Backend) {
    let app = spawn(backend).await;
    let from = finpay_qris::store::now() - chrono::Duration::seconds(1);
    let mut created = Vec::new();
    for amount in 1..=5 {
        created.push(crate::api::support::insert_payment(&app, amount * 100).await.id);
    }
    created.reverse();
    let t = finpay_qris::console::payments::urlencode(&from.to_rfc3339());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/payments?createdFrom={t}&limit=2&cursor={c}"),
            None => format!("/api/v1/payments?createdFrom={t}&limit=2"),
        };
        let page = crate::api::support::get(&app, &path).await.json();
        for p in page["items"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every payment once, newest first");
    app.stop().await;
}

on_both_backends!(
    a_time_range_pages_newest_first_without_repeats,
    a_notification_body_with_markup_is_shown_as_text,
    the_payments_page_filters_like_the_rest_list,
    the_overview_counts_todays_payments_by_status,
    the_overview_adds_up_the_largest_amounts_without_failing
);
