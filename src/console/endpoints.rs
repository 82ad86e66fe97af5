//! `/console/endpoints`: the webhook endpoints events are pushed to (URL,
//! subscribed types, enabled or why not, failing since when, what waits to
//! be delivered); `/console/endpoints/{id}`: one endpoint, its latest
//! deliveries with their attempts, and for the `operate` role the actions
//! ([`endpoint_actions`](super::endpoint_actions)). No secret is ever shown.

use super::payment::PageQuery;
use super::session::Operator;
use super::view::{self, Nav};
use crate::state::AppState;
use crate::store::console_events::EndpointDelivery;
use crate::store::endpoints::Endpoint;
use crate::store::events::Attempt;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

/// Deliveries shown on an endpoint's page.
pub const SHOWN: i64 = 50;

pub async fn page(State(st): State<AppState>, op: Operator) -> Response {
    let (endpoints, backlog) = match tokio::try_join!(st.store.list_endpoints(), st.store.delivery_backlog()) {
        Ok(all) => all,
        Err(e) => return view::store_error(&e),
    };
    let body = html! {
        h1 { "Endpoints and deliveries" }
        p { "Where payment events are pushed, signed (Standard Webhooks). Open one to see its latest deliveries and \
             what its server answered." }
        @if endpoints.is_empty() {
            p.empty { "No endpoint yet: create one with POST /api/v1/webhook-endpoints, or set FINPAY_QRIS__EVENTS__ENDPOINT_URL." }
        } @else {
            div.scroll {
                table.endpoints {
                    thead { tr {
                        th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" }
                        th scope="col" { "Failing since" } th scope="col" .num { "Waiting" } th scope="col" { "Oldest waiting event" }
                    } }
                    tbody {
                        @for e in &endpoints {
                            @let (waiting, oldest) = backlog.iter().find(|b| b.0 == e.id).map_or((0, None), |b| (b.1, b.2));
                            tr {
                                td.ref { a href={"/console/endpoints/" (e.id)} { (e.url) } }
                                td { (types(e)) }
                                td { (state(e)) }
                                td { @match e.failing_since { Some(t) => (view::time(t)), None => "—" } }
                                td.num { (waiting) }
                                td { @match oldest { Some(t) => (view::time(t)), None => "—" } }
                            }
                        }
                    }
                }
            }
        }
    };
    (StatusCode::OK, view::page("Endpoints", Some(&op), Nav::Endpoints, body)).into_response()
}

fn types(e: &Endpoint) -> Markup {
    html! {
        @if e.event_types.is_empty() { "every type" } @else {
            @for (i, t) in e.event_types.iter().enumerate() { @if i > 0 { ", " } code { (t) } }
        }
    }
}

/// Enabled or disabled, as a word with a symbol (readable without colour).
pub fn state(e: &Endpoint) -> Markup {
    html! {
        @if e.enabled {
            span.status.good { span aria-hidden="true" { "✓" } " enabled" }
        } @else {
            span.status.bad { span aria-hidden="true" { "✕" } " disabled" }
            @if let Some(r) = &e.disabled_reason { " " span.muted { (r) } }
        }
    }
}

/// What an action's redirect says; fixed texts, nothing from the request.
fn notice(code: &str) -> Option<&'static str> {
    match code {
        "enabled" => Some("Endpoint enabled: events are delivered to it again."),
        "disabled" => Some("Endpoint disabled: nothing is sent to it until it is enabled."),
        "resent" => Some("Failed deliveries scheduled again: they are sent from now on, with a fresh retry schedule."),
        _ => None,
    }
}

/// The endpoint `id` names, or the page to answer.
pub async fn load(st: &AppState, id: &str) -> Result<Endpoint, Response> {
    let not_found = || {
        view::error_page(
            StatusCode::NOT_FOUND,
            "Endpoint not found",
            "No webhook endpoint has this id.",
        )
    };
    if id.chars().any(char::is_control) || id.len() > 128 {
        return Err(not_found());
    }
    match st.store.get_endpoint(id).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(not_found()),
        Err(e) => Err(view::store_error(&e)),
    }
}

pub async fn endpoint_page(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let e = match load(&st, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (deliveries, attempts) = match st.store.endpoint_deliveries(&e.id, SHOWN).await {
        Ok(d) => d,
        Err(err) => return view::store_error(&err),
    };
    let said = q.ok().and_then(|Query(q)| q.notice).and_then(|n| notice(&n));
    let body = html! {
        p.crumbs { a href="/console/endpoints" { "Endpoints" } " / " (e.url) }
        h1 { "Endpoint " span.ref { (e.url) } " " (state(&e)) }
        @if let Some(n) = said { p.notice.good role="status" { (n) } }
        section.panel aria-labelledby="facts" {
            h2 #facts { "Facts" }
            dl.facts {
                dt { "URL" } dd.ref { (e.url) }
                dt { "Description" } dd { (e.description.as_deref().unwrap_or("—")) }
                dt { "Events" } dd { (types(&e)) }
                dt { "From" } dd { @if e.source == "config" { "the configuration" } @else { "the API" } }
                dt { "Failing since" } dd { @match e.failing_since { Some(t) => (view::time(t)), None => "—" } }
                dt { "Id" } dd { code { (e.id) } }
                dt { "Created" } dd { (view::time(e.created_at)) }
                dt { "Signing secret" } dd.muted { "not shown: it was shown once, when the endpoint was created" }
            }
        }
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            (super::endpoint_actions::panel(&op, &e))
        }
        section aria-labelledby="deliveries" {
            h2 #deliveries { "Latest deliveries" }
            (deliveries_table(&deliveries, &attempts))
        }
    };
    (StatusCode::OK, view::page("Endpoint", Some(&op), Nav::Endpoints, body)).into_response()
}

/// A delivery's status as a word with a symbol.
pub fn delivery_status(status: &str) -> Markup {
    let (symbol, tone) = match status {
        "succeeded" => ("✓", "good"),
        "failed" => ("✕", "bad"),
        _ => ("…", "wait"),
    };
    html! { span class={"status " (tone)} { span aria-hidden="true" { (symbol) } " " (status) } }
}

/// An attempt in a few words: the answer's status or the error, and how long it took.
pub fn attempt_line(a: &Attempt) -> Markup {
    html! {
        (view::time(a.attempted_at)) " — "
        @match (a.status_code, &a.error) {
            (Some(code), _) => { "HTTP " (code) }
            (None, Some(err)) => { (err) }
            (None, None) => { "no answer" }
        }
        " in " (a.latency_ms) " ms"
        @if let Some(x) = &a.response_excerpt { @if !x.is_empty() { " " q.excerpt { (x) } } }
    }
}

fn deliveries_table(deliveries: &[EndpointDelivery], attempts: &[Attempt]) -> Markup {
    html! {
        @if deliveries.is_empty() {
            p.empty { "Nothing delivered yet." }
        } @else {
            div.scroll {
                table.deliveries {
                    thead { tr {
                        th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Payment" }
                        th scope="col" { "Status" } th scope="col" { "Attempts" }
                    } }
                    tbody {
                        @for d in deliveries {
                            tr {
                                td { (view::time(d.event_created_at)) br; code.small { (d.delivery.event_id) } }
                                td { code { (d.event_type) } }
                                td.ref { @match &d.payment_id { Some(p) => a href={"/console/payments/" (p)} { code.small { (p) } }, None => "—" } }
                                td {
                                    (delivery_status(&d.delivery.status))
                                    @if let Some(next) = d.delivery.next_attempt_at { br; span.muted { "next try " (view::jakarta(next)) } }
                                }
                                td {
                                    ol.attempts {
                                        @for a in attempts.iter().filter(|a| a.delivery_id == d.delivery.id) { li { (attempt_line(a)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
