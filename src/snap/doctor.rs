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
mod json_forms;
mod matcher;
mod variants;

#[cfg(test)]
mod tests;

pub use dialects::Dialect;
pub use variants::{body_hashes, paths, timestamps, Variant};

use matcher::Matcher;

use crate::snap::body::body_hash;
use crate::snap::signature::{HmacKey, MacEncoding};
use rsa::RsaPublicKey;

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
    /// Strings to sign tried, each under every key and encoding: a small
    /// number fixed by the request's shape.
    pub tried: usize,
}

/// Finds the dialect of a refused signature (see the module docs).
pub fn diagnose(refused: &Refused<'_>, keys: &Keys<'_>) -> Diagnosis {
    let parsed = crate::snap::timestamp::parse(refused.timestamp).ok();
    let timestamp_forms = || opt(timestamps(refused.timestamp, parsed));
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
            let axes = notification_axes(path, hosts, body, keys, timestamp_forms(), Some(tokens));
            let expected = format!("POST:{path}:<access token>:{}:{}", body_hash(body), refused.timestamp);
            (axes, ':', expected, Matcher::hmac(refused.signature, keys))
        }
        Signed::RsaNotification { path, hosts, body } => {
            let axes = notification_axes(path, hosts, body, keys, timestamp_forms(), None);
            let expected = format!("POST:{path}:{}:{}", body_hash(body), refused.timestamp);
            (axes, ':', expected, Matcher::rsa(refused.signature, keys))
        }
        Signed::TokenRequest { client_id } => {
            let axes = vec![vec![Variant::received(Some(client_id.to_string()))], timestamp_forms()];
            let expected = format!("{client_id}|{}", refused.timestamp);
            (axes, '|', expected, Matcher::rsa(refused.signature, keys))
        }
    };
    let (mut found, mut tried) = search(&axes, separator, &matcher);
    // A notification refused as an HMAC that nothing explains is also tried as
    // SNAP's other mode: an RSA signature over the asymmetric string, with the
    // key registered for Finpay.
    if let (None, Signed::HmacNotification { path, hosts, body, .. }) = (&found, &refused.signed) {
        let axes = notification_axes(path, hosts, body, keys, timestamp_forms(), None);
        let (in_other_mode, more) = search(&axes, ':', &Matcher::rsa(refused.signature, keys));
        tried += more;
        found = in_other_mode.map(|(mut dialects, notes)| {
            dialects.insert(0, Dialect::SigningModeRsa);
            (dialects, notes)
        });
    }
    match found {
        Some((dialects, _)) if dialects.is_empty() => Diagnosis {
            dialects,
            explanation: "The signature verifies as received: the request was refused for another reason.".into(),
            valid_as_received: true,
            tried,
        },
        Some((dialects, notes)) => Diagnosis {
            explanation: explain(&dialects, &notes),
            dialects,
            valid_as_received: false,
            tried,
        },
        None => Diagnosis {
            dialects: Vec::new(),
            explanation: format!(
                "No known dialect matches: the signature was made with a secret or key this service does not hold, \
                 or over a string it cannot reconstruct. The string verified here is `{expected}`."
            ),
            valid_as_received: false,
            tried,
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

/// Tries the string as received, then one part changed, then two; returns
/// what matched first, and how many strings were tried.
fn search(axes: &[Vec<Variant<Option<String>>>], separator: char, matcher: &Matcher) -> (Option<Found>, usize) {
    let tried = std::cell::Cell::new(0);
    let found = first_match(axes, separator, matcher, &tried);
    (found, tried.get())
}

fn first_match(
    axes: &[Vec<Variant<Option<String>>>],
    separator: char,
    matcher: &Matcher,
    tried: &std::cell::Cell<usize>,
) -> Option<Found> {
    let n = axes.len();
    let mut chosen = vec![0usize; n];
    let attempt = |chosen: &[usize]| -> Option<Found> {
        tried.set(tried.get() + 1);
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
