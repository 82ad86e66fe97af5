//! `GET /metrics` on the internal listener exposes the series operators need,
//! after real traffic, on both backends.

use crate::common::*;
use finpay_qris::snap::{body, signature, timestamp};

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics_expose_notifications_failures_duplicates_latency_batches_and_the_pool(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let ext = unique_digits();
    let body = notify_body("INV-MET", "FP-MET", "00", "100.00");
    assert_eq!(app.notify(&token, &ext, &body).await.0, 200);
    assert_eq!(
        app.notify(&token, &ext, &body).await.0,
        200,
        "a duplicate, answered as the first time"
    );
    assert_eq!(
        app.notify(
            &token,
            &unique_digits(),
            &notify_body("INV-MET2", "FP-MET2", "03", "5.00")
        )
        .await
        .0,
        200
    );
    // A forged signature and an unknown token.
    let ts = now_ts();
    let sts = signature::symmetric_string_to_sign("POST", NOTIFY_PATH, &token, &body::body_hash(body.as_bytes()), &ts);
    let forged = signature::HmacKey::new(b"not-the-secret").sign(&sts);
    // A second X-SIGNATURE header is refused as malformed (4005201)...
    let r = signed_notify(
        &app.http,
        &app.url(NOTIFY_PATH),
        NOTIFY_PATH,
        &token,
        &unique_digits(),
        &body,
        &ts,
    )
    .header("X-SIGNATURE", forged)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // ... and the forged one alone does not verify (4015200).
    let r = app
        .http
        .post(app.url(NOTIFY_PATH))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {token}"))
        .header("X-TIMESTAMP", &ts)
        .header("X-SIGNATURE", signature::HmacKey::new(b"not-the-secret").sign(&sts))
        .header("X-PARTNER-ID", CLIENT_ID)
        .header("X-EXTERNAL-ID", unique_digits())
        .header("CHANNEL-ID", "95221")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = app.notify("never-issued-token", &unique_digits(), &body).await;
    assert_eq!(status, 401);

    let resp = app.http.get(app.api_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();

    assert_eq!(
        sample(&text, r#"finpay_qris_notifications_total{code="2005200"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"finpay_qris_notifications_total{code="4015200"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"finpay_qris_notifications_total{code="4015201"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"finpay_qris_notifications_total{code="4005201"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "finpay_qris_duplicate_notifications_total"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_auth_failures_total{endpoint="notify",reason="invalid_signature"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"finpay_qris_auth_failures_total{endpoint="notify",reason="invalid_token"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "finpay_qris_tokens_issued_total"), Some(1.0));
    // Latency per route: every request above, the token one included.
    let notify_route = format!(r#"finpay_qris_http_request_duration_seconds_count{{route="{NOTIFY_PATH}"}}"#);
    assert_eq!(sample(&text, &notify_route), Some(6.0), "{text}");
    let token_route = format!(r#"finpay_qris_http_request_duration_seconds_count{{route="{TOKEN_PATH}"}}"#);
    assert_eq!(sample(&text, &token_route), Some(1.0));
    // Group commit: the two new notifications and the duplicate went through batches.
    let batches = sample(&text, "finpay_qris_notify_batch_size_count").expect("batch sizes");
    let batched = sample(&text, "finpay_qris_notify_batch_size_sum").expect("batch sizes");
    assert!(
        (1.0..=3.0).contains(&batches) && batched == 3.0,
        "{batches} batches holding {batched} notifications"
    );
    // ... and each batch's time to its commit was observed, once per batch.
    assert_eq!(
        sample(&text, "finpay_qris_notify_batch_duration_seconds_count"),
        Some(batches)
    );
    let batch_seconds = sample(&text, "finpay_qris_notify_batch_duration_seconds_sum").expect("batch durations");
    assert!(batch_seconds > 0.0, "{text}");
    // Pool usage, sampled at scrape time.
    assert!(
        sample(&text, r#"finpay_qris_db_pool_connections{state="idle"}"#).is_some(),
        "{text}"
    );
    assert!(sample(&text, r#"finpay_qris_db_pool_connections{state="in_use"}"#).is_some());
    // Reconciliation and Finpay series are declared even before the worker has run.
    for name in [
        "finpay_qris_reconcile_attempts_total counter",
        "finpay_qris_reconcile_lag_seconds histogram",
        "finpay_qris_finpay_request_duration_seconds histogram",
        "finpay_qris_finpay_errors_total counter",
    ] {
        assert!(text.contains(&format!("# TYPE {name}")), "{name} missing");
    }
    app.stop().await;
}

/// Refusals are counted under a fixed set of reasons: a stale timestamp's
/// skew, which differs with every request, never names a series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_token_requests_of_different_skews_count_in_one_series() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for skew in [1_000, 2_345] {
        let ts = timestamp::format_jakarta(chrono::Utc::now() - chrono::Duration::seconds(skew));
        assert_eq!(app.token_request(CLIENT_ID, &ts).await.status(), 401);
    }
    let text = app
        .http
        .get(app.api_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(r#"finpay_qris_auth_failures_total{endpoint="token""#))
        .collect();
    assert_eq!(
        series,
        [r#"finpay_qris_auth_failures_total{endpoint="token",reason="stale_timestamp"} 2"#],
        "{text}"
    );
    app.stop().await;
}

on_both_backends!(metrics_expose_notifications_failures_duplicates_latency_batches_and_the_pool);
