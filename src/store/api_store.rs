//! Storage for the internal REST API: refunds and idempotency keys.
//! A supertrait of [`Store`](super::Store), so `dyn Store` offers these too.

use async_trait::async_trait;

#[async_trait]
pub trait ApiStore: Send + Sync + 'static {}
