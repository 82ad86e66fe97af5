//! The console's actions: refund, refresh from Finpay, resolve a flag.
//!
//! Each is a form posted twice: the first post (from the payment's page)
//! answers a confirmation page that restates what will happen; the second
//! (`confirm=yes`) carries it out. Both check the CSRF token and the role.
//! The action is recorded with the key's name before it is carried out
//! (`api::audit`), and carried out by the same code as the REST API's.

use super::payment::{api_error_page, load};
use super::session::Operator;
use super::view::{self, Nav};
use crate::api::refunds::CreateRefundRequest;
use crate::domain::status::format_minor;
use crate::state::AppState;
use crate::store::Payment;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    partner_refund_no: Option<String>,
    #[serde(default)]
    refund_id: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

impl ActionForm {
    fn confirmed(&self) -> bool {
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
async fn begin(st: &AppState, op: &Operator, id: &str, f: &ActionForm) -> Result<crate::store::Payment, Response> {
    guard(op, f.csrf.as_deref()).map_err(IntoResponse::into_response)?;
    load(st, id).await
}

fn back_to(id: &str, notice: &str) -> Response {
    Redirect::to(&format!("/console/payments/{id}?notice={notice}")).into_response()
}

/// A confirmation page: what will happen, the form's fields again, and
/// the two choices.
fn confirm_page(
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

pub async fn refund(
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
        if let Some(no) = &f.partner_refund_no {
            return confirm_resume(&st, &op, &p, no).await;
        }
    }
    let Some(amount) = f.amount.as_deref().and_then(typed_amount) else {
        return view::error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Refund not started",
            "The amount is not one: type rupiah such as 25000, 25.000 or 25.000,50.",
        );
    };
    let request = CreateRefundRequest {
        amount,
        reason: f.reason.clone().unwrap_or_default(),
        partner_refund_no: f.partner_refund_no.clone(),
    };
    if !f.confirmed() {
        // Refused here, before the confirmation, as the API would refuse it.
        if let Err(e) = crate::api::refunds::precheck(&p, &request) {
            return api_error_page(&e);
        }
        let minor = crate::api::money::parse_minor(&request.amount).unwrap_or(0);
        let summary = html! {
            p { "Refund " strong.money { (view::money(minor, &p.currency)) } " of payment "
                strong { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } " (paid "
                (view::money(p.amount_minor, &p.currency)) ", " (view::money(p.refundable_minor(), &p.currency)) " refundable)?" }
            p { "Reason sent to Finpay: " q { (request.reason) } }
            p.muted { "Finpay is asked at once; a refund cannot be undone." }
        };
        // Drawn now, so that submitting the confirmation twice is one refund.
        let number = format!("CON{}", uuid::Uuid::now_v7().simple());
        let button = format!("Refund {}", view::money(minor, &p.currency));
        return confirm_refund(&op, &p, summary, minor, request.reason, number, &button);
    }
    let reply = match crate::api::refunds::refund_as(&st, p.clone(), &op.name, request).await {
        Ok(reply) => reply,
        Err(e) => return api_error_page(&e),
    };
    if reply.status.is_success() {
        return back_to(&p.id, "refunded");
    }
    let problem: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    let text = |k: &str| {
        problem[k]
            .as_str()
            .unwrap_or("The refund did not go through.")
            .to_string()
    };
    view::error_page(reply.status, &text("title"), &text("detail"))
}

/// The refund's confirmation: its fields again, with the number that makes
/// a second submission the same refund.
fn confirm_refund(
    op: &Operator,
    p: &Payment,
    summary: Markup,
    minor: i64,
    reason: String,
    number: String,
    button: &str,
) -> Response {
    let hidden = [
        // As the field takes it (a dot groups thousands there).
        ("amount", super::payment::whole_or_decimal(minor)),
        ("reason", reason),
        ("partner_refund_no", number),
    ];
    confirm_page(op, &p.id, "refund", ("Confirm the refund", button), summary, &hidden)
}

/// A refund already asked of Finpay whose answer was lost: asked again under
/// its own number, with its own amount and reason (as stored, not as posted).
async fn confirm_resume(st: &AppState, op: &Operator, p: &Payment, number: &str) -> Response {
    let r = match st.store.find_refund_by_partner_no(number).await {
        Ok(Some(r)) if r.payment_id == p.id && r.status == "pending" => r,
        Ok(_) => {
            return view::error_page(
                StatusCode::NOT_FOUND,
                "Refund not found",
                &format!("No refund {number:?} of this payment is waiting for Finpay's answer."),
            )
        }
        Err(e) => return view::store_error(&e),
    };
    let summary = html! {
        p { "Ask Finpay again about refund " strong.ref { (r.partner_refund_no) } " of "
            strong.money { (view::money(r.amount_minor, &p.currency)) } " on payment "
            strong { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } "?" }
        p { "Reason sent to Finpay: " q { (r.reason) } }
        p.muted { "Finpay knows the refund by its number: it is made at most once." }
    };
    let button = format!("Ask again about {}", view::money(r.amount_minor, &p.currency));
    confirm_refund(op, p, summary, r.amount_minor, r.reason, r.partner_refund_no, &button)
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

/// Settles a refund left pending with what Finpay says (the API's own
/// `refund_resolution::settle`), after a confirmation.
pub async fn settle_refund(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    use crate::api::refund_resolution::{settle, Settled};
    let p = match begin(&st, &op, &id, &f).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let refused = |why: String| view::error_page(StatusCode::UNPROCESSABLE_ENTITY, "Refund not settled", &why);
    let (outcome, said) = match f.outcome.as_deref() {
        Some("succeeded") => (Settled::Succeeded, "Finpay made this refund"),
        Some("failed") => (
            Settled::Failed,
            "Finpay did not make this refund: its amount can be refunded again",
        ),
        _ => return refused("Say what Finpay says: made, or not made.".into()),
    };
    let note = match crate::api::flags::check_note(f.note.as_deref().unwrap_or_default()) {
        Ok(n) => n,
        Err(m) => return refused(format!("The note: {m}.")),
    };
    let refund_id = f.refund_id.clone().unwrap_or_default();
    if !f.confirmed() {
        let summary = html! {
            p { "Settle a pending refund of payment " strong { (p.partner_reference_no.as_deref().unwrap_or(&p.id)) } "?" }
            p { strong { (said) } "." }
            p { "Your note: " q { (note) } }
            p.muted { "Only once Finpay has told you. It is kept in the payment's timeline with your key's name." }
        };
        let outcome = f.outcome.clone().unwrap_or_default();
        let hidden = [("refund_id", refund_id), ("outcome", outcome), ("note", note)];
        return confirm_page(
            &op,
            &p.id,
            "settle-refund",
            ("Confirm the refund's outcome", "Settle it"),
            summary,
            &hidden,
        );
    }
    match settle(&st, &p, &refund_id, &op.name, outcome, &note).await {
        Ok(_) => back_to(&p.id, "refund-settled"),
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
