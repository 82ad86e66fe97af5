//! API keys, their names and roles, as configured.
//!
//! `api.keys` holds keys with the `operate` role, `api.read_keys` keys with
//! the `read` role. Each entry is `KEY` or `NAME:KEY`; the name is what the
//! audit trail records of the key (never the key). An unnamed key is called
//! `key-` and the first 8 hex digits of its SHA-256, which says nothing of
//! the key itself.

use super::{ApiSettings, ConfigError};
use crate::secret::Secret;
use sha2::{Digest, Sha256};

/// Shortest API key accepted: 32 characters is what `openssl rand -hex 16`
/// gives, enough that guessing is not an attack.
pub const MIN_API_KEY_CHARS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees everything, changes nothing.
    Read,
    /// Also refunds, refreshes, resolves flags.
    Operate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
        }
    }

    pub fn may_operate(self) -> bool {
        self == Role::Operate
    }
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    pub secret: Secret,
}

/// Every configured key, checked: long enough, names well-formed and unique.
/// An error names the setting and the key's position, never the key.
pub fn api_keys(api: &ApiSettings) -> Result<Vec<ApiKey>, ConfigError> {
    let mut out: Vec<ApiKey> = Vec::new();
    for (setting, role, entries) in [
        ("api.keys", Role::Operate, &api.keys),
        ("api.read_keys", Role::Read, &api.read_keys),
    ] {
        let entries: Vec<&Secret> = entries.iter().filter(|k| !k.is_empty()).collect();
        for (i, entry) in entries.iter().enumerate() {
            let (name, key) = split(entry.expose().trim());
            let position = format!("key {} of {}", i + 1, entries.len());
            // A key is letters and digits (`openssl rand -hex`); a `:` in it
            // means a name was meant, which must not silently become the key.
            if name.is_none() && key.contains(':') {
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "{position} is written NAME:KEY with a name that is not 1 to 40 of \
                         A-Z a-z 0-9 . _ -"
                    ),
                ));
            }
            if key.chars().count() < MIN_API_KEY_CHARS {
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "{position} is shorter than {MIN_API_KEY_CHARS} characters; generate one with \
                         `openssl rand -hex 32`"
                    ),
                ));
            }
            let name = name.map(str::to_string).unwrap_or_else(|| default_name(key));
            if out.iter().any(|k| k.name == name) {
                return Err(ConfigError::new(
                    setting,
                    format!("{position} is named {name:?}, like another key; names must be unique"),
                ));
            }
            out.push(ApiKey {
                name,
                role,
                secret: Secret::new(key),
            });
        }
    }
    Ok(out)
}

/// `NAME:KEY` when the part before the first `:` is a name (1–40 of
/// `A-Z a-z 0-9 . _ -`); otherwise the whole entry is the key.
fn split(entry: &str) -> (Option<&str>, &str) {
    match entry.split_once(':') {
        Some((name, key)) if is_name(name) => (Some(name), key.trim()),
        _ => (None, entry),
    }
}

fn is_name(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn default_name(key: &str) -> String {
    format!("key-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0123456789abcdef0123456789abcdef";

    fn settings(keys: &[&str], read: &[&str]) -> ApiSettings {
        ApiSettings {
            listen: "127.0.0.1:0".into(),
            keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            read_keys: read.iter().map(|k| Secret::new(*k)).collect(),
            max_connections: 1,
            body_timeout_ms: 1,
        }
    }

    #[test]
    fn a_plain_key_operates_under_a_name_derived_from_its_hash() {
        let keys = api_keys(&settings(&[K], &[])).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].role, Role::Operate);
        assert_eq!(keys[0].secret.expose(), K);
        assert!(keys[0].name.starts_with("key-") && keys[0].name.len() == 12);
    }

    #[test]
    fn named_keys_carry_their_names_and_read_keys_only_read() {
        let keys = api_keys(&settings(&[&format!("finance:{K}")], &[&format!("support:{K}x")])).unwrap();
        assert_eq!((keys[0].name.as_str(), keys[0].role), ("finance", Role::Operate));
        assert_eq!(keys[0].secret.expose(), K);
        assert_eq!((keys[1].name.as_str(), keys[1].role), ("support", Role::Read));
        assert!(!Role::Read.may_operate() && Role::Operate.may_operate());
    }

    #[test]
    fn a_short_key_or_a_repeated_name_is_refused_without_showing_the_key() {
        let e = api_keys(&settings(&[K], &["support:tiny"])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__API__READ_KEYS");
        assert!(e.message.contains("key 1 of 1") && !e.message.contains("tiny"), "{e}");
        let e = api_keys(&settings(&[&format!("a:{K}"), &format!("a:{K}y")], &[])).unwrap_err();
        assert!(e.message.contains("unique"), "{e}");
    }
}
