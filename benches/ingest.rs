//! The PostgreSQL ingest path without HTTP: `Store::ingest_notifications` on
//! batches of a given size from a given number of concurrent writers, against a
//! fresh database seeded with generated payments. Each notification settles a
//! payment (pending → paid: the notification, two events, the payment update).
//! Prints items/s per (batch size, writers); no assertions.
//!
//!   cargo bench --bench ingest                      # sizes 1,8,32,64 × writers 1,2,3
//!   SIZES=32,128 WRITERS=2 cargo bench --bench ingest
//!
//! Uses TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
//! to create and finally drop a database of its own; skips when PostgreSQL is
//! not reachable.

use finpay_qris::domain::{Observation, ObservationSource};
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::store::InboundNotification;
use sqlx::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const PAYMENTS: usize = 100_000;

fn notification(external_id: String, pay: usize) -> InboundNotification {
    let raw_body = format!(
        r#"{{"originalReferenceNo":"FP{pay}","originalPartnerReferenceNo":"PRN{pay}","latestTransactionStatus":"00","transactionStatusDesc":"bench","amount":{{"value":"10000.00","currency":"IDR"}},"additionalInfo":{{"merchantName":"BENCH","rrn":"{pay:012}"}}}}"#
    );
    InboundNotification {
        partner_id: "FINPAY-BENCH".into(),
        external_id,
        jakarta_day: chrono::Utc::now().date_naive(),
        body_sha256: sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), raw_body.as_bytes())).to_vec(),
        raw_body,
        headers_json: r#"{"host":"127.0.0.1:8080","content-type":"application/json","x-timestamp":"2026-11-25T23:41:07+07:00","x-signature":"Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==","x-partner-id":"FINPAY-BENCH","x-external-id":"1234567800011234","channel-id":"95221","content-length":"262"}"#.into(),
        verification: "symmetric:HMAC-SHA512".into(),
        received_at: finpay_qris::store::now(),
        observation: Observation {
            source: ObservationSource::Notification,
            original_reference_no: Some(format!("FP{pay}")),
            original_partner_reference_no: Some(format!("PRN{pay}")),
            status: TransactionStatus::Success,
            status_desc: Some("bench".into()),
            amount: Some(Amount::parse("10000.00", "IDR").unwrap()),
            paid_time: None,
        },
    }
}

fn list(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let Ok(mut c) = sqlx::PgConnection::connect(&admin).await else {
        eprintln!("ingest bench: PostgreSQL at {admin} is not reachable; skipped");
        return;
    };
    let name = format!("finpay_ingest_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let root = admin
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(admin.clone());
    let url = format!("{root}/{name}?sslmode=disable");
    {
        let store = finpay_qris::store::connect(&url, 8, 5).await.unwrap();
        store.migrate().await.unwrap();
        let mut s = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, created_at, updated_at) \
             SELECT 'bench-' || g, 'PRN' || g, 'FP' || g, 1000000, 'IDR', 'pending', 'generated', now(), now() \
             FROM generate_series(1, {PAYMENTS}) g"
        ))
        .execute(&mut s)
        .await
        .unwrap();
        sqlx::query("VACUUM ANALYZE payments").execute(&mut s).await.unwrap();

        let next = Arc::new(AtomicUsize::new(0));
        println!("| batch size | writers | items/s | µs per batch |");
        println!("|---|---|---|---|");
        for size in list("SIZES", &[1, 8, 32, 64]) {
            for writers in list("WRITERS", &[1, 2, 3]) {
                let rounds = (8_000 / size / writers).clamp(10, 2_000);
                let started = Instant::now();
                let tasks: Vec<_> = (0..writers)
                    .map(|_| {
                        let (store, next) = (store.clone(), next.clone());
                        tokio::spawn(async move {
                            for _ in 0..rounds {
                                let batch: Vec<_> = (0..size)
                                    .map(|_| {
                                        let n = next.fetch_add(1, Ordering::Relaxed);
                                        notification(format!("B{n}"), n % PAYMENTS + 1)
                                    })
                                    .collect();
                                store.ingest_notifications(&batch).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                let secs = started.elapsed().as_secs_f64();
                let items = (rounds * size * writers) as f64;
                println!(
                    "| {size} | {writers} | {:.0} | {:.0} |",
                    items / secs,
                    secs * 1e6 / rounds as f64
                );
            }
        }
    }
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut c)
        .await;
}
