//! The binary's commands, as an operator runs them.

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
