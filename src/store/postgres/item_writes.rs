//! The reference executor's statements on PostgreSQL (`store/item_by_item.rs`):
//! the set-based executor's fallback, and the oracle its differential test
//! holds it to.

use super::{PgStore, PAYMENT_COLUMNS};
use crate::domain::{Cause, Effect, EventType, Observation, Payment};
use crate::store::item_by_item::{self, ItemWrites};
use crate::store::sql_effect::{payments_named_sql, stored_hashes_sql, INSERT_NOTIFICATION};
use crate::store::{InboundNotification, IngestOutcome, Result, StoreError, StoredKey};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;

impl PgStore {
    /// A batch stored item by item, in one transaction.
    pub async fn ingest_item_by_item(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        item_by_item::ingest(&mut PgItemWrites { store: self, tx: None }, batch).await
    }
}

struct PgItemWrites<'s> {
    store: &'s PgStore,
    tx: Option<Transaction<'static, Postgres>>,
}

impl PgItemWrites<'_> {
    fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>> {
        self.tx
            .as_mut()
            .ok_or(StoreError::Invalid("no transaction is open".into()))
    }
}

impl ItemWrites for PgItemWrites<'_> {
    async fn begin(&mut self) -> Result<()> {
        self.tx = Some(self.store.begin().await?);
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        match self.tx.take() {
            Some(tx) => Ok(tx.commit().await?),
            None => Ok(()),
        }
    }

    async fn rollback(&mut self) -> Result<()> {
        match self.tx.take() {
            Some(tx) => Ok(tx.rollback().await?),
            None => Ok(()),
        }
    }

    async fn stored_hashes(&mut self, batch: &[InboundNotification]) -> Result<HashMap<StoredKey, Vec<u8>>> {
        let sql = stored_hashes_sql(batch.len());
        // Statements of every size: not kept prepared, so they do not push the hot ones out.
        let mut q = sqlx::query_as::<_, (String, String, NaiveDate, Vec<u8>)>(&sql).persistent(false);
        for n in batch {
            q = q.bind(&n.partner_id).bind(&n.external_id).bind(n.jakarta_day);
        }
        let rows = q.fetch_all(&mut **self.tx()?).await?;
        Ok(rows.into_iter().map(|(p, e, d, h)| ((p, e, d), h)).collect())
    }

    async fn payments_named(&mut self, obs: &Observation) -> Result<Vec<Payment>> {
        let sql = payments_named_sql(PAYMENT_COLUMNS, PgStore::FOR_UPDATE);
        Ok(sqlx::query_as(&sql)
            .bind(obs.original_partner_reference_no.as_deref())
            .bind(obs.original_reference_no.as_deref())
            .fetch_all(&mut **self.tx()?)
            .await?)
    }

    async fn write_payment(&mut self, e: &Effect, judged_on: Option<&Payment>) -> Result<()> {
        PgStore::write_payment(self.tx()?, e, judged_on).await
    }

    async fn insert_notification(&mut self, n: &InboundNotification, e: &Effect) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(INSERT_NOTIFICATION)
            .bind(&n.partner_id)
            .bind(&n.external_id)
            .bind(n.jakarta_day)
            .bind(&n.body_sha256)
            .bind(&n.raw_body)
            .bind(Json(n.headers()?))
            .bind(&n.verification)
            .bind(&e.payment.id)
            .bind(e.outcome.as_str())
            .bind(n.received_at)
            .fetch_optional(&mut **self.tx()?)
            .await?)
    }

    async fn insert_entries(&mut self, e: &Effect, notification_id: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        PgStore::insert_entries(self.tx()?, e, notification_id, at).await
    }

    async fn raise(&mut self, payment: &Payment, types: &[EventType], cause: Cause, at: DateTime<Utc>) -> Result<()> {
        PgStore::raise(self.tx()?, payment, types, cause, at, None).await
    }
}
