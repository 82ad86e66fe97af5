//! `/console/refusals`: the journal of refused requests (what the public
//! listener answered with a 4xx), newest first, filtered as
//! `GET /api/v1/refusals` is (reason, route, time), in pages keyed on the id.
//! Each row leads to the refusal's own page ([`refusal`](super::refusal)).

use super::payments::{jakarta_time, urlencode};
use super::session::Operator;
use super::view::{self, Nav};
use crate::api::payments::{decode_cursor, encode_cursor};
use crate::state::AppState;
use crate::store::refusals::REASONS;
use crate::store::{Refusal, RefusalFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

pub const PAGE_SIZE: i64 = 50;

/// A reason as people read it.
pub fn reason_label(reason: &str) -> &str {
    match reason {
        "invalid_signature" => "Invalid signature",
        "invalid_token" => "Invalid access token",
        "stale_timestamp" => "Timestamp out of tolerance",
        "unknown_client" => "Unknown client",
        "missing_field" => "Missing field",
        "invalid_field" => "Invalid field",
        "bad_request" => "Bad request",
        "conflict" => "Conflict",
        "other" => "Other",
        unknown => unknown,
    }
}

/// The filters as the form sends them (and as links carry them).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filters {
    /// The store's filter, or the problems to show next to the form.
    pub fn to_filter(&self) -> Result<RefusalFilter, Vec<String>> {
        let mut problems = Vec::new();
        let mut f = RefusalFilter {
            limit: PAGE_SIZE + 1,
            ..Default::default()
        };
        match given(&self.reason) {
            Some(r) if REASONS.contains(&r) => f.reason = Some(r.to_string()),
            Some(_) => problems.push("Reason: not a reason.".to_string()),
            None => {}
        }
        match given(&self.route) {
            Some(r @ ("token" | "notify")) => f.route = Some(r.to_string()),
            Some(_) => problems.push("Route: token or notify.".to_string()),
            None => {}
        }
        for (value, slot, label) in [(&self.from, &mut f.from, "From"), (&self.to, &mut f.to, "To")] {
            if let Some(v) = given(value) {
                match jakarta_time(v) {
                    Some(t) => *slot = Some(t),
                    None => problems.push(format!("{label}: a date and time such as 2026-12-06T09:00.")),
                }
            }
        }
        if let Some(c) = given(&self.cursor) {
            match decode_cursor(c) {
                Some(id) => f.before_id = Some(id),
                None => problems.push("This page link is not valid; start from the first page.".into()),
            }
        }
        if problems.is_empty() {
            Ok(f)
        } else {
            Err(problems)
        }
    }

    /// This query string with another cursor.
    fn with_cursor(&self, cursor: Option<String>) -> String {
        [
            ("reason", &self.reason),
            ("route", &self.route),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &cursor),
        ]
        .iter()
        .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", urlencode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

pub async fn page(State(st): State<AppState>, op: Operator, q: Result<Query<Filters>, QueryRejection>) -> Response {
    let filters = q.map(|Query(f)| f).unwrap_or_default();
    let (rows, problems) = match filters.to_filter() {
        Ok(f) => match st.store.list_refusals(&f).await {
            Ok(rows) => (rows, Vec::new()),
            Err(e) => return view::store_error(&e),
        },
        Err(p) => (Vec::new(), p),
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! {
        h1 { "Refused requests" }
        p {
            "Requests to the public listener (Finpay's token and notification calls) answered with an error. "
            "Open one to see what was received and, for a refused signature, which known signing mistake explains it."
        }
        (filter_form(&filters))
        @for p in &problems { p.notice.bad role="alert" { (p) } }
        (table(&rows, &filters))
    };
    (status, view::page("Refused requests", Some(&op), Nav::Refused, body)).into_response()
}

fn filter_form(f: &Filters) -> Markup {
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    html! {
        form.filters method="get" action="/console/refusals" role="search" {
            div.field {
                label for="reason" { "Reason" }
                select #reason name="reason" {
                    option value="" { "Any" }
                    @for r in REASONS {
                        option value=(r) selected[f.reason.as_deref() == Some(*r)] { (reason_label(r)) }
                    }
                }
            }
            div.field {
                label for="route" { "Route" }
                select #route name="route" {
                    option value="" { "Any" }
                    @for r in ["notify", "token"] {
                        option value=(r) selected[f.route.as_deref() == Some(r)] { (r) }
                    }
                }
            }
            div.field {
                label for="from" { "Received from (Jakarta)" }
                input #from type="datetime-local" name="from" value=(v(&f.from));
            }
            div.field {
                label for="to" { "Received before (Jakarta)" }
                input #to type="datetime-local" name="to" value=(v(&f.to));
            }
            div.field.submit { button type="submit" { "Filter" } " " a href="/console/refusals" { "Clear" } }
        }
    }
}

/// What the doctor said, in a few words.
fn diagnosis_summary(r: &Refusal) -> Markup {
    html! {
        @match &r.dialects {
            None => span.muted { "—" },
            Some(d) if d.0.is_empty() => span.muted { "no known dialect" },
            Some(d) => @for (i, id) in d.0.iter().enumerate() {
                @if i > 0 { ", " }
                code { (id) }
            },
        }
    }
}

fn table(rows: &[Refusal], f: &Filters) -> Markup {
    let more = rows.len() as i64 > PAGE_SIZE;
    let shown = &rows[..rows.len().min(PAGE_SIZE as usize)];
    let next = if more {
        shown.last().and_then(|r| encode_cursor(&r.id))
    } else {
        None
    };
    html! {
        @if shown.is_empty() {
            p.empty { "No refused requests match." }
        } @else {
            div.scroll {
                table.refusals {
                    thead { tr {
                        th scope="col" { "Received" }
                        th scope="col" { "Route" }
                        th scope="col" { "SNAP code" }
                        th scope="col" { "Reason" }
                        th scope="col" { "Sender" }
                        th scope="col" { "Diagnosis" }
                    } }
                    tbody {
                        @for r in shown {
                            tr {
                                td { a href={"/console/refusals/" (r.id)} { (view::time(r.received_at)) } }
                                td { (r.route) }
                                td.ref { (r.response_code) }
                                td { (reason_label(&r.reason)) }
                                td.ref { (r.sender.as_deref().unwrap_or("—")) }
                                td { (diagnosis_summary(r)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if f.cursor.is_some() { a href={"/console/refusals?" (f.with_cursor(None))} { "← Newest" } }
            @if let Some(c) = next { a href={"/console/refusals?" (f.with_cursor(Some(c)))} { "Older →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_the_rest_lists_and_refuse_what_it_refuses() {
        let f = Filters {
            reason: Some("invalid_signature".into()),
            route: Some("notify".into()),
            from: Some("2026-12-06T09:00".into()),
            ..Default::default()
        };
        let rf = f.to_filter().unwrap();
        assert_eq!(rf.reason.as_deref(), Some("invalid_signature"));
        assert_eq!(rf.route.as_deref(), Some("notify"));
        assert_eq!(rf.from.unwrap().to_rfc3339(), "2026-12-06T02:00:00+00:00");
        let bad = Filters {
            reason: Some("<b>".into()),
            route: Some("qr".into()),
            to: Some("later".into()),
            cursor: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(bad.to_filter().unwrap_err().len(), 4);
    }

    #[test]
    fn page_links_keep_the_filters() {
        let f = Filters {
            reason: Some("invalid_signature".into()),
            from: Some("2026-12-06T09:00".into()),
            ..Default::default()
        };
        assert_eq!(
            f.with_cursor(Some("c".into())),
            "reason=invalid_signature&from=2026-12-06T09%3A00&cursor=c"
        );
    }
}
