//! The other ways a sender may have written each part of the string to sign:
//! the body (re-serialized by a JSON library: `json_forms`), the path, the
//! timestamp.

use super::json_forms::{pretty, spaced, swap_slashes, swap_unicode};
use super::Dialect;
use crate::snap::body::minify;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// One way of writing a part, with the dialects it stands for (none: as received).
#[derive(Debug, Clone)]
pub struct Variant<T> {
    pub value: T,
    pub dialects: Vec<Dialect>,
    /// What was signed, for the explanation (e.g. the path signed).
    pub note: Option<String>,
}

impl<T> Variant<T> {
    pub fn received(value: T) -> Self {
        Self {
            value,
            dialects: Vec::new(),
            note: None,
        }
    }

    fn new(value: T, dialects: &[Dialect], note: Option<String>) -> Self {
        Self {
            value,
            dialects: dialects.to_vec(),
            note,
        }
    }
}

/// Body hashes: as received first, then each serializer's rewriting (alone
/// and in the combinations libraries produce by default), then the received
/// hash in upper case. Rewritings equal to the received bytes are skipped.
/// Each rewriting is hashed and dropped before the next is made, so a
/// diagnosis holds one of them at a time.
pub fn body_hashes(body: &[u8]) -> Vec<Variant<String>> {
    use Dialect::*;
    let min = minify(body).into_owned();
    let hash = |b: &[u8]| hex::encode(Sha256::digest(b));
    let received = hash(&min);
    let slashes = swap_slashes(&min);
    let unicode = swap_unicode(&min, false);
    let mut out = vec![Variant::received(received.clone())];
    let mut add = |bytes: Option<Vec<u8>>, dialects: &[Dialect]| {
        let Some(bytes) = bytes else { return };
        let h = hash(&bytes);
        if out.iter().all(|v| v.value != h) {
            out.push(Variant::new(h, dialects, None));
        }
    };
    // The bytes as received, hashed without minifying (a sender that sends
    // what it hashed but forgot to minify).
    if body != min.as_slice() {
        let which = if body.contains(&b'\n') {
            BodyPrettyPrinted
        } else {
            BodySpacedSeparators
        };
        add(Some(body.to_vec()), &[which]);
    }
    add(Some(spaced(&min)), &[BodySpacedSeparators]);
    for indent in ["  ", "    ", "\t"] {
        add(pretty(&min, indent), &[BodyPrettyPrinted]);
    }
    add(Some(slashes.clone()), &[BodyEscapedSlashes]);
    add(Some(unicode.clone()), &[BodyUnicodeEscaped]);
    // Java's serializers write the escapes in upper case.
    add(Some(swap_unicode(&min, true)), &[BodyUnicodeEscaped]);
    // Python's json.dumps default: ensure_ascii and spaced separators.
    add(Some(spaced(&unicode)), &[BodySpacedSeparators, BodyUnicodeEscaped]);
    // Python with indent=2 or 4.
    for indent in ["  ", "    "] {
        add(pretty(&unicode, indent), &[BodyPrettyPrinted, BodyUnicodeEscaped]);
    }
    // PHP's json_encode default escapes both; JSON_PRETTY_PRINT indents by 4.
    let php = swap_unicode(&slashes, false);
    add(Some(php.clone()), &[BodyEscapedSlashes, BodyUnicodeEscaped]);
    add(pretty(&slashes, "    "), &[BodyPrettyPrinted, BodyEscapedSlashes]);
    add(
        pretty(&php, "    "),
        &[BodyPrettyPrinted, BodyEscapedSlashes, BodyUnicodeEscaped],
    );
    out.push(Variant::new(received.to_ascii_uppercase(), &[BodyHashUppercase], None));
    out
}

/// Paths: as received, then with the query string dropped, without leading
/// segments, with each known gateway prefix, and as full URLs on each host.
pub fn paths(received: &str, hosts: &[&str], prefixes: &[String]) -> Vec<Variant<String>> {
    use Dialect::*;
    let mut out = vec![Variant::received(received.to_string())];
    let mut push = |value: String, dialect: Dialect| {
        if out.iter().all(|v| v.value != value) {
            let note = format!("the path signed was `{value}`, the path received `{received}`");
            out.push(Variant::new(value, &[dialect], Some(note)));
        }
    };
    let (path, query) = match received.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (received, None),
    };
    if query.is_some() {
        push(path.to_string(), PathWithQuery);
    }
    // At most three leading segments dropped: gateways add one or two.
    let mut rest = path;
    for _ in 0..3 {
        let Some(next) = rest.get(1..).and_then(|r| r.find('/')).map(|i| &rest[i + 1..]) else {
            break;
        };
        if next.len() <= 1 {
            break;
        }
        push(
            format!("{next}{}", query.map(|q| format!("?{q}")).unwrap_or_default()),
            PathWithoutPrefix,
        );
        rest = next;
    }
    for prefix in prefixes {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !received.starts_with(&format!("{prefix}/")) {
            push(format!("{prefix}{received}"), PathWithPrefix);
        }
    }
    for host in hosts.iter().filter(|h| !h.is_empty() && !h.contains(['/', ' '])) {
        for scheme in ["https", "http"] {
            push(format!("{scheme}://{host}{received}"), FullUrl);
        }
    }
    out
}

/// `X-TIMESTAMP`: as received, then the same instant in the other forms
/// signers use (Jakarta or UTC, with or without milliseconds, `Z` or
/// `+00:00`, an offset without its colon, a space for the `T`).
pub fn timestamps(received: &str, parsed: Option<DateTime<FixedOffset>>) -> Vec<Variant<String>> {
    let mut out = vec![Variant::received(received.to_string())];
    let Some(t) = parsed else { return out };
    let jakarta = FixedOffset::east_opt(7 * 3600).map(|o| t.with_timezone(&o));
    let utc: DateTime<Utc> = t.with_timezone(&Utc);
    let mut forms = vec![
        t.to_rfc3339_opts(SecondsFormat::Secs, false),
        t.to_rfc3339_opts(SecondsFormat::Millis, false),
        utc.to_rfc3339_opts(SecondsFormat::Secs, true),
        utc.to_rfc3339_opts(SecondsFormat::Millis, true),
        utc.to_rfc3339_opts(SecondsFormat::Secs, false),
        t.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
        t.format("%Y-%m-%d %H:%M:%S%:z").to_string(),
    ];
    if let Some(j) = jakarta {
        forms.push(j.to_rfc3339_opts(SecondsFormat::Secs, false));
        forms.push(j.to_rfc3339_opts(SecondsFormat::Millis, false));
    }
    for form in forms {
        if out.iter().all(|v| v.value != form) {
            let note = format!("the timestamp signed was `{form}`, X-TIMESTAMP `{received}`");
            out.push(Variant::new(form, &[Dialect::TimestampOtherForm], Some(note)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_bytes_give_body_variants_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let variants = body_hashes(&bytes);
            prop_assert!(variants.len() >= 2);
            prop_assert!(variants[0].dialects.is_empty());
        }

        #[test]
        fn paths_and_timestamps_of_any_text_do_not_panic(p in "\\PC{0,40}", h in "\\PC{0,20}") {
            let _ = paths(&p, &[h.as_str()], &["/pg".to_string()]);
            let _ = timestamps(&p, crate::snap::timestamp::parse(&p).ok());
        }
    }

    #[test]
    fn a_body_nested_beyond_any_notification_is_tried_without_indentation() {
        let variants = body_hashes("[1,".repeat(20_000).as_bytes());
        assert!(variants
            .iter()
            .all(|v| !v.dialects.contains(&Dialect::BodyPrettyPrinted)));
        assert!(variants
            .iter()
            .any(|v| v.dialects.contains(&Dialect::BodySpacedSeparators)));
    }
}
