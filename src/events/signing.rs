//! Standard Webhooks v1: secrets are `whsec_` + base64 of random bytes; a
//! message is signed as `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! and sent with `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (space-separated signatures while two secrets are live).
//! Verification (for `finpay-qris listen` and tests) checks the timestamp's
//! age and compares signatures in constant time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const PREFIX: &str = "whsec_";

/// A signing secret's key bytes.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("a secret is whsec_ followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("missing webhook-id, webhook-timestamp or webhook-signature")]
    MissingHeader,
    #[error("webhook-timestamp is not Unix seconds within the tolerance")]
    Timestamp,
    #[error("no signature matches")]
    NoMatch,
}

impl SigningKey {
    pub fn parse(secret: &str) -> Result<Self, SigningError> {
        let b64 = secret.strip_prefix(PREFIX).ok_or(SigningError::BadSecret)?;
        let key = B64.decode(b64).map_err(|_| SigningError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SigningError::BadSecret);
        }
        Ok(Self(key))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `signatures` (the header's value) holds this key's `v1` signature.
    fn matches(&self, id: &str, timestamp: i64, body: &[u8], signatures: &str) -> bool {
        let expected = self.mac(id, timestamp, body);
        signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
            B64.decode(sig)
                .is_ok_and(|got| got.len() == expected.len() && bool::from(got.ct_eq(&expected)))
        })
    }
}

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{PREFIX}{}", B64.encode(key))
}

/// The `webhook-signature` value: one signature per live secret.
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifies a received message: the timestamp within `tolerance_secs` of
/// `now` and a signature by one of `keys`, over the bytes received.
pub fn verify(
    keys: &[SigningKey],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SigningError> {
    let (Some(id), Some(ts), Some(sigs)) = (id, timestamp, signatures) else {
        return Err(SigningError::MissingHeader);
    };
    let ts: i64 = ts.parse().map_err(|_| SigningError::Timestamp)?;
    // Checked: a hostile timestamp (i64::MIN) must not overflow.
    let off = now.checked_sub(ts).and_then(i64::checked_abs);
    if off.is_none_or(|d| d > tolerance_secs) {
        return Err(SigningError::Timestamp);
    }
    if keys.iter().any(|k| k.matches(id, ts, body, sigs)) {
        Ok(())
    } else {
        Err(SigningError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_example_as_its_libraries_do() {
        let key = SigningKey::parse(SECRET).unwrap();
        assert_eq!(key.sign(ID, TS, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn verifies_a_signature_among_several_and_refuses_a_changed_body() {
        let key = SigningKey::parse(SECRET).unwrap();
        let header = format!("v1,bm90IHRoaXMgb25l {SIGNATURE}");
        let check = |body: &[u8], now: i64| {
            verify(
                std::slice::from_ref(&key),
                Some(ID),
                Some("1614265330"),
                Some(&header),
                body,
                now,
                300,
            )
        };
        assert_eq!(check(BODY.as_bytes(), TS), Ok(()));
        assert_eq!(check(b"{}", TS), Err(SigningError::NoMatch));
        assert_eq!(check(BODY.as_bytes(), TS + 301), Err(SigningError::Timestamp));
        assert_eq!(
            verify(
                std::slice::from_ref(&key),
                Some(ID),
                None,
                Some(&header),
                BODY.as_bytes(),
                TS,
                300
            ),
            Err(SigningError::MissingHeader)
        );
    }

    #[test]
    fn a_timestamp_at_the_ends_of_the_integer_range_is_refused_not_a_panic() {
        let key = SigningKey::parse(SECRET).unwrap();
        for (ts, now) in [
            (i64::MIN.to_string(), TS),
            (i64::MAX.to_string(), TS),
            (i64::MIN.to_string(), 0),
            ("-1".to_string(), i64::MAX),
        ] {
            let r = verify(
                std::slice::from_ref(&key),
                Some(ID),
                Some(&ts),
                Some(SIGNATURE),
                BODY.as_bytes(),
                now,
                300,
            );
            assert_eq!(r, Err(SigningError::Timestamp), "webhook-timestamp {ts} at {now}");
        }
    }

    #[test]
    fn new_secrets_parse_and_malformed_ones_do_not() {
        assert!(SigningKey::parse(&new_secret()).is_ok());
        assert_eq!(
            SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SigningError::BadSecret
        );
        assert_eq!(SigningKey::parse("whsec_!!!").unwrap_err(), SigningError::BadSecret);
        assert_eq!(
            SigningKey::parse("whsec_c2hvcnQ=").unwrap_err(),
            SigningError::BadSecret
        );
    }
}
