//! The console's actions on event delivery, for keys of the `operate` role:
//! disable or enable an endpoint, resend everything that failed for it
//! since a time, resend one event of a payment.
//!
//! As the payment actions ([`actions`](super::actions)): each form is posted
//! twice (a confirmation page restating what will happen, then
//! `confirm=yes`), and both posts check the CSRF token and the role. A
//! resend of a payment's event is recorded in its audit trail with the
//! key's name before it is scheduled; endpoint changes are logged with it.
//! The work is the REST API's own (`update_endpoint`, `resend_failed`,
//! `resend_event` of the store).

use super::actions::{confirm, guard, Confirm};
use super::endpoints::load;
use super::session::Operator;
use super::view::{self, Nav};
use crate::state::AppState;
use crate::store::endpoints::{Endpoint, EndpointUpdate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
    /// `true` or `false` (enable or disable).
    #[serde(default)]
    enabled: Option<String>,
    /// Jakarta time from which failed deliveries are resent.
    #[serde(default)]
    since: Option<String>,
}

impl DeliveryForm {
    fn confirmed(&self) -> bool {
        self.confirm.as_deref() == Some("yes")
    }
}

/// The checks, then the endpoint the action is about.
async fn begin(st: &AppState, op: &Operator, id: &str, f: &DeliveryForm) -> Result<Endpoint, Response> {
    guard(op, f.csrf.as_deref()).map_err(IntoResponse::into_response)?;
    load(st, id).await
}

/// A confirmation page posting to `action`, cancelled back to `back`.
fn confirm_page(
    op: &Operator,
    action: &str,
    back: &str,
    words: (&str, &str),
    summary: Markup,
    hidden: &[(&str, String)],
) -> Response {
    let to = Confirm {
        action,
        cancel: back,
        nav: Nav::Endpoints,
    };
    confirm(op, &to, words, summary, hidden)
}

/// The actions an endpoint's page offers to the signed-in role.
pub fn panel(op: &Operator, e: &Endpoint) -> Markup {
    if !op.role.may_operate() {
        return html! {
            p.muted { "Your key \u{201c}" (op.name) "\u{201d} has the read role: it shows everything and changes nothing." }
        };
    }
    let id = &e.id;
    html! {
        div.actions {
            form.action method="post" action={"/console/endpoints/" (id) "/enabled"} {
                input type="hidden" name="csrf" value=(op.csrf);
                @if e.enabled {
                    input type="hidden" name="enabled" value="false";
                    p { "Stop sending events to this endpoint. They are kept; enable it to send again." }
                    button type="submit" { "Disable…" }
                } @else {
                    input type="hidden" name="enabled" value="true";
                    p { "Send events to this endpoint again." }
                    button type="submit" { "Enable…" }
                }
            }
            @if e.enabled {
                form.action method="post" action={"/console/endpoints/" (id) "/resend-failed"} {
                    input type="hidden" name="csrf" value=(op.csrf);
                    p { "Send again every event created since this time whose delivery to this endpoint failed:" }
                    div.field {
                        label for="since" { "Events created since (Jakarta)" }
                        input #since type="datetime-local" name="since" required;
                    }
                    button type="submit" { "Resend failed…" }
                }
            } @else {
                p.muted { "Enable it to resend what failed." }
            }
        }
    }
}

pub async fn set_enabled(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<DeliveryForm>,
) -> Response {
    let e = match begin(&st, &op, &id, &f).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let enable = match f.enabled.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return view::error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Nothing changed",
                "Enable or disable: the form said neither.",
            )
        }
    };
    if enable {
        if let Err(refused) = crate::api::webhook_endpoints::may_enable(&st, &e) {
            return super::payment::api_error_page(&refused);
        }
    }
    let back = format!("/console/endpoints/{}", e.id);
    if !f.confirmed() {
        let (title, button, what) = if enable {
            (
                "Enable this endpoint?",
                "Enable",
                "Events will be delivered to it again, from now on.",
            )
        } else {
            (
                "Disable this endpoint?",
                "Disable",
                "Nothing will be sent to it until someone enables it; events are kept.",
            )
        };
        let summary = html! { p { (what) } p { "Endpoint: " strong.ref { (e.url) } } };
        let action = format!("{back}/enabled");
        return confirm_page(
            &op,
            &action,
            &back,
            (title, button),
            summary,
            &[("enabled", enable.to_string())],
        );
    }
    let update = EndpointUpdate {
        enabled: Some(enable),
        by: Some(op.name.clone()),
        ..Default::default()
    };
    if let Err(err) = st.store.update_endpoint(&e.id, &update, crate::store::now()).await {
        return view::store_error(&err);
    }
    tracing::info!(actor = %op.name, endpoint = %e.id, enabled = enable, "console: webhook endpoint {}", if enable { "enabled" } else { "disabled" });
    let notice = if enable { "enabled" } else { "disabled" };
    Redirect::to(&format!("{back}?notice={notice}")).into_response()
}

pub async fn resend_failed(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<DeliveryForm>,
) -> Response {
    let e = match begin(&st, &op, &id, &f).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(since) = f.since.as_deref().and_then(super::payments::jakarta_time) else {
        return view::error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing resent",
            "Since when? Give a date and time such as 2026-12-06T09:00 (Jakarta).",
        );
    };
    // As the API: a resend to a disabled endpoint would wait unseen.
    if !e.enabled {
        return view::error_page(
            StatusCode::CONFLICT,
            "Endpoint disabled",
            "This endpoint is disabled: enable it first, then resend what failed.",
        );
    }
    let back = format!("/console/endpoints/{}", e.id);
    if !f.confirmed() {
        let summary = html! {
            p { "Send again every event created since " (view::time(since)) " whose delivery to " strong.ref { (e.url) } " failed?" }
            p.muted { "They are sent from now on, with a fresh retry schedule." }
        };
        let action = format!("{back}/resend-failed");
        let typed = f.since.clone().unwrap_or_default();
        return confirm_page(
            &op,
            &action,
            &back,
            ("Resend failed deliveries?", "Resend"),
            summary,
            &[("since", typed)],
        );
    }
    match st.store.resend_failed(&e.id, since, crate::store::now()).await {
        Ok(n) => tracing::info!(actor = %op.name, endpoint = %e.id, scheduled = n, "console: failed deliveries resent"),
        Err(err) => return view::store_error(&err),
    }
    Redirect::to(&format!("{back}?notice=resent")).into_response()
}

/// Resends one event of a payment to every endpoint subscribed to its type.
pub async fn resend_event(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<DeliveryForm>,
) -> Response {
    if let Err(r) = guard(&op, f.csrf.as_deref()) {
        return r.into_response();
    }
    let not_found = || view::error_page(StatusCode::NOT_FOUND, "Event not found", "No event has this id.");
    if id.chars().any(char::is_control) || id.len() > 128 {
        return not_found();
    }
    let event = match st.store.get_outbox_event(&id).await {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(err) => return view::store_error(&err),
    };
    let back = match &event.payment_id {
        Some(p) => format!("/console/payments/{p}"),
        None => "/console/endpoints".to_string(),
    };
    if !f.confirmed() {
        let summary = html! {
            p { "Send the event " code { (event.event_type) } " of " (view::time(event.created_at)) " again to every enabled endpoint subscribed to it?" }
            p.muted { "It is the same event (same id and body): a consumer that already has it can drop it." }
        };
        let action = format!("/console/events/{}/resend", event.id);
        return confirm_page(&op, &action, &back, ("Resend this event?", "Resend"), summary, &[]);
    }
    if let Some(payment_id) = &event.payment_id {
        let detail = serde_json::json!({ "event": event.id, "type": event.event_type });
        if let Err(err) = crate::api::audit::record(&st, payment_id, &op.name, "resend_event", detail).await {
            return super::payment::api_error_page(&err);
        }
    }
    match st.store.resend_event(&event.id, None, crate::store::now()).await {
        Ok(n) => tracing::info!(actor = %op.name, event = %event.id, scheduled = n, "console: event resent"),
        Err(err) => return view::store_error(&err),
    }
    Redirect::to(&format!("{back}?notice=resent")).into_response()
}
