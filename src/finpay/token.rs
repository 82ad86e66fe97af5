//! The B2B access token we hold at Finpay.
//!
//! Cached until shortly before it expires. When it must be fetched, one
//! caller fetches while the others wait on the same gate and then reuse its
//! result, so a burst of calls after expiry (or after Finpay refused the
//! token) costs one token request, not one per caller. A failed fetch is
//! shared the same way: callers that queued behind it get its error instead
//! of each trying again against a Finpay that is down.

use super::FinpayError;
use serde_json::Value;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Refresh this long before the announced expiry ...
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Used when `expiresIn` is missing or not a number of seconds.
const DEFAULT_EXPIRES_IN: u64 = 900;

/// A token as Finpay issued it.
pub(super) struct Issued {
    pub token: String,
    pub expires_in: Duration,
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

#[derive(Default)]
pub(super) struct TokenSlot {
    current: RwLock<Option<Cached>>,
    last_failure: RwLock<Option<(Instant, FinpayError)>>,
    gate: tokio::sync::Mutex<()>,
}

/// When to stop using a token that lives `expires_in`: a minute early, or
/// halfway for tokens shorter than two minutes.
fn refresh_after(expires_in: Duration) -> Duration {
    if expires_in > REFRESH_MARGIN * 2 {
        expires_in - REFRESH_MARGIN
    } else {
        expires_in / 2
    }
}

impl TokenSlot {
    fn fresh(&self) -> Option<String> {
        let guard = self.current.read().ok()?;
        let cached = guard.as_ref()?;
        (Instant::now() < cached.refresh_at).then(|| cached.token.clone())
    }

    /// A usable token: the cached one, or a new one from `fetch`.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<String, FinpayError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued, FinpayError>>,
    {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let waiting_since = Instant::now();
        let _gate = self.gate.lock().await;
        // Whoever held the gate before us may have done the work already.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        if let Some((at, e)) = self.last_failure.read().ok().and_then(|f| f.clone()) {
            if at >= waiting_since {
                return Err(e);
            }
        }
        match fetch().await {
            Ok(issued) => {
                let refresh_at = Instant::now() + refresh_after(issued.expires_in);
                if let Ok(mut cur) = self.current.write() {
                    *cur = Some(Cached {
                        token: issued.token.clone(),
                        refresh_at,
                    });
                }
                Ok(issued.token)
            }
            Err(e) => {
                if let Ok(mut f) = self.last_failure.write() {
                    *f = Some((Instant::now(), e.clone()));
                }
                Err(e)
            }
        }
    }

    /// Forgets `token` after Finpay refused it. A newer token (another caller
    /// already refreshed) is kept.
    pub fn invalidate(&self, token: &str) {
        if let Ok(mut cur) = self.current.write() {
            if cur.as_ref().is_some_and(|c| c.token == token) {
                *cur = None;
            }
        }
    }
}

/// Reads a successful token answer.
pub(super) fn parse_token(body: Value) -> Result<Issued, FinpayError> {
    let token = body
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(FinpayError::InvalidResponse("token answer without accessToken".into()));
    };
    Ok(Issued {
        token: token.to_string(),
        expires_in: Duration::from_secs(expires_in(body.get("expiresIn"))),
    })
}

/// `expiresIn`: the standard says a string (`"900"`), Finpay's OpenAPI an
/// integer (`900`); anything else means the default.
pub(super) fn expires_in(v: Option<&Value>) -> u64 {
    let secs = match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    secs.filter(|s| *s > 0).unwrap_or(DEFAULT_EXPIRES_IN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn issued(token: &str) -> Result<Issued, FinpayError> {
        Ok(Issued {
            token: token.into(),
            expires_in: Duration::from_secs(900),
        })
    }

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        assert_eq!(expires_in(Some(&json!(900))), 900);
        assert_eq!(expires_in(Some(&json!("600"))), 600);
        assert_eq!(expires_in(Some(&json!("2024-05-13 08:47:36 +0000 UTC"))), 900);
        assert_eq!(expires_in(Some(&json!(-5))), 900);
        assert_eq!(expires_in(None), 900);
    }

    #[test]
    fn tokens_are_refreshed_a_minute_early_or_halfway_when_short() {
        assert_eq!(refresh_after(Duration::from_secs(900)), Duration::from_secs(840));
        assert_eq!(refresh_after(Duration::from_secs(60)), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let slot = Arc::new(TokenSlot::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (slot, fetches) = (slot.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                slot.get(|| async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    issued("t1")
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidate_drops_only_the_refused_token() {
        let slot = TokenSlot::default();
        assert_eq!(slot.get(|| async { issued("t1") }).await.unwrap(), "t1");
        slot.invalidate("t0");
        assert_eq!(slot.get(|| async { issued("unused") }).await.unwrap(), "t1");
        slot.invalidate("t1");
        assert_eq!(slot.get(|| async { issued("t2") }).await.unwrap(), "t2");
    }

    #[tokio::test]
    async fn a_failed_fetch_is_shared_with_callers_that_waited_for_it() {
        let slot = Arc::new(TokenSlot::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (slot, fetches) = (slot.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                slot.get(|| async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err::<Issued, _>(FinpayError::Timeout)
                })
                .await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(FinpayError::Timeout)));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A later caller tries again.
        assert_eq!(slot.get(|| async { issued("t3") }).await.unwrap(), "t3");
    }
}
