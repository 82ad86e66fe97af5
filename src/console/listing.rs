//! What the console's list pages share: filters read from the query string
//! (an empty field is no filter), problems answered `400` beside the form,
//! and pages keyed on the last id shown (the REST API's cursor), read one
//! row beyond the page to know whether there is another.

use super::payments::urlencode;
use super::view;
use crate::api::payments::{decode_cursor, encode_cursor};
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use std::future::Future;

pub const PAGE_SIZE: i64 = 50;

/// A field's value, unless it is absent or blank.
pub fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `name=value&…` of the fields given, percent-encoded.
pub fn query_string(fields: &[(&str, &Option<String>)]) -> String {
    fields
        .iter()
        .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", urlencode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// The problem of a page link whose cursor names no row.
pub const STALE_CURSOR: &str = "This page link names a payment that is not here; start from the first page.";

/// The id a page link's cursor names, or a problem.
pub fn cursor(c: &Option<String>, problems: &mut Vec<String>) -> Option<String> {
    let c = given(c)?;
    let id = decode_cursor(c);
    if id.is_none() {
        problems.push("This page link is not valid; start from the first page.".into());
    }
    id
}

/// The filters of the query string and the store's filter they make
/// (`to_filter`); when the query cannot be read (a field given twice, say),
/// empty filters and the reason as a problem: never a silent "all".
pub fn filters<T: Default, F>(
    q: Result<axum::extract::Query<T>, QueryRejection>,
    to_filter: impl Fn(&T) -> Result<F, Vec<String>>,
) -> (T, Result<F, Vec<String>>) {
    match q {
        Ok(axum::extract::Query(f)) => {
            let filter = to_filter(&f);
            (f, filter)
        }
        Err(e) => (
            T::default(),
            Err(vec![format!("The filters could not be read ({}).", e.body_text())]),
        ),
    }
}

/// Reads the rows of a valid filter; with problems, none (and a `400`).
pub async fn load<F, T, Fut>(
    filter: Result<F, Vec<String>>,
    read: impl FnOnce(F) -> Fut,
) -> Result<(Vec<T>, Vec<String>, StatusCode), Response>
where
    Fut: Future<Output = crate::store::Result<Vec<T>>>,
{
    match filter {
        Ok(f) => match read(f).await {
            Ok(rows) => Ok((rows, Vec::new(), StatusCode::OK)),
            Err(e) => Err(view::store_error(&e)),
        },
        Err(problems) => Ok((Vec::new(), problems, StatusCode::BAD_REQUEST)),
    }
}

/// The rows to show of those read, and the next page's cursor.
pub fn split<T>(rows: &[T], id: impl Fn(&T) -> &str) -> (&[T], Option<String>) {
    let shown = &rows[..rows.len().min(PAGE_SIZE as usize)];
    let next = if rows.len() > shown.len() {
        shown.last().and_then(|r| encode_cursor(id(r)))
    } else {
        None
    };
    (shown, next)
}

/// "← Newest" when not on the first page, "Older →" when there is more;
/// `query` makes the query string for a cursor.
pub fn pager(path: &str, paged: bool, next: Option<String>, query: impl Fn(Option<String>) -> String) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if paged { a href={(path) "?" (query(None))} { "← Newest" } }
            @if let Some(c) = next { a href={(path) "?" (query(Some(c)))} { "Older →" } }
        }
    }
}

/// A time filter typed in Jakarta ([`jakarta_time`](super::payments::jakarta_time)),
/// or a problem naming the field.
pub fn time(value: &Option<String>, label: &str, problems: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let v = given(value)?;
    let t = super::payments::jakarta_time(v);
    if t.is_none() {
        problems.push(format!("{label}: a date and time such as 2026-12-06T09:00."));
    }
    t
}

/// The filter, unless something was wrong with it.
pub fn checked<F>(filter: F, problems: Vec<String>) -> Result<F, Vec<String>> {
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// A labelled choice of `options` (value, text), "Any" first.
pub fn select(name: &str, label: &str, options: &[(&str, &str)], current: &Option<String>) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select #(name) name=(name) {
                option value="" { "Any" }
                @for (value, text) in options {
                    option value=(value) selected[current.as_deref() == Some(*value)] { (text) }
                }
            }
        }
    }
}

/// A labelled date-and-time field (Jakarta).
pub fn time_field(name: &str, label: &str, value: &Option<String>) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input #(name) type="datetime-local" name=(name) value=(value.clone().unwrap_or_default());
        }
    }
}
