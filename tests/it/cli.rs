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
fn serve_without_migrating_on_start_refuses_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("serve")
        .env(
            "FINPAY_QRIS__DATABASE__URL",
            format!("sqlite://{}/db.sqlite", dir.path().display()),
        )
        .env("FINPAY_QRIS__DATABASE__MIGRATE_ON_START", "false")
        .env("FINPAY_QRIS__SERVER__LISTEN", "127.0.0.1:0")
        .env("FINPAY_QRIS__API__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "it must not start and answer 500");
    assert!(
        stderr_of(&out).contains("run `finpay-qris migrate`"),
        "{}",
        stderr_of(&out)
    );
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
    assert!(the_file_alone_holds_the_schema(&dir.path().join("sub/db.sqlite")));
}

/// Whether a copy of an SQLite file without its write-ahead log (a backup
/// of a stopped service) holds the schema.
fn the_file_alone_holds_the_schema(db: &std::path::Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    let tables: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('payments', '_sqlx_migrations')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    tables == 2
}

#[test]
fn a_service_stopped_by_sigterm_leaves_the_whole_database_in_its_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_unconfigured(dir.path());
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("reconciliation worker")),
        "serve did not start"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    assert!(the_file_alone_holds_the_schema(&dir.path().join("data/finpay-qris.db")));
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

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_misspelt_variable_stops_serve_naming_it_and_the_nearest_setting() {
    let out = bin()
        .arg("serve")
        .env("FINPAY_QRIS__SERVER__LISTN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("FINPAY_QRIS__SERVER__LISTN"), "{err}");
    assert!(err.contains("did you mean FINPAY_QRIS__SERVER__LISTEN?"), "{err}");
}

#[test]
fn a_short_api_key_stops_serve_naming_its_position_not_the_key() {
    let keys = format!("{},tiny-secret-key", "k".repeat(40));
    let out = bin().arg("serve").env("FINPAY_QRIS__API__KEYS", keys).output().unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("FINPAY_QRIS__API__KEYS") && err.contains("key 2 of 2"),
        "{err}"
    );
    assert!(!err.contains("tiny-secret-key"), "{err}");
}

#[test]
fn an_unknown_enum_value_lists_the_valid_ones() {
    let out = bin()
        .arg("serve")
        .env("FINPAY_QRIS__LOG__FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("expected one of: pretty, json"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_database_error_names_the_setting_and_the_host_once() {
    let out = bin()
        .arg("serve")
        .env("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/db")
        .env("FINPAY_QRIS__DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("FINPAY_QRIS__DATABASE__URL"), "{err}");
    assert_eq!(last.matches("127.0.0.1:1").count(), 2, "host and redacted URL: {err}");
    assert!(!last.contains("pool timed out") && !err.contains("hunter2"), "{err}");
}

/// `serve` with nothing configured but ports (0: free ones) in `dir`, its
/// log on a pipe.
fn serve_unconfigured(dir: &std::path::Path) -> std::process::Child {
    bin()
        .arg("serve")
        .current_dir(dir)
        .env("FINPAY_QRIS__SERVER__LISTEN", "127.0.0.1:0")
        .env("FINPAY_QRIS__API__LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `serve` with nothing configured in an empty directory, until it has said
/// what is off; its log so far.
fn zero_configuration_log() -> String {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_unconfigured(dir.path());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("reconciliation worker") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn the_zero_configuration_start_logs_no_error_and_says_what_is_off() {
    let log = zero_configuration_log();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    for off in [
        "FINPAY_QRIS__INBOUND__CLIENT_ID",
        "FINPAY_QRIS__API__KEYS",
        "FINPAY_QRIS__FINPAY__BASE_URL",
        "reconciliation worker off: it queries Finpay, and no Finpay credentials are set",
    ] {
        assert!(log.contains(off), "{off} missing from:\n{log}");
    }
}

#[test]
fn check_config_validates_settings_without_the_database() {
    let out = bin().args(["check-config", "--no-database"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    let out = bin()
        .args(["check-config", "--no-database"])
        .env("FINPAY_QRIS__INBOUND__SIGNATURE", "asymetric")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("FINPAY_QRIS__INBOUND__SIGNATURE") && err.contains("symmetric, asymmetric"),
        "{err}"
    );
    // A trace protocol `serve` would stop on.
    let out = bin()
        .args(["check-config", "--no-database"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn check_config_fails_until_the_database_exists_and_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite", dir.path().display());
    // By default `serve` creates and migrates the file: that is no error.
    let by_default = bin()
        .arg("check-config")
        .env("FINPAY_QRIS__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(by_default.status.success(), "{}", stderr_of(&by_default));
    assert!(String::from_utf8_lossy(&by_default.stdout).contains("`serve` creates and migrates it"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    // Unless it cannot: a path under a file.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let under_a_file = bin()
        .arg("check-config")
        .env(
            "FINPAY_QRIS__DATABASE__URL",
            format!("sqlite://{}/a-file/db.sqlite", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(!under_a_file.status.success());
    assert!(
        stderr_of(&under_a_file).contains("is not a folder"),
        "{}",
        stderr_of(&under_a_file)
    );
    std::fs::remove_file(dir.path().join("a-file")).unwrap();
    let check = || {
        bin()
            .arg("check-config")
            .env("FINPAY_QRIS__DATABASE__URL", &url)
            .env("FINPAY_QRIS__DATABASE__MIGRATE_ON_START", "false")
            .output()
            .unwrap()
    };
    let out = check();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("run `finpay-qris migrate`"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "check-config created the database"
    );
    let migrated = bin()
        .arg("migrate")
        .env("FINPAY_QRIS__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let out = check();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrated"));
}

#[tokio::test]
async fn check_config_reports_an_unmigrated_postgres_database() {
    if !common::postgres_available().await {
        return;
    }
    let db = common::TestDb::new(common::Backend::Postgres).await;
    let out = bin()
        .arg("check-config")
        .env("DATABASE_URL", &db.url)
        .env("FINPAY_QRIS__DATABASE__MIGRATE_ON_START", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("lacks"), "{}", stderr_of(&out));
    let by_default = bin().arg("check-config").env("DATABASE_URL", &db.url).output().unwrap();
    assert!(by_default.status.success(), "{}", stderr_of(&by_default));
    assert!(String::from_utf8_lossy(&by_default.stdout).contains("migration(s) for `serve` to apply"));
}

#[tokio::test]
async fn check_config_refuses_a_database_whose_applied_migration_differs_as_serve_would() {
    let Some((db, mut conn)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'")
        .execute(&mut conn)
        .await
        .unwrap();
    for migrate_on_start in ["true", "false"] {
        let out = bin()
            .arg("check-config")
            .env("DATABASE_URL", &db.url)
            .env("FINPAY_QRIS__DATABASE__MIGRATE_ON_START", migrate_on_start)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{migrate_on_start}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr_of(&out).contains("previously applied but has been modified"),
            "{}",
            stderr_of(&out)
        );
    }
}

/// A database a newer version migrated (a rollback): the older one runs on it
/// when it does not migrate, and says it cannot migrate it when it would.
#[tokio::test]
async fn a_migration_of_a_newer_version_stops_only_an_older_one_that_migrates() {
    let Some((db, mut conn)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999999999999, 'a newer version', TRUE, '\\x00', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let check = |migrate_on_start: &str| {
        bin()
            .arg("check-config")
            .env("DATABASE_URL", &db.url)
            .env("FINPAY_QRIS__DATABASE__MIGRATE_ON_START", migrate_on_start)
            .output()
            .unwrap()
    };
    let runs = check("false");
    assert!(runs.status.success(), "{}", stderr_of(&runs));
    let migrates = check("true");
    assert!(!migrates.status.success());
    assert!(stderr_of(&migrates).contains("is missing"), "{}", stderr_of(&migrates));
}
