//! Body canonicalisation for SNAP signatures.
//!
//! SNAP signs `Lowercase(HexEncode(SHA-256(minify(body))))`. Senders disagree on how
//! they serialise JSON (`\/` vs `/`, `\u00e9` vs raw UTF-8, `1.0` vs `1`), so we must
//! never parse and re-serialise a received body: that would silently rewrite exactly
//! the bytes the sender hashed. Instead [`minify`] is a lexical scanner that drops only
//! insignificant whitespace outside string literals and keeps every other byte as is.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// JSON's insignificant whitespace (RFC 8259 §2). Nothing else is ever removed.
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Removes insignificant JSON whitespace outside string literals, byte for byte.
///
/// Escapes, raw UTF-8, number spellings and key order are kept. Works on any bytes:
/// invalid JSON simply passes through the scanner. Returns the input borrowed when
/// there is nothing to remove, which is the common case for compact senders.
pub fn minify(body: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = first_removable(body) else {
        return Cow::Borrowed(body);
    };
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(body.get(..first).unwrap_or(body));
    // `first_removable` stops outside a string, so the scan restarts in that state.
    let mut in_string = false;
    let mut escaped = false;
    for &b in body.get(first..).unwrap_or_default() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !is_json_whitespace(b) {
            out.push(b);
            in_string = b == b'"';
        }
    }
    Cow::Owned(out)
}

/// Index of the first whitespace byte outside a string literal, if any.
fn first_removable(body: &[u8]) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if is_json_whitespace(b) {
            return Some(i);
        } else {
            in_string = b == b'"';
        }
    }
    None
}

/// Lowercase hex SHA-256 of `minify(body)`: the body component of a SNAP
/// string-to-sign. An empty body hashes the empty string (ASPI std note 2).
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(body_digest(body))
}

/// The SHA-256 of the body as signed (minified): two bodies that differ only
/// in whitespace between tokens are the same signed document.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(minify(body)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::test_vectors::{V2_BODY, V3_BODY, V3_HASH, V3_PRETTY};
    use proptest::prelude::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn d1_netzme_body_hash_matches_the_published_value() {
        let body = br#"{"partnerReferenceNo":"2020102900000000000001","balanceTypes":["BALANCE"],"additionalInfo":{"accessToken":"fa8sjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a"}}"#;
        assert_eq!(
            body_hash(body),
            "e9295c3253c05560273ff305d9eea6abf77fff65229bf90b1781383c09c29d98"
        );
    }

    #[test]
    fn d2_empty_body_hashes_the_empty_string() {
        assert_eq!(
            body_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn v2_generate_body_hash_matches() {
        assert_eq!(
            body_hash(V2_BODY.as_bytes()),
            "732774096aa37f5c32f2c995827f401eeab9ac0df78c08b97de610bfa96decd9"
        );
    }

    #[test]
    fn v2_body_with_php_escaped_slashes_hashes_differently() {
        let escaped = V2_BODY.replace('/', "\\/");
        assert_eq!(minify(escaped.as_bytes()), Cow::Borrowed(escaped.as_bytes()));
        assert_eq!(
            body_hash(escaped.as_bytes()),
            "8dfa2e0a1d7b593fea5e5d55ff0a0780f2639666bf2834908ed757857b3fadd3"
        );
    }

    #[test]
    fn v3_notify_body_hash_matches() {
        assert_eq!(body_hash(V3_BODY.as_bytes()), V3_HASH);
    }

    #[test]
    fn v3_pretty_body_minifies_to_the_compact_body_and_hash() {
        assert_eq!(&*minify(V3_PRETTY.as_bytes()), V3_BODY.as_bytes());
        assert_eq!(body_hash(V3_PRETTY.as_bytes()), V3_HASH);
    }

    #[test]
    fn v3_pretty_bytes_hashed_without_minify_give_the_documented_wrong_value() {
        assert_eq!(
            sha256_hex(V3_PRETTY.as_bytes()),
            "70f18bd266b0c268ac5b8e610a168cab7014ddc1acd39fc960ec16e4cca1f7ea"
        );
    }

    #[test]
    fn v5_grant_type_body_hash_matches() {
        assert_eq!(
            body_hash(br#"{"grantType":"client_credentials"}"#),
            "2902d47762fbc481fac6e6ca7b0081289f620b5a427b4c37a32ff0d52fe1acce"
        );
    }

    #[test]
    fn compact_body_is_borrowed_not_copied() {
        assert!(matches!(minify(V3_BODY.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn whitespace_inside_strings_is_kept() {
        let body = b"{ \"name\" : \"CANDRA  GUNAWAN\\t\\n x\",\n\t\"n\": [1, 2] }\r\n";
        assert_eq!(
            &*minify(body),
            &b"{\"name\":\"CANDRA  GUNAWAN\\t\\n x\",\"n\":[1,2]}"[..]
        );
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let body = br#"{"a": "say \"hi there\" \\", "b": "x y"}"#;
        assert_eq!(&*minify(body), &br#"{"a":"say \"hi there\" \\","b":"x y"}"#[..]);
    }

    #[test]
    fn escapes_numbers_and_key_order_are_kept_byte_for_byte() {
        let body = br#"{ "z": 1.0, "a": 1e3, "u": "\u00e9\/" }"#;
        assert_eq!(&*minify(body), &br#"{"z":1.0,"a":1e3,"u":"\u00e9\/"}"#[..]);
    }

    #[test]
    fn unicode_escape_and_raw_utf8_hash_differently() {
        let escaped = body_hash(br#"{"name":"D\u00e9d\u00e9"}"#);
        let raw = body_hash("{\"name\":\"Dédé\"}".as_bytes());
        assert_ne!(escaped, raw);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn minify_never_panics_and_is_idempotent(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let once = minify(&bytes).into_owned();
            prop_assert_eq!(&*minify(&once), &once[..]);
        }

        #[test]
        fn minify_is_idempotent_on_json_like_text(s in r#"[ \t\r\n{}\[\]",:\\a-z0-9é]{0,64}"#) {
            let once = minify(s.as_bytes()).into_owned();
            prop_assert_eq!(&*minify(&once), &once[..]);
        }
    }
}
