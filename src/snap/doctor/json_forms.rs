//! How other JSON serializers would have written the same document, rewritten
//! lexically from the minified bytes received (never parsed): spaced
//! separators, indentation, escaped slashes, `\uXXXX` escapes.

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
pub(super) fn spaced(min: &[u8]) -> Vec<u8> {
    rewrite(min, |s, i, in_str, out| {
        copy_escape_or(s, i, in_str, out, |b, out| {
            out.push(b);
            if b == b',' || b == b':' {
                out.push(b' ');
            }
        })
    })
}

/// How deep a document may nest for its indented forms to be tried. A
/// notification nests three or four levels; the indentation written grows
/// with the square of the depth, so a hostile body of nothing but `[` would
/// otherwise be rewritten into gigabytes.
pub(super) const MAX_PRETTY_DEPTH: usize = 16;

/// Indented with `indent`, one item per line, `": "` after keys; empty
/// objects and arrays stay `{}` and `[]`. `None` when the document nests
/// deeper than `MAX_PRETTY_DEPTH`.
pub(super) fn pretty(min: &[u8], indent: &str) -> Option<Vec<u8>> {
    let mut depth = 0usize;
    let mut too_deep = false;
    let out = rewrite(min, |s, i, in_str, out| {
        if too_deep {
            return s.len() - i;
        }
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
                if depth > MAX_PRETTY_DEPTH {
                    too_deep = true;
                    return 1;
                }
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
    });
    (!too_deep).then_some(out)
}

/// Inside strings: `/` ↔ `\/`, in the direction the body allows (if it has
/// any `\/`, they are unescaped; otherwise every `/` is escaped).
pub(super) fn swap_slashes(min: &[u8]) -> Vec<u8> {
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
pub(super) fn swap_unicode(min: &[u8], upper: bool) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::body::minify;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

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
    }

    #[test]
    fn a_document_nested_deeper_than_any_notification_gets_no_indented_form() {
        let deep = vec![b'['; 65_536];
        assert_eq!(pretty(&deep, "    "), None);
        let shallow = b"{\"a\":[{\"b\":1}]}";
        assert_eq!(
            pretty(shallow, "  ").as_deref(),
            Some(&b"{\n  \"a\": [\n    {\n      \"b\": 1\n    }\n  ]\n}"[..])
        );
    }
}
