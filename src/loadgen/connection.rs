//! One measured connection: it sends signed notifications one after another,
//! each payment of its share once, some replayed when asked to, and tallies
//! the answers.

use super::tally::Tally;
use super::Plan;
use crate::snap::timestamp;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small xorshift generator: the worker's choices need no cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The payments one connection notifies: its own contiguous share of the
/// bodies, each once, so that no payment is notified twice (under two external
/// ids) while any share lasts. A second notification would find its payment
/// already paid, which is not the first delivery the benchmark measures.
struct Share {
    first: usize,
    len: usize,
    sent: usize,
    bodies: usize,
}

impl Share {
    fn of(connection: usize, connections: usize, bodies: usize) -> Self {
        let bodies = bodies.max(1);
        let len = (bodies / connections.max(1)).max(1);
        Self {
            first: (connection * len) % bodies,
            len,
            sent: 0,
            bodies,
        }
    }

    /// The next body to send, and whether the share was used up and started over.
    fn next(&mut self) -> (usize, bool) {
        let again = self.sent == self.len;
        if again {
            self.sent = 0;
        }
        let i = (self.first + self.sent) % self.bodies;
        self.sent += 1;
        (i, again)
    }
}

/// Sends requests one after another on one connection until `end`.
pub(super) async fn worker(
    plan: Arc<Plan>,
    w: usize,
    connections: usize,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut seq: u64 = 0;
    let mut share = Share::of(w, connections, plan.bodies.len());
    // Acknowledged (external id, body index) pairs this worker may replay.
    let mut acked: Vec<(String, usize)> = Vec::new();
    let mut stamp = Stamp::default();
    let mut conn: Option<http1::SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match connect(plan.addr).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    tally.transport_errors += 1;
                    tally.unexpected += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let replay = !acked.is_empty() && rng.chance(plan.duplicates);
        let (external_id, idx) = if replay {
            acked[(rng.next() % acked.len() as u64) as usize].clone()
        } else {
            seq += 1;
            let (idx, again) = share.next();
            tally.payments_renotified |= again;
            (format!("{:08}{:04}{seq}", plan.run_id, w), idx)
        };
        let req = plan.request(&plan.hmac, &external_id, idx, stamp.now());
        let started = Instant::now();
        let answer = send(sender, req).await;
        let done = Instant::now();
        let measured = started >= measure_from && done <= end;
        match answer {
            Ok(code) if code == plan.expect => {
                if !replay {
                    if acked.len() < 1024 {
                        acked.push((external_id, idx));
                    } else {
                        let slot = (rng.next() % 1024) as usize;
                        acked[slot] = (external_id, idx);
                    }
                }
            }
            Ok(code) => {
                tally.unexpected += 1;
                *tally.codes.entry(code).or_default() += 1;
            }
            Err(_) => {
                conn = None;
                tally.transport_errors += 1;
                tally.unexpected += 1;
            }
        }
        if measured {
            let second = (started - measure_from).as_secs() as usize;
            tally.record(second, (done - started).as_micros().min(u32::MAX as u128) as u32);
            tally.duplicates += replay as u64;
        }
    }
    tally
}

pub(super) async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and returns the answer's `responseCode`.
pub(super) async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<String> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok(response_code(&bytes).unwrap_or_else(|| format!("http-{status}")))
}

/// `responseCode` from a SNAP answer, without parsing the whole JSON.
fn response_code(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"responseCode\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let len = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..len]).ok().map(str::to_string)
}

/// The `X-TIMESTAMP` value, formatted at most once a second.
#[derive(Default)]
pub(super) struct Stamp {
    at: Option<Instant>,
    value: String,
}

impl Stamp {
    pub(super) fn now(&mut self) -> &str {
        if self.at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.value = timestamp::format_jakarta(chrono::Utc::now());
            self.at = Some(Instant::now());
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_code_is_read_from_a_snap_answer() {
        assert_eq!(
            response_code(br#"{"responseCode":"2005200","responseMessage":"Successful"}"#).as_deref(),
            Some("2005200")
        );
        assert_eq!(response_code(b"not json"), None);
    }

    #[test]
    fn each_connection_notifies_its_own_payments_until_its_share_is_used_up() {
        let (connections, bodies) = (64, 100_000);
        let share = bodies / connections;
        let mut seen = std::collections::HashSet::new();
        for w in 0..connections {
            let mut s = Share::of(w, connections, bodies);
            for _ in 0..share {
                let (i, again) = s.next();
                assert!(!again, "connection {w} started over inside its share");
                assert!(seen.insert(i), "payment {i} notified by two connections");
            }
            let (i, again) = s.next();
            assert!(again, "connection {w} went past its share without saying so");
            assert_eq!(
                i,
                w * share,
                "connection {w} starts over at the beginning of its own share"
            );
        }
    }

    #[test]
    fn more_connections_than_payments_still_send() {
        let mut s = Share::of(5, 8, 3);
        let (first, _) = s.next();
        assert!(first < 3);
        assert!(s.next().1, "a share of one payment is used up by the second request");
    }
}
