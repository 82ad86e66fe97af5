//! The settings an operator can name, and the checks that need that list.
//!
//! The `config` crate ignores a key no settings field asks for, so a misspelt
//! `FINPAY_QRIS__SERVER__LISTN` would leave the default in place without a
//! word. Every key given in the environment or the file is therefore looked
//! up here first; an unknown one stops the start, naming the nearest known
//! key. Settings read as one of a few words are checked here too, so that the
//! error lists the words rather than a serde enum's type name.

use super::{env_name, ConfigError, DEFAULTS, LIST_KEYS};
use std::path::Path;

/// Settings without a default: unset means "not configured".
const OPTIONAL_KEYS: &[&str] = &[
    "inbound.client_id",
    "inbound.client_secret",
    "inbound.public_key",
    "inbound.public_key_next",
    "finpay.base_url",
    "finpay.client_id",
    "finpay.client_secret",
    "finpay.private_key",
    "finpay.merchant_id",
    "finpay.sub_merchant_id",
    "finpay.terminal_id",
    "finpay.callback_url",
    "worker.enabled",
    "events.endpoint_url",
    "events.endpoint_secret",
];

/// Variables that share the prefix but are not settings.
const OTHER_VARIABLES: &[&str] = &[
    "FINPAY_QRIS_CONFIG",
    "FINPAY_QRIS_SIGN_SECRET",
    "FINPAY_QRIS_LISTEN_SECRET",
];

/// Settings read as one of a few words, and those words.
pub(super) const ENUMS: &[(&str, &[&str])] = &[
    ("inbound.signature", &["symmetric", "asymmetric"]),
    ("inbound.external_id_format", &["alphanumeric", "numeric"]),
    ("inbound.hmac_encoding", &["base64", "hex", "any"]),
    ("finpay.additional_info_style", &["snake", "camel"]),
    ("log.format", &["pretty", "json"]),
];

/// Every setting, dotted (`server.listen`).
pub fn all() -> impl Iterator<Item = &'static str> {
    DEFAULTS
        .iter()
        .chain(super::events::DEFAULTS)
        .map(|(k, _)| *k)
        .chain(LIST_KEYS.iter().copied())
        .chain(OPTIONAL_KEYS.iter().copied())
}

fn is_known(dotted: &str) -> bool {
    all().any(|k| k == dotted)
}

/// Refuses a `FINPAY_QRIS…` variable that names no setting.
pub(super) fn check_environment(env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, _) in env {
        let Some(rest) = name.strip_prefix("FINPAY_QRIS") else {
            continue;
        };
        if OTHER_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let well_formed = rest.starts_with("__");
        let dotted = rest.trim_start_matches('_').to_lowercase().replace("__", ".");
        if well_formed && is_known(&dotted) {
            continue;
        }
        return Err(ConfigError {
            key: name.clone(),
            message: format!("unknown setting; did you mean {}?", env_name(nearest(&dotted))),
        });
    }
    Ok(())
}

/// Refuses a key of the TOML file that names no setting; the file's
/// settings alone, as read.
pub(super) fn check_file(path: &Path) -> Result<config::Config, ConfigError> {
    let where_ = |key: &str| format!("{key} (in {})", path.display());
    let unreadable = |e: config::ConfigError| ConfigError {
        key: path.display().to_string(),
        message: e.to_string(),
    };
    unparsable(path)?;
    let file = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .map_err(unreadable)?;
    let table = file.cache.clone().into_table().map_err(unreadable)?;
    for (section, value) in table {
        let keys: Vec<String> = match value.into_table() {
            Ok(fields) => fields.into_keys().map(|k| format!("{section}.{k}")).collect(),
            // A bare `listen = …` outside any `[section]`.
            Err(_) => vec![section.clone()],
        };
        if let Some(unknown) = keys.iter().find(|k| !is_known(&k.to_lowercase())) {
            return Err(ConfigError {
                key: where_(unknown),
                message: format!("unknown setting; did you mean {}?", nearest(&unknown.to_lowercase())),
            });
        }
    }
    Ok(file)
}

/// A file that is not TOML, said by line and column only: the parser's own
/// message quotes the line, which may hold a secret (a key, a password in a
/// database URL), and the message ends up in the log.
fn unparsable(path: &Path) -> Result<(), ConfigError> {
    let failed = |message: String| ConfigError {
        key: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(format!("cannot be read: {e}")))?;
    let Err(e) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Err(failed(format!(
        "is not valid TOML: {} at line {line}, column {column} (the line is not shown: it may hold a secret)",
        e.message().trim_end()
    )))
}

/// The value of an enum setting, when it is one of its words.
pub(super) fn check_enums(cfg: &config::Config) -> Result<(), ConfigError> {
    for (key, words) in ENUMS {
        let Ok(value) = cfg.get_string(key) else {
            continue;
        };
        if !words.contains(&value.as_str()) {
            return Err(ConfigError::new(
                key,
                format!(
                    "{:?} is not a valid value; expected one of: {}",
                    crate::telemetry::clip(&value).to_string(),
                    words.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The known key nearest to `given`. A section given alone (`server`) is
/// answered with its first setting; a key given without its section
/// (`listen`) is compared with the field names too.
fn nearest(given: &str) -> &'static str {
    if let Some(first) = all().find(|k| k.split('.').next() == Some(given)) {
        return first;
    }
    let score = |known: &str| {
        let whole = distance(given, known);
        if given.contains('.') {
            return whole;
        }
        let field = known.rsplit('.').next().unwrap_or(known);
        whole.min(distance(given, field))
    };
    all().min_by_key(|k| score(k)).unwrap_or("server.listen")
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_single_character_edits() {
        assert_eq!(distance("listen", "listen"), 0);
        assert_eq!(distance("listn", "listen"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn the_nearest_key_is_suggested() {
        assert_eq!(nearest("server.listn"), "server.listen");
        assert_eq!(nearest("servr.listen"), "server.listen");
        assert_eq!(nearest("listen"), "server.listen");
        assert_eq!(nearest("inbound.client_secrit"), "inbound.client_secret");
        assert_eq!(nearest("api.key"), "api.keys");
    }
}
