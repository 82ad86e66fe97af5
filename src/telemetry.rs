//! Logging: human-readable by default, JSON when `FINPAY_QRIS__LOG__FORMAT=json`.
//! `RUST_LOG` overrides the configured level.
//!
//! Values a client chose (headers, paths, references) reach the log only
//! through [`clip`], so a request cannot write more than a line's worth.

use crate::domain::status::format_minor;
use crate::domain::PaymentStatus;
use std::fmt;
use tracing_subscriber::EnvFilter;

/// Characters of a client-supplied value kept in a log line.
pub const CLIP_CHARS: usize = 64;

pub mod otlp;

pub fn init(format: &str, level: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// [`init`] for `serve`, which also exports traces over OTLP when the
/// OpenTelemetry variables ask for it (`otlp`); keep what it returns while
/// serving and shut it down at the end. Without them it is exactly [`init`].
pub fn init_serving(format: &str, level: &str) -> anyhow::Result<Option<otlp::Traces>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let Some(wire) = otlp::requested(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)? else {
        init(format, level);
        return Ok(None);
    };
    let traces = otlp::Traces::start(wire).map_err(anyhow::Error::msg)?;
    // Each layer has its own filter: the log keeps its level while the trace
    // also takes the hot path's debug spans.
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = if format == "json" {
        log.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter(level))
            .boxed()
    } else {
        log.with_filter(filter(level)).boxed()
    };
    let trace = tracing_opentelemetry::layer()
        .with_tracer(traces.tracer())
        .with_filter(otlp::span_filter());
    let _ = tracing_subscriber::registry().with(log).with(trace).try_init();
    tracing::info!(protocol = ?wire, "exporting traces over OTLP");
    Ok(Some(traces))
}

fn filter(level: &str) -> EnvFilter {
    filter_from(std::env::var(EnvFilter::DEFAULT_ENV).ok().as_deref(), level)
}

fn filter_from(rust_log: Option<&str>, level: &str) -> EnvFilter {
    match rust_log.map(EnvFilter::try_new) {
        // `RUST_LOG` chooses every level but one: sqlx's URL parser logs a
        // parameter it does not know with its value (`sslpassword=…`).
        Some(Ok(chosen)) => chosen.add_directive(SQLX_URL_PARSER.parse().expect("a valid directive")),
        _ => EnvFilter::new(default_directives(level)),
    }
}

const SQLX_URL_PARSER: &str = "sqlx_postgres::options=error";

/// sqlx warns about a connect parameter it does not know with the parameter's
/// value (a misspelt `password=` included), so its URL parser may only speak
/// up for errors.
fn default_directives(level: &str) -> String {
    format!("{level},sqlx=warn,{SQLX_URL_PARSER},hyper=warn,tower_http=info")
}

/// The one INFO line of a payment's status change (`from` is `none` for a
/// payment just created), whichever path made it: notification, worker, API.
/// References are clipped: a notification may have chosen them.
pub fn status_changed(
    by: &str,
    payment: &PaymentRef<'_>,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    reason: Option<&str>,
) {
    status_line(None, by, payment, from, to, reason);
}

/// The request a status change was made on (a notification from Finpay),
/// named in the change's line: the notify route has no request span at
/// INFO (app.rs), so its line carries these itself.
pub struct OnRequest<'a> {
    pub request_id: &'a str,
    pub external_id: &'a str,
    /// The SNAP `responseCode` answered.
    pub response_code: &'a str,
}

/// [`status_changed`] for a change a request made.
pub fn status_changed_on(
    on: &OnRequest<'_>,
    by: &str,
    payment: &PaymentRef<'_>,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
) {
    status_line(Some(on), by, payment, from, to, None);
}

fn status_line(
    on: Option<&OnRequest<'_>>,
    by: &str,
    payment: &PaymentRef<'_>,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    reason: Option<&str>,
) {
    tracing::info!(
        target: "finpay_qris::payments",
        request_id = on.map(|r| display(clip(r.request_id))),
        external_id = on.map(|r| display(clip(r.external_id))),
        response_code = on.map(|r| r.response_code),
        payment_id = %clip(payment.id),
        partner_reference_no = %clip(payment.partner_reference_no.unwrap_or("-")),
        from = from.map_or("none", PaymentStatus::as_str),
        to = to.as_str(),
        amount = %format_args!("{} {}", format_minor(payment.amount_minor), clip(payment.currency)),
        by,
        reason,
        "payment status changed"
    );
}

/// What [`status_changed`] names of a payment.
pub struct PaymentRef<'a> {
    pub id: &'a str,
    pub partner_reference_no: Option<&'a str>,
    pub amount_minor: i64,
    pub currency: &'a str,
}

impl<'a> From<&'a crate::domain::Payment> for PaymentRef<'a> {
    fn from(p: &'a crate::domain::Payment) -> Self {
        Self {
            id: &p.id,
            partner_reference_no: p.partner_reference_no.as_deref(),
            amount_minor: p.amount_minor,
            currency: &p.currency,
        }
    }
}

impl<'a> From<&'a crate::store::Applied> for PaymentRef<'a> {
    fn from(a: &'a crate::store::Applied) -> Self {
        Self {
            id: &a.payment_id,
            partner_reference_no: a.partner_reference_no.as_deref(),
            amount_minor: a.amount_minor,
            currency: &a.currency,
        }
    }
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
        // With the settings' level, and with RUST_LOG asking for everything.
        for filter in [filter_from(None, "info"), filter_from(Some("trace"), "info")] {
            let subscriber = tracing_subscriber::registry().with(filter);
            tracing::subscriber::with_default(subscriber, || {
                assert!(!tracing::enabled!(target: "sqlx_postgres::options::parse", tracing::Level::WARN));
                assert!(tracing::enabled!(target: "sqlx_postgres::options::parse", tracing::Level::ERROR));
                assert!(tracing::enabled!(target: "sqlx::query", tracing::Level::WARN));
            });
        }
    }

    #[test]
    fn a_status_change_is_one_info_line_with_ids_and_amount() {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let payment = PaymentRef {
            id: "pay-1",
            partner_reference_no: Some("INV-7"),
            amount_minor: 1_500_000,
            currency: "IDR",
        };
        tracing::subscriber::with_default(subscriber, || {
            status_changed(
                "notification",
                &payment,
                Some(PaymentStatus::Pending),
                PaymentStatus::Paid,
                None,
            );
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            " INFO ",
            "payment_id=pay-1",
            "partner_reference_no=INV-7",
            "from=\"pending\"",
            "to=\"paid\"",
            "amount=15000.00 IDR",
        ] {
            assert!(text.contains(part), "{part} missing: {text}");
        }
    }
}
