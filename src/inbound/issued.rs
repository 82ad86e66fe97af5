//! The last few tokens this process issued, in memory only, so that the
//! signature doctor can tell a sender that signed with an earlier token
//! (`stale-token`). The database keeps only each token's SHA-256, from which
//! no string to sign can be rebuilt.
//!
//! Never persisted, never logged, never shown: the doctor reports only that
//! an earlier token matched. A token issued by another replica, or before a
//! restart, is not known here, so behind several replicas `stale-token` is
//! named only when the same replica issued the earlier token.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

pub struct RecentTokens {
    capacity: usize,
    tokens: Mutex<VecDeque<String>>,
}

impl RecentTokens {
    /// Keeps at most `capacity` tokens (0: none).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tokens: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    pub fn remember(&self, token: &str) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut tokens) = self.tokens.lock() else { return };
        while tokens.len() >= self.capacity {
            tokens.pop_front();
        }
        tokens.push_back(token.to_string());
    }

    /// The remembered tokens, newest first.
    pub fn snapshot(&self) -> Vec<String> {
        self.tokens
            .lock()
            .map(|t| t.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

impl fmt::Debug for RecentTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecentTokens(<{} redacted>)", self.snapshot().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_tokens_are_kept_and_debug_shows_none() {
        let ring = RecentTokens::new(2);
        for t in ["a", "b", "c"] {
            ring.remember(t);
        }
        assert_eq!(ring.snapshot(), ["c", "b"]);
        assert_eq!(format!("{ring:?}"), "RecentTokens(<2 redacted>)");
        let off = RecentTokens::new(0);
        off.remember("a");
        assert!(off.snapshot().is_empty());
    }
}
