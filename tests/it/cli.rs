//! The binary's commands, as an operator runs them.

use crate::common;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_finpay-qris"));
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().args(["keygen", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.starts_with("-----BEGIN PUBLIC KEY-----"));
    let private = std::fs::read_to_string(dir.path().join("merchant_private.pem")).unwrap();
    let key = finpay_qris::snap::keys::parse_private_key(&private).unwrap();
    let public = finpay_qris::snap::keys::parse_public_key(&printed).unwrap();
    assert_eq!(key.to_public_key(), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("merchant_private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second run refuses to overwrite.
    let again = bin().args(["keygen", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success());
}

#[test]
fn a_bad_setting_stops_serve_with_a_message_naming_the_key() {
    let out = bin()
        .arg("serve")
        .env("FINPAY_QRIS__SERVER__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FINPAY_QRIS__SERVER__LISTEN"), "{err}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/db.sqlite", dir.path().display());
    let out = bin()
        .arg("migrate")
        .env("FINPAY_QRIS__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("sub/db.sqlite").exists());
}

#[test]
fn sign_prints_headers_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("b.json");
    std::fs::write(&body, "{ \"a\" : \"b c\" }").unwrap();
    let out = bin()
        .args([
            "sign",
            "request",
            "--token",
            "T",
            "--secret",
            "S",
            "--partner-id",
            "P",
            "--timestamp",
        ])
        .arg("2024-06-07T10:03:55+07:00")
        .arg("--body-file")
        .arg(&body)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let hash = finpay_qris::snap::body::body_hash(br#"{"a":"b c"}"#);
    let sts = format!("POST:/v1.0/qr/qr-mpm-notify:T:{hash}:2024-06-07T10:03:55+07:00");
    let sig = finpay_qris::snap::signature::HmacKey::new(b"S").sign(&sts);
    assert!(text.contains(&format!("X-SIGNATURE: {sig}")), "{text}");
}

/// Every way sqlx accepts a password in the URL, at once.
fn with_passwords(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    format!("{scheme}://{user}:hunter2@{rest}?password=hunter3&sslpassword=hunter4&%70assword=hunter5")
}

fn assert_no_password(out: &std::process::Output) {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("hunter"), "{printed}");
}

#[tokio::test]
async fn migrate_never_prints_a_password_given_in_the_url() {
    if !common::postgres_available().await {
        return;
    }
    let db = common::TestDb::new(common::Backend::Postgres).await;
    let out = bin()
        .arg("migrate")
        .env("DATABASE_URL", with_passwords(&db.url))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_no_password(&out);
}

#[test]
fn serve_never_logs_a_password_given_in_the_url() {
    // Nothing listens on port 1: serve logs the URL it opens, then fails naming it.
    let out = bin()
        .arg("serve")
        .env("DATABASE_URL", with_passwords("postgres://app@127.0.0.1:1/db"))
        .env("FINPAY_QRIS__DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_no_password(&out);
}
