//! Payment domain types shared by the receiver, the worker and the API.

pub mod observation;
pub mod status;

pub use observation::{Observation, ObservationSource};
pub use status::{decide, Decision, PaymentStatus};
