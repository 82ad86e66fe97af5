//! Business metrics: what happened to payments and refunds, in the terms the
//! people running a payment service ask about (how many paid, for how much,
//! how many the worker had to find, how late Finpay's word arrives).
//!
//! Every count is taken after the commit, from what the write path returned
//! ([`Applied`], built from the domain's `Effect`, or the row a guarded
//! update wrote): nothing here judges a payment again. Labels come from
//! closed sets (event, origin, status, outcome), so the series are few.
//! Amounts are whole rupiah (sen, rare in QRIS, are left out) as integer-valued
//! counters; a payment in another currency is counted, its amount is not.
//!
//! The state gauges (open payments by age, flagged payments waiting, whether
//! the database answers) come from [`state`](super::state), sampled by one
//! task on a timer rather than per scrape.

use super::Metrics;
use crate::domain::{Decision, Payment, PaymentStatus};
use crate::store::{Applied, RefundOutcome};
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;

pub(super) const HELP: &[(&str, &str, &str)] = &[
    (
        "finpay_qris_payments_total",
        "counter",
        "Payment events after commit, by event (created, paid, failed, cancelled, expired, refunded, flagged) and origin (generated, static).",
    ),
    (
        "finpay_qris_payments_rupiah_total",
        "counter",
        "Amounts of those payment events in whole rupiah, by event and origin.",
    ),
    (
        "finpay_qris_payments_settled_by_query_total",
        "counter",
        "Payments settled by a query to Finpay (the worker or a refresh) rather than by a notification, by status and origin: lost or late notifications.",
    ),
    (
        "finpay_qris_notification_delay_seconds",
        "histogram",
        "From Finpay's paidTime to our receipt of the notification that first stored it.",
    ),
    (
        "finpay_qris_refunds_total",
        "counter",
        "Finpay's answers to refund requests once stored, by outcome (succeeded, rejected, unknown: no usable answer).",
    ),
    (
        "finpay_qris_refunds_rupiah_total",
        "counter",
        "Amounts of those refunds in whole rupiah, by outcome.",
    ),
    (
        "finpay_qris_open_payments",
        "gauge",
        "Payments still waiting for Finpay's final word, by age since creation (sampled periodically).",
    ),
    (
        "finpay_qris_flagged_payments",
        "gauge",
        "Payments flagged for a person to look at (sampled periodically).",
    ),
    (
        "finpay_qris_flagged_payment_oldest_seconds",
        "gauge",
        "Seconds since the longest-waiting flagged payment last changed; 0 when none (sampled periodically).",
    ),
    (
        "finpay_qris_database_up",
        "gauge",
        "1 when the last periodic state query answered, 0 when it failed.",
    ),
];

/// Seconds from Finpay's `paidTime` to our receipt.
const DELAY_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0];

pub(super) fn buckets(name: &str) -> Option<&'static [f64]> {
    (name == "finpay_qris_notification_delay_seconds").then_some(DELAY_BUCKETS)
}

/// Where a payment came from, as labelled: a QR we had Finpay generate, or a
/// static QR whose payment we learnt from Finpay's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated,
    Static,
}

impl Origin {
    /// From the `payments.origin` column (`generated` or `notification`).
    pub fn of(column: &str) -> Self {
        if column == "generated" {
            Self::Generated
        } else {
            Self::Static
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Static => "static",
        }
    }
}

/// Whose word made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Notification,
    /// A query to Finpay: the worker's schedule or a refresh on read.
    Query,
    /// The service itself: the API creating a payment, a refused generation,
    /// expiry, a refund covering the amount.
    Local,
}

/// One committed change to one payment, as the write path reported it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub origin: Origin,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// `None`: the change created the payment.
    pub from: Option<PaymentStatus>,
    pub to: PaymentStatus,
    /// The change flagged the payment for a person.
    pub flagged: bool,
    pub via: Via,
}

impl<'a> Change<'a> {
    /// What an observation did, from the executors' report of its effect.
    pub fn of(a: &'a Applied, via: Via) -> Self {
        Self {
            origin: Origin::of(&a.origin),
            amount_minor: a.amount_minor,
            currency: &a.currency,
            from: a.from,
            to: a.to,
            flagged: matches!(
                &a.decision,
                Decision::Flagged { .. } | Decision::Transition { flag: Some(_), .. }
            ),
            via,
        }
    }

    /// A status change the service made itself, from `from` to `to`.
    pub fn local(p: &'a Payment, from: Option<PaymentStatus>, to: PaymentStatus) -> Self {
        Self {
            origin: Origin::of(&p.origin),
            amount_minor: p.amount_minor,
            currency: &p.currency,
            from,
            to,
            flagged: false,
            via: Via::Local,
        }
    }

    /// The `event` labels this change counts under.
    pub fn events(&self) -> impl Iterator<Item = &'static str> {
        let created = self.from.is_none().then_some("created");
        // A payment reaching a final status counts under that status's name.
        let moved = (self.from != Some(self.to) && !self.to.is_open()).then(|| self.to.as_str());
        let flagged = self.flagged.then_some("flagged");
        created.into_iter().chain(moved).chain(flagged)
    }
}

/// Whole rupiah of an amount in minor units; `None` for other currencies.
fn rupiah(amount_minor: i64, currency: &str) -> Option<u64> {
    (currency == crate::domain::payment::CURRENCY).then(|| u64::try_from(amount_minor / 100).unwrap_or(0))
}

impl Metrics {
    /// Business metrics are on unless switched off (`metrics.business`).
    pub fn set_business(&self, on: bool) {
        self.business_off.store(!on, Ordering::Relaxed);
    }

    fn business(&self) -> bool {
        !self.business_off.load(Ordering::Relaxed)
    }

    /// Counts one committed change to a payment.
    pub fn payment_changed(&self, c: &Change<'_>) {
        if !self.business() {
            return;
        }
        let origin = c.origin.as_str();
        let amount = rupiah(c.amount_minor, c.currency);
        for event in c.events() {
            let labels = [("event", event), ("origin", origin)];
            self.inc("finpay_qris_payments_total", &labels);
            if let Some(rp) = amount {
                self.add("finpay_qris_payments_rupiah_total", &labels, rp);
            }
        }
        if c.via == Via::Query && c.from.is_some_and(PaymentStatus::is_open) && !c.to.is_open() {
            self.inc(
                "finpay_qris_payments_settled_by_query_total",
                &[("status", c.to.as_str()), ("origin", origin)],
            );
        }
    }

    /// Notification delay: Finpay's `paidTime` (RFC 3339, as in its samples)
    /// to `received`. A time we cannot read, or one in our future (clock
    /// skew), is not observed.
    pub fn notification_delay(&self, paid_time: Option<&str>, received: DateTime<Utc>) {
        if !self.business() {
            return;
        }
        let Some(paid) = paid_time.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
            return;
        };
        let delay = received.signed_duration_since(paid).num_milliseconds();
        if delay >= 0 {
            self.observe("finpay_qris_notification_delay_seconds", &[], delay as f64 / 1000.0);
        }
    }

    /// Counts Finpay's answer to a refund, once it is stored.
    pub fn refund_answered(&self, outcome: &RefundOutcome, amount_minor: i64, currency: &str) {
        if !self.business() {
            return;
        }
        let label = match outcome {
            RefundOutcome::Succeeded { .. } => "succeeded",
            RefundOutcome::Rejected { .. } => "rejected",
            RefundOutcome::Unknown { .. } => "unknown",
        };
        self.inc("finpay_qris_refunds_total", &[("outcome", label)]);
        if let Some(rp) = rupiah(amount_minor, currency) {
            self.add("finpay_qris_refunds_rupiah_total", &[("outcome", label)], rp);
        }
    }
}

#[cfg(test)]
#[path = "business_tests.rs"]
mod tests;
