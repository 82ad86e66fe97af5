//! Sign-in attempts per client address: at most [`ATTEMPTS`] wrong keys in a
//! [`WINDOW`] from one address, then `429` until that window is over, so an
//! API key cannot be guessed through the sign-in form.
//!
//! An attempt is counted when it starts (so attempts sent at once cannot all
//! slip past the count) and given back when the key was right. IPv6
//! addresses count by their /64 network, which one client can rotate
//! through. The table is bounded ([`MAX_ADDRESSES`]): once full, windows
//! that are over are dropped, and addresses that still find no room share
//! one window. Behind a reverse proxy every client has the proxy's address
//! and so shares one window; the console is meant for the internal listener.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ATTEMPTS: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    attempts: u32,
}

impl Window {
    fn over(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= WINDOW
    }
}

#[derive(Debug, Default)]
pub struct SignInThrottle {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    windows: HashMap<IpAddr, Window>,
    /// Shared by the addresses that found the table full.
    overflow: Option<Window>,
}

/// An attempt refused: the client may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    pub retry_after: Duration,
}

/// The address a client is counted under: IPv6 by its /64.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
        v4 => v4,
    }
}

impl SignInThrottle {
    /// Counts an attempt from `ip`, or refuses it when the address has used
    /// its attempts for this window.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), TooMany> {
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *guard;
        let key = counted_as(ip);
        if !t.windows.contains_key(&key) && t.windows.len() >= MAX_ADDRESSES {
            t.windows.retain(|_, w| !w.over(now));
        }
        let slot = if t.windows.contains_key(&key) || t.windows.len() < MAX_ADDRESSES {
            t.windows.entry(key).or_insert(Window {
                started: now,
                attempts: 0,
            })
        } else {
            t.overflow.get_or_insert(Window {
                started: now,
                attempts: 0,
            })
        };
        if slot.over(now) {
            *slot = Window {
                started: now,
                attempts: 0,
            };
        }
        if slot.attempts >= ATTEMPTS {
            let retry_after = WINDOW.saturating_sub(now.saturating_duration_since(slot.started));
            return Err(TooMany { retry_after });
        }
        slot.attempts += 1;
        Ok(())
    }

    /// The key was right: the attempt does not count against the address.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *guard;
        let key = counted_as(ip);
        let slot = match t.windows.get_mut(&key) {
            Some(w) => Some(w),
            None => t.overflow.as_mut(),
        };
        if let Some(w) = slot {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_a_few_attempts_per_window_then_waits_for_its_end() {
        let t = SignInThrottle::default();
        let start = Instant::now();
        for _ in 0..ATTEMPTS {
            assert!(t.attempt(ip("10.0.0.1"), start).is_ok());
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            t.attempt(ip("10.0.0.1"), later),
            Err(TooMany {
                retry_after: Duration::from_secs(40)
            })
        );
        assert!(t.attempt(ip("10.0.0.2"), later).is_ok(), "another address has its own");
        assert!(t.attempt(ip("10.0.0.1"), start + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn a_right_key_does_not_count() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..ATTEMPTS * 3 {
            t.attempt(ip("10.0.0.1"), now).unwrap();
            t.succeeded(ip("10.0.0.1"));
        }
        assert!(t.attempt(ip("10.0.0.1"), now).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_network() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for i in 0..ATTEMPTS {
            t.attempt(ip(&format!("2001:db8:1:2::{i:x}")), now).unwrap();
        }
        assert!(t.attempt(ip("2001:db8:1:2::ffff"), now).is_err());
        assert!(t.attempt(ip("2001:db8:1:3::1"), now).is_ok());
    }

    #[test]
    fn the_table_is_bounded_and_the_addresses_beyond_it_share_a_window() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_ADDRESSES as u32 {
            t.attempt(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), now).unwrap();
        }
        for i in 0..ATTEMPTS {
            t.attempt(ip(&format!("192.168.0.{i}")), now).unwrap();
        }
        assert!(
            t.attempt(ip("192.168.1.1"), now).is_err(),
            "the shared window is used up"
        );
        assert_eq!(t.table.lock().unwrap().windows.len(), MAX_ADDRESSES);
        // Once the windows are over, a new address finds room again.
        assert!(t.attempt(ip("192.168.1.1"), now + WINDOW).is_ok());
        assert_eq!(t.table.lock().unwrap().windows.len(), 1);
    }
}
