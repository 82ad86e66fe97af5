//! The SNAP (Bank Indonesia / ASPI Open API) protocol core: body hashing, strings to
//! sign, HMAC-SHA512 and SHA256withRSA signatures, `X-TIMESTAMP` handling, response
//! codes and notify-body parsing.
//!
//! Everything here is pure: no I/O, no clock reads (callers pass `now`), no web
//! framework types. HTTP handlers and the Finpay client call into this module; it
//! never calls them, so it can be tested against the vectors of `docs/protocol.md`.

pub mod body;
pub mod codes;
pub mod doctor;
pub mod json;
pub mod keys;
pub mod notify;
pub mod signature;
pub mod timestamp;

#[cfg(test)]
mod test_vectors;

pub use body::{body_hash, minify};
pub use codes::{parse_code, service, ParsedCode, SnapStatus};
pub use keys::{generate_private_key, parse_private_key, parse_public_key, private_key_pem, public_key_pem, KeyError};
pub use notify::{
    check_channel_id, check_external_id, check_partner_id, parse_notify, Amount, FieldError, NotifyBody,
    TransactionStatus,
};
pub use signature::{
    asymmetric_string_to_sign, rsa_sign, rsa_verify, rsa_verify_any, symmetric_string_to_sign, token_string_to_sign,
    HmacKey,
};
pub use timestamp::{check_skew, format_jakarta, jakarta_day, parse as parse_timestamp, Skew, TimestampError};
