//! `/console`: today (Asia/Jakarta) at a glance: payments by status with
//! their amounts, notifications and paid amounts per hour, and the
//! reconciliation backlog, the requests refused today by reason, and the
//! oldest event not yet delivered. Each is one of [`panels`].

use super::chart::hourly_bars;
use super::payments::urlencode;
use super::refusals::reason_label;
use super::session::Operator;
use super::view::{self, Nav, JAKARTA};
use crate::domain::payment::CURRENCY;
use crate::domain::PaymentStatus;
use crate::state::AppState;
use crate::store::{Backlog, HourTotals, ReasonTotal, StatusTotal};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use maud::{html, Markup};

pub async fn page(State(st): State<AppState>, op: Operator) -> Response {
    let now = Utc::now();
    let (start, end) = today(now);
    let store = &st.store;
    let (totals, hours, backlog, refused, undelivered) = match tokio::try_join!(
        store.status_totals(start, end),
        store.hourly_totals(start, end),
        store.reconciliation_backlog(crate::store::now()),
        store.refusal_totals(start, end),
        store.delivery_backlog(),
    ) {
        Ok(all) => all,
        Err(e) => return view::store_error(&e),
    };
    let day = now.with_timezone(&JAKARTA).format("%A %-d %B %Y").to_string();
    let body = html! {
        h1 { "Today" span.sub { (day) " (Asia/Jakarta)" } }
        @for panel in panels(&totals, &hours, start, &backlog, &refused) { (panel) }
        (delivery(&undelivered, now))
    };
    (StatusCode::OK, view::page("Overview", Some(&op), Nav::Overview, body)).into_response()
}

/// The Jakarta day of `now`, as `[start, end)`.
pub fn today(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.with_timezone(&JAKARTA).date_naive();
    let start = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| JAKARTA.from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    (start, start + chrono::Duration::days(1))
}

/// The overview's panels, in order.
fn panels(
    totals: &[StatusTotal],
    hours: &[HourTotals],
    start: DateTime<Utc>,
    backlog: &Backlog,
    refused: &[ReasonTotal],
) -> Vec<Markup> {
    vec![
        by_status(totals),
        per_hour(hours, start),
        reconciliation(backlog),
        refusals(refused, start),
    ]
}

fn by_status(totals: &[StatusTotal]) -> Markup {
    let count: i64 = totals.iter().map(|t| t.count).sum();
    html! {
        section.panel aria-labelledby="by-status" {
            h2 #by-status { "Payments created today, by status" }
            @if totals.is_empty() {
                p.empty { "No payments yet today." }
            } @else {
                table.totals {
                    thead { tr { th scope="col" { "Status" } th scope="col" .num { "Payments" } th scope="col" .num { "Amount" } } }
                    tbody {
                        @for t in totals {
                            tr {
                                td {
                                    @match PaymentStatus::parse(&t.status) {
                                        Some(s) => a href={"/console/payments?status=" (s.as_str())} { (view::status(s)) },
                                        None => (t.status),
                                    }
                                }
                                td.num { (t.count) }
                                td.num { (view::money(t.amount_minor, CURRENCY)) }
                            }
                        }
                    }
                    tfoot { tr { th scope="row" { "All" } td.num { (count) } td {} } }
                }
            }
        }
    }
}

fn per_hour(hours: &[HourTotals], start: DateTime<Utc>) -> Markup {
    let first = start.timestamp().div_euclid(3600);
    let mut notifications = [0i64; 24];
    let mut paid = [0i64; 24];
    for h in hours {
        if let Ok(i) = usize::try_from(h.hour - first) {
            if i < 24 {
                notifications[i] = h.notifications;
                paid[i] = h.paid_minor;
            }
        }
    }
    html! {
        section.panel aria-labelledby="per-hour" {
            h2 #per-hour { "Per hour (Jakarta)" }
            div.charts {
                (hourly_bars("Notifications received", &notifications, |n| n.to_string()))
                (hourly_bars("Amount paid", &paid, |m| view::money(m, CURRENCY)))
            }
        }
    }
}

fn reconciliation(b: &Backlog) -> Markup {
    html! {
        section.panel aria-labelledby="backlog" {
            h2 #backlog { "Reconciliation" }
            dl.facts {
                dt { "Open payments the worker checks" } dd { (b.open) }
                dt { "Checks due now" } dd { (b.due) @if b.due > 0 { " " span.status.wait { "waiting for the worker" } } }
                dt { "Earliest scheduled check" } dd { @match b.earliest { Some(t) => (view::time(t)), None => "—" } }
            }
        }
    }
}

fn refusals(totals: &[ReasonTotal], start: DateTime<Utc>) -> Markup {
    let since = urlencode(&start.with_timezone(&JAKARTA).format("%Y-%m-%dT%H:%M").to_string());
    let count: i64 = totals.iter().map(|t| t.count).sum();
    html! {
        section.panel aria-labelledby="refused" {
            h2 #refused { "Requests refused today, by reason" }
            @if totals.is_empty() {
                p.empty { "No request from Finpay was refused today." }
            } @else {
                table.totals {
                    thead { tr { th scope="col" { "Reason" } th scope="col" .num { "Requests" } } }
                    tbody {
                        @for t in totals {
                            tr {
                                td { a href={"/console/refusals?reason=" (urlencode(&t.reason)) "&from=" (since)} { (reason_label(&t.reason)) } }
                                td.num { (t.count) }
                            }
                        }
                    }
                    tfoot { tr { th scope="row" { "All" } td.num { (count) } } }
                }
            }
            p { a href="/console/refusals" { "All refused requests →" } }
        }
    }
}

/// Events waiting for delivery (per enabled endpoint: how many, and when
/// the oldest was raised): the oldest one's age.
fn delivery(undelivered: &[(String, i64, Option<DateTime<Utc>>)], now: DateTime<Utc>) -> Markup {
    let waiting: i64 = undelivered.iter().map(|u| u.1).sum();
    let oldest = undelivered.iter().filter_map(|u| u.2).min();
    html! {
        section.panel aria-labelledby="delivery" {
            h2 #delivery { "Event delivery" }
            dl.facts {
                dt { "Deliveries waiting" } dd { (waiting) }
                dt { "Oldest undelivered event" }
                dd {
                    @match oldest {
                        Some(t) => { (age(now - t)) " old " span.muted { "(raised " (view::time(t)) ")" } },
                        None => "none: everything was delivered",
                    }
                }
            }
            p { a href="/console/endpoints" { "Endpoints and deliveries →" } }
        }
    }
}

/// A duration as people say it: `42 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_said_in_the_two_largest_units() {
        let s = chrono::Duration::seconds;
        assert_eq!(age(s(42)), "42 s");
        assert_eq!(age(s(192)), "3 min 12 s");
        assert_eq!(age(s(7500)), "2 h 5 min");
        assert_eq!(age(s(3 * 86400 + 4 * 3600 + 59)), "3 d 4 h");
        assert_eq!(age(s(-5)), "0 s");
    }

    #[test]
    fn today_is_the_jakarta_day() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T18:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (start, end) = today(now);
        assert_eq!(start.to_rfc3339(), "2026-12-06T17:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-12-07T17:00:00+00:00");
    }
}
