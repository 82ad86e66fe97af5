//! The page shell and how things are shown: rupiah from exact integer
//! amounts (`Rp 25.000`), times in Asia/Jakarta with the offset, statuses as
//! words with a symbol and a colour (readable without the colour).

use super::session::Operator;
use crate::domain::PaymentStatus;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use maud::{html, Markup, DOCTYPE};

/// The console's sections, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Payments,
    Flagged,
    Refused,
    Endpoints,
    Export,
    None,
}

/// The navigation: a section's label and address.
const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "Overview", "/console"),
    (Nav::Payments, "Payments", "/console/payments"),
    (Nav::Flagged, "Flagged", "/console/flagged"),
    (Nav::Refused, "Refused requests", "/console/refusals"),
    (Nav::Endpoints, "Endpoints", "/console/endpoints"),
    (Nav::Export, "Export", "/console/export"),
];

pub const JAKARTA: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
    Some(o) => o,
    None => panic!("UTC+7 is a valid offset"),
};

/// A whole page: header with navigation and who is signed in, then `body`.
pub fn page(title: &str, op: Option<&Operator>, current: Nav, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · finpay-qris console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "finpay-qris" }
                    @if let Some(op) = op {
                        nav aria-label="Sections" {
                            ul {
                                @for (nav, label, href) in NAV {
                                    li {
                                        @if *nav == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (op.name) } " (" (op.role.as_str()) ")" }
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// An amount in rupiah: `Rp 25.000`, or `Rp 25.000,50` with cents; another
/// currency is shown with its code.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let (whole, cents) = (minor / 100, minor % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let unit = if currency == crate::domain::payment::CURRENCY {
        "Rp"
    } else {
        currency
    };
    if cents == 0 {
        format!("{sign}{unit} {grouped}")
    } else {
        format!("{sign}{unit} {grouped},{cents:02}")
    }
}

/// Rupiah as people type them, in minor units: `25.000` and `Rp 1.250.000`
/// (dots grouping thousands, a comma before the cents: `25.000,50`), or as
/// the API and the export write them (`25000`, `25000.00`: one dot before at
/// most two decimals). Anything else, such as `25.00.0`, is refused rather
/// than guessed, so an amount is never read a hundred times too large.
pub fn typed_rupiah(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches("Rp").trim();
    let (whole, cents) = match s.split_once(',') {
        Some((w, c)) => (w, Some(c)),
        None => match s.rsplit_once('.') {
            Some((w, c)) if (1..=2).contains(&c.len()) && !w.contains('.') => (w, Some(c)),
            _ => (s, None),
        },
    };
    let mut groups = whole.split('.');
    let first = groups.next()?;
    // Grouped thousands start with a digit other than 0 (`0.001` is no amount).
    let grouped_right = !whole.contains('.') || (first.len() <= 3 && !first.starts_with('0'));
    if !grouped_right || groups.any(|g| g.len() != 3) {
        return None;
    }
    let plain = match cents {
        Some(c) => format!("{}.{c:0<2}", whole.replace('.', "")),
        None => whole.replace('.', ""),
    };
    crate::api::money::parse_minor(&plain).ok()
}

/// A time in Asia/Jakarta with its offset, as a `<time>` element.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (jakarta(t)) } }
}

/// `2026-12-06 17:03:54 +07:00`.
pub fn jakarta(t: DateTime<Utc>) -> String {
    t.with_timezone(&JAKARTA).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// A status as a word, a symbol and a colour (the class).
pub fn status(s: PaymentStatus) -> Markup {
    let (symbol, tone) = match s {
        PaymentStatus::Paid => ("✓", "good"),
        PaymentStatus::Refunded => ("↺", "info"),
        PaymentStatus::Initiated | PaymentStatus::Pending | PaymentStatus::Paying => ("…", "wait"),
        PaymentStatus::Cancelled | PaymentStatus::Failed | PaymentStatus::Expired => ("✕", "bad"),
    };
    html! { span class={"status " (tone)} { span aria-hidden="true" { (symbol) } " " (s.as_str()) } }
}

/// A request refused before anything was done, answered as an error page.
#[derive(Debug)]
pub struct Refusal {
    pub code: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_page(self.code, self.title, &self.detail)
    }
}

/// A page saying what went wrong, with the status code.
pub fn error_page(code: StatusCode, title: &str, detail: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p.notice.bad role="alert" { (detail) }
        p { a href="/console" { "Back to the overview" } }
    };
    (code, page(title, None, Nav::None, body)).into_response()
}

/// A database failure, logged and answered without its cause.
pub fn store_error(e: &StoreError) -> Response {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "console: database unavailable");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "The database cannot be reached right now. Try again in a moment.",
        );
    }
    tracing::error!(error = %e, "console: database error");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The page could not be built; the error was logged.",
    )
}

pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no console page at this address.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_are_grouped_with_dots_from_exact_minor_units() {
        assert_eq!(money(2_500_000, "IDR"), "Rp 25.000");
        assert_eq!(money(100, "IDR"), "Rp 1");
        assert_eq!(money(123_456_789_050, "IDR"), "Rp 1.234.567.890,50");
        assert_eq!(money(0, "IDR"), "Rp 0");
        assert_eq!(money(-2_500_000, "IDR"), "-Rp 25.000");
        assert_eq!(money(1_000, "USD"), "USD 10");
    }

    #[test]
    fn typed_amounts_are_read_as_people_and_the_api_write_them() {
        assert_eq!(typed_rupiah("25.000"), Some(2_500_000));
        assert_eq!(typed_rupiah("Rp 1.250.000"), Some(125_000_000));
        assert_eq!(typed_rupiah("25.000,50"), Some(2_500_050));
        assert_eq!(typed_rupiah("25000"), Some(2_500_000));
        assert_eq!(typed_rupiah("25000.00"), Some(2_500_000));
        assert_eq!(typed_rupiah("25000,5"), Some(2_500_050));
        assert_eq!(typed_rupiah("1.5"), Some(150));
    }

    #[test]
    fn an_amount_that_could_be_read_two_ways_is_refused() {
        for typed in [
            "25.00.0",
            "2500.000.00",
            "25.0000",
            "1234.567",
            "25,000.00",
            "0.001",
            "00.500",
            "",
            "Rp",
            "abc",
        ] {
            assert_eq!(typed_rupiah(typed), None, "{typed}");
        }
    }

    #[test]
    fn times_are_shown_in_jakarta_with_the_offset() {
        let t = DateTime::parse_from_rfc3339("2026-12-06T10:03:54Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(jakarta(t), "2026-12-06 17:03:54 +07:00");
    }

    #[test]
    fn a_status_reads_without_its_colour() {
        let s = status(PaymentStatus::Paid).into_string();
        assert!(s.contains("paid") && s.contains("✓"), "{s}");
    }
}
