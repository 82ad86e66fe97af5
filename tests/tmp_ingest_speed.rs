mod common;
use finpay_qris::domain::Observation;
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::store::InboundNotification;
use std::time::Instant;

fn item(i: usize, tag: &str, pay: usize) -> InboundNotification {
    let raw_body = format!(r#"{{"originalReferenceNo":"FP{pay}","originalPartnerReferenceNo":"PRN{pay}","latestTransactionStatus":"00","transactionStatusDesc":"loadgen","amount":{{"value":"10000.00","currency":"IDR"}},"additionalInfo":{{"merchantName":"LOADGEN","rrn":"{i:012}"}}}}"#);
    InboundNotification {
        partner_id: "FINPAY-BENCH".into(),
        external_id: format!("{tag}{i}"),
        jakarta_day: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        body_sha256: vec![7u8; 32],
        raw_body,
        headers_json: r#"{"host":"127.0.0.1:18080","content-type":"application/json","x-timestamp":"2026-11-25T23:41:07+07:00","x-signature":"Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==","x-partner-id":"FINPAY-BENCH","x-external-id":"1234567800011234","channel-id":"95221","content-length":"262"}"#.into(),
        verification: "symmetric:HMAC-SHA512".into(),
        received_at: finpay_qris::store::now(),
        observation: Observation {
            source: finpay_qris::domain::ObservationSource::Notification,
            original_reference_no: Some(format!("FP{pay}")),
            original_partner_reference_no: Some(format!("PRN{pay}")),
            status: TransactionStatus::Success,
            status_desc: Some("loadgen".into()),
            amount: Some(Amount::parse("10000.00", "IDR").unwrap()),
            paid_time: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed() {
    let url = std::env::var("SPEED_DB").unwrap();
    let store = finpay_qris::store::connect(&url, 8, 5).await.unwrap();
    let tag = format!("s{}x", std::process::id());
    let mut pay = 1usize + (std::process::id() as usize * 7) % 50000;
    for size in [1usize, 8, 32, 64, 128] {
        let rounds = (4000 / size).max(20);
        let t = Instant::now();
        let mut k = 0;
        for _ in 0..rounds {
            let batch: Vec<_> = (0..size).map(|_| { k += 1; pay += 1; item(k + size * 100000, &tag, pay % 100000 + 1) }).collect();
            store.ingest_notifications(&batch).await.unwrap();
        }
        let el = t.elapsed();
        eprintln!("size {size:4}: {:8.0} us/batch {:6.1} us/item  {:7.0} items/s (1 writer)", el.as_micros() as f64 / rounds as f64, el.as_micros() as f64 / (rounds * size) as f64, (rounds*size) as f64 / el.as_secs_f64());
    }
}
