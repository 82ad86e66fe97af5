//! What one observation does to one payment: the single definition that
//! every path storing a notification or a query answer applies.
//!
//! [`effect`] is pure: given the payments the observation's references name
//! (as stored, locked by the caller) and the observation, it returns the
//! payment as it must be written, the outcome, and the audit entries in the
//! order they are recorded. The executors in `store` only read, call this, and
//! write what it returns; none of them decides anything.

use super::events::{raised, EventType};
use super::payment::CURRENCY;
use super::status::{format_minor, REFUNDED_UNSEEN};
use super::{decide, Decision, Observation, Payment, PaymentStatus};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The payments an observation's two references name, as stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Found<'a> {
    /// The payment whose `partnerReferenceNo` (ours) is `originalPartnerReferenceNo`.
    pub by_partner_reference: Option<&'a Payment>,
    /// The payment whose `referenceNo` (Finpay's) is `originalReferenceNo`.
    pub by_reference: Option<&'a Payment>,
}

/// What an observation did to its payment; stored with the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Unchanged,
    Ignored,
    Flagged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Ignored => "ignored",
            Self::Flagged => "flagged",
        }
    }

    pub fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Transition { .. } => Self::Applied,
            Decision::Unchanged => Self::Unchanged,
            Decision::Ignored { .. } => Self::Ignored,
            Decision::Flagged { .. } => Self::Flagged,
        }
    }
}

/// One entry of a payment's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: &'static str,
    pub detail: Value,
}

#[derive(Debug, Clone)]
pub struct Effect {
    /// The payment after the observation.
    pub payment: Payment,
    /// The status it was judged on; `None` when the observation created it
    /// (static QR): insert it.
    pub from: Option<PaymentStatus>,
    /// The stored row differs from `payment`: update it.
    pub changed: bool,
    pub decision: Decision,
    pub outcome: Outcome,
    /// The observation's own entry first, then what it caused.
    pub entries: Vec<Entry>,
    /// What the merchant's systems are told (`events::raised`).
    pub events: Vec<EventType>,
}

/// An observation that names no payment and cannot create one: refused, not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Refusal {
    /// The SNAP field at fault, for `4005201 Invalid Field Format {field}`.
    pub field: &'static str,
    pub reason: String,
}

/// Judges `obs` against the payments its references name.
///
/// `own` is the detail of the observation's own audit entry; `new_id` gives
/// the id of a payment learnt from a notification, created `now`.
pub fn effect(
    found: Found<'_>,
    obs: &Observation,
    own: Value,
    now: DateTime<Utc>,
    new_id: impl FnOnce(DateTime<Utc>) -> String,
) -> Result<Effect, Refusal> {
    let by = obs.source.as_str();
    let mut entries = vec![Entry { kind: by, detail: own }];
    let Some(stored) = found.by_partner_reference.or(found.by_reference) else {
        let payment = learnt(obs, now, new_id(now))?;
        entries.push(Entry {
            kind: "created",
            detail: json!({"from": by, "status": payment.status.as_str(), "finpayStatus": obs.status.code(),
                           "flag": payment.flagged}),
        });
        let decision = Decision::Transition {
            to: payment.status,
            flag: payment.flagged.clone(),
        };
        return Ok(Effect {
            payment,
            from: None,
            changed: true,
            events: raised(None, &decision),
            decision,
            outcome: Outcome::Applied,
            entries,
        });
    };

    let mut payment = stored.clone();
    let decision = match contradiction(found, stored, obs) {
        Some(reason) => already_flagged(stored, Decision::Flagged { reason }),
        None => {
            if payment.reference_no.is_none() {
                payment.reference_no = obs.original_reference_no.clone();
            }
            let decision = decide(
                stored.status,
                (stored.amount_minor, stored.currency.as_str()),
                obs.status,
                obs.amount.as_ref().map(|a| (a.minor, a.currency.as_str())),
            );
            already_flagged(stored, refunded_elsewhere(stored, decision))
        }
    };
    match &decision {
        Decision::Transition { to, flag } => {
            payment.status = *to;
            payment.finpay_status = Some(obs.status.code().to_string());
            if *to == PaymentStatus::Paid {
                payment.paid_at = payment.paid_at.or(Some(obs.paid_at(stored.created_at, now)));
            }
            if flag.is_some() {
                payment.flagged = flag.clone();
            }
            if !to.is_open() {
                payment.next_check_at = None;
            }
            payment.updated_at = now;
            entries.push(Entry {
                kind: "status_changed",
                detail: status_change_detail(stored.status, *to, by, flag.as_deref()),
            });
        }
        Decision::Flagged { reason } => {
            payment.flagged = Some(reason.clone());
            payment.updated_at = now;
            entries.push(Entry {
                kind: "flagged",
                detail: json!({"reason": reason, "by": by}),
            });
        }
        Decision::Ignored { reason } => entries.push(Entry {
            kind: "ignored",
            detail: json!({"reason": reason, "by": by}),
        }),
        Decision::Unchanged => {}
    }
    Ok(Effect {
        changed: !same_row(&payment, stored),
        payment,
        from: Some(stored.status),
        outcome: Outcome::of(&decision),
        events: raised(Some(stored.status), &decision),
        decision,
        entries,
    })
}

impl Effect {
    /// The payment did not exist: it is inserted, not updated.
    pub fn created(&self) -> bool {
        self.from.is_none()
    }
}

/// The detail of a `status_changed` entry, on every path that changes a status.
pub fn status_change_detail(from: PaymentStatus, to: PaymentStatus, by: &str, flag: Option<&str>) -> Value {
    json!({"from": from.as_str(), "to": to.as_str(), "by": by, "flag": flag})
}

/// A reconciliation attempt is over: count it, give the lease back, and ask
/// again at `next` while the payment is still open.
pub fn record_check(payment: &mut Payment, next: Option<DateTime<Utc>>) {
    payment.check_attempts += 1;
    payment.lease_owner = None;
    payment.lease_until = None;
    payment.next_check_at = next.filter(|_| payment.status.is_open());
}

/// A payment we never generated (static QR), learnt from Finpay's word.
fn learnt(obs: &Observation, now: DateTime<Utc>, id: String) -> Result<Payment, Refusal> {
    let amount = obs.amount.as_ref().ok_or(Refusal {
        field: "amount",
        reason: "a payment we do not know needs an amount".into(),
    })?;
    if amount.minor <= 0 {
        return Err(Refusal {
            field: "amount.value",
            reason: "a payment we do not know cannot be created with a zero amount".into(),
        });
    }
    let status = PaymentStatus::from_finpay(obs.status).ok_or_else(|| Refusal {
        field: "latestTransactionStatus",
        reason: format!(
            "status {} names no payment state, and no payment has these references",
            obs.status.code()
        ),
    })?;
    Ok(Payment {
        id,
        partner_reference_no: obs.original_partner_reference_no.clone(),
        reference_no: obs.original_reference_no.clone(),
        amount_minor: amount.minor,
        currency: amount.currency.clone(),
        status,
        origin: "notification".into(),
        qr_content: None,
        qr_url: None,
        note: None,
        valid_until: None,
        paid_at: (status == PaymentStatus::Paid).then(|| obs.paid_at(now, now)),
        refunded_minor: 0,
        // Stored as Finpay said, for a person to look at: never taken silently.
        flagged: (amount.currency != CURRENCY)
            .then(|| {
                format!(
                    "currency {} is not {CURRENCY}, the currency of QRIS payments",
                    amount.currency
                )
            })
            .or_else(|| (status == PaymentStatus::Refunded).then(|| REFUNDED_UNSEEN.to_string())),
        finpay_status: Some(obs.status.code().to_string()),
        created_at: now,
        updated_at: now,
        next_check_at: status.is_open().then_some(now),
        check_attempts: 0,
        lease_owner: None,
        lease_until: None,
    })
}

/// The observation's references point at two payments, or at one whose
/// other reference is a different one: it cannot be applied to either.
fn contradiction(found: Found<'_>, p: &Payment, obs: &Observation) -> Option<String> {
    let two = match (found.by_partner_reference, found.by_reference) {
        (Some(a), Some(b)) => a.id != b.id,
        _ => false,
    };
    let differs =
        |ours: &Option<String>, theirs: &Option<String>| matches!((ours, theirs), (Some(a), Some(b)) if a != b);
    if two
        || differs(&p.partner_reference_no, &obs.original_partner_reference_no)
        || differs(&p.reference_no, &obs.original_reference_no)
    {
        Some(format!(
            "references contradict: originalPartnerReferenceNo {:?} and originalReferenceNo {:?} do not name the same payment",
            obs.original_partner_reference_no.as_deref().unwrap_or(""),
            obs.original_reference_no.as_deref().unwrap_or("")
        ))
    } else {
        None
    }
}

/// Finpay's word that a paid payment is refunded while the refunds asked here
/// do not cover its amount: the rest was refunded elsewhere (Finpay's own
/// dashboard, say), which `refundedAmount` cannot show, so a person is asked
/// to look.
fn refunded_elsewhere(stored: &Payment, decision: Decision) -> Decision {
    match decision {
        Decision::Transition {
            to: PaymentStatus::Refunded,
            flag: None,
        } if stored.status == PaymentStatus::Paid
            && stored.refunded_minor < stored.amount_minor
            // An open flag already asks a person to look: it is kept, not replaced.
            && stored.flagged.is_none() =>
        {
            Decision::Transition {
                to: PaymentStatus::Refunded,
                flag: Some(refunded_elsewhere_reason(stored.refunded_minor, stored.amount_minor)),
            }
        }
        other => other,
    }
}

/// A contradiction the payment is already flagged for tells nobody anything
/// new (Finpay resends a notification; the worker asks again about a flagged
/// open payment): the payment keeps its flag and the time it was flagged, and
/// no second `payment.flagged` is raised. The observation's own entry still
/// records what was said.
fn already_flagged(stored: &Payment, decision: Decision) -> Decision {
    match decision {
        Decision::Flagged { reason } if stored.flagged.as_deref() == Some(reason.as_str()) => Decision::Unchanged,
        other => other,
    }
}

/// Why a refunded payment whose refunds asked here cover `refunded_minor` of
/// `amount_minor` is flagged.
pub(super) fn refunded_elsewhere_reason(refunded_minor: i64, amount_minor: i64) -> String {
    format!(
        "refunded by Finpay, but the refunds asked here cover {} of {}; check what happened",
        format_minor(refunded_minor),
        format_minor(amount_minor)
    )
}

/// The columns an observation may change, compared.
fn same_row(a: &Payment, b: &Payment) -> bool {
    a.status == b.status
        && a.reference_no == b.reference_no
        && a.finpay_status == b.finpay_status
        && a.paid_at == b.paid_at
        && a.flagged == b.flagged
        && a.next_check_at == b.next_check_at
        && a.updated_at == b.updated_at
}

#[cfg(test)]
#[path = "effect_tests.rs"]
pub(super) mod tests;
