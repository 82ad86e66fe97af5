//! The finance export: payments paid and refunds asked on Jakarta days, as
//! CSV with exact amounts and Jakarta times, streamed from the database.

use super::support::{spawn, Console};
use crate::api::support::get;
use crate::common::{self, Backend, TestApp};
use finpay_qris::store::{NewRefund, RefundOutcome, RefundReservation};

fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&finpay_qris::console::view::JAKARTA)
        .date_naive()
        .to_string()
}

/// A payment learnt from a notification that states Finpay's fee.
async fn paid_with_fee(app: &TestApp, amount: &str, fee: &str) -> serde_json::Value {
    let token = app.token().await;
    let partner_ref = format!("S{}", common::unique_digits());
    let body = common::notify_body(&partner_ref, &format!("R{}", common::unique_digits()), "00", amount).replace(
        "\"additionalInfo\":{",
        &format!("\"additionalInfo\":{{\"FeeAmount\":{{\"value\":\"{fee}\",\"currency\":\"IDR\"}},"),
    );
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    get(app, &format!("/api/v1/payments/{partner_ref}")).await.json()
}

async fn refund_succeeded(app: &TestApp, payment_id: &str, amount_minor: i64, reason: &str) {
    let id = uuid::Uuid::now_v7().to_string();
    let new = NewRefund {
        id: id.clone(),
        payment_id: payment_id.to_string(),
        partner_refund_no: format!("RF{}", common::unique_digits()),
        amount_minor,
        reason: reason.to_string(),
        created_at: finpay_qris::store::now(),
    };
    let r = app.state.store.reserve_refund(&new, None).await.unwrap();
    assert!(matches!(r, RefundReservation::Reserved(_)), "{r:?}");
    let outcome = RefundOutcome::Succeeded {
        reference_no: Some("FRF-1".into()),
        response_code: Some("2005800".into()),
        message: None,
    };
    app.state.store.complete_refund(&id, 1, &outcome).await.unwrap();
}

async fn the_export_lists_the_days_payments_and_refunds_for_finance(backend: Backend) {
    let app = spawn(backend).await;
    let paid = paid_with_fee(&app, "25000.00", "175.00").await;
    let id = paid["id"].as_str().unwrap();
    refund_succeeded(&app, id, 1_000_000, "=cmd|' /C calc'!A0, returned").await;
    let day = today();
    let r = get(&app, &format!("/api/v1/exports/payments.csv?from={day}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("payments-{day}-{day}.csv")));
    let csv = String::from_utf8(r.bytes.clone()).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("type,time_jakarta,payment_id,partner_reference_no,finpay_reference_no"));
    let payment: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(payment[0], "payment");
    assert!(payment[1].ends_with("+07:00"), "{}", payment[1]);
    assert_eq!(payment[2], id);
    assert_eq!(payment[3], paid["partnerReferenceNo"].as_str().unwrap());
    assert_eq!(payment[4], paid["referenceNo"].as_str().unwrap());
    assert_eq!(&payment[8..13], ["paid", "25000.00", "IDR", "10000.00", "175.00"]);
    assert!(lines[2].starts_with("refund,"), "{}", lines[2]);
    assert!(lines[2].contains(",FRF-1,succeeded,10000.00,IDR,"), "{}", lines[2]);
    assert!(
        lines[2].ends_with(",\"'=cmd|' /C calc'!A0, returned\""),
        "a formula is defused: {}",
        lines[2]
    );

    let yesterday = (chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap() - chrono::Days::new(1)).to_string();
    let none = get(
        &app,
        &format!("/api/v1/exports/payments.csv?from={yesterday}&to={yesterday}"),
    )
    .await;
    assert_eq!(
        String::from_utf8(none.bytes).unwrap().lines().count(),
        1,
        "only the header"
    );
    let reversed = get(&app, &format!("/api/v1/exports/payments.csv?from={day}&to={yesterday}")).await;
    assert_eq!(
        String::from_utf8(reversed.bytes).unwrap().lines().count(),
        1,
        "an empty range"
    );
    let bad = get(&app, &format!("/api/v1/exports/payments.csv?from={day}&to=tomorrow"))
        .await
        .problem(400);
    assert_eq!(bad["field"], "to");
    let before_year_one = get(&app, &format!("/api/v1/exports/payments.csv?from=-5000-01-01&to={day}"))
        .await
        .problem(400);
    assert_eq!(before_year_one["field"], "from");

    let c = Console::sign_in(&app, common::API_KEY).await;
    let from_console = c.get(&format!("/console/export.csv?from={day}&to={day}")).await;
    assert_eq!(from_console.status, 200);
    assert_eq!(from_console.body, csv, "the console downloads the same file");
    let one_day = c.get(&format!("/console/export.csv?from={day}&to=")).await;
    assert_eq!(one_day.body, csv, "an empty last day is the first day");
    app.stop().await;
}

async fn the_fee_is_that_of_the_notification_that_paid(backend: Backend) {
    let app = spawn(backend).await;
    let paid = paid_with_fee(&app, "25000.00", "175.00").await;
    // Finpay then reports the payment refunded (from its dashboard, say): a
    // notification that is applied too, and states no fee.
    let token = app.token().await;
    let refunded = common::notify_body(
        paid["partnerReferenceNo"].as_str().unwrap(),
        paid["referenceNo"].as_str().unwrap(),
        "04",
        "25000.00",
    );
    let (status, answer) = app.notify(&token, &common::unique_digits(), &refunded).await;
    assert_eq!(status, 200, "{answer}");
    let r = get(&app, &format!("/api/v1/exports/payments.csv?from={}", today())).await;
    let csv = String::from_utf8(r.bytes).unwrap();
    let payment: Vec<&str> = csv.split("\r\n").nth(1).unwrap().split(',').collect();
    assert_eq!((payment[8], payment[12]), ("refunded", "175.00"), "{csv}");
    app.stop().await;
}

/// Sets payments paid straight in the database (many at once, quickly).
async fn mark_all_paid(db_url: &str) {
    let sql = "UPDATE payments SET status = 'paid', paid_at = created_at, next_check_at = NULL";
    with_connection!(db_url, |c| {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    });
}

async fn a_large_export_is_streamed_in_order_without_loss(backend: Backend) {
    let app = spawn(backend).await;
    const N: usize = 700;
    for i in 0..N {
        crate::api::support::insert_payment(&app, 100_000 + i as i64).await;
    }
    mark_all_paid(&app.db.url).await;
    let resp = app
        .http
        .get(app.api_url(&format!("/api/v1/exports/payments.csv?from={}", today())))
        .bearer_auth(common::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut chunks = 0;
    let mut csv = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        csv.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks > 1, "the body is sent as it is read, not as one buffer");
    let csv = String::from_utf8(csv).unwrap();
    let amounts: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(9).unwrap().to_string())
        .collect();
    assert_eq!(amounts.len(), N, "every payment, once");
    let expected: Vec<String> = (0..N)
        .map(|i| finpay_qris::domain::status::format_minor(100_000 + i as i64))
        .collect();
    assert_eq!(amounts, expected, "in the order they were paid");
    app.stop().await;
}

on_both_backends!(
    the_fee_is_that_of_the_notification_that_paid,
    the_export_lists_the_days_payments_and_refunds_for_finance,
    a_large_export_is_streamed_in_order_without_loss
);
