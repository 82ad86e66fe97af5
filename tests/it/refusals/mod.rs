//! The journal of refused requests and the signature doctor, over HTTP on
//! both backends: each dialect, signed the way a sender's library signs it,
//! is refused with the SNAP code for a bad signature and journaled with that
//! dialect named.

mod cli;
mod dialects;
mod journal;

use crate::common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// What a notification sender signs, part by part.
#[derive(Clone)]
pub struct Signing {
    pub method: &'static str,
    pub path: String,
    pub token: Option<String>,
    pub body_hash: String,
    pub timestamp: String,
}

impl Signing {
    /// As this service verifies: `body` hashed as sent (it is compact).
    pub fn as_sent(path: &str, token: Option<&str>, body: &str, ts: &str) -> Self {
        Self {
            method: "POST",
            path: path.into(),
            token: token.map(str::to_string),
            body_hash: raw_hash(body),
            timestamp: ts.into(),
        }
    }

    pub fn string(&self) -> String {
        let token = self.token.as_deref().map(|t| format!("{t}:")).unwrap_or_default();
        format!(
            "{}:{}:{token}{}:{}",
            self.method, self.path, self.body_hash, self.timestamp
        )
    }

    pub fn hmac(&self, secret: &str) -> String {
        finpay_qris::snap::signature::HmacKey::new(secret.as_bytes()).sign(&self.string())
    }

    pub fn rsa(&self, key: &rsa::RsaPrivateKey) -> String {
        finpay_qris::snap::signature::rsa_sign(key, &self.string())
    }
}

/// SHA-256 hex of exactly these bytes.
pub fn raw_hash(body: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body.as_bytes()))
}

/// Sends a notification to `path` with the given signature; `case` names it
/// in an `X-Case` header, which the journal keeps.
pub async fn send_notify(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    ts: &str,
    sig: &str,
    body: &str,
    case: &str,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .header("X-TIMESTAMP", ts)
        .header("X-SIGNATURE", sig)
        .header("X-PARTNER-ID", CLIENT_ID)
        .header("X-EXTERNAL-ID", unique_digits())
        .header("CHANNEL-ID", "95221")
        .header("X-Case", case);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Sends a token request to `path` with the given signature; `case` names it
/// in an `X-Case` header, which the journal keeps.
pub async fn send_token(app: &TestApp, path: &str, ts: &str, sig: &str, case: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .header("X-TIMESTAMP", ts)
        .header("X-CLIENT-KEY", CLIENT_ID)
        .header("X-SIGNATURE", sig)
        .header("X-Case", case)
        .body(GRANT)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn api_get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(app.api_url(path))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until the journal holds `n` diagnosed refusals; returns them by
/// their `X-Case` header.
pub async fn diagnosed(app: &TestApp, n: usize) -> HashMap<String, Value> {
    let mut last = Value::Null;
    for _ in 0..400 {
        let (status, page) = api_get(app, "/api/v1/refusals?reason=invalid_signature&limit=200").await;
        assert_eq!(status, 200, "{page}");
        let items: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["dialects"].is_null())
            .cloned()
            .collect();
        if items.len() >= n {
            return items
                .into_iter()
                .map(|r| (r["headers"]["x-case"].as_str().unwrap_or_default().to_string(), r))
                .collect();
        }
        last = page;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} diagnosed refusals in the journal: {last}");
}

/// Obtains a token and sends one notification of `body` signed with the
/// client secret over what `change` makes of the verified string; waits until
/// the journal has diagnosed it, and returns that refusal.
pub async fn refuse_one(app: &TestApp, body: &str, case: &str, change: impl Fn(&mut Signing)) -> Value {
    let token = app.token().await;
    let ts = now_ts();
    let mut s = Signing::as_sent(NOTIFY_PATH, Some(&token), body, &ts);
    change(&mut s);
    let (status, v) = send_notify(app, NOTIFY_PATH, Some(&token), &ts, &s.hmac(CLIENT_SECRET), body, case).await;
    assert_eq!(
        (status, v["responseCode"].as_str()),
        (401, Some("4015200")),
        "{case}: {v}"
    );
    let mut found = diagnosed(app, 1).await;
    found.remove(case).unwrap_or_else(|| panic!("no refusal for {case}"))
}

/// Asserts the SNAP answer to a refused signature.
pub fn assert_bad_signature((status, v): &(u16, Value), code: &str, case: &str) {
    assert_eq!((*status, v["responseCode"].as_str()), (401, Some(code)), "{case}: {v}");
}

/// Waits for the journal to diagnose every case, and checks each one's dialects.
pub async fn assert_journal_names(app: &TestApp, expected: &[(&str, Vec<&str>)]) {
    let found = diagnosed(app, expected.len()).await;
    for (case, dialects) in expected {
        assert_named(&found, case, dialects);
    }
}

/// Asserts that the refusal of `case` names exactly `expected`.
pub fn assert_named(found: &HashMap<String, Value>, case: &str, expected: &[&str]) {
    let r = found.get(case).unwrap_or_else(|| panic!("no refusal for {case}"));
    let dialects: Vec<&str> = r["dialects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(dialects, expected, "{case}: {}", r["diagnosis"]);
    if expected.is_empty() {
        assert!(
            r["diagnosis"].as_str().unwrap().starts_with("No known dialect matches"),
            "{case}: {}",
            r["diagnosis"]
        );
    }
}

/// Journal settings for tests: every refused signature diagnosed.
pub fn journal_env(env: &mut Vec<(String, String)>) {
    set_env(env, "FINPAY_QRIS__REFUSALS__DIAGNOSES_PER_SEC", "100000");
}

/// Finpay credentials (never called: the worker is off), so the doctor has
/// another secret and key to try (`secret-swapped`).
pub fn other_credentials_env(env: &mut Vec<(String, String)>) {
    let pem = finpay_qris::snap::keys::private_key_pem(&merchant_key());
    for (k, v) in [
        ("FINPAY_QRIS__FINPAY__BASE_URL", "http://127.0.0.1:9"),
        ("FINPAY_QRIS__FINPAY__CLIENT_ID", MERCHANT_CLIENT_ID),
        ("FINPAY_QRIS__FINPAY__CLIENT_SECRET", MERCHANT_CLIENT_SECRET),
        ("FINPAY_QRIS__FINPAY__PRIVATE_KEY", pem.as_str()),
        ("FINPAY_QRIS__FINPAY__MERCHANT_ID", MERCHANT_ID),
        ("FINPAY_QRIS__WORKER__ENABLED", "false"),
    ] {
        set_env(env, k, v);
    }
}
