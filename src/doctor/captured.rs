//! A request as someone captured it: a raw HTTP/1.1 request saved to a file,
//! or a curl command line.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, Default)]
pub struct Captured {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    fn header(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("bad header name {name:?}"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("bad value for header {name}"))?;
        self.headers.append(name, value);
        Ok(())
    }
}

/// `METHOD target HTTP/1.1`, headers, a blank line, then the body (as many
/// bytes as `Content-Length` says, decoded when sent in chunks, else the rest
/// of the file).
pub fn parse_raw(bytes: &[u8]) -> Result<Captured, String> {
    let (head, body) = split_head(bytes).ok_or("no blank line after the headers")?;
    let head = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8")?;
    let mut lines = head.lines();
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("not a request line: {request_line:?}"));
    };
    let mut c = Captured {
        method: method.to_string(),
        ..Default::default()
    };
    let (host, path) = split_target(target);
    c.path = path;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("not a header: {line:?}"))?;
        c.header(name, value)?;
    }
    if let (Some(host), false) = (host, c.headers.contains_key("host")) {
        c.header("host", &host)?;
    }
    let length = c
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = c
        .headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    c.body = match length {
        _ if chunked => dechunked(body)?,
        Some(n) => body.get(..n).ok_or("the body is shorter than Content-Length")?.to_vec(),
        None => body.to_vec(),
    };
    Ok(c)
}

/// A chunked body's bytes: each chunk is its size in hex (extensions after
/// `;` ignored), a line end, the bytes and a line end, up to a chunk of 0.
fn dechunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a chunk size line has no end")?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| "a chunk size is not text")?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("not a chunk size: {size:?}"))?;
        rest = &rest[end + 1..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("a chunk is shorter than its size")?);
        rest = &rest[size..];
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .ok_or("a chunk does not end its line")?;
    }
}

fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    for sep in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(i) = bytes.windows(sep.len()).position(|w| w == sep) {
            return Some((&bytes[..i], &bytes[i + sep.len()..]));
        }
    }
    None
}

/// `http://host/path?q` → (`host`, `/path?q`); a path stays a path.
fn split_target(target: &str) -> (Option<String>, String) {
    let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    else {
        return (None, target.to_string());
    };
    match rest.find('/') {
        Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
        None => (Some(rest.to_string()), "/".to_string()),
    }
}

/// curl's options that take a value this reading has no use for: skipped
/// with it, so that the value is not taken for the URL.
const IGNORED_WITH_VALUE: [&str; 30] = [
    "-o",
    "--output",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-w",
    "--write-out",
    "--cacert",
    "-E",
    "--cert",
    "--key",
    "-x",
    "--proxy",
    "--resolve",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "-r",
    "--range",
    "--interface",
];

/// A curl command line: `-X`, `-H`, `-d`/`--data*`/`--json` (inline; `@file`
/// read), the URL (without a scheme, as curl reads it: `http://`). Other
/// options are ignored.
pub fn parse_curl(command: &str) -> Result<Captured, String> {
    let words = shell_words(command)?;
    let mut c = Captured::default();
    let mut url = None;
    let mut method = None;
    let mut words = words.into_iter().peekable();
    if words.peek().map(String::as_str) == Some("curl") {
        words.next();
    }
    while let Some(w) = words.next() {
        let mut value = |what: &str| words.next().ok_or_else(|| format!("{what} needs a value"));
        match w.as_str() {
            "-X" | "--request" => method = Some(value(&w)?),
            "-H" | "--header" => {
                let h = value(&w)?;
                let (name, v) = h.split_once(':').ok_or_else(|| format!("not a header: {h:?}"))?;
                c.header(name, v)?;
            }
            "--json" => {
                let d = value(&w)?;
                c.body = match d.strip_prefix('@') {
                    Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?,
                    None => d.into_bytes(),
                };
                // As curl adds them, unless given.
                for (name, v) in [("content-type", "application/json"), ("accept", "application/json")] {
                    if !c.headers.contains_key(name) {
                        c.header(name, v)?;
                    }
                }
            }
            "-d" | "--data" | "--data-binary" | "--data-ascii" | "--data-raw" => {
                let d = value(&w)?;
                c.body = match d.strip_prefix('@').filter(|_| w != "--data-raw") {
                    Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?,
                    None => d.into_bytes(),
                };
            }
            "--url" => url = Some(value(&w)?),
            s if IGNORED_WITH_VALUE.contains(&s) => {
                value(&w)?;
            }
            s if s.starts_with('-') => {}
            _ => url = Some(w),
        }
    }
    let mut url = url.ok_or("no URL in the curl command")?;
    if !url.contains("://") && !url.starts_with('/') {
        url = format!("http://{url}");
    }
    let (host, path) = split_target(&url);
    c.path = path;
    if let (Some(host), false) = (host, c.headers.contains_key("host")) {
        c.header("host", &host)?;
    }
    c.method = method.unwrap_or_else(|| if c.body.is_empty() { "GET" } else { "POST" }.into());
    Ok(c)
}

/// Splits like a POSIX shell: single quotes, double quotes (with `\`
/// escapes), backslash escapes and line continuations.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => w.push(x),
                        None => return Err("unclosed '".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => w.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                w.push('\\');
                                w.push(x);
                            }
                            None => return Err("unclosed \"".into()),
                        },
                        Some(x) => w.push(x),
                        None => return Err("unclosed \"".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(x) => word.get_or_insert_with(String::new).push(x),
            },
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_request_keeps_its_body_bytes_and_takes_the_host_from_a_full_target() {
        let raw = b"POST http://shop.example/v1.0/qr/qr-mpm-notify?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n\n";
        let c = parse_raw(raw).unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/v1.0/qr/qr-mpm-notify?x=1");
        assert_eq!(c.headers["host"], "shop.example");
        assert_eq!(c.body, b"{\"a\": 1}\n");
    }

    #[test]
    fn a_curl_command_with_quotes_and_continuations_is_read() {
        let cmd = "curl -sS -X POST 'http://127.0.0.1:8080/v1.0/qr/qr-mpm-notify' \\\n  -H 'Content-Type: application/json' \\\n  -H \"X-SIGNATURE: a/b+c==\" \\\n  --data-raw '{\"k\": \"it'\\''s\"}'";
        let c = parse_curl(cmd).unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/v1.0/qr/qr-mpm-notify");
        assert_eq!(c.headers["host"], "127.0.0.1:8080");
        assert_eq!(c.headers["x-signature"], "a/b+c==");
        assert_eq!(c.body, br#"{"k": "it's"}"#);
        assert!(parse_curl("curl -H 'unclosed").is_err());
        assert!(parse_curl("curl -X POST").is_err());
    }

    #[test]
    fn curl_s_json_option_an_ignored_option_s_value_and_a_url_without_scheme_are_read_as_curl_does() {
        let c =
            parse_curl("curl -sS -o /dev/null 127.0.0.1:8080/v1.0/qr/qr-mpm-notify --json '{\"a\":1}' -m 5").unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/v1.0/qr/qr-mpm-notify");
        assert_eq!(c.headers["host"], "127.0.0.1:8080");
        assert_eq!(c.headers["content-type"], "application/json");
        assert_eq!(c.body, br#"{"a":1}"#);
    }

    #[test]
    fn a_chunked_body_is_read_without_its_framing() {
        let raw = b"POST /n HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_raw(raw).unwrap().body, br#"{"a":1}"#);
        let cut = b"POST /n HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"a\"";
        assert!(parse_raw(cut).is_err());
    }
}
