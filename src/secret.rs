//! A string that never shows itself in `Debug`, `Display` or logs.

// The url crate, as sqlx reads database URLs with it.
use reqwest::Url;
use serde::Deserialize;

/// Wraps secrets (client secrets, API keys, PEM private keys, database URLs
/// with passwords) so that printing the configuration cannot leak them.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call sites are easy to audit with a grep.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Query parameters of a database URL whose values are shown; any other
/// (`password`, `sslpassword`, a misspelling, one sqlx will learn later) is
/// hidden. Paths to key files are fine to show: the key is not in the URL.
const SHOWN_PARAMETERS: &[&str] = &[
    // PostgreSQL, as sqlx reads them.
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    // SQLite.
    "mode",
    "cache",
    "immutable",
    "vfs",
];

const REDACTED: &str = "<redacted>";

/// A database URL as it may be shown (logs, `migrate`'s output, errors): the
/// password of the user part and every query parameter not known to be
/// harmless are replaced by `<redacted>`. This is the one place that decides.
///
/// The URL is read with the parser sqlx uses, so what sqlx would take for a
/// password is what is hidden; a URL it cannot read shows only its scheme.
pub fn redact_url(url: &str) -> String {
    // Without `//` only `sqlite:` names a database; anything else may hide
    // credentials in what the parser takes for a path.
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| !u.cannot_be_a_base() || u.scheme() == "sqlite");
    let Some(parsed) = parsed else {
        let scheme = url
            .split(':')
            .next()
            .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric()));
        return format!("{}:{REDACTED} (not a valid URL)", scheme.unwrap_or(""));
    };
    // The serialized form escapes `@`, `?` and `#` inside the user part and
    // the path, so the first of them mark where those parts end.
    let serialized = parsed.as_str();
    let before_query = serialized.find(['?', '#']).unwrap_or(serialized.len());
    let mut out = serialized[..before_query].to_string();
    if parsed.password().is_some() {
        let user_start = parsed.scheme().len() + 3;
        if let Some(at) = out[user_start..].find('@') {
            let user = parsed.username();
            out = format!("{}{user}:{REDACTED}{}", &out[..user_start], &out[user_start + at..]);
        }
    }
    if let Some(query) = parsed.query() {
        let pairs: Vec<String> = query.split('&').map(redact_parameter).collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if parsed.fragment().is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// `key=value`, the value hidden unless the key is known to be harmless.
/// Keys are compared as sqlx reads them: percent- and `+`-decoded.
fn redact_parameter(pair: &str) -> String {
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    let shown = SHOWN_PARAMETERS.contains(&decode(key).as_str());
    if shown || value.is_empty() {
        pair.to_string()
    } else {
        format!("{key}={REDACTED}")
    }
}

/// Form decoding (`+` and `%XX`), lossy: only used to compare keys.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |i: usize| {
        let digit = |b: &u8| char::from(*b).to_digit(16);
        Some(digit(bytes.get(i)?)? * 16 + digit(bytes.get(i + 1)?)?)
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1)) {
            (b'%', Some(b)) => {
                out.push(b as u8);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn the_password_of_the_user_part_is_redacted_and_the_user_kept() {
        assert_eq!(
            redact_url("postgres://u:pw@db:5432/x"),
            "postgres://u:<redacted>@db:5432/x"
        );
        assert_eq!(
            redact_url("postgresql://u:p@ss:w@rd@db/x?sslmode=require"),
            "postgresql://u:<redacted>@db/x?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("postgres://:pw@db/x"), "postgres://:<redacted>@db/x");
    }

    #[test]
    fn a_password_given_as_a_parameter_is_redacted_with_or_without_a_user() {
        assert_eq!(
            redact_url("postgres://db/x?password=hunter2"),
            "postgres://db/x?password=<redacted>"
        );
        assert_eq!(
            redact_url("postgres://u@db/x?sslmode=verify-full&password=hunter2&application_name=pay"),
            "postgres://u@db/x?sslmode=verify-full&password=<redacted>&application_name=pay"
        );
    }

    #[test]
    fn an_encoded_or_unknown_parameter_is_redacted() {
        for url in [
            "postgres://db/x?%70assword=hunter2",
            "postgres://db/x?PASSWORD=hunter2",
            "postgres://db/x?sslpassword=hunter2",
            "postgres://db/x?passwd=hunter2",
            "postgres://db/x?options=-c%20x&pass+word=hunter2",
            "postgres://db/x#hunter2",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("hunter2"), "{url} → {shown}");
            assert!(shown.contains(REDACTED), "{url} → {shown}");
        }
    }

    #[test]
    fn harmless_parameters_and_key_paths_are_shown() {
        let url = "postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslkey=/etc/k.pem&user=app&host=/run/pg";
        assert_eq!(redact_url(url), url);
        assert_eq!(redact_url("sqlite://data/a.db?mode=rwc"), "sqlite://data/a.db?mode=rwc");
        assert_eq!(redact_url("sqlite:a.db"), "sqlite:a.db");
        assert_eq!(redact_url("postgres://db/x?password="), "postgres://db/x?password=");
    }

    #[test]
    fn a_url_that_cannot_be_read_shows_only_its_scheme() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:port/x"),
            "postgres:<redacted> (not a valid URL)"
        );
        assert_eq!(redact_url("u:hunter2@db"), "u:<redacted> (not a valid URL)");
    }
}
