//! `/console/payments/{id or partnerReferenceNo}`: one payment's facts, its
//! QR code, its timeline, and the actions the signed-in role allows.

use super::session::Operator;
use super::timeline;
use super::view::{self, Nav};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::{Payment, Refund};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub notice: Option<String>,
}

/// What an action's redirect says; fixed texts, nothing from the request.
fn notice(code: &str) -> Option<&'static str> {
    match code {
        "refunded" => Some("Refund done: Finpay confirmed it. It is in the timeline below."),
        "refreshed" => Some("Asked Finpay: the payment below is as Finpay now reports it."),
        "resolved" => Some("Flag resolved: your note is in the timeline below."),
        "refund-settled" => Some("Refund settled as Finpay says: your note is in the timeline below."),
        "resent" => Some("Event resent: it is delivered again to every endpoint subscribed to it."),
        _ => None,
    }
}

/// The payment `id` names (our id or its partnerReferenceNo), or the page to answer.
pub async fn load(st: &AppState, id: &str) -> Result<Payment, Response> {
    crate::api::payments::find(st, id).await.map_err(|e| api_error_page(&e))
}

/// An API error as a console page, with its status and its own words,
/// naming the field at fault (`reason: 1 to 256 characters…`).
pub fn api_error_page(e: &ApiError) -> Response {
    let p = e.problem();
    let detail = p.detail.as_deref().unwrap_or(&p.title);
    let said = match &p.field {
        Some(field) if !detail.contains(field.as_str()) => format!("{field}: {detail}"),
        _ => detail.to_string(),
    };
    view::error_page(e.status(), &p.title, &said)
}

pub async fn page(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let p = match load(&st, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let store = &st.store;
    let (events, actions, notifications, refunds, pushed) = match tokio::try_join!(
        store.payment_events(&p.id),
        store.payment_actions(&p.id),
        store.payment_notifications(&p.id),
        store.list_refunds(&p.id),
        super::pushed::load(&st, &p.id),
    ) {
        Ok(all) => all,
        Err(e) => return view::store_error(&e),
    };
    let mut entries = timeline::entries(&events, &actions, &notifications);
    // Pushed events after what caused them (same time: the change comes first).
    entries.extend(pushed.entries());
    entries.sort_by_key(|e| (e.at, e.resend.is_some()));
    let said = q.ok().and_then(|Query(q)| q.notice).and_then(|n| notice(&n));
    let title = p.partner_reference_no.clone().unwrap_or_else(|| p.id.clone());
    let body = html! {
        p.crumbs { a href="/console/payments" { "Payments" } " / " (title) }
        h1 { "Payment " span.ref { (title) } " " (view::status(p.status)) }
        @if let Some(n) = said { p.notice.good role="status" { (n) } }
        @if let Some(flag) = &p.flagged {
            p.notice.warn role="alert" { strong { "⚑ Flagged for a person: " } (flag) }
        }
        div.columns {
            section.facts aria-labelledby="facts" {
                h2 #facts { "Facts" }
                (facts(&p))
            }
            @if let Some(img) = qr_image(&p) {
                section.qr aria-labelledby="qr" {
                    h2 #qr { "QR code" }
                    img src=(img) width="200" height="200" alt={"QR code of payment " (title)};
                }
            }
        }
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            (actions_panel(&op, &p))
        }
        @if !refunds.is_empty() {
            section aria-labelledby="refunds" {
                h2 #refunds { "Refunds" }
                (refunds_table(&refunds, &p, &op, in_flight_for(&st)))
            }
        }
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            (timeline::render(&entries, op.role.may_operate().then_some(op.csrf.as_str())))
        }
    };
    (
        StatusCode::OK,
        view::page(&format!("Payment {title}"), Some(&op), Nav::Payments, body),
    )
        .into_response()
}

fn facts(p: &Payment) -> Markup {
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "—".into());
    html! {
        dl.facts.wide {
            dt { "Amount" } dd.money { (view::money(p.amount_minor, &p.currency)) }
            dt { "Refunded or being refunded" } dd { (view::money(p.refunded_minor, &p.currency)) }
            dt { "Status" } dd { (view::status(p.status)) @if let Some(f) = &p.finpay_status { " (Finpay: " (f) ")" } }
            dt { "Our reference" } dd { (opt(&p.partner_reference_no)) }
            dt { "Finpay reference" } dd { (opt(&p.reference_no)) }
            dt { "Id" } dd { code { (p.id) } }
            dt { "Origin" } dd { (p.origin) }
            dt { "Created" } dd { (view::time(p.created_at)) }
            dt { "Paid" } dd { @match p.paid_at { Some(t) => (view::time(t)), None => "—" } }
            dt { "Valid until" } dd { @match p.valid_until { Some(t) => (view::time(t)), None => "—" } }
            dt { "Next check with Finpay" } dd { @match p.next_check_at { Some(t) => (view::time(t)), None => "—" } }
            @if let Some(n) = &p.note { dt { "Note" } dd { (n) } }
        }
    }
}

/// The QR code as an image (SVG in a `data:` URL, which the policy allows).
fn qr_image(p: &Payment) -> Option<String> {
    let content = p.qr_content.as_deref()?;
    let code = qrcode::QrCode::with_error_correction_level(content.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(true)
        .min_dimensions(200, 200)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

fn actions_panel(op: &Operator, p: &Payment) -> Markup {
    if !op.role.may_operate() {
        return html! {
            p.muted { "Your key \u{201c}" (op.name) "\u{201d} has the read role: it shows everything and changes nothing." }
        };
    }
    let id = &p.id;
    let left = p.refundable_minor();
    html! {
        div.actions {
            form.action method="post" action={"/console/payments/" (id) "/refresh"} {
                input type="hidden" name="csrf" value=(op.csrf);
                p { "Ask Finpay for this payment's status now." }
                button type="submit" { "Refresh from Finpay…" }
            }
            @if left > 0 {
                form.action method="post" action={"/console/payments/" (id) "/refund"} {
                    input type="hidden" name="csrf" value=(op.csrf);
                    p { "Refund all or part of it: up to " strong { (view::money(left, &p.currency)) } "." }
                    div.field {
                        label for="amount" { "Amount (Rp)" }
                        input #amount type="text" inputmode="decimal" name="amount" required
                            value=(whole_or_decimal(left));
                    }
                    div.field {
                        label for="reason" { "Reason (sent to Finpay)" }
                        input #reason type="text" name="reason" required maxlength="256";
                    }
                    button type="submit" { "Refund…" }
                }
            }
            @if p.flagged.is_some() {
                form.action method="post" action={"/console/payments/" (id) "/resolve"} {
                    input type="hidden" name="csrf" value=(op.csrf);
                    p { "Record what you checked and decided; the flag is then cleared." }
                    div.field {
                        label for="note" { "Note" }
                        input #note type="text" name="note" required maxlength="1000";
                    }
                    button type="submit" { "Resolve flag…" }
                }
            }
        }
    }
}

/// An amount as the refund field shows it: `25000`, or `25000,50`.
pub fn whole_or_decimal(minor: i64) -> String {
    if minor % 100 == 0 {
        (minor / 100).to_string()
    } else {
        format!("{},{:02}", minor / 100, minor % 100)
    }
}

/// How long a refund's call to Finpay may still be under way: its timeout,
/// retries included, with room to spare.
fn in_flight_for(st: &AppState) -> chrono::Duration {
    crate::finpay::FinpayClient::longest_call(&st.settings.finpay)
}

/// The payment's refunds; a pending one whose answer was lost (recorded as
/// unknown, or none after `in_flight`) offers to ask Finpay again under the
/// same refund number, and to settle it with what Finpay says (when asking
/// again proves nothing). One still being asked offers neither.
fn refunds_table(refunds: &[Refund], p: &Payment, op: &Operator, in_flight: chrono::Duration) -> Markup {
    let now = crate::store::now();
    let lost = |r: &Refund| r.updated_at > r.created_at || r.created_at + in_flight < now;
    let resumable = |r: &Refund| r.status == "pending" && op.role.may_operate() && lost(r);
    html! {
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Asked" } th scope="col" { "Our refund no." } th scope="col" { "Finpay reference" }
                    th scope="col" .num { "Amount" } th scope="col" { "Status" } th scope="col" { "Reason" }
                    @if refunds.iter().any(resumable) { th scope="col" { "Action" } }
                } }
                tbody {
                    @for r in refunds {
                        tr {
                            td { (view::time(r.created_at)) }
                            td.ref { (r.partner_refund_no) }
                            td.ref { (r.reference_no.as_deref().unwrap_or("—")) }
                            td.num { (view::money(r.amount_minor, &p.currency)) }
                            td { span class={"status " (refund_tone(&r.status))} { (r.status) } }
                            td { (r.reason) }
                            @if resumable(r) {
                                td {
                                    form method="post" action={"/console/payments/" (p.id) "/refund"} {
                                        input type="hidden" name="csrf" value=(op.csrf);
                                        // Its amount and reason are read from the refund itself.
                                        input type="hidden" name="partner_refund_no" value=(r.partner_refund_no);
                                        button type="submit" { "Ask Finpay again…" }
                                    }
                                    form method="post" action={"/console/payments/" (p.id) "/settle-refund"} {
                                        input type="hidden" name="csrf" value=(op.csrf);
                                        input type="hidden" name="refund_id" value=(r.id);
                                        select name="outcome" aria-label="What Finpay says" {
                                            option value="succeeded" { "Finpay made it" }
                                            option value="failed" { "Finpay did not" }
                                        }
                                        " "
                                        input type="text" name="note" required maxlength="1000"
                                            aria-label="How you checked" placeholder="How you checked";
                                        " "
                                        button type="submit" { "Settle…" }
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

fn refund_tone(status: &str) -> &'static str {
    match status {
        "succeeded" => "good",
        "failed" => "bad",
        _ => "wait",
    }
}
