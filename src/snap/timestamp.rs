//! `X-TIMESTAMP` parsing, formatting and freshness checks.
//!
//! The ASPI standard says `yyyy-MM-ddTHH:mm:ss.SSSTZD`, yet every published sample
//! omits the millis and senders variously emit `Z`, `+07:00` or `-00:00`. We accept
//! exactly those documented shapes with a hand-written parser (so the grammar is
//! explicit and no input can panic) and reject everything else. Signatures are always
//! computed over the header *string*; the parsed value is only used for skew checks.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Asia/Jakarta (WIB) is UTC+7 all year: Indonesia has no daylight saving time.
const JAKARTA: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+7 is a valid offset"),
};

/// Why an `X-TIMESTAMP` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid X-TIMESTAMP {input:?}: {reason} (expected yyyy-MM-ddTHH:mm:ss[.SSS] followed by Z or ±HH:MM)")]
pub struct TimestampError {
    /// The offending value, cut to 64 characters so a hostile header cannot bloat logs.
    pub input: String,
    pub reason: &'static str,
}

/// Parses every documented `X-TIMESTAMP` form: `yyyy-MM-ddTHH:mm:ss`, an optional
/// fraction of 1 to 9 digits, then `Z` or `±HH:MM` (`-00:00` means UTC).
pub fn parse(s: &str) -> Result<DateTime<FixedOffset>, TimestampError> {
    parse_inner(s.as_bytes()).map_err(|reason| TimestampError {
        input: s.chars().take(64).collect(),
        reason,
    })
}

fn parse_inner(b: &[u8]) -> Result<DateTime<FixedOffset>, &'static str> {
    let mut cur = Cursor { b, pos: 0 };
    let year = cur.digits(4)?;
    cur.expect(b'-')?;
    let month = cur.digits(2)?;
    cur.expect(b'-')?;
    let day = cur.digits(2)?;
    cur.expect(b'T').map_err(|_| "date and time must be separated by 'T'")?;
    let hour = cur.digits(2)?;
    cur.expect(b':')?;
    let minute = cur.digits(2)?;
    cur.expect(b':')?;
    let second = cur.digits(2)?;

    let mut nanos = 0u32;
    if cur.peek() == Some(b'.') {
        cur.pos += 1;
        let mut count = 0u32;
        while let Some(d) = cur.peek().filter(u8::is_ascii_digit) {
            if count == 9 {
                return Err("fraction has more than 9 digits");
            }
            nanos = nanos * 10 + u32::from(d - b'0');
            count += 1;
            cur.pos += 1;
        }
        if count == 0 {
            return Err("'.' must be followed by fraction digits");
        }
        nanos *= 10u32.pow(9 - count);
    }

    let offset_secs = match cur.next() {
        Some(b'Z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = cur.digits(2)?;
            cur.expect(b':').map_err(|_| "offset must be written ±HH:MM")?;
            let om = cur.digits(2)?;
            if oh > 23 || om > 59 {
                return Err("offset out of range");
            }
            let secs = i32::try_from(oh * 3600 + om * 60).map_err(|_| "offset out of range")?;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err("missing offset (Z or ±HH:MM)"),
    };
    if cur.pos != b.len() {
        return Err("unexpected characters after the offset");
    }

    let date = NaiveDate::from_ymd_opt(i32::try_from(year).map_err(|_| "bad year")?, month, day)
        .ok_or("no such calendar date")?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or("no such time of day")?;
    let offset = FixedOffset::east_opt(offset_secs).ok_or("offset out of range")?;
    offset
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .single()
        .ok_or("time not representable")
}

/// Byte cursor whose every access is bounds-checked, so malformed input is an error.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn expect(&mut self, want: u8) -> Result<(), &'static str> {
        match self.next() {
            Some(c) if c == want => Ok(()),
            _ => Err("wrong separator or truncated value"),
        }
    }

    /// Reads exactly `n` ASCII digits as a number (n ≤ 4, so no overflow).
    fn digits(&mut self, n: usize) -> Result<u32, &'static str> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.next() {
                Some(d) if d.is_ascii_digit() => v = v * 10 + u32::from(d - b'0'),
                _ => return Err("expected a digit"),
            }
        }
        Ok(v)
    }
}

/// Formats `t` the way Finpay's samples do: `2024-04-17T12:03:38+07:00` (WIB, no millis).
pub fn format_jakarta(t: DateTime<Utc>) -> String {
    t.with_timezone(&JAKARTA).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The calendar day in Asia/Jakarta, which scopes `X-EXTERNAL-ID` uniqueness.
pub fn jakarta_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&JAKARTA).date_naive()
}

/// A timestamp outside the accepted window; `secs` is the distance from now, rounded up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    TooOld { secs: i64, tolerance_secs: u64 },
    InFuture { secs: i64, tolerance_secs: u64 },
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, tolerance, direction) = match self {
            Skew::TooOld { secs, tolerance_secs } => (secs, tolerance_secs, "in the past"),
            Skew::InFuture { secs, tolerance_secs } => (secs, tolerance_secs, "in the future"),
        };
        write!(f, "X-TIMESTAMP is {secs} s {direction} (tolerance {tolerance} s)")
    }
}

impl std::error::Error for Skew {}

/// Accepts `ts` when it lies within `tolerance_secs` of `now` in either direction
/// (the boundary itself is accepted). SNAP defines no window; callers configure one.
pub fn check_skew(ts: DateTime<FixedOffset>, now: DateTime<Utc>, tolerance_secs: u64) -> Result<(), Skew> {
    // Milliseconds in i128: exact, and no overflow for any chrono date or tolerance.
    let age_ms = i128::from(now.signed_duration_since(ts).num_milliseconds());
    let tolerance_ms = i128::from(tolerance_secs) * 1000;
    let whole_secs = |ms: i128| i64::try_from((ms + 999) / 1000).unwrap_or(i64::MAX);
    if age_ms > tolerance_ms {
        Err(Skew::TooOld {
            secs: whole_secs(age_ms),
            tolerance_secs,
        })
    } else if -age_ms > tolerance_ms {
        Err(Skew::InFuture {
            secs: whole_secs(-age_ms),
            tolerance_secs,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
