//! The console's refund actions: refund a payment (or ask Finpay again about
//! a refund whose answer was lost), and settle a refund left pending with
//! what Finpay says. Confirmed as every action is (`actions`), and carried
//! out by the REST API's own code.

use super::actions::{back_to, begin, confirm_page, typed_amount, ActionForm};
use super::payment::api_error_page;
use super::session::Operator;
use super::view;
use crate::api::refund_request::CreateRefundRequest;
use crate::state::AppState;
use crate::store::Payment;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};

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
        if let Err(e) = crate::api::refund_request::precheck(&p, &request) {
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
