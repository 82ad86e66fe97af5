//! What every handler and task shares.

use crate::config::{InboundCredentials, Settings};
use crate::inbound::batcher::Batcher;
use crate::inbound::issued::RecentTokens;
use crate::inbound::journal::Journal;
use crate::inbound::tokens::TokenCache;
use crate::metrics::Metrics;
use crate::store::Store;
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    /// `None`: the SNAP endpoints are disabled (no inbound credentials).
    pub inbound: Option<InboundCredentials>,
    pub tokens: TokenCache,
    /// Tokens issued lately, in memory only, for the signature doctor.
    pub recent_tokens: Arc<RecentTokens>,
    /// Where refused requests go (written in the background).
    pub journal: Journal,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    /// `None`: no Finpay credentials; calls to Finpay are unavailable.
    pub finpay: Option<Arc<crate::finpay::FinpayClient>>,
    /// Poked after notifications are stored, so the event sender need not
    /// wait for its poll interval.
    pub events_wakeup: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
