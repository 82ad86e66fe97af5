//! The other ways a sender may have written each part of the string to sign:
//! the body (re-serialized by a JSON library), the path, the timestamp.
//!
//! Bodies are rewritten lexically from the minified bytes received, never
//! parsed: the point is to reproduce what another serializer would have
//! produced from the same document, byte for byte.

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
pub fn body_hashes(body: &[u8]) -> Vec<Variant<String>> {
    use Dialect::*;
    let min = minify(body).into_owned();
    let hash = |b: &[u8]| hex::encode(Sha256::digest(b));
    let received = hash(&min);
    let slashes = swap_slashes(&min);
    let unicode = swap_unicode(&min, false);
    let mut rewritten: Vec<(Vec<u8>, &[Dialect])> = vec![
        (spaced(&min), &[BodySpacedSeparators]),
        (pretty(&min, "  "), &[BodyPrettyPrinted]),
        (pretty(&min, "    "), &[BodyPrettyPrinted]),
        (pretty(&min, "\t"), &[BodyPrettyPrinted]),
        (slashes.clone(), &[BodyEscapedSlashes]),
        (unicode.clone(), &[BodyUnicodeEscaped]),
        // Java's serializers write the escapes in upper case.
        (swap_unicode(&min, true), &[BodyUnicodeEscaped]),
        // Python's json.dumps default: ensure_ascii and spaced separators.
        (spaced(&unicode), &[BodySpacedSeparators, BodyUnicodeEscaped]),
        // Python with indent=2 or 4.
        (pretty(&unicode, "  "), &[BodyPrettyPrinted, BodyUnicodeEscaped]),
        (pretty(&unicode, "    "), &[BodyPrettyPrinted, BodyUnicodeEscaped]),
        // PHP's json_encode default escapes both; JSON_PRETTY_PRINT indents by 4.
        (swap_unicode(&slashes, false), &[BodyEscapedSlashes, BodyUnicodeEscaped]),
        (pretty(&slashes, "    "), &[BodyPrettyPrinted, BodyEscapedSlashes]),
        (
            pretty(&swap_unicode(&slashes, false), "    "),
            &[BodyPrettyPrinted, BodyEscapedSlashes, BodyUnicodeEscaped],
        ),
    ];
    // The bytes as received, hashed without minifying (a sender that sends
    // what it hashed but forgot to minify).
    if body != min.as_slice() {
        let which: &[Dialect] = if body.contains(&b'\n') {
            &[BodyPrettyPrinted]
        } else {
            &[BodySpacedSeparators]
        };
        rewritten.insert(0, (body.to_vec(), which));
    }
    let mut out = vec![Variant::received(received.clone())];
    for (bytes, dialects) in rewritten {
        let h = hash(&bytes);
        if out.iter().all(|v| v.value != h) {
            out.push(Variant::new(h, dialects, None));
        }
    }
    out.push(Variant::new(received.to_ascii_uppercase(), &[BodyHashUppercase], None));
    out
}

/// Calls `f` on each byte with whether it lies inside a string literal
/// (quotes included), writing what `f` returns.
fn rewrite(min: &[u8], mut f: impl FnMut(&[u8], usize, bool, &mut Vec<u8>) -> usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(min.len() + min.len() / 4);
    let mut in_string = false;
    let mut i = 0;
    while i < min.len() {
        let b = min[i];
        let was_in = in_string;
        if in_string {
            if b == b'\\' {
                // An escape and what it escapes are handed over together.
                let step = f(min, i, true, &mut out);
                i += step.max(1);
                continue;
            }
            if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        }
        let step = f(min, i, was_in || b == b'"', &mut out);
        i += step.max(1);
    }
    out
}

/// `, ` and `: ` between items and after keys.
fn spaced(min: &[u8]) -> Vec<u8> {
    rewrite(min, |s, i, in_str, out| {
        copy_escape_or(s, i, in_str, out, |b, out| {
            out.push(b);
            if b == b',' || b == b':' {
                out.push(b' ');
            }
        })
    })
}

/// Indented with `indent`, one item per line, `": "` after keys; empty
/// objects and arrays stay `{}` and `[]`.
fn pretty(min: &[u8], indent: &str) -> Vec<u8> {
    let mut depth = 0usize;
    rewrite(min, |s, i, in_str, out| {
        if in_str {
            return copy_escape_or(s, i, true, out, |b, out| out.push(b));
        }
        let b = s[i];
        let newline = |out: &mut Vec<u8>, depth: usize| {
            out.push(b'\n');
            for _ in 0..depth {
                out.extend_from_slice(indent.as_bytes());
            }
        };
        match b {
            b'{' | b'[' => {
                out.push(b);
                let empty = matches!(s.get(i + 1), Some(b'}') | Some(b']'));
                if empty {
                    out.push(s[i + 1]);
                    return 2;
                }
                depth += 1;
                newline(out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
        1
    })
}

/// Inside strings: `/` ↔ `\/`, in the direction the body allows (if it has
/// any `\/`, they are unescaped; otherwise every `/` is escaped).
fn swap_slashes(min: &[u8]) -> Vec<u8> {
    let has_escaped = min.windows(2).any(|w| w == b"\\/");
    rewrite(min, |s, i, in_str, out| {
        if in_str && s[i] == b'\\' {
            if s.get(i + 1) == Some(&b'/') && has_escaped {
                out.push(b'/');
            } else {
                out.extend_from_slice(s.get(i..i + 2).unwrap_or(&s[i..]));
            }
            return 2;
        }
        if in_str && s[i] == b'/' && !has_escaped {
            out.extend_from_slice(b"\\/");
        } else {
            out.push(s[i]);
        }
        1
    })
}

/// Inside strings: non-ASCII characters ↔ `\uXXXX` (lower- or upper-case
/// hex, surrogate pairs beyond the BMP), in the direction the body allows.
fn swap_unicode(min: &[u8], upper: bool) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(min) else {
        return min.to_vec();
    };
    if text.is_ascii() {
        return unescape_non_ascii(text)
            .map(String::into_bytes)
            .unwrap_or_else(|| min.to_vec());
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                if upper {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.into_bytes()
}

/// `\uXXXX` escapes of non-ASCII characters written as raw UTF-8; `None`
/// when there are none. Escapes of ASCII (`\u0022`) are kept as they are.
fn unescape_non_ascii(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("\\u") {
        // An escaped backslash before `u` is not an escape.
        let backslashes = rest[..pos].bytes().rev().take_while(|b| *b == b'\\').count();
        let unit = rest.get(pos + 2..pos + 6).and_then(|h| u16::from_str_radix(h, 16).ok());
        let (Some(unit), true) = (unit, backslashes % 2 == 0) else {
            out.push_str(&rest[..pos + 2]);
            rest = &rest[pos + 2..];
            continue;
        };
        let low = rest.get(pos + 6..pos + 12).filter(|s| s.starts_with("\\u"));
        let low = low.and_then(|s| u16::from_str_radix(&s[2..], 16).ok());
        let (decoded, used) = match (unit, low) {
            (0xD800..=0xDBFF, Some(lo @ 0xDC00..=0xDFFF)) => (char::decode_utf16([unit, lo]).next(), 12),
            (u, _) if u >= 0x80 => (char::decode_utf16([u]).next(), 6),
            _ => (None, 6),
        };
        match decoded.and_then(Result::ok) {
            Some(c) => {
                out.push_str(&rest[..pos]);
                out.push(c);
                changed = true;
            }
            None => out.push_str(&rest[..pos + used]),
        }
        rest = &rest[pos + used..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Copies an escape sequence inside a string whole; hands any other byte
/// outside strings to `other`, and copies bytes inside strings.
fn copy_escape_or(s: &[u8], i: usize, in_str: bool, out: &mut Vec<u8>, other: impl FnOnce(u8, &mut Vec<u8>)) -> usize {
    if in_str {
        if s[i] == b'\\' {
            out.extend_from_slice(s.get(i..i + 2).unwrap_or(&s[i..]));
            return 2;
        }
        out.push(s[i]);
        return 1;
    }
    other(s[i], out);
    1
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
        fn json_like_text_round_trips_through_both_escapes(s in r#"[ \t\n{}\[\]",:\\/a-z0-9éΩ😀]{0,48}"#) {
            let min = minify(s.as_bytes()).into_owned();
            let _ = pretty(&min, "  ");
            let _ = spaced(&min);
            if !min.windows(2).any(|w| w == b"\\/") {
                prop_assert_eq!(swap_slashes(&swap_slashes(&min)), min.clone());
            }
            // Without backslashes: `\é` is no JSON escape, and escaping its `é` makes one.
            if std::str::from_utf8(&min).is_ok_and(|t| !t.is_ascii() && !t.contains('\\')) {
                prop_assert_eq!(swap_unicode(&swap_unicode(&min, false), false), min.clone());
            }
        }

        #[test]
        fn paths_and_timestamps_of_any_text_do_not_panic(p in "\\PC{0,40}", h in "\\PC{0,20}") {
            let _ = paths(&p, &[h.as_str()], &["/pg".to_string()]);
            let _ = timestamps(&p, crate::snap::timestamp::parse(&p).ok());
        }
    }
}
