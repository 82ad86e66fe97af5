//! SNAP strings-to-sign and the two signature schemes.
//!
//! * Symmetric (transactions, default): `HMAC_SHA512(clientSecret, stringToSign)`, Base64.
//! * Asymmetric (B2B token, and the "without Get Token" transaction variant):
//!   `SHA256withRSA` = RSASSA-PKCS1-v1_5 over SHA-256, Base64.
//!
//! Received signatures are always Base64-decoded and compared as bytes in constant
//! time; comparing Base64 strings would leak timing and accept case-mangled values.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha512};

/// `client_ID|X-TIMESTAMP`, signed with RSA for the B2B access-token call.
pub fn token_string_to_sign(client_id: &str, timestamp: &str) -> String {
    format!("{client_id}|{timestamp}")
}

/// `METHOD:EndpointUrl:AccessToken:hex(sha256(minify(body))):X-TIMESTAMP`.
///
/// `path` is the relative URL including any query string; `access_token` carries no
/// `Bearer ` prefix; `timestamp` is the header value byte for byte.
pub fn symmetric_string_to_sign(
    method: &str,
    path: &str,
    access_token: &str,
    body_hash: &str,
    timestamp: &str,
) -> String {
    let method = method.to_ascii_uppercase();
    format!("{method}:{path}:{access_token}:{body_hash}:{timestamp}")
}

/// `METHOD:EndpointUrl:hex(sha256(minify(body))):X-TIMESTAMP` (no token).
pub fn asymmetric_string_to_sign(method: &str, path: &str, body_hash: &str, timestamp: &str) -> String {
    let method = method.to_ascii_uppercase();
    format!("{method}:{path}:{body_hash}:{timestamp}")
}

/// How a received HMAC is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacEncoding {
    Base64,
    Hex,
    Any,
}

/// HMAC-SHA512 keyed once with the client secret; each use clones the keyed state,
/// which skips re-hashing the key pads on every request.
#[derive(Clone)]
pub struct HmacKey(Hmac<Sha512>);

impl HmacKey {
    /// Keys HMAC-SHA512 with the secret's raw bytes (not Base64-decoded, per SNAP).
    pub fn new(secret: &[u8]) -> Self {
        Self(<Hmac<Sha512> as KeyInit>::new(&rfc2104_key_block(secret)))
    }

    /// Standard Base64 (padded, 88 chars) of `HMAC_SHA512(secret, msg)`.
    pub fn sign(&self, msg: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(msg.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The raw MAC of `msg`, for the signature doctor (which only explains
    /// refusals; verification goes through [`HmacKey::verify_encoded`]).
    pub fn mac(&self, msg: &str) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(msg.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// True when `signature_b64` is the standard-Base64 MAC of `msg`. The MAC bytes are
    /// compared in constant time; malformed Base64 or a wrong length is simply false.
    pub fn verify(&self, msg: &str, signature_b64: &str) -> bool {
        self.verify_encoded(msg, signature_b64, MacEncoding::Base64)
    }

    /// Like [`HmacKey::verify`], with the received encoding chosen by configuration.
    /// ASPI and every SDK use Base64; Finpay's signature page also describes
    /// "lowercase hexadecimal", so both can be accepted (`Any`). Either way the
    /// decoded MAC bytes are compared in constant time.
    pub fn verify_encoded(&self, msg: &str, received: &str, encoding: MacEncoding) -> bool {
        let is_hex = received.len() == 128 && received.bytes().all(|b| b.is_ascii_hexdigit());
        let decoded = match (encoding, is_hex) {
            (MacEncoding::Hex, true) | (MacEncoding::Any, true) => hex::decode(received).ok(),
            (MacEncoding::Hex, false) => None,
            (MacEncoding::Base64 | MacEncoding::Any, _) => STANDARD.decode(received).ok(),
        };
        let Some(decoded) = decoded else {
            return false;
        };
        let mut mac = self.0.clone();
        mac.update(msg.as_bytes());
        mac.verify_slice(&decoded).is_ok()
    }
}

/// RFC 2104 key preprocessing: keys longer than the 128-byte SHA-512 block are hashed,
/// then the key is zero-padded to a full block. Building the block ourselves lets us
/// use the infallible `KeyInit::new` instead of unwrapping `new_from_slice`.
fn rfc2104_key_block(secret: &[u8]) -> Key<Hmac<Sha512>> {
    let mut block = Key::<Hmac<Sha512>>::default();
    let hashed;
    let key: &[u8] = if secret.len() > block.len() {
        hashed = Sha512::digest(secret);
        &hashed
    } else {
        secret
    };
    for (slot, byte) in block.iter_mut().zip(key) {
        *slot = *byte;
    }
    block
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn a_hex_encoded_mac_is_accepted_only_when_configured() {
        let key = HmacKey::new(b"secret");
        let b64 = key.sign("msg");
        let hexed = hex::encode(STANDARD.decode(&b64).unwrap());
        assert!(key.verify_encoded("msg", &hexed, MacEncoding::Any));
        assert!(key.verify_encoded("msg", &hexed, MacEncoding::Hex));
        assert!(!key.verify_encoded("msg", &hexed, MacEncoding::Base64));
        assert!(key.verify_encoded("msg", &b64, MacEncoding::Any));
        assert!(!key.verify_encoded("msg", &b64, MacEncoding::Hex));
        assert!(!key.verify_encoded("other", &hexed, MacEncoding::Any));
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// `SHA256withRSA(key, msg)` as standard Base64. PKCS#1 v1.5 is deterministic, so
/// the output is reproducible; the RNG only blinds the private-key operation.
///
/// # Panics
/// Only if the key cannot hold a SHA-256 DigestInfo (modulus under 62 bytes) or is
/// internally inconsistent. Keys from [`crate::snap::keys`] are checked for both.
pub fn rsa_sign(key: &RsaPrivateKey, msg: &str) -> String {
    let digest = Sha256::digest(msg.as_bytes());
    let signature = key
        .sign_with_rng(&mut OsRng, Pkcs1v15Sign::new::<Sha256>(), &digest)
        .expect("RSA signing with a validated key of at least 2048 bits cannot fail");
    STANDARD.encode(signature)
}

/// True when `signature_b64` is a valid `SHA256withRSA` signature of `msg` under `key`.
/// Malformed Base64, wrong lengths and bad signatures all return false.
pub fn rsa_verify(key: &RsaPublicKey, msg: &str, signature_b64: &str) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let digest = Sha256::digest(msg.as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature).is_ok()
}

/// [`rsa_verify`] against several keys, so a partner can rotate keys without downtime.
pub fn rsa_verify_any(keys: &[&RsaPublicKey], msg: &str, signature_b64: &str) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let digest = Sha256::digest(msg.as_bytes());
    keys.iter()
        .any(|key| key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::body::body_hash;
    use crate::snap::keys::{generate_private_key, parse_private_key, parse_public_key};
    use crate::snap::test_vectors::*;

    const V1_SIGNATURE: &str = "kq+YJToB9eGyPmh1fiOIdQ6FLpohj/0qQ8RnTBGF1s+a3bnAGmVJxyiebAoZW9/eLGFRz3RpP4wy4jeGS5BBFwFuCBcaqZz9CiSrcwcaKFb2tG0ltIJi//tthUQ8MbDHqv0y9NoKONnqldsdA7IGTraAkpjfKROpq+0UiCNPhadU10q0XVHMk9R7c1QhoBFMylRn6t6qed5356ExVn+g4Lu7WdS8WUjRfdOUFY9SC7XOEuDtM8YCVde9OfewE/4xw4RsqlvvximjkKboxIHJ74/mMqLUm7q5Sj+YV59EIPk3KXTvfWLPDuqmtpZALXQfstuET92b3kwKgzp3QBMOzg==";
    const V2_SIGNATURE: &str =
        "T5hqQ/HJEtOcY0/Nf8vE9ctbznjrTcpezbsFgvaXPTlyFVCeslJRw1Odkmbaq9kOSXo2yCimH18U9HFE0VUcTg==";
    const V3_SIGNATURE: &str =
        "Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==";
    const V4_SIGNATURE: &str = "PqVGBMcFmapuddjVtGRQtFZLOOqppDNFavq3R2+Fa14pbva7e97ebiuW692tIBlegnblrAu85zbQHJ0A5UZf5f4Yg9cmETF+tTTRgHbTD40y2+eL43vc84f1FtWLBuyH/B4jL+b5A5fLbFMrUcS6J0X6rFrZkBLJJtzxhiHWx25igWEedpUpxchYg1AeHqg1EGZq+36yflnwtPjJkaRm9piPl41DhkRdS+wf/kAvZBU6N1HduydZCxdCwrDfrCFOBAt7PBMRO+FZC9xB1UewjROaxjpBseLItwV4lHiFvfPeTdEVrT7OhZZHwJqItqAv8pjWoF481/nR+Lv3ueUndw==";

    fn hmac_key() -> HmacKey {
        HmacKey::new(CLIENT_SECRET.as_bytes())
    }

    fn v3_string_to_sign() -> String {
        let hash = body_hash(V3_BODY.as_bytes());
        symmetric_string_to_sign("post", "/v1.0/qr/qr-mpm-notify", ACCESS_TOKEN, &hash, V3_TIMESTAMP)
    }

    /// Flips one byte of the decoded signature and re-encodes it.
    fn flip_one_byte(b64: &str) -> String {
        let mut raw = STANDARD.decode(b64).unwrap();
        raw[10] ^= 0x01;
        STANDARD.encode(raw)
    }

    #[test]
    fn v1_token_signature_reproduces_the_published_base64_and_verifies() {
        let key = parse_private_key(TEST_PRIVATE_KEY_PEM).unwrap();
        let public = parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap();
        let sts = token_string_to_sign(CLIENT_ID, "2024-04-17T12:03:38+07:00");
        assert_eq!(sts, "FINPAY-PARTNER-ID|2024-04-17T12:03:38+07:00");
        assert_eq!(rsa_sign(&key, &sts), V1_SIGNATURE);
        assert!(rsa_verify(&public, &sts, V1_SIGNATURE));
        assert!(!rsa_verify(
            &public,
            "FINPAY-PARTNER-ID|2024-04-17T12:03:39+07:00",
            V1_SIGNATURE
        ));
    }

    #[test]
    fn v2_generate_string_to_sign_and_hmac_signature_match() {
        let hash = body_hash(V2_BODY.as_bytes());
        let path = "/pg/payment/card/v1.0/qr/qr-mpm-generate";
        let sts = symmetric_string_to_sign("POST", path, ACCESS_TOKEN, &hash, "2024-04-17T12:03:38+07:00");
        assert_eq!(
            sts,
            "POST:/pg/payment/card/v1.0/qr/qr-mpm-generate:gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a:732774096aa37f5c32f2c995827f401eeab9ac0df78c08b97de610bfa96decd9:2024-04-17T12:03:38+07:00"
        );
        assert_eq!(hmac_key().sign(&sts), V2_SIGNATURE);
        assert_eq!(V2_SIGNATURE.len(), 88);
        assert!(hmac_key().verify(&sts, V2_SIGNATURE));
    }

    #[test]
    fn v3_notify_signature_verifies_with_the_published_token() {
        let sts = v3_string_to_sign();
        assert_eq!(
            sts,
            "POST:/v1.0/qr/qr-mpm-notify:gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a:3145a68d66e10e15f394d503473688671739af047eaa0f56602adbd48aea1008:2024-06-07T10:03:55+07:00"
        );
        assert_eq!(hmac_key().sign(&sts), V3_SIGNATURE);
        assert!(hmac_key().verify(&sts, V3_SIGNATURE));
    }

    #[test]
    fn v3_pretty_body_yields_the_same_valid_signature_through_minify() {
        let hash = body_hash(V3_PRETTY.as_bytes());
        let sts = symmetric_string_to_sign("POST", "/v1.0/qr/qr-mpm-notify", ACCESS_TOKEN, &hash, V3_TIMESTAMP);
        assert!(hmac_key().verify(&sts, V3_SIGNATURE));
    }

    #[test]
    fn v4_asymmetric_notify_signature_verifies_and_fails_with_a_flipped_byte() {
        let public = parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap();
        let sts = asymmetric_string_to_sign("POST", "/v1.0/qr/qr-mpm-notify", V3_HASH, V3_TIMESTAMP);
        assert_eq!(
            sts,
            "POST:/v1.0/qr/qr-mpm-notify:3145a68d66e10e15f394d503473688671739af047eaa0f56602adbd48aea1008:2024-06-07T10:03:55+07:00"
        );
        assert!(rsa_verify(&public, &sts, V4_SIGNATURE));
        assert!(!rsa_verify(&public, &sts, &flip_one_byte(V4_SIGNATURE)));
        let key = parse_private_key(TEST_PRIVATE_KEY_PEM).unwrap();
        assert_eq!(rsa_sign(&key, &sts), V4_SIGNATURE);
    }

    #[test]
    fn rsa_verify_rejects_garbage_without_panicking() {
        let public = parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap();
        for sig in ["", "not base64!", "AAAA", &V4_SIGNATURE[..100], "=", "QUJD\n"] {
            assert!(!rsa_verify(&public, "x", sig), "{sig:?}");
        }
    }

    #[test]
    fn rsa_verify_any_accepts_a_signature_from_any_rotated_key() {
        let old = parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap();
        let new = generate_private_key().to_public_key();
        let sts = token_string_to_sign(CLIENT_ID, "2024-04-17T12:03:38+07:00");
        assert!(rsa_verify_any(&[&new, &old], &sts, V1_SIGNATURE));
        assert!(!rsa_verify_any(&[&new], &sts, V1_SIGNATURE));
        assert!(!rsa_verify_any(&[], &sts, V1_SIGNATURE));
    }

    #[test]
    fn hmac_verify_rejects_one_changed_character_and_non_base64() {
        let sts = v3_string_to_sign();
        let key = hmac_key();
        let changed = V3_SIGNATURE.replacen('H', "h", 1);
        assert!(!key.verify(&sts, &changed));
        assert!(!key.verify(&sts, &flip_one_byte(V3_SIGNATURE)));
        assert!(!key.verify(&sts, "%%%not-base64%%%"));
        assert!(!key.verify(&sts, ""));
        assert!(!key.verify(&sts, &V3_SIGNATURE[..86]));
        assert!(!key.verify(&format!("{sts} "), V3_SIGNATURE));
    }

    #[test]
    fn hmac_key_matches_the_hmac_crate_for_long_and_empty_secrets() {
        for secret in [&[0xAB; 200][..], &[0x01; 128][..], b""] {
            let mut reference = <Hmac<Sha512> as Mac>::new_from_slice(secret).unwrap();
            reference.update(b"msg");
            let expected = STANDARD.encode(reference.finalize().into_bytes());
            assert_eq!(HmacKey::new(secret).sign("msg"), expected);
        }
    }

    #[test]
    fn hmac_key_debug_output_is_redacted() {
        assert_eq!(format!("{:?}", hmac_key()), "HmacKey(<redacted>)");
    }

    #[test]
    fn method_is_upper_cased_in_both_strings_to_sign() {
        assert_eq!(asymmetric_string_to_sign("post", "/p", "h", "t"), "POST:/p:h:t");
        assert_eq!(
            symmetric_string_to_sign("get", "/p?a=1", "tok", "h", "t"),
            "GET:/p?a=1:tok:h:t"
        );
    }
}
