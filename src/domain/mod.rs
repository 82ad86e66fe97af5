//! Payment domain: the state machine, what Finpay's word does to a payment,
//! the moves the service makes on its own, and the types the receiver, the
//! worker and the API share. No I/O.

pub mod effect;
pub mod events;
pub mod observation;
pub mod own_moves;
pub mod payment;
pub mod status;

pub use effect::{effect, record_check, status_change_detail, Effect, Entry, Found, Outcome, Refusal};
pub use events::{Cause, EventType};
pub use observation::{Observation, ObservationSource};
pub use payment::Payment;
pub use status::{decide, Decision, PaymentStatus};
