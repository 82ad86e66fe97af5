//! The finance export: `GET /exports/payments.csv?from=…&to=…`.
//!
//! The payments paid and the refunds asked on the given Jakarta days, as CSV:
//! one line per payment or refund, times in Asia/Jakarta with their offset,
//! amounts exact (two decimals, never a float), our references and Finpay's.
//! Rows go from the database to the client through a small channel, so a
//! month of a busy merchant is never held in memory.

use super::error::{ApiError, Problem};
use super::extract::ApiQuery;
use super::time::within_calendar;
use crate::domain::status::format_minor;
use crate::snap::timestamp::format_jakarta;
use crate::state::AppState;
use crate::store::ExportRow;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

/// Rows in flight between the database and the client.
const CHANNEL_ROWS: usize = 256;

pub const HEADER: &str = "type,time_jakarta,payment_id,partner_reference_no,finpay_reference_no,refund_id,\
partner_refund_no,finpay_refund_reference_no,status,amount,currency,refunded_amount,fee,reason\r\n";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// First day (Asia/Jakarta), `YYYY-MM-DD`.
    #[param(format = Date, example = "2026-12-01")]
    from: String,
    /// Last day (Asia/Jakarta), included; `from` when absent. Before `from`: an
    /// empty range (only the header line).
    #[param(format = Date, example = "2026-12-31")]
    to: Option<String>,
}

/// Jakarta days `from..=to` as the instants `[start, end)`; the error names the field.
pub fn day_range(from: &str, to: Option<&str>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let day = |field: &str, s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(within_calendar)
            .ok_or_else(|| ApiError::bad_request(format!("{field} must be a date, YYYY-MM-DD")).field(field))
    };
    let first = day("from", from)?;
    let last = match to {
        Some(t) => day("to", t)?,
        None => first,
    };
    let jakarta = FixedOffset::east_opt(7 * 3600).expect("a valid offset");
    let start = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| jakarta.from_local_datetime(&t).single())
            .map(|t| t.with_timezone(&Utc))
    };
    let end = last.checked_add_days(Days::new(1)).and_then(start);
    match (start(first), end) {
        // A range that ends before it starts holds nothing.
        (Some(s), Some(e)) => Ok((s, e.max(s))),
        _ => Err(ApiError::bad_request("the dates are out of range").field("from")),
    }
}

/// Payments and refunds as CSV
///
/// The payments paid and the refunds asked on the given days (Asia/Jakarta),
/// each in time order: payments first, then refunds. Columns: `type`
/// (`payment` or `refund`), `time_jakarta` (paid or asked, with offset),
/// our and Finpay's references, `status`, `amount` (two decimals),
/// `currency`, `refunded_amount` (payments: refunded or being refunded, as
/// the API's `refundedAmount`; the refund rows say which), `fee` (Finpay's `FeeAmount` in
/// the notification that paid it, while retention keeps that body; empty
/// otherwise), `reason` (refunds). Cells that a spreadsheet would
/// read as a formula are prefixed with `'`.
#[utoipa::path(
    get,
    path = "/exports/payments.csv",
    tag = "exports",
    params(ExportParams),
    responses(
        (status = 200, description = "CSV (RFC 4180, CRLF line ends), streamed", content_type = "text/csv", body = String),
        (status = 400, description = "A bad `from` or `to` (see `field`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn export_csv(State(st): State<AppState>, ApiQuery(q): ApiQuery<ExportParams>) -> Result<Response, ApiError> {
    let (from, to) = day_range(&q.from, q.to.as_deref())?;
    let name = format!("payments-{}-{}.csv", q.from, q.to.as_deref().unwrap_or(&q.from));
    Ok(csv_response(&st, from, to, &name))
}

/// The export of `[from, to)` as a streamed CSV download named `file_name`.
pub fn csv_response(st: &AppState, from: DateTime<Utc>, to: DateTime<Utc>, file_name: &str) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_ROWS);
    let store = st.store.clone();
    let task = tokio::spawn(async move { store.export(from, to, tx).await });
    let header_line = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(HEADER.as_bytes())) });
    let rows = futures::stream::unfold((rx, Some(task)), |(mut rx, task)| async move {
        if let Some(row) = rx.recv().await {
            return Some((Ok(Bytes::from(line(&row))), (rx, task)));
        }
        // The channel closed: the export ended. A failure must not look
        // like a short, complete file: the body fails instead.
        let outcome = task?.await;
        match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the export failed part-way; the download is cut short");
                Some((Err(std::io::Error::other("export failed")), (rx, None)))
            }
            Err(e) => {
                tracing::error!(error = %e, "the export task failed");
                Some((Err(std::io::Error::other("export failed")), (rx, None)))
            }
        }
    });
    let mut resp = Body::from_stream(futures::StreamExt::chain(header_line, rows)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// One CSV line, CRLF-terminated.
pub fn line(row: &ExportRow) -> String {
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    let cells: Vec<String> = match row {
        ExportRow::Payment(row) => {
            let p = &row.payment;
            vec![
                "payment".into(),
                p.paid_at.map(format_jakarta).unwrap_or_default(),
                p.id.clone(),
                o(&p.partner_reference_no),
                o(&p.reference_no),
                String::new(),
                String::new(),
                String::new(),
                p.status.as_str().into(),
                format_minor(p.amount_minor),
                p.currency.clone(),
                format_minor(p.refunded_minor),
                row.paid_body
                    .as_deref()
                    .and_then(fee_minor)
                    .map(format_minor)
                    .unwrap_or_default(),
                String::new(),
            ]
        }
        ExportRow::Refund(r) => vec![
            "refund".into(),
            format_jakarta(r.refund.created_at),
            r.refund.payment_id.clone(),
            o(&r.partner_reference_no),
            o(&r.payment_reference_no),
            r.refund.id.clone(),
            r.refund.partner_refund_no.clone(),
            o(&r.refund.reference_no),
            r.refund.status.clone(),
            format_minor(r.refund.amount_minor),
            r.currency.clone(),
            String::new(),
            String::new(),
            r.refund.reason.clone(),
        ],
    };
    let mut out = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// The fee Finpay states in a notification (`additionalInfo.FeeAmount.value`,
/// an amount like the payment's), when there is a readable one.
pub fn fee_minor(body: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let fee = v.get("additionalInfo")?.get("FeeAmount")?.get("value")?.as_str()?;
    super::money::parse_minor(fee).ok()
}

/// RFC 4180 quoting, and a leading `'` on what a spreadsheet would run as a
/// formula (references and reasons come from outside).
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-5"), "'-5");
    }

    #[test]
    fn the_fee_is_read_from_the_notification_that_paid() {
        let body = r#"{"additionalInfo":{"FeeAmount":{"value":"1234.00","currency":"IDR"}}}"#;
        assert_eq!(fee_minor(body), Some(123_400));
        assert_eq!(fee_minor(r#"{"additionalInfo":{}}"#), None);
        assert_eq!(fee_minor(r#"{"additionalInfo":{"FeeAmount":{"value":"=1+1"}}}"#), None);
        assert_eq!(fee_minor("not json"), None);
    }

    #[test]
    fn a_day_is_its_jakarta_midnight_to_the_next() {
        let (from, to) = day_range("2026-12-06", None).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-12-05T17:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-06T17:00:00+00:00");
        let (_, to) = day_range("2026-12-01", Some("2026-12-31")).unwrap();
        assert_eq!(to.to_rfc3339(), "2026-12-31T17:00:00+00:00");
        let (from, to) = day_range("2026-12-06", Some("2026-11-01")).unwrap();
        assert_eq!(from, to, "a range ending before it starts is empty");
        let bad = |from: &str, to: &str| day_range(from, Some(to)).unwrap_err().problem().field.clone();
        assert_eq!(bad("06/12/2026", "2026-12-06").as_deref(), Some("from"));
        assert_eq!(bad("2026-12-06", "soon").as_deref(), Some("to"));
        assert_eq!(bad("2026-12-06", "").as_deref(), Some("to"));
        assert!(day_range("0001-01-01", Some("9999-12-31")).is_ok());
        assert_eq!(
            bad("-5000-01-01", "2026-12-06").as_deref(),
            Some("from"),
            "no database holds it"
        );
        assert_eq!(bad("2026-12-06", "+12026-01-01").as_deref(), Some("to"));
    }
}
