//! Each dialect, signed the way the sender's library or habit signs it
//! (bodies written out as Python's and PHP's serializers print them, not
//! produced by the doctor's own rewriting), is named; a wrong secret is not.

use super::*;
use crate::snap::keys::{generate_private_key, parse_private_key, parse_public_key};
use crate::snap::signature::{rsa_sign, HmacKey, MacEncoding};
use crate::snap::test_vectors::*;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// What was sent: compact, raw UTF-8, plain slashes.
const SENT: &str = r#"{"originalReferenceNo":"2020102977770000000009","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"Dédé Ωmega","callback":"https://shop.example/cb","tags":[],"n":[1,2]}}"#;
/// `json.dumps(d, ensure_ascii=False)`.
const PY_SPACED: &str = r#"{"originalReferenceNo": "2020102977770000000009", "latestTransactionStatus": "00", "amount": {"value": "10000.00", "currency": "IDR"}, "additionalInfo": {"cust_name": "Dédé Ωmega", "callback": "https://shop.example/cb", "tags": [], "n": [1, 2]}}"#;
/// `json.dumps(d)`: spaced separators and `\uXXXX`.
const PY_DEFAULT: &str = r#"{"originalReferenceNo": "2020102977770000000009", "latestTransactionStatus": "00", "amount": {"value": "10000.00", "currency": "IDR"}, "additionalInfo": {"cust_name": "D\u00e9d\u00e9 \u03a9mega", "callback": "https://shop.example/cb", "tags": [], "n": [1, 2]}}"#;
/// `json.dumps(d, indent=2, ensure_ascii=False)`.
const PY_INDENTED: &str = "{\n  \"originalReferenceNo\": \"2020102977770000000009\",\n  \"latestTransactionStatus\": \"00\",\n  \"amount\": {\n    \"value\": \"10000.00\",\n    \"currency\": \"IDR\"\n  },\n  \"additionalInfo\": {\n    \"cust_name\": \"Dédé Ωmega\",\n    \"callback\": \"https://shop.example/cb\",\n    \"tags\": [],\n    \"n\": [\n      1,\n      2\n    ]\n  }\n}";
/// `json_encode($d, JSON_UNESCAPED_UNICODE)`: slashes escaped.
const PHP_SLASHES: &str = r#"{"originalReferenceNo":"2020102977770000000009","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"Dédé Ωmega","callback":"https:\/\/shop.example\/cb","tags":[],"n":[1,2]}}"#;
/// `json.dumps(d, separators=(',', ':'))`: compact, `\uXXXX`.
const ASCII_ONLY: &str = r#"{"originalReferenceNo":"2020102977770000000009","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"additionalInfo":{"cust_name":"D\u00e9d\u00e9 \u03a9mega","callback":"https://shop.example/cb","tags":[],"n":[1,2]}}"#;

const PATH: &str = "/v1.0/qr/qr-mpm-notify";
const HOST: &str = "merchant.example:8443";
const TS: &str = "2024-06-07T10:03:55+07:00";
const OTHER_SECRET: &str = "TEST-ONLY-merchant-secret-9876543210";
const EARLIER_TOKEN: &str = "earlier-token-0123456789abcdefghijklmnopqrstu";

/// How the sender signed: the received values unless changed.
#[derive(Clone)]
struct Sender {
    method: &'static str,
    path: String,
    token: Option<String>,
    body_hash: String,
    timestamp: String,
}

impl Sender {
    fn as_received() -> Self {
        Self {
            method: "POST",
            path: PATH.into(),
            token: Some(ACCESS_TOKEN.into()),
            body_hash: raw_hash(SENT),
            timestamp: TS.into(),
        }
    }

    fn body(mut self, signed: &str) -> Self {
        self.body_hash = raw_hash(signed);
        self
    }

    fn string(&self) -> String {
        let token = self.token.as_deref().map(|t| format!("{t}:")).unwrap_or_default();
        format!(
            "{}:{}:{token}{}:{}",
            self.method, self.path, self.body_hash, self.timestamp
        )
    }

    fn hmac(&self, secret: &str) -> String {
        HmacKey::new(secret.as_bytes()).sign(&self.string())
    }

    fn rsa(&self, key: &RsaPrivateKey) -> String {
        let mut s = self.clone();
        s.token = None;
        rsa_sign(key, &s.string())
    }
}

/// SHA-256 hex of the bytes exactly as given (what a sender that hashes its
/// own serialization computes).
fn raw_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

fn finpay_key() -> RsaPrivateKey {
    parse_private_key(TEST_PRIVATE_KEY_PEM).unwrap()
}

fn merchant_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(generate_private_key)
}

struct Held {
    hmac: HmacKey,
    other_hmac: HmacKey,
    public: RsaPublicKey,
    merchant_public: RsaPublicKey,
    prefixes: Vec<String>,
}

fn held() -> Held {
    Held {
        hmac: HmacKey::new(CLIENT_SECRET.as_bytes()),
        other_hmac: HmacKey::new(OTHER_SECRET.as_bytes()),
        public: parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap(),
        merchant_public: merchant_key().to_public_key(),
        prefixes: vec!["/pg".into()],
    }
}

fn keys(h: &Held, encoding: MacEncoding) -> Keys<'_> {
    Keys {
        hmac: vec![&h.hmac],
        other_hmac: vec![(&h.other_hmac, "finpay.client_secret")],
        public_keys: vec![&h.public],
        other_public_keys: vec![(&h.merchant_public, "finpay.private_key")],
        earlier_tokens: vec![EARLIER_TOKEN],
        path_prefixes: &h.prefixes,
        hmac_encoding: Some(encoding),
    }
}

/// The doctor's finding on `signed`, with the keys held and `encoding` accepted.
fn diagnosis_of(signed: Signed<'_>, timestamp: &str, signature: &str, encoding: MacEncoding) -> Diagnosis {
    let h = held();
    diagnose(
        &Refused {
            signed,
            timestamp,
            signature,
        },
        &keys(&h, encoding),
    )
}

fn hmac_diagnosis(path: &str, signature: &str, encoding: MacEncoding) -> Diagnosis {
    let signed = Signed::HmacNotification {
        path,
        hosts: &[HOST],
        token: ACCESS_TOKEN,
        body: SENT.as_bytes(),
    };
    diagnosis_of(signed, TS, signature, encoding)
}

fn rsa_diagnosis(path: &str, signature: &str) -> Diagnosis {
    let signed = Signed::RsaNotification {
        path,
        hosts: &[HOST],
        body: SENT.as_bytes(),
    };
    diagnosis_of(signed, TS, signature, MacEncoding::Any)
}

fn ids(d: &Diagnosis) -> Vec<&'static str> {
    d.dialects.iter().map(|d| d.id()).collect()
}

/// Each case: the dialects expected, the path received, and the sender.
fn notification_cases() -> Vec<(Vec<&'static str>, &'static str, Sender)> {
    let s = Sender::as_received;
    let with = |f: &dyn Fn(&mut Sender)| {
        let mut x = s();
        f(&mut x);
        x
    };
    vec![
        (vec!["body-spaced-separators"], PATH, s().body(PY_SPACED)),
        (vec!["body-pretty-printed"], PATH, s().body(PY_INDENTED)),
        (vec!["body-escaped-slashes"], PATH, s().body(PHP_SLASHES)),
        (vec!["body-unicode-escaped"], PATH, s().body(ASCII_ONLY)),
        (
            vec!["body-spaced-separators", "body-unicode-escaped"],
            PATH,
            s().body(PY_DEFAULT),
        ),
        (
            vec!["body-hash-uppercase"],
            PATH,
            with(&|x| x.body_hash = x.body_hash.to_uppercase()),
        ),
        (vec!["path-without-prefix"], "/pg/v1.0/qr/qr-mpm-notify", s()),
        (vec!["path-with-prefix"], PATH, with(&|x| x.path = format!("/pg{PATH}"))),
        (vec!["path-with-query"], "/v1.0/qr/qr-mpm-notify?merchant=7", s()),
        (
            vec!["full-url"],
            PATH,
            with(&|x| x.path = format!("https://{HOST}{PATH}")),
        ),
        (
            vec!["timestamp-other-form"],
            PATH,
            with(&|x| x.timestamp = "2024-06-07T03:03:55Z".into()),
        ),
        (vec!["method-lowercase"], PATH, with(&|x| x.method = "post")),
        (
            vec!["body-spaced-separators", "path-with-prefix"],
            PATH,
            with(&|x| x.path = format!("/pg{PATH}")).body(PY_SPACED),
        ),
    ]
}

#[test]
fn every_body_path_timestamp_and_method_dialect_is_named_for_hmac_notifications() {
    for (expected, received_path, sender) in notification_cases() {
        let d = hmac_diagnosis(received_path, &sender.hmac(CLIENT_SECRET), MacEncoding::Any);
        assert_eq!(ids(&d), expected, "{}", d.explanation);
        assert!(!d.valid_as_received);
    }
}

#[test]
fn every_body_path_timestamp_and_method_dialect_is_named_for_rsa_notifications() {
    for (expected, received_path, sender) in notification_cases() {
        let d = rsa_diagnosis(received_path, &sender.rsa(&finpay_key()));
        assert_eq!(ids(&d), expected, "{}", d.explanation);
    }
}

#[test]
fn a_missing_token_alone_and_with_a_utc_timestamp_is_named() {
    let mut sender = Sender::as_received();
    sender.token = None;
    let d = hmac_diagnosis(PATH, &sender.hmac(CLIENT_SECRET), MacEncoding::Any);
    assert_eq!(ids(&d), ["token-missing"]);
    sender.timestamp = "2024-06-07T03:03:55.000Z".into();
    let d = hmac_diagnosis(PATH, &sender.hmac(CLIENT_SECRET), MacEncoding::Any);
    assert_eq!(ids(&d), ["timestamp-other-form", "token-missing"]);
    assert!(
        d.explanation.contains("`2024-06-07T03:03:55.000Z`"),
        "{}",
        d.explanation
    );
}

#[test]
fn an_earlier_token_is_named_stale_and_never_shown() {
    let mut sender = Sender::as_received();
    sender.token = Some(EARLIER_TOKEN.into());
    let d = hmac_diagnosis(PATH, &sender.hmac(CLIENT_SECRET), MacEncoding::Any);
    assert_eq!(ids(&d), ["stale-token"]);
    assert!(!d.explanation.contains(EARLIER_TOKEN) && !d.explanation.contains(ACCESS_TOKEN));
}

#[test]
fn hex_and_base64_are_named_against_the_configured_encoding() {
    let sender = Sender::as_received();
    let b64 = sender.hmac(CLIENT_SECRET);
    let hexed = hex::encode(STANDARD.decode(&b64).unwrap());
    assert_eq!(
        ids(&hmac_diagnosis(PATH, &hexed, MacEncoding::Base64)),
        ["signature-hex"]
    );
    assert_eq!(ids(&hmac_diagnosis(PATH, &b64, MacEncoding::Hex)), ["signature-base64"]);
    let rsa_hex = hex::encode(STANDARD.decode(sender.rsa(&finpay_key())).unwrap());
    assert_eq!(ids(&rsa_diagnosis(PATH, &rsa_hex)), ["signature-hex"]);
}

#[test]
fn another_configured_secret_or_key_is_named_with_its_setting() {
    let sender = Sender::as_received();
    let d = hmac_diagnosis(PATH, &sender.hmac(OTHER_SECRET), MacEncoding::Any);
    assert_eq!(ids(&d), ["secret-swapped"]);
    assert!(d.explanation.contains("finpay.client_secret"), "{}", d.explanation);
    let d = rsa_diagnosis(PATH, &sender.rsa(merchant_key()));
    assert_eq!(ids(&d), ["secret-swapped"]);
    assert!(d.explanation.contains("finpay.private_key"), "{}", d.explanation);
}

#[test]
fn an_rsa_signature_where_an_hmac_is_expected_names_the_signing_mode() {
    let sender = Sender::as_received();
    let d = hmac_diagnosis(PATH, &sender.rsa(&finpay_key()), MacEncoding::Any);
    assert_eq!(ids(&d), ["signing-mode-rsa"]);
    assert!(
        d.explanation.contains("INBOUND__SIGNATURE=asymmetric"),
        "{}",
        d.explanation
    );
    // With a dialect of its own on top (the Python body), both are named.
    let python = Sender::as_received().body(PY_SPACED);
    let d = hmac_diagnosis(PATH, &python.rsa(&finpay_key()), MacEncoding::Any);
    assert_eq!(ids(&d), ["signing-mode-rsa", "body-spaced-separators"]);
}

#[test]
fn a_wrong_secret_is_explained_by_no_dialect_and_says_so() {
    let sender = Sender::as_received().body(PY_SPACED);
    let d = hmac_diagnosis(PATH, &sender.hmac("some-other-secret"), MacEncoding::Any);
    assert!(d.dialects.is_empty());
    assert!(!d.valid_as_received);
    assert!(
        d.explanation.starts_with("No known dialect matches"),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains(&format!("POST:{PATH}:<access token>:")));
    assert!(!d.explanation.contains(ACCESS_TOKEN));
    let d = rsa_diagnosis(PATH, &sender.rsa(&generate_private_key()));
    assert!(d.dialects.is_empty(), "{}", d.explanation);
}

#[test]
fn a_signature_valid_as_received_is_said_to_be_valid() {
    let sender = Sender::as_received();
    let d = hmac_diagnosis(PATH, &sender.hmac(CLIENT_SECRET), MacEncoding::Any);
    assert!(d.valid_as_received && d.dialects.is_empty());
}

fn token_diagnosis(signature: &str) -> Diagnosis {
    diagnosis_of(
        Signed::TokenRequest { client_id: CLIENT_ID },
        TS,
        signature,
        MacEncoding::Any,
    )
}

#[test]
fn token_requests_name_timestamp_hex_and_swapped_keys() {
    let sign = |key: &RsaPrivateKey, ts: &str| rsa_sign(key, &format!("{CLIENT_ID}|{ts}"));
    let d = token_diagnosis(&sign(&finpay_key(), "2024-06-07T10:03:55.000+07:00"));
    assert_eq!(ids(&d), ["timestamp-other-form"], "{}", d.explanation);
    let hexed = hex::encode(STANDARD.decode(sign(&finpay_key(), TS)).unwrap());
    assert_eq!(ids(&token_diagnosis(&hexed)), ["signature-hex"]);
    assert_eq!(ids(&token_diagnosis(&sign(merchant_key(), TS))), ["secret-swapped"]);
    assert!(token_diagnosis(&sign(&generate_private_key(), TS)).dialects.is_empty());
}

#[test]
fn the_published_v3_and_v4_signatures_verify_as_received() {
    let v3 = "Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==";
    let signed = Signed::HmacNotification {
        path: PATH,
        hosts: &[],
        token: ACCESS_TOKEN,
        body: V3_PRETTY.as_bytes(),
    };
    let d = diagnosis_of(signed, V3_TIMESTAMP, v3, MacEncoding::Any);
    assert!(d.valid_as_received, "{}", d.explanation);
}

#[test]
fn identifiers_round_trip_and_every_dialect_has_words() {
    for d in Dialect::ALL {
        assert_eq!(Dialect::from_id(d.id()), Some(d));
        assert!(!d.phrase().is_empty() && !d.advice().is_empty());
    }
    assert_eq!(Dialect::from_id("nonsense"), None);
}

#[test]
fn bodies_that_are_not_json_or_not_utf8_do_not_panic() {
    for body in [&b"\xff\xfe{\"a\":"[..], b"", b"[[[[", b"\"\\", b"{\"a\":\"\\u12\"}"] {
        let signed = Signed::HmacNotification {
            path: "/",
            hosts: &[],
            token: "t",
            body,
        };
        let d = diagnosis_of(signed, "not a time", "x", MacEncoding::Any);
        assert!(d.dialects.is_empty());
    }
}

#[test]
fn the_protocol_page_names_and_explains_every_dialect() {
    let protocol = include_str!("../../../docs/protocol.md");
    for d in Dialect::ALL {
        let row = format!("| `{}` |", d.id());
        assert!(
            protocol.contains(&row),
            "docs/protocol.md's table for the sender lacks {}",
            d.id()
        );
        assert!(
            protocol.contains(&format!("`{}`", d.id())),
            "docs/protocol.md lacks {}",
            d.id()
        );
    }
}

#[test]
fn a_full_url_on_the_proxys_public_host_is_named() {
    let mut sender = Sender::as_received();
    sender.path = format!("https://shop.example{PATH}");
    let signature = sender.hmac(CLIENT_SECRET);
    let signed = Signed::HmacNotification {
        path: PATH,
        hosts: &["shop.example", "10.0.0.7:8080"],
        token: ACCESS_TOKEN,
        body: SENT.as_bytes(),
    };
    let d = diagnosis_of(signed, TS, &signature, MacEncoding::Any);
    assert_eq!(ids(&d), ["full-url"], "{}", d.explanation);
}

#[test]
fn the_doctor_tries_a_bounded_number_of_strings_even_when_nothing_matches() {
    let h = held();
    let earlier: Vec<String> = (0..16).map(|i| format!("earlier-token-{i:02}")).collect();
    let mut keys = keys(&h, MacEncoding::Any);
    keys.earlier_tokens = earlier.iter().map(String::as_str).collect();
    let signed = Signed::HmacNotification {
        path: "/pg/v1.0/qr/qr-mpm-notify?shop=7",
        hosts: &[HOST, "shop.example"],
        token: ACCESS_TOKEN,
        body: PY_INDENTED.as_bytes(),
    };
    let signature = Sender::as_received().hmac("a secret nobody configured");
    let d = diagnose(
        &Refused {
            signed,
            timestamp: TS,
            signature: &signature,
        },
        &keys,
    );
    assert!(d.dialects.is_empty());
    // The as-received string, each part changed alone, each two parts changed:
    // about a thousand strings, each one HMAC per secret.
    assert!((500..2_000).contains(&d.tried), "{} strings tried", d.tried);
}
