//! finpay-qris: a merchant-side service for Finpay's SNAP QRIS API.
//!
//! - [`snap`]: the SNAP protocol, pure (no I/O).
//! - [`inbound`]: what Finpay calls: B2B token and `qr-mpm-notify`.
//! - [`finpay`]: what we call at Finpay; [`worker`]: reconciliation.
//! - [`api`]: the internal REST API; [`store`]: PostgreSQL and SQLite.
//! - [`doctor`]: `finpay-qris doctor`, explaining refused signatures.

pub mod api;
pub mod app;
pub mod check_config;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod doctor;
pub mod domain;
pub mod events;
pub mod finpay;
pub mod inbound;
pub mod loadgen;
pub mod metrics;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod snap;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod worker;

pub use app::Application;
pub use config::Settings;
