//! Every dialect, for HMAC notifications, RSA notifications and token
//! requests, sent over HTTP: refused with the SNAP code for a bad signature,
//! and journaled with the dialect named. The signed bodies are written out
//! as Python's and PHP's serializers print them.

use super::*;
use finpay_qris::snap::keys::generate_private_key;
use finpay_qris::snap::signature::rsa_sign;

/// What is sent: compact, raw UTF-8, plain slashes.
const SENT: &str = r#"{"originalReferenceNo":"2020102977770000000009","originalPartnerReferenceNo":"INV-0001","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"Dédé Ωmega","callback":"https://shop.example/cb"}}"#;
/// Python `json.dumps(d, ensure_ascii=False)`.
const PY_SPACED: &str = r#"{"originalReferenceNo": "2020102977770000000009", "originalPartnerReferenceNo": "INV-0001", "latestTransactionStatus": "00", "amount": {"value": "10000.00", "currency": "IDR"}, "additionalInfo": {"cust_name": "Dédé Ωmega", "callback": "https://shop.example/cb"}}"#;
/// Python `json.dumps(d)`.
const PY_DEFAULT: &str = r#"{"originalReferenceNo": "2020102977770000000009", "originalPartnerReferenceNo": "INV-0001", "latestTransactionStatus": "00", "amount": {"value": "10000.00", "currency": "IDR"}, "additionalInfo": {"cust_name": "D\u00e9d\u00e9 \u03a9mega", "callback": "https://shop.example/cb"}}"#;
/// Python `json.dumps(d, indent=2, ensure_ascii=False)`.
const PY_INDENTED: &str = "{\n  \"originalReferenceNo\": \"2020102977770000000009\",\n  \"originalPartnerReferenceNo\": \"INV-0001\",\n  \"latestTransactionStatus\": \"00\",\n  \"amount\": {\n    \"value\": \"10000.00\",\n    \"currency\": \"IDR\"\n  },\n  \"additionalInfo\": {\n    \"cust_name\": \"Dédé Ωmega\",\n    \"callback\": \"https://shop.example/cb\"\n  }\n}";
/// PHP `json_encode($d, JSON_UNESCAPED_UNICODE)`.
const PHP_SLASHES: &str = r#"{"originalReferenceNo":"2020102977770000000009","originalPartnerReferenceNo":"INV-0001","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"Dédé Ωmega","callback":"https:\/\/shop.example\/cb"}}"#;
/// Python `json.dumps(d, separators=(",", ":"))`.
const ASCII_ONLY: &str = r#"{"originalReferenceNo":"2020102977770000000009","originalPartnerReferenceNo":"INV-0001","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"D\u00e9d\u00e9 \u03a9mega","callback":"https://shop.example/cb"}}"#;

const PREFIXED: &str = "/pg/v1.0/qr/qr-mpm-notify";

/// Jakarta time now, and the same instant in UTC with milliseconds.
fn two_forms_of_now() -> (String, String) {
    let now = chrono::Utc::now();
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap();
    let utc = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (finpay_qris::snap::timestamp::format_jakarta(now), utc)
}

/// A case: its name, the dialects expected, the path sent to, and how it was
/// signed (a change to what this service verifies).
type Case = (&'static str, Vec<&'static str>, &'static str, Box<dyn Fn(&mut Signing)>);

fn notification_cases(host: &str, utc: &str) -> Vec<Case> {
    let host = host.to_string();
    let utc = utc.to_string();
    vec![
        (
            "spaced",
            vec!["body-spaced-separators"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = raw_hash(PY_SPACED)),
        ),
        (
            "pretty",
            vec!["body-pretty-printed"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = raw_hash(PY_INDENTED)),
        ),
        (
            "slashes",
            vec!["body-escaped-slashes"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = raw_hash(PHP_SLASHES)),
        ),
        (
            "unicode",
            vec!["body-unicode-escaped"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = raw_hash(ASCII_ONLY)),
        ),
        (
            "python",
            vec!["body-spaced-separators", "body-unicode-escaped"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = raw_hash(PY_DEFAULT)),
        ),
        (
            "upper",
            vec!["body-hash-uppercase"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.body_hash = s.body_hash.to_uppercase()),
        ),
        (
            "no-prefix",
            vec!["path-without-prefix"],
            PREFIXED,
            Box::new(|s: &mut Signing| s.path = NOTIFY_PATH.into()),
        ),
        (
            "prefix",
            vec!["path-with-prefix"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.path = PREFIXED.into()),
        ),
        (
            "query",
            vec!["path-with-query"],
            "/v1.0/qr/qr-mpm-notify?shop=7",
            Box::new(|s: &mut Signing| s.path = NOTIFY_PATH.into()),
        ),
        (
            "url",
            vec!["full-url"],
            NOTIFY_PATH,
            Box::new(move |s: &mut Signing| s.path = format!("http://{host}{NOTIFY_PATH}")),
        ),
        (
            "timestamp",
            vec!["timestamp-other-form"],
            NOTIFY_PATH,
            Box::new(move |s: &mut Signing| s.timestamp = utc.clone()),
        ),
        (
            "method",
            vec!["method-lowercase"],
            NOTIFY_PATH,
            Box::new(|s: &mut Signing| s.method = "post"),
        ),
    ]
}

/// Notify accepts the prefixed path too, so a gateway's prefix can arrive.
fn notify_env(env: &mut Vec<(String, String)>) {
    journal_env(env);
    other_credentials_env(env);
    set_env(
        env,
        "FINPAY_QRIS__INBOUND__NOTIFY_PATHS",
        &format!("{NOTIFY_PATH},{PREFIXED}"),
    );
}

async fn every_dialect_of_an_hmac_notification_is_refused_and_named(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        notify_env(env);
        set_env(env, "FINPAY_QRIS__INBOUND__HMAC_ENCODING", "base64");
    })
    .await;
    let earlier = app.token().await;
    let token = app.token().await;
    let (ts, utc) = two_forms_of_now();
    let mut expected: Vec<(&str, Vec<&str>)> = Vec::new();
    for (case, dialects, path, change) in notification_cases(&app.addr.to_string(), &utc) {
        let mut s = Signing::as_sent(path, Some(&token), SENT, &ts);
        change(&mut s);
        let answer = send_notify(&app, path, Some(&token), &ts, &s.hmac(CLIENT_SECRET), SENT, case).await;
        assert_bad_signature(&answer, "4015200", case);
        expected.push((case, dialects));
    }
    let base = Signing::as_sent(NOTIFY_PATH, Some(&token), SENT, &ts);
    let mut others: Vec<(&str, Vec<&str>, String)> = Vec::new();
    let mut no_token = base.clone();
    no_token.token = None;
    others.push(("token-missing", vec!["token-missing"], no_token.hmac(CLIENT_SECRET)));
    let mut utc_no_token = no_token.clone();
    utc_no_token.timestamp = utc.clone();
    others.push((
        "utc-no-token",
        vec!["timestamp-other-form", "token-missing"],
        utc_no_token.hmac(CLIENT_SECRET),
    ));
    let mut stale = base.clone();
    stale.token = Some(earlier);
    others.push(("stale", vec!["stale-token"], stale.hmac(CLIENT_SECRET)));
    others.push(("swapped", vec!["secret-swapped"], base.hmac(MERCHANT_CLIENT_SECRET)));
    let hexed = hex::encode(base64_decode(&base.hmac(CLIENT_SECRET)));
    others.push(("hex", vec!["signature-hex"], hexed));
    others.push(("wrong-secret", vec![], base.hmac("a secret nobody configured")));
    for (case, dialects, sig) in others {
        let answer = send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, SENT, case).await;
        assert_bad_signature(&answer, "4015200", case);
        expected.push((case, dialects));
    }
    assert_journal_names(&app, &expected).await;
    app.stop().await;
}

async fn a_base64_signature_is_named_where_hex_is_expected(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        journal_env(env);
        set_env(env, "FINPAY_QRIS__INBOUND__HMAC_ENCODING", "hex");
    })
    .await;
    let token = app.token().await;
    let ts = now_ts();
    let s = Signing::as_sent(NOTIFY_PATH, Some(&token), SENT, &ts);
    let (status, _) = send_notify(
        &app,
        NOTIFY_PATH,
        Some(&token),
        &ts,
        &s.hmac(CLIENT_SECRET),
        SENT,
        "b64",
    )
    .await;
    assert_eq!(status, 401);
    assert_named(&diagnosed(&app, 1).await, "b64", &["signature-base64"]);
    app.stop().await;
}

async fn every_dialect_of_an_rsa_notification_is_refused_and_named(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        notify_env(env);
        set_env(env, "FINPAY_QRIS__INBOUND__SIGNATURE", "asymmetric");
    })
    .await;
    let (ts, utc) = two_forms_of_now();
    let mut expected: Vec<(&str, Vec<&str>)> = Vec::new();
    for (case, dialects, path, change) in notification_cases(&app.addr.to_string(), &utc) {
        let mut s = Signing::as_sent(path, None, SENT, &ts);
        change(&mut s);
        let answer = send_notify(&app, path, None, &ts, &s.rsa(&finpay_key()), SENT, case).await;
        assert_bad_signature(&answer, "4015200", case);
        expected.push((case, dialects));
    }
    let base = Signing::as_sent(NOTIFY_PATH, None, SENT, &ts);
    let hexed = hex::encode(base64_decode(&base.rsa(&finpay_key())));
    for (case, dialects, sig) in [
        ("swapped", vec!["secret-swapped"], base.rsa(&merchant_key())),
        ("hex", vec!["signature-hex"], hexed),
        ("wrong-key", vec![], base.rsa(&generate_private_key())),
    ] {
        let answer = send_notify(&app, NOTIFY_PATH, None, &ts, &sig, SENT, case).await;
        assert_bad_signature(&answer, "4015200", case);
        expected.push((case, dialects));
    }
    assert_journal_names(&app, &expected).await;
    app.stop().await;
}

async fn every_dialect_of_a_token_request_is_refused_and_named(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        journal_env(env);
        other_credentials_env(env);
    })
    .await;
    let (ts, utc) = two_forms_of_now();
    let signed = |key: &rsa::RsaPrivateKey, ts: &str| rsa_sign(key, &format!("{CLIENT_ID}|{ts}"));
    let hexed = hex::encode(base64_decode(&signed(&finpay_key(), &ts)));
    let cases = [
        ("timestamp", vec!["timestamp-other-form"], signed(&finpay_key(), &utc)),
        ("hex", vec!["signature-hex"], hexed),
        ("swapped", vec!["secret-swapped"], signed(&merchant_key(), &ts)),
        ("wrong-key", vec![], signed(&generate_private_key(), &ts)),
    ];
    for (case, _, sig) in &cases {
        let (status, v) = send_token(&app, TOKEN_PATH, &ts, sig, case).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(v["responseCode"], "4017300", "{case}");
    }
    let found = diagnosed(&app, cases.len()).await;
    for (case, dialects, _) in &cases {
        assert_named(&found, case, dialects);
        assert_eq!(found[*case]["route"], "token");
    }
    app.stop().await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

on_both_backends!(
    every_dialect_of_an_hmac_notification_is_refused_and_named,
    a_base64_signature_is_named_where_hex_is_expected,
    every_dialect_of_an_rsa_notification_is_refused_and_named,
    every_dialect_of_a_token_request_is_refused_and_named,
);
