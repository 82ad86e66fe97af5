//! One signed POST of an event to an endpoint (Standard Webhooks headers),
//! and what is kept of the answer: its status and the start of its body, or
//! why there was none, in a few words.

use super::signing::{signature_header, SigningKey};
use super::target::{check_url, PublicResolver};
use crate::state::AppState;
use crate::store::events::ClaimedDelivery;
use std::sync::Arc;
use std::time::Duration;

/// The start of an endpoint's answer kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;

/// The HTTP client of every sending loop: no redirects, no proxy, public
/// addresses only (unless `events.allow_private_networks`), bounded times.
pub(super) fn client(state: &AppState) -> reqwest::Result<reqwest::Client> {
    let s = &state.settings.events;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve the endpoint's name
        // itself, past the resolver that refuses private addresses.
        .no_proxy()
        .connect_timeout(Duration::from_millis(s.connect_timeout_ms))
        .timeout(Duration::from_millis(s.timeout_ms))
        .dns_resolver(Arc::new(PublicResolver {
            allow_private_networks: s.allow_private_networks,
        }))
        .user_agent(concat!("finpay-qris/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One POST; the answer's status and the start of its body, or why there was none.
pub(super) async fn send(
    state: &AppState,
    client: &reqwest::Client,
    d: &ClaimedDelivery,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(u16, String), String> {
    let url = check_url(&d.url, &state.settings.events)?;
    let mut keys = Vec::with_capacity(2);
    keys.push(SigningKey::parse(&d.secret).map_err(|e| e.to_string())?);
    if let (Some(old), Some(until)) = (&d.previous_secret, d.previous_secret_until) {
        if until > now {
            keys.push(SigningKey::parse(old).map_err(|e| e.to_string())?);
        }
    }
    let ts = now.timestamp();
    let signature = signature_header(&keys, &d.event_id, ts, d.body.as_bytes());
    let mut answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await
        .map_err(describe)?;
    let status = answer.status().as_u16();
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match answer.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - excerpt.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    Ok((status, excerpt_text(&excerpt)))
}

/// The start of an answer as text, at most [`EXCERPT_BYTES`] of UTF-8:
/// invalid UTF-8 and NUL (which PostgreSQL's text cannot hold) become U+FFFD,
/// which takes three bytes, so the text is cut again at a character.
fn excerpt_text(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}");
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// A failed request in a few words (reqwest's own chain names the URL's host).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_of_binary_bytes_stays_within_its_bound_in_utf8() {
        let binary = vec![0xFFu8; EXCERPT_BYTES];
        let text = excerpt_text(&binary);
        assert!(text.len() <= EXCERPT_BYTES, "{} bytes", text.len());
        assert!(text.starts_with('\u{FFFD}'));
        assert_eq!(excerpt_text(b"{\"ok\":true}"), "{\"ok\":true}");
    }
}
