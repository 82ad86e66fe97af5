//! Test harness shared by the integration tests: a fresh database per test on
//! each backend, the whole application on port 0, and SNAP signing helpers.
#![allow(dead_code)]

pub mod proxy;

use finpay_qris::snap::{body, keys, signature, timestamp};
use finpay_qris::{Application, Settings};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

pub const CLIENT_ID: &str = "FINPAY-PARTNER-ID";
pub const CLIENT_SECRET: &str = "TEST-ONLY-client-secret-0123456789";
pub const NOTIFY_PATH: &str = "/v1.0/qr/qr-mpm-notify";
pub const TOKEN_PATH: &str = "/v1.0/access-token/b2b";
pub const API_KEY: &str = "test-api-key-0123456789abcdef012345";

/// The test-only key of the test vectors in docs/protocol.md (Finpay's side in tests).
pub const FINPAY_PRIVATE_KEY: &str = include_str!("test_private_key.pem");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::common::postgres_available().await {
                        super::$name($crate::common::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL test database with the schema, and a connection to it
/// for the test's own SQL; `None` where PostgreSQL is absent outside CI.
pub async fn migrated_postgres() -> Option<(TestDb, sqlx::PgConnection)> {
    use sqlx::Connection;
    if !postgres_available().await {
        return None;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = finpay_qris::store::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    let c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    Some((db, c))
}

/// PostgreSQL tests run when the server answers; under `CI=true` they must
/// run, so an unreachable server fails the test instead of skipping it.
pub async fn postgres_available() -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(&pg_admin_url()).await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL at {} is unreachable: {e}", pg_admin_url());
            }
            eprintln!("skipping PostgreSQL test: {e}");
            false
        }
    }
}

/// A fresh, empty database for one test. A PostgreSQL database is dropped
/// when its owner is, also when the test failed (unwinding drops it).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database this handle owns and drops.
    owned: Option<String>,
}

/// Names of this run's test databases start with it: `TEST_DB_PREFIX` (set
/// by `.ci/run` to tell its own databases from others' on a shared server),
/// else `t_`.
fn test_db_prefix() -> String {
    std::env::var("TEST_DB_PREFIX").unwrap_or_else(|_| "t_".into())
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.owned.take() else { return };
        // Drop may run inside a runtime (a test's) or outside one: a thread of
        // its own with a runtime of its own works in both.
        let admin = pg_admin_url();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("test database left behind (dropped by .ci/run)");
        }
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                    owned: None,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let name = format!("{}{}", test_db_prefix(), uuid::Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await.expect("postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .expect("create database");
                let base = pg_admin_url();
                let root = base.rsplit_once('/').map(|(r, _)| r.to_string()).unwrap_or(base);
                Self {
                    url: format!("{root}/{name}"),
                    _dir: None,
                    owned: Some(name),
                }
            }
        }
    }
}

/// Environment for a test application: inbound credentials with the §8 test
/// key, API key, both listeners on port 0.
pub fn base_env(db_url: &str) -> Vec<(String, String)> {
    let public = keys::public_key_pem(&keys::parse_private_key(FINPAY_PRIVATE_KEY).unwrap().to_public_key());
    [
        ("FINPAY_QRIS__SERVER__LISTEN", "127.0.0.1:0"),
        ("FINPAY_QRIS__API__LISTEN", "127.0.0.1:0"),
        ("FINPAY_QRIS__DATABASE__URL", db_url),
        ("FINPAY_QRIS__DATABASE__MAX_CONNECTIONS", "8"),
        ("FINPAY_QRIS__INBOUND__CLIENT_ID", CLIENT_ID),
        ("FINPAY_QRIS__INBOUND__CLIENT_SECRET", CLIENT_SECRET),
        ("FINPAY_QRIS__INBOUND__PUBLIC_KEY", public.as_str()),
        ("FINPAY_QRIS__API__KEYS", API_KEY),
        ("FINPAY_QRIS__WORKER__ENABLED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub internal: SocketAddr,
    pub db: TestDb,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    pub state: finpay_qris::state::AppState,
    pub handle: tokio::task::JoinHandle<()>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// `tweak` edits the environment before the settings are loaded.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Vec<(String, String)>)) -> Self {
        let db = TestDb::new(backend).await;
        let mut env = base_env(&db.url);
        tweak(&mut env);
        Self::spawn_env(db, env).await
    }

    pub async fn spawn_env(db: TestDb, env: Vec<(String, String)>) -> Self {
        let settings = Settings::load_from(None, env).expect("settings");
        let app = Application::build(settings).await.expect("application");
        let addr = app.public_addr();
        let internal = app.internal_addr();
        let state = app.state();
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let handle = tokio::spawn(async move {
            app.run(c).await.expect("application run");
        });
        Self {
            addr,
            internal,
            db,
            http: reqwest::Client::new(),
            cancel,
            state,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{}", self.internal, path)
    }

    /// Obtains a bearer token the way Finpay does.
    pub async fn token(&self) -> String {
        let resp = self.token_request(CLIENT_ID, &now_ts()).await;
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        v["accessToken"].as_str().expect("accessToken").to_string()
    }

    pub async fn token_request(&self, client_id: &str, ts: &str) -> reqwest::Response {
        token_request_at(&self.http, &self.url(TOKEN_PATH), client_id, ts).await
    }

    /// Sends a notification signed as Finpay would (symmetric).
    pub async fn notify(&self, token: &str, external_id: &str, body: &str) -> (u16, serde_json::Value) {
        let req = signed_notify(
            &self.http,
            &self.url(NOTIFY_PATH),
            NOTIFY_PATH,
            token,
            external_id,
            body,
            &now_ts(),
        );
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.handle).await;
    }
}

/// A token request signed with Finpay's (test) key, sent to `url`.
pub async fn token_request_at(http: &reqwest::Client, url: &str, client_id: &str, ts: &str) -> reqwest::Response {
    signed_token_request(http, url, &finpay_key(), client_id, ts, GRANT)
        .send()
        .await
        .unwrap()
}

/// The body of a B2B token request.
pub const GRANT: &str = r#"{"grantType":"client_credentials"}"#;

/// A B2B token request for `client_id` at `ts`, signed by `key`.
pub fn signed_token_request(
    http: &reqwest::Client,
    url: &str,
    key: &rsa::RsaPrivateKey,
    client_id: &str,
    ts: &str,
    body: &'static str,
) -> reqwest::RequestBuilder {
    let sig = signature::rsa_sign(key, &signature::token_string_to_sign(client_id, ts));
    http.post(url)
        .header("Content-Type", "application/json")
        .header("X-TIMESTAMP", ts)
        .header("X-CLIENT-KEY", client_id)
        .header("X-SIGNATURE", sig)
        .body(body)
}

pub fn finpay_key() -> rsa::RsaPrivateKey {
    keys::parse_private_key(FINPAY_PRIVATE_KEY).unwrap()
}

pub fn now_ts() -> String {
    timestamp::format_jakarta(chrono::Utc::now())
}

pub fn signed_notify(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    token: &str,
    external_id: &str,
    body: &str,
    ts: &str,
) -> reqwest::RequestBuilder {
    let mut req = http.post(url);
    for (k, v) in notify_headers(path, token, external_id, body, ts) {
        req = req.header(k, v);
    }
    req.body(body.to_string())
}

/// The headers Finpay sends with a notification (symmetric mode), signed over
/// `path` and the body's bytes.
pub fn notify_headers(path: &str, token: &str, external_id: &str, body: &str, ts: &str) -> Vec<(&'static str, String)> {
    let hash = body::body_hash(body.as_bytes());
    let sts = signature::symmetric_string_to_sign("POST", path, token, &hash, ts);
    vec![
        ("Content-Type", "application/json".to_string()),
        ("Authorization", format!("Bearer {token}")),
        ("X-TIMESTAMP", ts.to_string()),
        (
            "X-SIGNATURE",
            signature::HmacKey::new(CLIENT_SECRET.as_bytes()).sign(&sts),
        ),
        ("X-PARTNER-ID", CLIENT_ID.to_string()),
        ("X-EXTERNAL-ID", external_id.to_string()),
        ("CHANNEL-ID", "95221".to_string()),
    ]
}

/// A Finpay-shaped notification body, paid (`paidTime`) a second ago in Jakarta time.
pub fn notify_body(partner_ref: &str, reference: &str, status: &str, amount: &str) -> String {
    let paid = (chrono::Utc::now() - chrono::Duration::seconds(1))
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%:z");
    format!(
        r#"{{"originalReferenceNo":"{reference}","originalPartnerReferenceNo":"{partner_ref}","latestTransactionStatus":"{status}","transactionStatusDesc":"success","amount":{{"value":"{amount}","currency":"IDR"}},"additionalInfo":{{"merchantName":"WARTEG","rrn":"000019001390","paidTime":"{paid}"}}}}"#
    )
}

pub fn unique_digits() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..24).map(|_| char::from(b'0' + r.gen_range(0..10u8))).collect()
}

// ---- Finpay simulator and reconciliation helpers ----

use finpay_qris::simulator::{self, SimConfig, SimHandle};
use std::time::Duration;

/// Our (the merchant's) identity at the simulated Finpay.
pub const MERCHANT_CLIENT_ID: &str = "MERCHANT-AT-FINPAY";
pub const MERCHANT_CLIENT_SECRET: &str = "TEST-ONLY-merchant-secret-9876543210";
pub const MERCHANT_ID: &str = "FM2103300001";

/// The merchant's RSA key, generated once per test binary (a key of its own,
/// so a mix-up with Finpay's key cannot go unnoticed).
pub fn merchant_key() -> rsa::RsaPrivateKey {
    static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(keys::generate_private_key).clone()
}

/// A simulated Finpay for a [`TestApp`]: it trusts [`merchant_key`], signs
/// its token requests with the §8 test key (which `base_env` trusts) and
/// notifies with `CLIENT_ID` / `CLIENT_SECRET`.
pub async fn spawn_simulator(tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut cfg = SimConfig::new(
        MERCHANT_CLIENT_ID,
        MERCHANT_CLIENT_SECRET,
        merchant_key().to_public_key(),
        finpay_key(),
        CLIENT_ID,
        CLIENT_SECRET,
    );
    cfg.merchant_id = Some(MERCHANT_ID.into());
    cfg.notify_backoff_ms = 100;
    tweak(&mut cfg);
    simulator::spawn(cfg).await.expect("simulator")
}

/// A port nobody listens on now, for a server started as its own process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sets `key` in `env`, replacing an earlier value.
pub fn set_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}

/// Points the service at `sim`, with the worker on at test speed: polls
/// every 50 ms, first check 1 s, intervals ×2 up to 2 s, grace 1 s.
pub fn finpay_env(env: &mut Vec<(String, String)>, sim_base_url: &str) {
    let pem = keys::private_key_pem(&merchant_key());
    for (k, v) in [
        ("FINPAY_QRIS__FINPAY__BASE_URL", sim_base_url),
        ("FINPAY_QRIS__FINPAY__CLIENT_ID", MERCHANT_CLIENT_ID),
        ("FINPAY_QRIS__FINPAY__CLIENT_SECRET", MERCHANT_CLIENT_SECRET),
        ("FINPAY_QRIS__FINPAY__PRIVATE_KEY", pem.as_str()),
        ("FINPAY_QRIS__FINPAY__MERCHANT_ID", MERCHANT_ID),
        ("FINPAY_QRIS__FINPAY__SUB_MERCHANT_ID", "FM2007160001"),
        ("FINPAY_QRIS__FINPAY__TERMINAL_ID", "213141251124"),
        ("FINPAY_QRIS__FINPAY__TIMEOUT_SECS", "5"),
        ("FINPAY_QRIS__FINPAY__CONNECT_TIMEOUT_SECS", "2"),
        ("FINPAY_QRIS__WORKER__ENABLED", "true"),
        ("FINPAY_QRIS__WORKER__POLL_INTERVAL_MS", "50"),
        ("FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", "1"),
        ("FINPAY_QRIS__WORKER__BACKOFF_FACTOR", "2.0"),
        ("FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", "2"),
        ("FINPAY_QRIS__WORKER__LEASE_SECS", "10"),
        ("FINPAY_QRIS__WORKER__GRACE_SECS", "1"),
        ("FINPAY_QRIS__WORKER__BATCH_SIZE", "8"),
    ] {
        set_env(env, k, v);
    }
}

/// A [`TestApp`] wired to `sim` (which then notifies this app).
pub async fn spawn_app_with_sim(
    backend: Backend,
    sim: &SimHandle,
    tweak: impl FnOnce(&mut Vec<(String, String)>),
) -> TestApp {
    let app = TestApp::spawn_with(backend, |env| {
        finpay_env(env, sim.base_url());
        tweak(env);
    })
    .await;
    sim.set_merchant(&app.url(NOTIFY_PATH), &app.url(TOKEN_PATH));
    app
}

impl TestDb {
    /// Another handle on the same database, for a second application.
    /// The original must outlive it (it owns the SQLite directory).
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            _dir: None,
            owned: None,
        }
    }
}

/// Creates a payment as the API does: the row, Finpay's generate, the QR
/// attached with its first check `first_check` from now.
pub async fn create_payment(
    app: &TestApp,
    amount_minor: i64,
    validity: Duration,
    first_check: Duration,
) -> finpay_qris::store::Payment {
    use finpay_qris::finpay::GenerateRequest;
    use finpay_qris::snap::notify::Amount;
    use finpay_qris::store::{self, GeneratedQr, NewPayment};
    let now = store::now();
    let valid_until = now + chrono::Duration::from_std(validity).unwrap();
    let new = NewPayment {
        id: uuid::Uuid::now_v7().to_string(),
        partner_reference_no: format!("INV{}", unique_digits()),
        amount_minor,
        currency: "IDR".into(),
        note: Some("test".into()),
        valid_until,
        created_at: now,
    };
    let p = app
        .state
        .store
        .create_api_payment(&new, None, None)
        .await
        .expect("insert payment");
    let finpay = app.state.finpay.as_ref().expect("Finpay is configured");
    let g = finpay
        .generate(&GenerateRequest {
            partner_reference_no: new.partner_reference_no.clone(),
            amount: Amount {
                minor: amount_minor,
                currency: "IDR".into(),
            },
            valid_until,
            note: new.note.clone(),
            tips: None,
        })
        .await
        .expect("generate");
    let qr = GeneratedQr {
        reference_no: g.reference_no,
        qr_content: g.qr_content,
        qr_url: g.qr_url,
        next_check_at: now + chrono::Duration::from_std(first_check).unwrap(),
    };
    app.state.store.attach_generated(&p.id, &qr).await.expect("attach QR")
}

/// Polls `probe` until it yields a value; panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The payment's events of `kind`, their details parsed.
pub async fn events_of(app: &TestApp, payment_id: &str, kind: &str) -> Vec<serde_json::Value> {
    let events = app.state.store.payment_events(payment_id).await.expect("events");
    events
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail)
        .collect()
}

/// The payment as stored now.
pub async fn status_of(app: &TestApp, id: &str) -> finpay_qris::store::Payment {
    app.state.store.get_payment(id).await.unwrap().expect("payment exists")
}

/// Polls until the payment has status `want`.
pub async fn wait_for_status(
    app: &TestApp,
    id: &str,
    want: finpay_qris::domain::PaymentStatus,
    timeout: Duration,
) -> finpay_qris::store::Payment {
    eventually(&format!("payment {id} to become {want}"), timeout, || async {
        let p = status_of(app, id).await;
        (p.status == want).then_some(p)
    })
    .await
}

/// `finpay_qris_reconcile_attempts_total{outcome}` of one application.
pub fn reconcile_attempts(app: &TestApp, outcome: &str) -> u64 {
    app.state
        .metrics
        .counter("finpay_qris_reconcile_attempts_total", &[("outcome", outcome)])
}

/// A payment we generated, pending, stored directly (no Finpay call).
pub async fn insert_pending_payment(
    store: &dyn finpay_qris::store::Store,
    partner_reference_no: &str,
    amount_minor: i64,
) -> finpay_qris::store::Payment {
    let now = finpay_qris::store::now();
    store
        .create_api_payment(
            &finpay_qris::store::NewPayment {
                id: uuid::Uuid::now_v7().to_string(),
                partner_reference_no: partner_reference_no.into(),
                amount_minor,
                currency: "IDR".into(),
                note: None,
                valid_until: now + chrono::Duration::seconds(900),
                created_at: now,
            },
            None,
            None,
        )
        .await
        .expect("insert payment")
}

/// Runs `$body` with `$c`, a new connection to the test database (either
/// backend: the statements the tests run here are the same for both).
#[macro_export]
macro_rules! with_connection {
    ($url:expr, |$c:ident| $body:expr) => {{
        use sqlx::Connection;
        if $url.starts_with("sqlite:") {
            let mut $c = sqlx::SqliteConnection::connect($url).await.unwrap();
            $body
        } else {
            let mut $c = sqlx::PgConnection::connect($url).await.unwrap();
            $body
        }
    }};
}

/// Notifications stored in the test database, read in SQL.
pub async fn count_notifications(db_url: &str) -> i64 {
    with_connection!(db_url, |c| sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&mut c)
        .await
        .unwrap())
}
