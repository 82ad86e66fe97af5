//! The internal REST API over HTTP, on both backends: auth, validation and
//! the problem shape, reads and pagination, QR images, idempotency, and
//! creation and refunds against the Finpay simulator.

pub mod support;

mod auth;
mod create;
mod generate;
mod openapi;
mod reads;
mod refunds;
mod sim_control;
