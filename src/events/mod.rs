//! Payment events for the merchant's systems, delivered as signed webhooks.
//!
//! - [`payload`]: the body of an event (the API's payment representation);
//! - [`signing`]: Standard Webhooks v1 secrets, signatures and verification;
//! - [`schedule`]: when a failed delivery is tried again;
//! - [`target`]: which URLs may receive events (scheme, private networks);
//! - [`delivery`]: the sender loop.
//!
//! The events themselves are decided by `domain::events` and written by the
//! store in the transaction of each change (the outbox).

pub mod payload;
