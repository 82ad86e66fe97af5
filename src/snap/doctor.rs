//! The signature doctor: given a request whose signature did not verify, and
//! the secrets and keys this service holds, finds which known dialect of the
//! SNAP string to sign (or of its encoding, or of the key) the sender used.
//!
//! It only explains: nothing it finds makes a request acceptable, and the
//! handlers never call it to decide. Pure (no I/O, no clock), and bounded:
//! every part of the string to sign has a small fixed list of other forms
//! ([`variants`]); the doctor tries the request as received, then each form
//! alone, then each pair of forms of two different parts (a Python body over
//! a gateway's path, a timestamp in UTC without the token...), and stops at
//! the first of those levels that matches. Each candidate costs one HMAC per
//! secret, or one SHA-256: an RSA signature is opened once per key and its
//! digest compared with the candidates' digests.

mod dialects;
mod variants;

#[cfg(test)]
mod tests;

pub use dialects::Dialect;
pub use variants::{body_hashes, paths, timestamps, Variant};

use crate::snap::body::body_hash;
use crate::snap::signature::{HmacKey, MacEncoding};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha256};

/// What was signed.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// A notification signed with HMAC-SHA512 over
    /// `METHOD:path:token:bodyHash:timestamp`.
    HmacNotification {
        path: &'a str,
        /// The hosts the sender may have put in front (`Host`, `X-Forwarded-Host`).
        hosts: &'a [&'a str],
        token: &'a str,
        body: &'a [u8],
    },
    /// A notification signed with SHA256withRSA over `METHOD:path:bodyHash:timestamp`.
    RsaNotification {
        path: &'a str,
        /// The hosts the sender may have put in front (`Host`, `X-Forwarded-Host`).
        hosts: &'a [&'a str],
        body: &'a [u8],
    },
    /// A token request signed with SHA256withRSA over `clientId|timestamp`.
    TokenRequest { client_id: &'a str },
}

/// A refused request: what was signed, its `X-TIMESTAMP` and `X-SIGNATURE`.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub signed: Signed<'a>,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// The secrets and keys to try. `other_*` are configured for something else
/// (named by their label, e.g. the setting); a match with one of them is
/// `secret-swapped`.
#[derive(Debug, Clone, Default)]
pub struct Keys<'a> {
    pub hmac: Vec<&'a HmacKey>,
    pub other_hmac: Vec<(&'a HmacKey, &'a str)>,
    pub public_keys: Vec<&'a RsaPublicKey>,
    pub other_public_keys: Vec<(&'a RsaPublicKey, &'a str)>,
    /// Tokens issued earlier (HMAC notifications: `stale-token`).
    pub earlier_tokens: Vec<&'a str>,
    /// Gateway prefixes a sender may have signed (`path-with-prefix`).
    pub path_prefixes: &'a [String],
    /// The HMAC encoding this service accepts.
    pub hmac_encoding: Option<MacEncoding>,
}

/// What the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The dialects of the explanation, in [`Dialect::ALL`] order; empty when
    /// no known dialect explains the signature.
    pub dialects: Vec<Dialect>,
    /// A sentence for the developer who signed the request.
    pub explanation: String,
    /// The signature verifies as received: the refusal had another cause.
    pub valid_as_received: bool,
}

/// Finds the dialect of a refused signature (see the module docs).
pub fn diagnose(refused: &Refused<'_>, keys: &Keys<'_>) -> Diagnosis {
    let parsed = crate::snap::timestamp::parse(refused.timestamp).ok();
    let timestamps = opt(timestamps(refused.timestamp, parsed));
    let (axes, separator, expected, matcher) = match refused.signed {
        Signed::HmacNotification {
            path,
            hosts,
            token,
            body,
        } => {
            let mut tokens = vec![
                Variant::received(Some(token.to_string())),
                variant(None, Dialect::TokenMissing),
                variant(Some(String::new()), Dialect::TokenMissing),
            ];
            for earlier in keys.earlier_tokens.iter().filter(|t| **t != token) {
                tokens.push(variant(Some(earlier.to_string()), Dialect::StaleToken));
            }
            let axes = notification_axes(path, hosts, body, keys, timestamps, Some(tokens));
            let expected = format!("POST:{path}:<access token>:{}:{}", body_hash(body), refused.timestamp);
            (axes, ':', expected, Matcher::hmac(refused.signature, keys))
        }
        Signed::RsaNotification { path, hosts, body } => {
            let axes = notification_axes(path, hosts, body, keys, timestamps, None);
            let expected = format!("POST:{path}:{}:{}", body_hash(body), refused.timestamp);
            (axes, ':', expected, Matcher::rsa(refused.signature, keys))
        }
        Signed::TokenRequest { client_id } => {
            let axes = vec![vec![Variant::received(Some(client_id.to_string()))], timestamps];
            let expected = format!("{client_id}|{}", refused.timestamp);
            (axes, '|', expected, Matcher::rsa(refused.signature, keys))
        }
    };
    match search(&axes, separator, &matcher) {
        Some((dialects, _)) if dialects.is_empty() => Diagnosis {
            dialects,
            explanation: "The signature verifies as received: the request was refused for another reason.".into(),
            valid_as_received: true,
        },
        Some((dialects, notes)) => Diagnosis {
            explanation: explain(&dialects, &notes),
            dialects,
            valid_as_received: false,
        },
        None => Diagnosis {
            dialects: Vec::new(),
            explanation: format!(
                "No known dialect matches: the signature was made with a secret or key this service does not hold, \
                 or over a string it cannot reconstruct. The string verified here is `{expected}`."
            ),
            valid_as_received: false,
        },
    }
}

fn opt(v: Vec<Variant<String>>) -> Vec<Variant<Option<String>>> {
    v.into_iter()
        .map(|v| Variant {
            value: Some(v.value),
            dialects: v.dialects,
            note: v.note,
        })
        .collect()
}

fn variant(value: Option<String>, d: Dialect) -> Variant<Option<String>> {
    Variant {
        value,
        dialects: vec![d],
        note: None,
    }
}

/// Method, path, [token,] body hash, timestamp: the parts in signing order.
fn notification_axes(
    path: &str,
    hosts: &[&str],
    body: &[u8],
    keys: &Keys<'_>,
    timestamps: Vec<Variant<Option<String>>>,
    tokens: Option<Vec<Variant<Option<String>>>>,
) -> Vec<Vec<Variant<Option<String>>>> {
    let methods = vec![
        Variant::received(Some("POST".to_string())),
        variant(Some("post".to_string()), Dialect::MethodLowercase),
    ];
    let mut axes = vec![methods, opt(paths(path, hosts, keys.path_prefixes))];
    axes.extend(tokens);
    axes.push(opt(body_hashes(body)));
    axes.push(timestamps);
    axes
}

type Found = (Vec<Dialect>, Vec<String>);

/// Tries the string as received, then one part changed, then two.
fn search(axes: &[Vec<Variant<Option<String>>>], separator: char, matcher: &Matcher) -> Option<Found> {
    let n = axes.len();
    let mut chosen = vec![0usize; n];
    let attempt = |chosen: &[usize]| -> Option<Found> {
        let parts: Vec<&Variant<Option<String>>> = chosen.iter().zip(axes).map(|(i, axis)| &axis[*i]).collect();
        let text: Vec<&str> = parts.iter().filter_map(|p| p.value.as_deref()).collect();
        let (mut dialects, note) = matcher.check(&text.join(&separator.to_string()))?;
        let mut notes: Vec<String> = parts.iter().filter_map(|p| p.note.clone()).collect();
        notes.extend(note);
        dialects.extend(parts.iter().flat_map(|p| p.dialects.iter().copied()));
        dialects.sort();
        dialects.dedup();
        Some((dialects, notes))
    };
    if let Some(found) = attempt(&chosen) {
        return Some(found);
    }
    for a in 0..n {
        for va in 1..axes[a].len() {
            chosen[a] = va;
            if let Some(found) = attempt(&chosen) {
                return Some(found);
            }
        }
        chosen[a] = 0;
    }
    for a in 0..n {
        for b in a + 1..n {
            for va in 1..axes[a].len() {
                for vb in 1..axes[b].len() {
                    chosen[a] = va;
                    chosen[b] = vb;
                    if let Some(found) = attempt(&chosen) {
                        return Some(found);
                    }
                }
            }
            chosen[a] = 0;
            chosen[b] = 0;
        }
    }
    None
}

/// Checks a candidate string against the received signature under every key
/// and encoding, naming the key's and the encoding's dialect.
enum Matcher {
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
    fn hmac(signature: &str, keys: &Keys<'_>) -> Self {
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

    fn rsa(signature: &str, keys: &Keys<'_>) -> Self {
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

    fn check(&self, candidate: &str) -> Option<(Vec<Dialect>, Option<String>)> {
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

/// "The signature matches A and B: fix A; fix B (what was signed)."
fn explain(dialects: &[Dialect], notes: &[String]) -> String {
    let phrases: Vec<&str> = dialects.iter().map(|d| d.phrase()).collect();
    let mut advice: Vec<&str> = dialects.iter().map(|d| d.advice()).collect();
    advice.dedup();
    let mut text = format!(
        "The signature matches {}; {}.",
        phrases.join(" and "),
        advice.join("; ")
    );
    if !notes.is_empty() {
        text.push_str(&format!(" ({}.)", notes.join("; ")));
    }
    text
}
