//! The SNAP client against the simulated Finpay over real HTTP: signatures,
//! tokens, idempotency and retry rules. No database involved.

use crate::common::*;
use finpay_qris::finpay::{FinpayClient, FinpayError, GenerateRequest, QueryRequest, RefundRequest, Tips};
use finpay_qris::metrics::Metrics;
use finpay_qris::simulator::SimHandle;
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::Settings;
use std::sync::Arc;
use std::time::Duration;

fn client_with(base_url: &str, tweak: impl FnOnce(&mut Vec<(String, String)>)) -> (FinpayClient, Arc<Metrics>) {
    let mut env = Vec::new();
    finpay_env(&mut env, base_url);
    tweak(&mut env);
    let settings = Settings::load_from(None, env).expect("settings");
    let creds = settings
        .finpay_credentials()
        .expect("valid credentials")
        .expect("configured");
    let metrics = Arc::new(Metrics::default());
    (FinpayClient::new(creds, &settings.finpay, metrics.clone()), metrics)
}

fn client(sim: &SimHandle) -> FinpayClient {
    client_with(sim.base_url(), |_| {}).0
}

fn idr(minor: i64) -> Amount {
    Amount {
        minor,
        currency: "IDR".into(),
    }
}

fn generate_request(reference: &str, minor: i64) -> GenerateRequest {
    GenerateRequest {
        partner_reference_no: reference.into(),
        amount: idr(minor),
        valid_until: chrono::Utc::now() + chrono::Duration::minutes(15),
        note: Some("lunch".into()),
        tips: None,
    }
}

fn query_request(reference: &str, minor: i64) -> QueryRequest {
    QueryRequest {
        original_partner_reference_no: Some(reference.into()),
        original_reference_no: None,
        amount: idr(minor),
    }
}

fn reference() -> String {
    format!("INV{}", unique_digits())
}

#[tokio::test]
async fn generate_is_idempotent_per_partner_reference_and_refuses_another_amount() {
    let sim = spawn_simulator(|_| {}).await;
    let finpay = client(&sim);
    let r = reference();
    let first = finpay.generate(&generate_request(&r, 1_000_000)).await.unwrap();
    let again = finpay.generate(&generate_request(&r, 1_000_000)).await.unwrap();
    assert_eq!(first.response_code, "2004700");
    assert_eq!(first.reference_no, again.reference_no);
    assert_eq!(first.qr_content, again.qr_content);
    assert!(first.valid_until.is_some(), "validityPeriod read from additionalInfo");
    let other = finpay.generate(&generate_request(&r, 2_000_000)).await;
    assert!(
        matches!(&other, Err(FinpayError::Rejected { http: 409, response_code, .. }) if response_code == "4094701"),
        "{other:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn generate_is_never_retried_by_the_client() {
    let sim = spawn_simulator(|c| c.faults.fail_generate = true).await;
    let result = client(&sim).generate(&generate_request(&reference(), 1_000)).await;
    assert!(matches!(result, Err(FinpayError::Unavailable(_))), "{result:?}");
    assert_eq!(sim.stats().generate_requests, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn query_is_retried_on_5xx_with_a_fresh_external_id_each_time() {
    let sim = spawn_simulator(|c| c.faults.fail_query = true).await;
    let (finpay, metrics) = client_with(sim.base_url(), |_| {});
    let r = reference();
    finpay.generate(&generate_request(&r, 1_000)).await.unwrap();
    let result = finpay.query(&query_request(&r, 1_000)).await;
    assert!(matches!(result, Err(FinpayError::Unavailable(_))), "{result:?}");
    let ids: std::collections::HashSet<String> = sim
        .requests()
        .into_iter()
        .filter(|q| q.op == "query")
        .map(|q| q.external_id)
        .collect();
    assert_eq!(ids.len(), 3, "three attempts, three X-EXTERNAL-IDs");
    // Every failed exchange is counted, retries included.
    assert_eq!(
        metrics.counter(
            "finpay_qris_finpay_errors_total",
            &[("op", "query"), ("kind", "unavailable")]
        ),
        3
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn query_reads_finpays_answer_including_its_odd_success_code() {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let finpay = client(&sim);
    let r = reference();
    let g = finpay.generate(&generate_request(&r, 1_234_500)).await.unwrap();
    let pending = finpay.query(&query_request(&r, 1_234_500)).await.unwrap();
    assert_eq!(pending.response_code, "2005300");
    assert_eq!(pending.observation.status, TransactionStatus::Pending);
    sim.pay(&r).unwrap();
    let by_reference = QueryRequest {
        original_partner_reference_no: None,
        original_reference_no: g.reference_no.clone(),
        amount: idr(1_234_500),
    };
    let paid = finpay.query(&by_reference).await.unwrap();
    assert_eq!(paid.observation.status, TransactionStatus::Success);
    assert_eq!(paid.observation.amount, Some(idr(1_234_500)));
    assert_eq!(
        paid.observation.original_partner_reference_no.as_deref(),
        Some(r.as_str())
    );
    assert!(paid.observation.paid_time.is_some());
    let unknown = finpay.query(&query_request("INV-NOT-THERE", 1)).await;
    assert!(matches!(&unknown, Err(e) if e.is_not_found()), "{unknown:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn refund_is_idempotent_and_bounded_by_the_paid_amount() {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let finpay = client(&sim);
    let r = reference();
    finpay.generate(&generate_request(&r, 1_000_000)).await.unwrap();
    let refund = |no: &str, minor: i64| RefundRequest {
        original_partner_reference_no: Some(r.clone()),
        original_reference_no: None,
        partner_refund_no: no.into(),
        amount: idr(minor),
        reason: "customer asked".into(),
    };
    let unpaid = finpay.refund(&refund("RF1", 400_000)).await;
    assert!(
        matches!(unpaid, Err(FinpayError::Rejected { http: 403, .. })),
        "{unpaid:?}"
    );
    sim.pay(&r).unwrap();
    let first = finpay.refund(&refund("RF1", 400_000)).await.unwrap();
    let again = finpay.refund(&refund("RF1", 400_000)).await.unwrap();
    assert_eq!(
        first.reference_no, again.reference_no,
        "the same refund, not a second one"
    );
    assert!(first.refund_time.is_some());
    let too_much = finpay.refund(&refund("RF2", 700_000)).await;
    assert!(
        matches!(too_much, Err(FinpayError::Rejected { http: 404, .. })),
        "{too_much:?}"
    );
    finpay.refund(&refund("RF2", 600_000)).await.unwrap();
    assert_eq!(sim.payment(&r).unwrap().status, "04", "fully refunded");
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_share_one_token() {
    let sim = spawn_simulator(|_| {}).await;
    let finpay = Arc::new(client(&sim));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let finpay = finpay.clone();
        tasks.push(tokio::spawn(async move {
            finpay.generate(&generate_request(&reference(), 1_000)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.stats().token_requests, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_full_path_is_signed_when_the_base_url_has_a_prefix() {
    let sim = spawn_simulator(|c| c.path_prefix = "/pg".into()).await;
    let (finpay, _) = client_with(&format!("{}/pg", sim.base_url()), |_| {});
    finpay.generate(&generate_request(&reference(), 1_000)).await.unwrap();
    assert_eq!(sim.requests()[0].path, "/pg/pg/payment/card/v1.0/qr/qr-mpm-generate");
    sim.shutdown().await;
}

#[tokio::test]
async fn camel_case_additional_info_and_query_amounts_are_understood() {
    let sim = spawn_simulator(|_| {}).await;
    let (finpay, _) = client_with(sim.base_url(), |env| {
        set_env(env, "FINPAY_QRIS__FINPAY__ADDITIONAL_INFO_STYLE", "camel");
        set_env(env, "FINPAY_QRIS__FINPAY__QUERY_SENDS_AMOUNT", "true");
        set_env(
            env,
            "FINPAY_QRIS__FINPAY__CALLBACK_URL",
            "http://127.0.0.1:1/v1.0/qr/qr-mpm-notify",
        );
    });
    let r = reference();
    let mut req = generate_request(&r, 1_000_000);
    req.tips = Some(Tips::Percentage("10.00".into()));
    finpay.generate(&req).await.unwrap();
    assert_eq!(
        sim.payment(&r).unwrap().callback_url.as_deref(),
        Some("http://127.0.0.1:1/v1.0/qr/qr-mpm-notify")
    );
    let qr = finpay_qris::simulator::qris::parse(&sim.payment(&r).unwrap().qr_content).unwrap();
    assert!(qr.contains(&("57".into(), "10.00".into())), "percentage tip in the QR");
    finpay.query(&query_request(&r, 1_000_000)).await.unwrap();
    let wrong_amount = finpay.query(&query_request(&r, 999)).await;
    assert!(
        matches!(wrong_amount, Err(FinpayError::Rejected { http: 404, .. })),
        "{wrong_amount:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_or_key_is_refused_not_retried() {
    let sim = spawn_simulator(|_| {}).await;
    let (wrong_secret, _) = client_with(sim.base_url(), |env| {
        set_env(env, "FINPAY_QRIS__FINPAY__CLIENT_SECRET", "not-the-secret")
    });
    let refused = wrong_secret.generate(&generate_request(&reference(), 1_000)).await;
    assert!(
        matches!(&refused, Err(FinpayError::Rejected { http: 401, response_code, .. }) if response_code == "4014700"),
        "{refused:?}"
    );
    assert_eq!(sim.stats().invalid_signatures, 1);
    assert_eq!(sim.stats().token_requests, 1, "a bad signature is not a token problem");

    let other_key = finpay_qris::snap::keys::private_key_pem(&finpay_key());
    let (wrong_key, _) = client_with(sim.base_url(), |env| {
        set_env(env, "FINPAY_QRIS__FINPAY__PRIVATE_KEY", &other_key)
    });
    let no_token = wrong_key.generate(&generate_request(&reference(), 1_000)).await;
    assert!(
        matches!(&no_token, Err(FinpayError::Rejected { http: 401, response_code, .. }) if response_code == "4017300"),
        "{no_token:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_finpay_is_unavailable_quickly() {
    // A port nobody listens on: connection refused.
    let (finpay, metrics) = client_with("http://127.0.0.1:9", |_| {});
    let started = std::time::Instant::now();
    let result = finpay.query(&query_request("INV1", 1)).await;
    assert!(matches!(result, Err(FinpayError::Unavailable(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        metrics.counter(
            "finpay_qris_finpay_errors_total",
            &[("op", "token"), ("kind", "unavailable")]
        ) >= 1
    );
}
