//! Reconciliation worker (placeholder until it lands).

use crate::state::AppState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn spawn(_state: AppState, _cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    Vec::new()
}
