//! Logging: human-readable by default, JSON when `FINPAY_QRIS__LOG__FORMAT=json`.
//! `RUST_LOG` overrides the configured level.
//!
//! Values a client chose (headers, paths, references) reach the log only
//! through [`clip`], so a request cannot write more than a line's worth.

use std::fmt;
use tracing_subscriber::EnvFilter;

/// Characters of a client-supplied value kept in a log line.
pub const CLIP_CHARS: usize = 64;

pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_directives(level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// sqlx warns about a connect parameter it does not know with the parameter's
/// value (a misspelt `password=` included), so its URL parser may only speak
/// up for errors.
fn default_directives(level: &str) -> String {
    format!("{level},sqlx=warn,sqlx_postgres::options=error,hyper=warn,tower_http=info")
}

/// A client-supplied value as logged: at most [`CLIP_CHARS`] characters, then
/// a marker with the original length in bytes; control characters escaped.
pub fn clip(value: &str) -> Clipped<'_> {
    Clipped(value)
}

pub struct Clipped<'a>(&'a str);

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(CLIP_CHARS) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if chars.next().is_some() {
            write!(f, "…[{} bytes]", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_client_value_is_clipped_with_its_length() {
        let huge = "A".repeat(60_000);
        let logged = clip(&huge).to_string();
        assert_eq!(logged, format!("{}…[60000 bytes]", "A".repeat(64)));
    }

    #[test]
    fn a_short_value_is_logged_as_is_and_control_characters_are_escaped() {
        assert_eq!(clip("INV-1").to_string(), "INV-1");
        assert_eq!(clip(&"é".repeat(64)).to_string(), "é".repeat(64));
        assert_eq!(clip("a\nfake=line\u{0}").to_string(), "a\\nfake=line\\u{0}");
    }

    #[test]
    fn sqlx_cannot_log_the_value_of_a_connect_parameter_it_does_not_know() {
        use tracing_subscriber::layer::SubscriberExt;
        let filter = EnvFilter::new(default_directives("info"));
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(target: "sqlx_postgres::options::parse", tracing::Level::WARN));
            assert!(tracing::enabled!(target: "sqlx_postgres::options::parse", tracing::Level::ERROR));
            assert!(tracing::enabled!(target: "sqlx::query", tracing::Level::WARN));
        });
    }
}
