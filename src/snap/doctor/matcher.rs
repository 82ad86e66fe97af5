//! Checks candidate strings against a received signature, under every key
//! and encoding the doctor may try, naming the key's and the encoding's
//! dialect when one of those matched.

use super::{Dialect, Keys};
use crate::snap::signature::{HmacKey, MacEncoding};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha256};

/// Checks a candidate string against the received signature under every key
/// and encoding, naming the key's and the encoding's dialect.
pub(super) enum Matcher {
    /// Secrets (with their dialect and note), and the received signature's
    /// decodings (with the dialect of each).
    Hmac {
        keys: Vec<(HmacKey, Option<Dialect>, Option<String>)>,
        decoded: Vec<(Vec<u8>, Option<Dialect>)>,
    },
    /// SHA-256 digests the signature carries under each key and decoding.
    Rsa {
        digests: Vec<([u8; 32], Vec<Dialect>, Option<String>)>,
    },
}

impl Matcher {
    pub(super) fn hmac(signature: &str, keys: &Keys<'_>) -> Self {
        let encoding = keys.hmac_encoding.unwrap_or(MacEncoding::Any);
        let mut decoded = Vec::new();
        if let Ok(raw) = STANDARD.decode(signature) {
            let d = (encoding == MacEncoding::Hex).then_some(Dialect::SignatureBase64);
            decoded.push((raw, d));
        }
        if signature.len() == 128 {
            if let Ok(raw) = hex::decode(signature) {
                decoded.push((raw, (encoding == MacEncoding::Base64).then_some(Dialect::SignatureHex)));
            }
        }
        let mut all: Vec<(HmacKey, Option<Dialect>, Option<String>)> =
            keys.hmac.iter().map(|k| ((*k).clone(), None, None)).collect();
        for (k, label) in &keys.other_hmac {
            let note = format!("it was signed with {label}");
            all.push(((*k).clone(), Some(Dialect::SecretSwapped), Some(note)));
        }
        Matcher::Hmac { keys: all, decoded }
    }

    pub(super) fn rsa(signature: &str, keys: &Keys<'_>) -> Self {
        let mut decodings: Vec<(Vec<u8>, Option<Dialect>)> = Vec::new();
        if let Ok(raw) = STANDARD.decode(signature) {
            decodings.push((raw, None));
        }
        if signature.len() % 2 == 0 && signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(raw) = hex::decode(signature) {
                decodings.push((raw, Some(Dialect::SignatureHex)));
            }
        }
        let ours = keys.public_keys.iter().map(|k| (*k, None, None));
        let others = keys.other_public_keys.iter().map(|(k, label)| {
            (
                *k,
                Some(Dialect::SecretSwapped),
                Some(format!("it was signed with {label}")),
            )
        });
        let mut digests = Vec::new();
        for (key, key_dialect, note) in ours.chain(others) {
            for (raw, encoding_dialect) in &decodings {
                if let Some(digest) = signed_digest(key, raw) {
                    let dialects = key_dialect.into_iter().chain(*encoding_dialect).collect();
                    digests.push((digest, dialects, note.clone()));
                }
            }
        }
        Matcher::Rsa { digests }
    }

    pub(super) fn check(&self, candidate: &str) -> Option<(Vec<Dialect>, Option<String>)> {
        match self {
            Matcher::Hmac { keys, decoded } => keys.iter().find_map(|(key, key_dialect, note)| {
                let mac = key.mac(candidate);
                decoded
                    .iter()
                    .find(|(raw, _)| *raw == mac)
                    .map(|(_, encoding_dialect)| {
                        let dialects = key_dialect.iter().chain(encoding_dialect).copied().collect();
                        (dialects, note.clone())
                    })
            }),
            Matcher::Rsa { digests } => {
                let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
                digests
                    .iter()
                    .find(|(d, _, _)| *d == digest)
                    .map(|(_, dialects, note)| (dialects.clone(), note.clone()))
            }
        }
    }
}

/// The DER prefix of a SHA-256 `DigestInfo` in a PKCS#1 v1.5 signature.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
];

/// The SHA-256 digest a PKCS#1 v1.5 signature carries under `key`, if it is
/// one: the public-key operation once, then the padding checked byte for
/// byte (`00 01 FF… 00 DigestInfo digest`), as a verifier does.
fn signed_digest(key: &RsaPublicKey, signature: &[u8]) -> Option<[u8; 32]> {
    let size = key.size();
    let s = BigUint::from_bytes_be(signature);
    if signature.len() != size || &s >= key.n() {
        return None;
    }
    let m = s.modpow(key.e(), key.n()).to_bytes_be();
    let mut em = vec![0u8; size.checked_sub(m.len())?];
    em.extend_from_slice(&m);
    let tail = SHA256_DIGEST_INFO.len() + 32;
    let padding = size.checked_sub(3 + tail)?;
    let well_formed = em.first() == Some(&0)
        && em.get(1) == Some(&1)
        && padding >= 8
        && em.get(2..2 + padding)?.iter().all(|b| *b == 0xff)
        && em.get(2 + padding) == Some(&0)
        && em.get(3 + padding..size - 32)? == SHA256_DIGEST_INFO;
    if !well_formed {
        return None;
    }
    em.get(size - 32..)?.try_into().ok()
}
