//! `/console/refusals`: the journal of refused requests (what the public
//! listener answered with a 4xx), newest first, filtered as
//! `GET /api/v1/refusals` is (reason, route, time), in pages keyed on the id.
//! Each row leads to the refusal's own page ([`refusal`](super::refusal)).

use super::listing::{self, given, query_string, PAGE_SIZE};
use super::session::Operator;
use super::view::{self, Nav};
use crate::state::AppState;
use crate::store::refusals::Reason;
use crate::store::{Refusal, RefusalFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

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

impl Filters {
    /// The store's filter, or the problems to show next to the form.
    pub fn to_filter(&self) -> Result<RefusalFilter, Vec<String>> {
        let mut problems = Vec::new();
        let mut f = RefusalFilter {
            limit: PAGE_SIZE + 1,
            ..Default::default()
        };
        match given(&self.reason) {
            Some(r) if Reason::parse(r).is_some() => f.reason = Some(r.to_string()),
            Some(_) => problems.push("Reason: not a reason.".to_string()),
            None => {}
        }
        match given(&self.route) {
            Some(r @ ("token" | "notify")) => f.route = Some(r.to_string()),
            Some(_) => problems.push("Route: token or notify.".to_string()),
            None => {}
        }
        f.from = listing::time(&self.from, "From", &mut problems);
        f.to = listing::time(&self.to, "To", &mut problems);
        f.before_id = listing::cursor(&self.cursor, &mut problems);
        listing::checked(f, problems)
    }

    /// This query string with another cursor.
    fn with_cursor(&self, cursor: Option<String>) -> String {
        query_string(&[
            ("reason", &self.reason),
            ("route", &self.route),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &cursor),
        ])
    }
}

pub async fn page(State(st): State<AppState>, op: Operator, q: Result<Query<Filters>, QueryRejection>) -> Response {
    let (filters, filter) = listing::filters(q, Filters::to_filter);
    let (rows, problems, status) =
        match listing::load(filter, |f| async move { st.store.list_refusals(&f).await }).await {
            Ok(listed) => listed,
            Err(page) => return page,
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
    let reasons: Vec<(&str, &str)> = Reason::ALL
        .iter()
        .map(|r| (r.as_str(), reason_label(r.as_str())))
        .collect();
    html! {
        form.filters method="get" action="/console/refusals" role="search" {
            (listing::select("reason", "Reason", &reasons, &f.reason))
            (listing::select("route", "Route", &[("notify", "notify"), ("token", "token")], &f.route))
            (listing::time_field("from", "Received from (Jakarta)", &f.from))
            (listing::time_field("to", "Received before (Jakarta)", &f.to))
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
    let (shown, next) = listing::split(rows, |r| &r.id);
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
        (listing::pager("/console/refusals", f.cursor.is_some(), next, |c| f.with_cursor(c)))
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
