//! Logging: human-readable by default, JSON when `FINPAY_QRIS__LOG__FORMAT=json`.
//! `RUST_LOG` overrides the configured level.

use tracing_subscriber::EnvFilter;

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

#[cfg(test)]
mod tests {
    use super::*;

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
