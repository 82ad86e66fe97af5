//! `finpay-qris doctor`, as an operator runs it: on a saved request, a curl
//! command, or the journal; it fails when nothing explains a signature.

use super::*;
use std::process::{Command, Output};

const SENT: &str = r#"{"originalReferenceNo":"2020102977770000000009","latestTransactionStatus":"00","amount":{"value":"1.00","currency":"IDR"}}"#;
const PY_SPACED: &str = r#"{"originalReferenceNo": "2020102977770000000009", "latestTransactionStatus": "00", "amount": {"value": "1.00", "currency": "IDR"}}"#;
const TOKEN: &str = "a-token-the-sender-holds";
const TS: &str = "2024-06-07T10:03:55+07:00";

fn doctor(db_url: &str, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_finpay-qris"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(base_env(db_url))
        .arg("doctor")
        .args(args);
    c.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the doctor succeeded and printed `dialects`; returns what it printed.
fn named(out: &Output, dialects: &str) -> String {
    let printed = stdout(out);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains(&format!("dialects: {dialects}")), "{printed}");
    printed
}

/// A raw HTTP request as a capture tool saves it.
fn raw_notification(signature: &str) -> String {
    format!(
        "POST {NOTIFY_PATH} HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n\
         X-TIMESTAMP: {TS}\r\nX-SIGNATURE: {signature}\r\nX-PARTNER-ID: {CLIENT_ID}\r\nX-EXTERNAL-ID: 1\r\nCHANNEL-ID: 95221\r\n\
         Content-Length: {}\r\n\r\n{SENT}",
        SENT.len()
    )
}

#[test]
fn doctor_names_the_dialect_of_a_saved_request_and_fails_when_none_explains_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/unused.db", dir.path().display());
    let mut signing = Signing::as_sent(NOTIFY_PATH, Some(TOKEN), SENT, TS);
    signing.body_hash = raw_hash(PY_SPACED);
    let file = dir.path().join("request.http");
    std::fs::write(&file, raw_notification(&signing.hmac(CLIENT_SECRET))).unwrap();
    let out = doctor(&db, &["--request", file.to_str().unwrap()]);
    let printed = named(&out, "body-spaced-separators");
    assert!(printed.contains("json.dumps"), "{printed}");

    std::fs::write(&file, raw_notification(&signing.hmac("a secret nobody configured"))).unwrap();
    let out = doctor(&db, &["--request", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("dialects: none"), "{}", stdout(&out));
    assert!(stdout(&out).contains("No known dialect matches"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(TOKEN));
}

#[test]
fn doctor_reads_a_curl_command_of_a_token_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/unused.db", dir.path().display());
    let signature = finpay_qris::snap::signature::rsa_sign(&finpay_key(), &format!("{CLIENT_ID}|2024-06-07T03:03:55Z"));
    let curl = format!(
        "curl -sS -X POST 'http://127.0.0.1:8080{TOKEN_PATH}' \\\n  -H 'Content-Type: application/json' \\\n  \
         -H 'X-TIMESTAMP: {TS}' \\\n  -H 'X-CLIENT-KEY: {CLIENT_ID}' \\\n  -H 'X-SIGNATURE: {signature}' \\\n  -d '{GRANT}'"
    );
    let file = dir.path().join("curl.sh");
    std::fs::write(&file, curl).unwrap();
    let out = doctor(&db, &["--curl", file.to_str().unwrap()]);
    let printed = named(&out, "timestamp-other-form");
    assert!(printed.contains("`2024-06-07T03:03:55Z`"), "{printed}");
}

#[test]
fn doctor_without_the_service_s_credentials_says_so_instead_of_blaming_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.http");
    let signing = Signing::as_sent(NOTIFY_PATH, Some(TOKEN), SENT, TS);
    std::fs::write(&file, raw_notification(&signing.hmac(CLIENT_SECRET))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_finpay-qris"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "FINPAY_QRIS__DATABASE__URL",
            format!("sqlite://{}/unused.db", dir.path().display()),
        )
        .args(["doctor", "--request", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no inbound credentials are configured"), "{said}");
    assert!(said.contains("FINPAY_QRIS__INBOUND__CLIENT_SECRET"), "{said}");
    assert!(!stdout(&out).contains("No known dialect matches"), "{}", stdout(&out));
}

#[test]
fn doctor_reading_a_journal_that_does_not_exist_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothere").join("finpay.db");
    let out = doctor(&format!("sqlite://{}", missing.display()), &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("does not exist"), "{said}");
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
}

async fn doctor_shows_the_latest_refusals_from_the_journal(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    refuse_one(&app, SENT, "upper", |s| s.body_hash = s.body_hash.to_uppercase()).await;
    let url = app.db.url.clone();
    let out = tokio::task::spawn_blocking(move || doctor(&url, &[])).await.unwrap();
    let printed = named(&out, "body-hash-uppercase");
    assert!(printed.contains("notify /v1.0/qr/qr-mpm-notify 4015200"), "{printed}");

    let token = app.token().await;
    let ts = now_ts();
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), SENT, &ts).hmac("a secret nobody configured");
    send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, SENT, "wrong").await;
    diagnosed(&app, 2).await;
    let url = app.db.url.clone();
    let out = tokio::task::spawn_blocking(move || doctor(&url, &["--last", "2"]))
        .await
        .unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("dialects: none") && stdout(&out).contains("body-hash-uppercase"));
    app.stop().await;
}

on_both_backends!(doctor_shows_the_latest_refusals_from_the_journal);
