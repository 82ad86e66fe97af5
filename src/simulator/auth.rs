//! How the simulated Finpay authenticates the merchant: the RSA-signed token
//! request, then bearer token + HMAC-SHA512 signature on every transaction,
//! with SNAP's answer for each kind of failure.

use super::state::Sim;
use crate::snap::codes::SnapStatus;
use crate::snap::notify::{check_channel_id, check_external_id};
use crate::snap::{body_hash, rsa_verify, symmetric_string_to_sign, timestamp, token_string_to_sign};
use axum::http::HeaderMap;
use chrono::Utc;

fn header<'a>(headers: &'a HeaderMap, name: &str, svc: u8) -> Result<&'a str, SnapStatus> {
    match headers.get(name).map(|v| v.to_str()) {
        None => Err(SnapStatus::invalid_mandatory_field(svc, name)),
        Some(Ok(v)) if !v.trim().is_empty() => Ok(v),
        Some(Ok(_)) => Err(SnapStatus::invalid_mandatory_field(svc, name)),
        Some(Err(_)) => Err(SnapStatus::invalid_field_format(svc, name)),
    }
}

fn json_content_type(headers: &HeaderMap, svc: u8) -> Result<(), SnapStatus> {
    let ct = header(headers, "Content-Type", svc)?;
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(SnapStatus::invalid_field_format(svc, "Content-Type"))
    }
}

/// `X-TIMESTAMP`: well-formed, and within the tolerance of our clock.
fn fresh_timestamp<'a>(sim: &Sim, headers: &'a HeaderMap, svc: u8) -> Result<&'a str, SnapStatus> {
    let ts = header(headers, "X-TIMESTAMP", svc)?;
    let parsed = timestamp::parse(ts).map_err(|_| SnapStatus::invalid_field_format(svc, "X-TIMESTAMP"))?;
    timestamp::check_skew(parsed, Utc::now(), sim.cfg.timestamp_tolerance_secs)
        .map_err(|_| SnapStatus::unauthorized(svc, "Invalid Timestamp"))?;
    Ok(ts)
}

/// Access token request: `X-CLIENT-KEY` must be the merchant's client id and
/// `X-SIGNATURE` its SHA256withRSA over `clientId|X-TIMESTAMP`.
pub fn verify_token_request(sim: &Sim, headers: &HeaderMap, svc: u8) -> Result<(), SnapStatus> {
    json_content_type(headers, svc)?;
    let client_key = header(headers, "X-CLIENT-KEY", svc)?;
    let signature = header(headers, "X-SIGNATURE", svc)?;
    let ts = fresh_timestamp(sim, headers, svc)?;
    if client_key != sim.cfg.client_id {
        return Err(SnapStatus::unauthorized(svc, "Unknown Client"));
    }
    if !rsa_verify(
        &sim.cfg.merchant_public_key,
        &token_string_to_sign(client_key, ts),
        signature,
    ) {
        return Err(SnapStatus::unauthorized(svc, "Invalid Signature"));
    }
    Ok(())
}

/// A transactional call: headers, live bearer token, HMAC over
/// `POST:{path}:{token}:{sha256(body)}:{X-TIMESTAMP}`, and a fresh
/// `X-EXTERNAL-ID` (unique per partner and Jakarta day). Returns the external id.
pub fn verify_transaction(
    sim: &Sim,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    svc: u8,
) -> Result<String, SnapStatus> {
    json_content_type(headers, svc)?;
    let authorization = header(headers, "Authorization", svc)?;
    let signature = header(headers, "X-SIGNATURE", svc)?;
    let partner_id = header(headers, "X-PARTNER-ID", svc)?;
    let external_id = header(headers, "X-EXTERNAL-ID", svc)?;
    let channel_id = header(headers, "CHANNEL-ID", svc)?;
    header(headers, "ORIGIN", svc)?;
    let ts = fresh_timestamp(sim, headers, svc)?;
    let token = authorization
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SnapStatus::invalid_field_format(svc, "Authorization"))?;
    // Finpay documents X-EXTERNAL-ID as a numeric string of at most 32 characters.
    if !check_external_id(external_id, true) {
        return Err(SnapStatus::invalid_field_format(svc, "X-EXTERNAL-ID"));
    }
    if !check_channel_id(channel_id) {
        return Err(SnapStatus::invalid_field_format(svc, "CHANNEL-ID"));
    }
    if partner_id != sim.cfg.client_id {
        return Err(SnapStatus::unauthorized(svc, "Unknown Client"));
    }
    let now = Utc::now();
    let token_live = sim.book().tokens.get(token).is_some_and(|until| *until > now);
    if !token_live {
        sim.book().stats.invalid_token_answers += 1;
        return Err(SnapStatus::invalid_token(svc));
    }
    let to_sign = symmetric_string_to_sign("POST", path, token, &body_hash(body), ts);
    if !sim.cfg.hmac().verify(&to_sign, signature) {
        sim.book().stats.invalid_signatures += 1;
        return Err(SnapStatus::unauthorized(svc, "Invalid Signature"));
    }
    let first_use = sim
        .book()
        .external_ids
        .insert((timestamp::jakarta_day(now), external_id.to_string()));
    if !first_use {
        return Err(SnapStatus::conflict(svc));
    }
    Ok(external_id.to_string())
}
