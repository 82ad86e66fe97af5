//! Storage for the internal REST API: idempotency keys, payments created
//! through the API, and refunds. A supertrait of [`Store`](super::Store), so
//! `dyn Store` offers these too.
//!
//! The invariants live in SQL: an idempotency key is claimed by
//! `INSERT … ON CONFLICT DO NOTHING` (one winner among concurrent retries);
//! a refund reserves its amount with a guarded
//! `UPDATE payments SET refunded_minor = refunded_minor + $amt WHERE … AND
//! refunded_minor + $amt <= amount_minor` in the transaction that inserts it,
//! so concurrent refunds can never add up to more than the payment.

use super::{NewPayment, Payment, Result};
use crate::domain::PaymentStatus;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Names one idempotency key: `scope` is the API key and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRef {
    pub scope: String,
    pub key: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// This request owns the key until `locked_until`. `resource_id` is the
    /// payment or refund an earlier, unfinished attempt created: resume it.
    Claimed { resource_id: Option<String> },
    /// The request already ran to completion: answer exactly this.
    Completed { status_code: u16, body: String },
    /// Another request holds the key right now.
    InProgress,
    /// The key was used with another request body.
    Mismatch,
}

/// The columns a [`Refund`] is read from.
pub(crate) const REFUND_COLUMNS: &str =
    "id, payment_id, partner_refund_no, amount_minor, reason, status, reference_no, response_code, created_at, updated_at";

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub partner_refund_no: String,
    pub amount_minor: i64,
    pub reason: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub reference_no: Option<String>,
    pub response_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: String,
    pub payment_id: String,
    pub partner_refund_no: String,
    pub amount_minor: i64,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// The result of trying to reserve a refund's amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundReservation {
    /// Amount reserved, refund stored as `pending`: now ask Finpay.
    Reserved(Refund),
    /// A refund with this `partnerRefundNo` exists already (nothing reserved).
    Existing(Refund),
    PaymentNotFound,
    /// Only paid payments can be refunded.
    NotRefundable {
        status: PaymentStatus,
    },
    /// The payment is flagged for a person (`reason`): no refund until its
    /// flag is resolved.
    Flagged {
        reason: String,
    },
    /// The amount is more than what is left to refund.
    ExceedsRefundable {
        refundable_minor: i64,
    },
}

/// What Finpay said to a refund.
#[derive(Debug, Clone)]
pub enum RefundOutcome {
    Succeeded {
        reference_no: Option<String>,
        response_code: Option<String>,
        /// Who settled it, and how they know, when a person did.
        message: Option<String>,
    },
    /// A definite refusal: the reservation is released.
    Rejected {
        response_code: Option<String>,
        message: String,
    },
    /// No usable answer (timeout, 5xx): the refund stays pending and keeps its
    /// reservation until someone finds out what happened.
    Unknown { reason: String },
}

#[async_trait]
pub trait ApiStore: Send + Sync + 'static {
    // ---- idempotency keys ----
    /// Claims `(scope, key)` for a request whose canonical body hashes to
    /// `request_sha256`, or reports who has it. A claim whose lock expired
    /// (its holder crashed or gave up) is taken over.
    async fn idempotency_claim(
        &self,
        key: &IdempotencyRef,
        request_sha256: &[u8],
        locked_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim>;
    /// Stores the final answer; later requests with the key get it verbatim.
    async fn idempotency_complete(&self, key: &IdempotencyRef, status_code: u16, body: &str) -> Result<()>;
    /// Gives the key up without an answer (the outcome is not known yet):
    /// unlocked, so that a retry with the same body resumes the resource it
    /// names (or starts afresh if none), and still bound to its body: the
    /// request may have acted on a resource it did not create (an existing
    /// `partnerReferenceNo`), so another body under the key stays refused.
    async fn idempotency_release(&self, key: &IdempotencyRef) -> Result<()>;
    /// Deletes the keys created before `before` that no request holds (answered or given up).
    async fn purge_idempotency(&self, before: DateTime<Utc>) -> Result<u64>;

    // ---- payments created through the API ----
    /// Inserts a `pending` payment (with its `created` event) before Finpay is
    /// asked for the QR, scheduled for a first check at `next_check_at` (the
    /// API always gives one, so a crash before the answer is stored still gets
    /// reconciled), and names it on the idempotency key, all in one
    /// transaction. A taken `partnerReferenceNo` is
    /// [`StoreError::Conflict`](super::StoreError::Conflict).
    async fn create_api_payment(
        &self,
        p: &NewPayment,
        next_check_at: Option<DateTime<Utc>>,
        idempotency: Option<&IdempotencyRef>,
    ) -> Result<Payment>;
    /// Finpay definitely refused `send`, the first generate: `pending` →
    /// `failed` (guarded; only a payment without a QR), with an event.
    /// `None` when the payment was no longer in that state, or when a later
    /// send took over after this one's hold ran out (its answer decides).
    async fn fail_generation(&self, payment_id: &str, send: i32, detail: &serde_json::Value)
        -> Result<Option<Payment>>;
    /// Takes an open generated payment without a QR for one generate at
    /// Finpay until `until`: the number of this send (1 for the first), or
    /// `None` when it has its QR, is no longer open, or another send is under
    /// way. Storing the answer (`attach_generated`, `fail_generation`,
    /// `generation_unknown`) releases it.
    async fn claim_generate_send(
        &self,
        payment_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<i32>>;
    /// The generate outcome is unknown: record it and have the worker ask
    /// Finpay at `next_check_at`. The hold ends only while it is still that
    /// of `send` (the number its claim gave), as `complete_refund`'s.
    async fn generation_unknown(
        &self,
        payment_id: &str,
        send: i32,
        next_check_at: DateTime<Utc>,
        detail: &serde_json::Value,
    ) -> Result<()>;

    // ---- refunds ----
    /// Reserves the amount and stores the refund as `pending` in one
    /// transaction (see the module docs), naming it on the idempotency key.
    async fn reserve_refund(&self, r: &NewRefund, idempotency: Option<&IdempotencyRef>) -> Result<RefundReservation>;
    /// Records Finpay's answer on a pending refund: success (and `paid` →
    /// `refunded` once the successful refunds cover the amount), rejection
    /// (the reservation is released) or unknown (stays pending). A refund no
    /// longer pending is returned unchanged.
    ///
    /// `send` is the number the answered send's claim gave
    /// (`claim_refund_send`): an unknown outcome ends the hold only while it
    /// is still that send's, so a send whose hold ran out cannot end the
    /// hold of the send that took over.
    async fn complete_refund(&self, refund_id: &str, send: i32, outcome: &RefundOutcome) -> Result<Refund>;
    /// Takes a pending refund for one send to Finpay until `until`: the
    /// number of this send (1 for the first), or `None` when it is no longer
    /// pending or another send is under way.
    async fn claim_refund_send(&self, refund_id: &str, now: DateTime<Utc>, until: DateTime<Utc>)
        -> Result<Option<i32>>;
    async fn get_refund(&self, refund_id: &str) -> Result<Option<Refund>>;
    async fn find_refund_by_partner_no(&self, partner_refund_no: &str) -> Result<Option<Refund>>;
    /// A payment's refunds, oldest first.
    async fn list_refunds(&self, payment_id: &str) -> Result<Vec<Refund>>;
}
