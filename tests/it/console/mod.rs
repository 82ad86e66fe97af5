//! The operator console and what it added to the REST API: key roles,
//! sessions and CSRF, escaping, flag resolution, the finance export, refused
//! requests and sign-in throttling; and the
//! console driven in a real browser (`browser`).

pub(crate) mod support;

mod actions;
mod browser;
mod deliveries;
mod export;
mod flags;
mod indexes;
mod pages;
mod refused;
mod roles;
mod sessions;
mod webdriver;
