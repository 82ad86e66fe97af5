//! The integration tests, in one binary (one link of the crate instead of
//! one per file): a module per area, each on both storage backends where
//! storage is involved.

#[macro_use]
mod common;

mod api;
mod cli;
mod connections;
mod console;
mod crash;
mod dashboard;
mod events;
mod finpay_client;
mod hostile;
mod metrics;
mod notify;
mod ops;
mod outage;
mod reconcile;
mod reconcile_replicas;
mod refusals;
mod replicas;
mod set_based_ingest;
mod sqlite_writer;
mod test_databases;
mod traces;
