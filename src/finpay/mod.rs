//! SNAP client for Finpay (placeholder until the client lands).

use crate::config::{FinpayCredentials, FinpaySettings};
use crate::metrics::Metrics;
use std::sync::Arc;

pub struct FinpayClient {
    pub creds: FinpayCredentials,
    pub settings: FinpaySettings,
    pub metrics: Arc<Metrics>,
}

impl FinpayClient {
    pub fn new(creds: FinpayCredentials, settings: &FinpaySettings, metrics: Arc<Metrics>) -> Self {
        Self { creds, settings: settings.clone(), metrics }
    }
}
