//! `/console/payments`: the payments, newest first, filtered by the REST
//! list's filters (status, time range, reference ours or Finpay's, amount,
//! flagged), in pages keyed on the id (the REST API's keyset cursor).

use super::listing::{self, given, query_string};
use super::session::Operator;
use super::view::{self, Nav, JAKARTA};
use crate::api::time::{utc_instant, within_calendar};
use crate::domain::PaymentStatus;
use crate::state::AppState;
use crate::store::{Payment, PaymentFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

pub use super::listing::PAGE_SIZE;

/// The filters as the form sends them (and as links carry them).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created_from: Option<String>,
    #[serde(default)]
    pub created_to: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub flagged: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A time typed in Jakarta: `YYYY-MM-DDTHH:MM` (what a date-time field
/// sends), with seconds, or a day (its midnight); or RFC 3339 with an offset.
pub fn jakarta_time(s: &str) -> Option<DateTime<Utc>> {
    // An RFC 3339 time carries its offset, which no local form below accepts.
    if let Some(t) = utc_instant(s) {
        return Some(t);
    }
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0))?;
    let t = JAKARTA.from_local_datetime(&local).single()?.with_timezone(&Utc);
    // Within years 1 to 9999 in UTC, where times are stored and compared.
    within_calendar(t.date_naive()).map(|_| t)
}

impl Filters {
    /// The store's filter, or the problems to show next to the form.
    pub fn to_filter(&self) -> Result<PaymentFilter, Vec<String>> {
        let mut problems = Vec::new();
        let mut f = PaymentFilter {
            limit: PAGE_SIZE + 1,
            ..Default::default()
        };
        if let Some(s) = given(&self.status) {
            match PaymentStatus::parse(s) {
                Some(s) => f.status = Some(s),
                None => problems.push("Status: not a status.".into()),
            }
        }
        f.created_from = listing::time(&self.created_from, "From", &mut problems);
        f.created_to = listing::time(&self.created_to, "To", &mut problems);
        if let Some(r) = given(&self.reference) {
            if r.chars().any(char::is_control) || r.len() > 128 {
                problems.push("Reference: no control characters, at most 128 characters.".into());
            } else {
                f.reference = Some(r.to_string());
            }
        }
        if let Some(a) = given(&self.amount) {
            match view::typed_rupiah(a) {
                Some(m) => f.amount_minor = Some(m),
                None => problems.push("Amount: rupiah, such as 25000, 25.000 or 25.000,50.".into()),
            }
        }
        // As the REST list: `false` lists only the payments without a flag.
        f.flagged = match given(&self.flagged) {
            None => None,
            Some("true" | "on") => Some(true),
            Some("false" | "off") => Some(false),
            Some(_) => {
                problems.push("Flagged: true or false.".into());
                None
            }
        };
        f.before_id = listing::cursor(&self.cursor, &mut problems);
        listing::checked(f, problems)
    }

    /// This query string with another cursor.
    fn with_cursor(&self, cursor: Option<String>) -> String {
        query_string(&[
            ("status", &self.status),
            ("createdFrom", &self.created_from),
            ("createdTo", &self.created_to),
            ("reference", &self.reference),
            ("amount", &self.amount),
            ("flagged", &self.flagged),
            ("cursor", &cursor),
        ])
    }
}

/// Percent-encoding for a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn page(State(st): State<AppState>, op: Operator, q: Result<Query<Filters>, QueryRejection>) -> Response {
    let (filters, mut filter) = listing::filters(q, Filters::to_filter);
    // Pages are keyed on a payment's creation time: a link naming no payment
    // (made up, or kept from another database) would show a silent empty page.
    if let Some(id) = filter.as_ref().ok().and_then(|f| f.before_id.clone()) {
        match st.store.get_payment(&id).await {
            Ok(Some(p)) if p.id == id => {}
            Ok(_) => filter = Err(vec![listing::STALE_CURSOR.into()]),
            Err(e) => return view::store_error(&e),
        }
    }
    let (rows, problems, status) =
        match listing::load(filter, |f| async move { st.store.list_payments(&f).await }).await {
            Ok(listed) => listed,
            Err(page) => return page,
        };
    let body = html! {
        h1 { "Payments" }
        (filter_form(&filters))
        @for p in &problems { p.notice.bad role="alert" { (p) } }
        (table(&rows, &filters))
    };
    (status, view::page("Payments", Some(&op), Nav::Payments, body)).into_response()
}

fn filter_form(f: &Filters) -> Markup {
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    let statuses: Vec<(&str, &str)> = PaymentStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())).collect();
    html! {
        form.filters method="get" action="/console/payments" role="search" {
            (listing::select("status", "Status", &statuses, &f.status))
            (listing::time_field("createdFrom", "Created from (Jakarta)", &f.created_from))
            (listing::time_field("createdTo", "Created before (Jakarta)", &f.created_to))
            div.field {
                label for="reference" { "Reference (ours or Finpay's)" }
                input #reference type="search" name="reference" value=(v(&f.reference)) autocomplete="off";
            }
            div.field {
                label for="amount" { "Amount (Rp)" }
                input #amount type="text" inputmode="numeric" name="amount" value=(v(&f.amount)) placeholder="25.000";
            }
            div.field.check {
                input #flagged type="checkbox" name="flagged" value="true" checked[matches!(f.flagged.as_deref(), Some("true" | "on"))];
                label for="flagged" { "Flagged only" }
            }
            div.field.submit { button type="submit" { "Filter" } " " a href="/console/payments" { "Clear" } }
        }
    }
}

/// The payments table, shared with the flagged page (which also shows why
/// each was flagged).
pub fn rows_table(rows: &[Payment], with_flag_reason: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No payments match." }
        } @else {
            div.scroll {
                table.payments {
                    thead { tr {
                        th scope="col" { "Created" }
                        th scope="col" { "Our reference" }
                        th scope="col" .num { "Amount" }
                        th scope="col" { "Status" }
                        th scope="col" { "Finpay reference" }
                        @if with_flag_reason { th scope="col" { "Why it is flagged" } }
                    } }
                    tbody {
                        @for p in rows {
                            tr {
                                td { (view::time(p.created_at)) }
                                td.ref { a href={"/console/payments/" (p.id)} { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } }
                                td.num { (view::money(p.amount_minor, &p.currency)) }
                                td {
                                    (view::status(p.status))
                                    @if p.flagged.is_some() { " " span.flag { "⚑ flagged" } }
                                }
                                td.ref { (p.reference_no.as_deref().unwrap_or("—")) }
                                @if with_flag_reason { td { (p.flagged.as_deref().unwrap_or("—")) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn table(rows: &[Payment], f: &Filters) -> Markup {
    let (shown, next) = listing::split(rows, |p| &p.id);
    html! {
        (rows_table(shown, false))
        (listing::pager("/console/payments", f.cursor.is_some(), next, |c| f.with_cursor(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_typed_in_the_form_are_jakarta_times() {
        let t = jakarta_time("2026-12-06T09:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T02:00:00+00:00");
        assert_eq!(
            jakarta_time("2026-12-06").unwrap().to_rfc3339(),
            "2026-12-05T17:00:00+00:00"
        );
        assert!(jakarta_time("yesterday").is_none());
        assert!(jakarta_time("-5000-01-01T00:00").is_none(), "before year 1");
        assert!(jakarta_time("-5000-01-01").is_none());
        assert!(jakarta_time("9999-12-31T23:30:00-01:00").is_none(), "year 10000 in UTC");
        assert!(jakarta_time("0001-01-01T03:00").is_none(), "year 0 in UTC");
    }

    #[test]
    fn filters_read_rupiah_as_people_type_them() {
        let f = Filters {
            amount: Some("Rp 25.000".into()),
            status: Some("paid".into()),
            flagged: Some("true".into()),
            ..Default::default()
        };
        let pf = f.to_filter().unwrap();
        assert_eq!(pf.amount_minor, Some(2_500_000));
        assert_eq!(pf.status, Some(PaymentStatus::Paid));
        assert_eq!(pf.flagged, Some(true));
        let unflagged = Filters {
            flagged: Some("false".into()),
            ..Default::default()
        };
        assert_eq!(unflagged.to_filter().unwrap().flagged, Some(false), "as the REST list");
        let bad = Filters {
            status: Some("<b>".into()),
            cursor: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(bad.to_filter().unwrap_err().len(), 2);
    }

    #[test]
    fn page_links_keep_the_filters() {
        let f = Filters {
            reference: Some("A&B".into()),
            ..Default::default()
        };
        assert_eq!(f.with_cursor(Some("c".into())), "reference=A%26B&cursor=c");
    }
}
