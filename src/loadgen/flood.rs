//! `--flood-rate`: badly signed notifications sent alongside the valid ones,
//! at a steady rate, on connections of their own. Each is signed with a
//! secret the server does not hold, the costliest refusal for the signature
//! doctor (no dialect explains it, so every candidate is tried), and must be
//! answered `4015200`. The valid connections are measured as usual, so a run
//! with a flood and one without compare the valid notifications' throughput
//! and p99.

use super::{connect, send, Plan, Stamp};
use crate::snap::signature::HmacKey;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the flood's connections saw in the measured window.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloodTally {
    pub sent: u64,
    /// Answers other than `4015200` (transport errors included).
    pub unexpected: u64,
}

/// One flood connection sending `per_sec` refused notifications a second until `end`.
pub async fn flood(plan: Arc<Plan>, w: usize, per_sec: f64, measure_from: Instant, end: Instant) -> FloodTally {
    let mut tally = FloodTally::default();
    let wrong = HmacKey::new(b"loadgen flood: a secret the server does not hold");
    let interval = Duration::from_secs_f64(1.0 / per_sec.max(0.001));
    let mut next = Instant::now();
    let mut stamp = Stamp::default();
    let mut conn = None;
    let mut seq: u64 = 0;
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        // Behind schedule (a slow answer): carry on from now rather than burst.
        next = (next + interval).max(Instant::now());
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match connect(plan.addr).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    tally.unexpected += 1;
                    continue;
                }
            },
        };
        seq += 1;
        let external_id = format!("F{:08}{w:04}{seq}", plan.run_id);
        let req = plan.request(&wrong, &external_id, w + seq as usize, stamp.now());
        let started = Instant::now();
        let answer = send(sender, req).await;
        let measured = started >= measure_from && Instant::now() <= end;
        match answer {
            Ok(code) if code == "4015200" => {}
            Ok(_) => tally.unexpected += measured as u64,
            Err(_) => {
                conn = None;
                tally.unexpected += measured as u64;
            }
        }
        tally.sent += measured as u64;
    }
    tally
}
