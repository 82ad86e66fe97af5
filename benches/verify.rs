//! The verification path of a notification, one step at a time: bearer token
//! check (hash + in-memory cache), body hash (minify + SHA-256), HMAC-SHA512
//! verify (symmetric mode), SHA256withRSA verify (asymmetric mode and the token
//! endpoint), and the body parse that follows a good signature.
//!
//! `cargo bench --bench verify` (criterion; reports in target/criterion/).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use finpay_qris::inbound::tokens::{token_hash, TokenCache};
use finpay_qris::snap::{body, keys, notify, signature};

/// The published notify sample (vector V3 in docs/protocol.md), pretty-printed as sent.
const BODY: &str = r#"{
"originalReferenceNo":"2020102977770000000009",
"originalPartnerReferenceNo":"2020102900000000000001",
"latestTransactionStatus":"00",
"transactionStatusDesc":"success",
"amount":{"value":"12345678.00","currency":"IDR"},
"additionalInfo":{
"cust_name": "CANDRA GUNAWAN GAHO",
"merchantName": "BB011 WARTEG MUSTIKA",
"rrn": "000019001390",
"invoice": "2020102900000000000001",
"issuer": "BCA",
"paidTime":"2024-06-07T10:03:54+07:00",
"qr_type": "12"
}
}"#;
const TOKEN: &str = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a";
const TS: &str = "2024-06-07T10:03:55+07:00";
const PATH: &str = "/v1.0/qr/qr-mpm-notify";
const PRIVATE_KEY: &str = include_str!("../tests/it/common/test_private_key.pem");

fn verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(finpay_qris::store::connect("sqlite::memory:", 1, 5))
        .unwrap();
    let cache = TokenCache::default();
    cache.remember(
        token_hash(TOKEN),
        "FINPAY",
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let now = chrono::Utc::now();
    c.bench_function("token check (hash + cache hit)", |b| {
        b.iter(|| {
            rt.block_on(cache.check(store.as_ref(), black_box(TOKEN), "FINPAY", now))
                .unwrap()
        })
    });

    c.bench_function("body hash (minify + sha256, 570 B pretty)", |b| {
        b.iter(|| body::body_hash(black_box(BODY.as_bytes())))
    });

    let hash = body::body_hash(BODY.as_bytes());
    let hmac = signature::HmacKey::new(b"TEST-ONLY-client-secret-0123456789");
    let sts = signature::symmetric_string_to_sign("POST", PATH, TOKEN, &hash, TS);
    let mac = hmac.sign(&sts);
    assert!(hmac.verify(&sts, &mac));
    c.bench_function("HMAC-SHA512 verify", |b| {
        b.iter(|| hmac.verify(black_box(&sts), black_box(&mac)))
    });

    let private = keys::parse_private_key(PRIVATE_KEY).unwrap();
    let public = private.to_public_key();
    let asts = signature::asymmetric_string_to_sign("POST", PATH, &hash, TS);
    let rsa_sig = signature::rsa_sign(&private, &asts);
    assert!(signature::rsa_verify(&public, &asts, &rsa_sig));
    c.bench_function("SHA256withRSA-2048 verify", |b| {
        b.iter(|| signature::rsa_verify(black_box(&public), black_box(&asts), black_box(&rsa_sig)))
    });

    c.bench_function("symmetric path (hash + string to sign + HMAC verify)", |b| {
        b.iter(|| {
            let h = body::body_hash(black_box(BODY.as_bytes()));
            let s = signature::symmetric_string_to_sign("POST", PATH, TOKEN, &h, TS);
            hmac.verify(&s, black_box(&mac))
        })
    });

    c.bench_function("notify body parse", |b| {
        b.iter(|| notify::parse_notify(black_box(BODY.as_bytes())).unwrap())
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
