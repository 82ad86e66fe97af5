//! JSON shown to people: indented, yet byte for byte what was received or sent.

/// Valid JSON indented by two spaces, keeping its members' order and its
/// strings byte for byte (escapes included); `None` when it is not JSON.
pub fn indent_json(raw: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(raw).ok()?;
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                if !out.ends_with('{') && !out.ends_with('[') {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_in_its_own_order_with_its_escapes() {
        let raw = r#"{"z":1, "a":{"url":"https:\/\/x","name":"Caf\u00e9, \"A\": {b}"},"e":[],"o":{},"l":[1,2]}"#;
        let pretty = indent_json(raw).unwrap();
        assert_eq!(
            pretty,
            "{\n  \"z\": 1,\n  \"a\": {\n    \"url\": \"https:\\/\\/x\",\n    \"name\": \"Caf\\u00e9, \\\"A\\\": {b}\"\n  },\n  \
             \"e\": [],\n  \"o\": {},\n  \"l\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(indent_json("not json {"), None);
        assert_eq!(indent_json("\"<script>\""), Some("\"<script>\"".into()));
    }
}
