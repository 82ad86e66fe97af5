//! Payment events over HTTP: delivery to a receiver, signatures checked by
//! the Standard Webhooks reference library, retries, redirects, disabling,
//! resending, the event list and the changes feed.

mod atomic;
mod changes;
mod crash;
mod delivery;
mod leases;
mod listen;
mod parked;
mod paths;
pub(crate) mod receiver;
mod replicas;
