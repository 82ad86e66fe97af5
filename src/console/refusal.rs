//! `/console/refusals/{id}`: one refused request as received: when (Jakarta),
//! the route and path, the SNAP answer and why, the sender's address, the
//! headers with credentials removed, the body (bounded, indented when it is
//! JSON, always as text), and the signature doctor's diagnosis with each
//! dialect's sentence.
//!
//! The body is indented token by token, not re-serialized: its key order
//! and its escapes (`\/`, `\uXXXX`) are what the doctor reasons about, and
//! a re-serialized body would hide them.

use super::json_text::indent_json;
use super::refusals::reason_label;
use super::session::Operator;
use super::view::{self, Nav};
use crate::snap::doctor::Dialect;
use crate::state::AppState;
use crate::store::Refusal;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

/// The most of a body shown (the journal's own bound may be set higher).
pub const SHOWN_BYTES: usize = 64 * 1024;

pub async fn page(State(st): State<AppState>, op: Operator, Path(id): Path<String>) -> Response {
    let not_found = || {
        view::error_page(
            StatusCode::NOT_FOUND,
            "Refused request not found",
            "No refused request has this id; the journal keeps a bounded number, for a bounded time.",
        )
    };
    // Ids are UUIDs: anything else names no refusal.
    if uuid::Uuid::parse_str(&id).is_err() {
        return not_found();
    }
    let r = match st.store.get_refusal(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return view::store_error(&e),
    };
    let body = html! {
        p.crumbs { a href="/console/refusals" { "Refused requests" } " / " (r.id) }
        h1 { "Refused request" span.sub { (view::jakarta(r.received_at)) } }
        (facts(&r))
        (diagnosis(&r))
        (headers(&r))
        (body_section(&r))
    };
    (
        StatusCode::OK,
        view::page("Refused request", Some(&op), Nav::Refused, body),
    )
        .into_response()
}

fn facts(r: &Refusal) -> Markup {
    html! {
        section.panel aria-labelledby="facts" {
            h2 #facts { "What was refused" }
            dl.facts {
                dt { "Received" } dd { (view::time(r.received_at)) }
                dt { "Route" } dd { (r.route) }
                dt { "Path" } dd.ref { code { (r.path) } }
                dt { "SNAP answer" } dd { code { (r.response_code) } " " (r.message) }
                dt { "Reason" } dd { (reason_label(&r.reason)) " " span.muted { "(" (r.reason) ")" } }
                dt { "Sender" } dd.ref { (r.sender.as_deref().unwrap_or("unknown")) }
            }
        }
    }
}

fn diagnosis(r: &Refusal) -> Markup {
    html! {
        section.panel.diagnosis aria-labelledby="diagnosis" {
            h2 #diagnosis { "Signature diagnosis" }
            @match (&r.dialects, &r.diagnosis) {
                (Some(d), explanation) if d.0.is_empty() => {
                    p.notice.warn { strong { "No known dialect explains this signature." } }
                    @if let Some(e) = explanation { p { (e) } }
                },
                (Some(d), explanation) => {
                    p { "The signature was made in a known dialect: the sender signed something other than what it sent." }
                    ul.dialects {
                        @for id in &d.0 {
                            li {
                                code { (id) }
                                @if let Some(dialect) = Dialect::from_id(id) {
                                    ": the signature matches " (dialect.phrase()) ". " strong { "Fix: " } (dialect.advice()) "."
                                }
                            }
                        }
                    }
                    @if let Some(e) = explanation { p.muted { "As the REST API and `finpay-qris doctor` say it: " (e) } }
                },
                (None, _) if r.reason == "invalid_signature" => {
                    p.muted { "Not diagnosed: more signatures were refused at once than the doctor examines per second." }
                },
                (None, _) => {
                    p.muted { "Not a signature refusal: the doctor examines refused signatures only." }
                },
            }
        }
    }
}

fn headers(r: &Refusal) -> Markup {
    html! {
        section.panel aria-labelledby="headers" {
            h2 #headers { "Headers" }
            p.muted { "As received, without credentials: the bearer token is shown as the start of its SHA-256, cookies are left out." }
            @if r.headers.0.is_empty() {
                p.empty { "None." }
            } @else {
                dl.facts.headers {
                    @for (name, value) in &r.headers.0 {
                        @for v in header_values(value) { dt { code { (name) } } dd.ref { (v) } }
                    }
                }
            }
        }
    }
}

/// A header's values (an array when it was sent more than once).
fn header_values(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(header_values).collect(),
        other => vec![other.to_string()],
    }
}

fn body_section(r: &Refusal) -> Markup {
    let Some(bytes) = &r.body else {
        return html! {
            section.panel aria-labelledby="body" {
                h2 #body { "Body" }
                p.muted { "Not kept: it could not be read (larger than the listener accepts, or too slow). "
                    (r.body_bytes) " bytes were received." }
            }
        };
    };
    let kept = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let text = String::from_utf8_lossy(kept);
    let indented = (kept.len() == bytes.len()).then(|| indent_json(&text)).flatten();
    html! {
        section.panel aria-labelledby="body" {
            h2 #body { "Body" }
            @if (kept.len() as i64) < r.body_bytes {
                p.notice.warn { "Shown: the first " (kept.len()) " of " (r.body_bytes) " bytes received." }
            } @else {
                p.muted { (r.body_bytes) " bytes." }
            }
            @match indented {
                Some(pretty) => {
                    pre.body { code { (pretty) } }
                    details {
                        summary { "Exactly as received" }
                        pre.body { code { (text) } }
                    }
                },
                None => pre.body { code { (text) } },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_sent_twice_are_both_shown() {
        let v = serde_json::json!(["a", "b"]);
        assert_eq!(header_values(&v), ["a", "b"]);
    }
}
