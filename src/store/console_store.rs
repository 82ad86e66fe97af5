//! Storage for the operator console: sessions, the actions people take on
//! payments, flag resolutions, and the reads of the console's pages and the
//! finance export. A supertrait of [`Store`](super::Store).
//!
//! A session is found and extended by one guarded update (`… WHERE
//! expires_at > now`), so an expired session can never be revived, whichever
//! replica sees the request.

use super::{Payment, Refund, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What a person did to a payment, with who did it (an API key's name).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct PaymentAction {
    pub id: i64,
    pub payment_id: String,
    pub actor: String,
    /// `refund`, `refresh`, `resolve_flag` or `resend_event`.
    pub action: String,
    #[sqlx(json)]
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A stored notification as the console shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredNotification {
    pub id: i64,
    pub external_id: String,
    /// `None` once retention cleared it.
    pub raw_body: Option<String>,
    pub verification: String,
    pub outcome: String,
    pub received_at: DateTime<Utc>,
}

/// Payments of one status in a period.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusTotal {
    pub status: String,
    pub count: i64,
    pub amount_minor: i64,
}

/// The sum of the rupiah amounts (`currency = {currency}`) of a group, in two
/// columns that cannot overflow: the amounts' billions and their remainders.
/// One sum of amounts can (a day of the largest payments the API accepts
/// passes `i64::MAX` minor units, and both databases then fail the query).
pub fn rupiah_sums(currency: &str) -> String {
    let amount = format!("CASE WHEN currency = {currency} THEN amount_minor ELSE 0 END");
    format!(
        "CAST(COALESCE(SUM(({amount}) / {SPLIT}), 0) AS BIGINT), CAST(COALESCE(SUM(({amount}) % {SPLIT}), 0) AS BIGINT)"
    )
}

const SPLIT: i64 = 1_000_000_000;

/// The two columns of `rupiah_sums` as one amount, held at `i64::MAX` (92
/// quadrillion rupiah) rather than wrapping.
pub fn joined_sum(high: i64, low: i64) -> i64 {
    let exact = i128::from(high) * i128::from(SPLIT) + i128::from(low);
    i64::try_from(exact).unwrap_or(i64::MAX)
}

/// One hour: notifications received and amount paid (hours since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourTotals {
    pub hour: i64,
    pub notifications: i64,
    pub paid_minor: i64,
}

/// The reconciliation backlog: open payments the worker checks, how many of
/// them are due now, and the earliest scheduled check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub open: i64,
    pub due: i64,
    pub earliest: Option<DateTime<Utc>>,
}

/// A refund with the references of its payment, for the export.
#[derive(Debug, Clone)]
pub struct ExportRefund {
    pub refund: Refund,
    pub partner_reference_no: Option<String>,
    pub payment_reference_no: Option<String>,
    pub currency: String,
}

/// A paid payment for the export, with the body of the notification that
/// paid it (where Finpay states its fee) while retention keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportPayment {
    #[sqlx(flatten)]
    pub payment: Payment,
    pub paid_body: Option<String>,
}

/// One line of the finance export.
#[derive(Debug, Clone)]
pub enum ExportRow {
    /// A payment paid in the period.
    Payment(Box<ExportPayment>),
    /// A refund asked in the period.
    Refund(Box<ExportRefund>),
}

#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    // ---- sessions (only the SHA-256 of a session token is stored) ----
    async fn create_session(
        &self,
        token_sha256: &[u8],
        key_name: &str,
        key_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The key (name, id) of a session still alive at `now`, which now lasts
    /// until `expires_at`; `None` when it expired or never existed.
    async fn touch_session(
        &self,
        token_sha256: &[u8],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(String, String)>>;
    async fn delete_session(&self, token_sha256: &[u8]) -> Result<()>;
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    // ---- what people did ----
    async fn record_action(
        &self,
        payment_id: &str,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<()>;
    /// A payment's actions, oldest first.
    async fn payment_actions(&self, payment_id: &str) -> Result<Vec<PaymentAction>>;
    /// Clears the payment's flag and records who resolved it, with the note
    /// and the flag's reason, in one transaction. `None`: not flagged (any
    /// more, or not found).
    async fn resolve_flag(&self, payment_id: &str, actor: &str, note: &str) -> Result<Option<Payment>>;

    // ---- reads of the console ----
    /// A payment's stored notifications, oldest first.
    async fn payment_notifications(&self, payment_id: &str) -> Result<Vec<StoredNotification>>;
    /// Payments created in `[from, to)`, by status.
    async fn status_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusTotal>>;
    /// Notifications received and amounts paid in `[from, to)`, per hour
    /// (hours without either are absent).
    async fn hourly_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<HourTotals>>;
    async fn reconciliation_backlog(&self, now: DateTime<Utc>) -> Result<Backlog>;
    /// Sends the payments paid in `[from, to)`, then the refunds asked in it,
    /// each in time order, as the database returns them: memory stays
    /// bounded by the channel. Stops early when the receiver is gone.
    async fn export(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: tokio::sync::mpsc::Sender<ExportRow>,
    ) -> Result<()>;
}
