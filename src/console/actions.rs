//! The console's actions on a payment: refresh from Finpay, resolve a flag
//! (and, in `refund_actions`, refund and settle a pending refund).
//!
//! Each is a form posted twice: the first post (from the payment's page)
//! answers a confirmation page that restates what will happen; the second
//! (`confirm=yes`) carries it out. Both check the CSRF token and the role.
//! The action is recorded with the key's name before it is carried out
//! (`api::audit`), and carried out by the same code as the REST API's.

use super::payment::{api_error_page, load};
use super::session::Operator;
use super::view::{self, Nav};
use crate::domain::status::format_minor;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub(super) csrf: Option<String>,
    #[serde(default)]
    pub(super) confirm: Option<String>,
    #[serde(default)]
    pub(super) amount: Option<String>,
    #[serde(default)]
    pub(super) reason: Option<String>,
    #[serde(default)]
    pub(super) note: Option<String>,
    #[serde(default)]
    pub(super) partner_refund_no: Option<String>,
    #[serde(default)]
    pub(super) refund_id: Option<String>,
    #[serde(default)]
    pub(super) outcome: Option<String>,
}

impl ActionForm {
    pub(super) fn confirmed(&self) -> bool {
        self.confirm.as_deref() == Some("yes")
    }
}

/// The checks every action makes first: a form of this session, a role
/// that may act.
pub fn guard(op: &Operator, csrf: Option<&str>) -> Result<(), view::Refusal> {
    op.check_csrf(csrf)?;
    op.check_operate()
}

/// The checks, then the payment the action is about.
pub(super) async fn begin(
    st: &AppState,
    op: &Operator,
    id: &str,
    f: &ActionForm,
) -> Result<crate::store::Payment, Response> {
    guard(op, f.csrf.as_deref()).map_err(IntoResponse::into_response)?;
    load(st, id).await
}

pub(super) fn back_to(id: &str, notice: &str) -> Response {
    Redirect::to(&format!("/console/payments/{id}?notice={notice}")).into_response()
}

/// A confirmation page: what will happen, the form's fields again, and
/// the two choices.
pub(super) fn confirm_page(
    op: &Operator,
    id: &str,
    action: &str,
    words: (&str, &str),
    summary: Markup,
    hidden: &[(&str, String)],
) -> Response {
    let back = format!("/console/payments/{id}");
    let to = Confirm {
        action: &format!("{back}/{action}"),
        cancel: &back,
        nav: Nav::Payments,
    };
    confirm(op, &to, words, summary, hidden)
}

/// Where a confirmation posts to, where "Cancel" leads, and its section.
pub struct Confirm<'a> {
    pub action: &'a str,
    pub cancel: &'a str,
    pub nav: Nav,
}

/// A confirmation page: what will happen (`summary`), the form's fields
/// again (`hidden`, with `confirm=yes`), and the two choices.
pub fn confirm(
    op: &Operator,
    to: &Confirm<'_>,
    (title, button): (&str, &str),
    summary: Markup,
    hidden: &[(&str, String)],
) -> Response {
    let body = html! {
        h1 { (title) }
        div.confirm {
            (summary)
            form method="post" action=(to.action) {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in hidden { input type="hidden" name=(name) value=(value); }
                button.primary type="submit" autofocus { (button) }
                " "
                a.button href=(to.cancel) { "Cancel" }
            }
        }
    };
    (StatusCode::OK, view::page(title, Some(op), to.nav, body)).into_response()
}

/// Rupiah as typed → the API's decimal string; `None` unless more than zero.
pub fn typed_amount(s: &str) -> Option<String> {
    view::typed_rupiah(s).filter(|m| *m > 0).map(format_minor)
}

pub async fn refresh(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let p = match begin(&st, &op, &id, &f).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !f.confirmed() {
        let summary = html! {
            p { "Ask Finpay now for the status of payment " strong { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } "?" }
            p.muted { "What Finpay answers is applied like a notification and lands in the timeline." }
        };
        let words = ("Confirm the refresh", "Ask Finpay now");
        return confirm_page(&op, &p.id, "refresh", words, summary, &[]);
    }
    if let Err(e) = crate::api::audit::record(&st, &p.id, &op.name, "refresh", serde_json::json!({})).await {
        return api_error_page(&e);
    }
    match crate::api::upstream::refresh(&st, &p).await {
        Ok(_) => back_to(&p.id, "refreshed"),
        Err(e) => api_error_page(&e),
    }
}

pub async fn resolve(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let p = match begin(&st, &op, &id, &f).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let note = match crate::api::flags::check_note(f.note.as_deref().unwrap_or_default()) {
        Ok(n) => n,
        Err(m) => {
            return view::error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Flag not resolved",
                &format!("The note: {m}."),
            )
        }
    };
    if !f.confirmed() {
        let summary = html! {
            p { "Resolve the flag of payment " strong { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } "?" }
            p { "Flag: " (p.flagged.as_deref().unwrap_or("(none)")) }
            p { "Your note: " q { (note) } }
            p.muted { "The payment's status stays as it is; the note is kept in its timeline with your key's name." }
        };
        return confirm_page(
            &op,
            &p.id,
            "resolve",
            ("Confirm the resolution", "Resolve the flag"),
            summary,
            &[("note", note)],
        );
    }
    match crate::api::flags::resolve(&st, &p.id, &op.name, &note).await {
        Ok(_) => back_to(&p.id, "resolved"),
        Err(e) => api_error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_people_type_rupiah() {
        assert_eq!(typed_amount("25.000").as_deref(), Some("25000.00"));
        assert_eq!(typed_amount("Rp 25.000").as_deref(), Some("25000.00"));
        assert_eq!(typed_amount("2500,50").as_deref(), Some("2500.50"));
        assert_eq!(typed_amount("0"), None);
        assert_eq!(typed_amount("-5"), None);
        assert_eq!(typed_amount("1e3"), None);
        // What the confirmation carries reads back as the same amount.
        for minor in [100, 2_500_000, 2_500_050] {
            let shown = crate::console::payment::whole_or_decimal(minor);
            assert_eq!(typed_amount(&shown), Some(format_minor(minor)), "{shown}");
        }
    }
}
