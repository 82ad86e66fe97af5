//! The body of `POST /api/v1/payments`, and its validation into a
//! [`PaymentSpec`] whose errors name the field at fault.

use super::error::ApiError;
use super::money::{parse_positive, render};
use crate::config::WorkerSettings;
use crate::domain::payment::CURRENCY;
use crate::finpay::Tips;
use crate::snap::notify::Amount;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// Shortest and longest QR validity we accept.
const MIN_VALIDITY_SECS: u64 = 60;
const MAX_VALIDITY_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "amount": "15000.00", "partnerReferenceNo": "INV-2024-000123", "validitySeconds": 900,
    "note": "Table 12", "tips": {"mode": "percentage", "percentage": "10"}
}))]
pub struct CreatePaymentRequest {
    /// IDR, as an exact decimal string: `"10000"` or `"10000.00"` (never a
    /// JSON number); 1–14 digits, optionally `.` and two decimals; more than zero.
    #[schema(example = "10000.00")]
    pub amount: String,
    /// Only `IDR` (the default).
    #[schema(example = "IDR", pattern = "^IDR$")]
    pub currency: Option<String>,
    /// Your reference for the payment, sent to Finpay (1–64 of `A-Z a-z 0-9 - _`);
    /// generated when absent. Reusing it for the same amount returns the same payment.
    #[schema(
        example = "INV-2024-000123",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]{1,64}$"
    )]
    pub partner_reference_no: Option<String>,
    /// How long the QR can be paid, in seconds (60 to 2592000). Default:
    /// `FINPAY_QRIS__WORKER__DEFAULT_VALIDITY_SECS` (900). Not together with `validUntil`.
    #[schema(example = 900, minimum = 60, maximum = 2592000)]
    #[serde(default, deserialize_with = "super::extract::whole_number")]
    pub validity_seconds: Option<u64>,
    /// Or until when (RFC 3339), instead of `validitySeconds`: from 1 minute
    /// to 30 days from now (422 otherwise).
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
    /// Shown to the payer; at most 50 characters, no control characters.
    #[schema(example = "Table 12", max_length = 50)]
    pub note: Option<String>,
    pub tips: Option<TipsRequest>,
}

/// Whether and how the payer may add a tip.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TipsRequest {
    pub mode: TipsMode,
    /// With `fixed`: the tip, as an amount string.
    #[schema(example = "2000.00")]
    pub amount: Option<String>,
    /// With `percentage`: the tip in percent of the amount, e.g. `"10"` or `"12.50"`.
    #[schema(example = "10.00")]
    pub percentage: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TipsMode {
    None,
    /// The payer types the tip in their app.
    Open,
    Fixed,
    Percentage,
}

/// A validated creation request.
#[derive(Debug, Clone)]
pub struct PaymentSpec {
    pub amount_minor: i64,
    pub partner_reference_no: Option<String>,
    /// As the request gave it: `validitySeconds`, or `validUntil` in ms.
    validity: (Option<u64>, Option<i64>),
    pub valid_until: DateTime<Utc>,
    pub note: Option<String>,
    pub tips: Option<Tips>,
}

impl PaymentSpec {
    pub fn parse(r: CreatePaymentRequest, now: DateTime<Utc>, w: &WorkerSettings) -> Result<Self, ApiError> {
        let amount_minor = parse_positive(&r.amount).map_err(|m| ApiError::validation("amount", m))?;
        if r.currency.as_deref().is_some_and(|c| c != CURRENCY) {
            return Err(ApiError::validation(
                "currency",
                format!("only {CURRENCY} is supported"),
            ));
        }
        if let Some(prn) = &r.partner_reference_no {
            check_reference(prn).map_err(|m| ApiError::validation("partnerReferenceNo", m))?;
        }
        let (valid_until, until_ms) = match (r.validity_seconds, &r.valid_until) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "validUntil",
                    "give validitySeconds or validUntil, not both",
                ));
            }
            (Some(s), None) => {
                if !(MIN_VALIDITY_SECS..=MAX_VALIDITY_SECS).contains(&s) {
                    return Err(ApiError::validation(
                        "validitySeconds",
                        format!("must be between {MIN_VALIDITY_SECS} and {MAX_VALIDITY_SECS}"),
                    ));
                }
                (after(now, s), None)
            }
            (None, Some(text)) => {
                let t = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        ApiError::validation("validUntil", "must be an RFC 3339 time, e.g. 2024-06-07T10:15:00+07:00")
                    })?
                    .with_timezone(&Utc);
                let t = crate::store::truncate(t);
                if t < after(now, MIN_VALIDITY_SECS) || t > after(now, MAX_VALIDITY_SECS) {
                    return Err(ApiError::validation(
                        "validUntil",
                        "must be between 1 minute and 30 days from now",
                    ));
                }
                (t, Some(t.timestamp_millis()))
            }
            (None, None) => (
                after(now, w.default_validity_secs.clamp(MIN_VALIDITY_SECS, MAX_VALIDITY_SECS)),
                None,
            ),
        };
        let note = r.note.filter(|n| !n.is_empty());
        if let Some(n) = &note {
            if n.chars().count() > 50 || n.chars().any(char::is_control) {
                return Err(ApiError::validation(
                    "note",
                    "at most 50 characters, no control characters",
                ));
            }
        }
        let tips = r.tips.map(parse_tips).transpose()?.flatten();
        Ok(Self {
            amount_minor,
            partner_reference_no: r.partner_reference_no,
            validity: (r.validity_seconds, until_ms),
            valid_until,
            note,
            tips,
        })
    }

    /// The request in a canonical form, for the idempotency fingerprint:
    /// `"10000"` and `"10000.00"` are the same request.
    pub fn canonical(&self) -> serde_json::Value {
        let tips = self.tips.as_ref().map(|t| match t {
            Tips::Fixed(a) => json!({"fixed": a.minor}),
            Tips::Percentage(p) => json!({"percentage": p}),
            Tips::Open => json!("open"),
        });
        json!({
            "amount": self.amount_minor,
            "partnerReferenceNo": self.partner_reference_no,
            "validitySeconds": self.validity.0,
            "validUntilMs": self.validity.1,
            "note": self.note,
            "tips": tips,
        })
    }
}

fn parse_tips(t: TipsRequest) -> Result<Option<Tips>, ApiError> {
    let unexpected = |field: &str, mode: &str| ApiError::validation(field, format!("not allowed with mode {mode}"));
    match t.mode {
        TipsMode::None | TipsMode::Open => {
            let mode = if matches!(t.mode, TipsMode::None) {
                "none"
            } else {
                "open"
            };
            if t.amount.is_some() {
                return Err(unexpected("tips.amount", mode));
            }
            if t.percentage.is_some() {
                return Err(unexpected("tips.percentage", mode));
            }
            Ok(matches!(t.mode, TipsMode::Open).then_some(Tips::Open))
        }
        TipsMode::Fixed => {
            if t.percentage.is_some() {
                return Err(unexpected("tips.percentage", "fixed"));
            }
            let a = t
                .amount
                .ok_or_else(|| ApiError::validation("tips.amount", "required with mode fixed"))?;
            let minor = parse_positive(&a).map_err(|m| ApiError::validation("tips.amount", m))?;
            Ok(Some(Tips::Fixed(Amount {
                minor,
                currency: CURRENCY.into(),
            })))
        }
        TipsMode::Percentage => {
            if t.amount.is_some() {
                return Err(unexpected("tips.amount", "percentage"));
            }
            let p = t
                .percentage
                .ok_or_else(|| ApiError::validation("tips.percentage", "required with mode percentage"))?;
            let hundredths = parse_positive(&p).map_err(|m| ApiError::validation("tips.percentage", m))?;
            if hundredths > 10_000 {
                return Err(ApiError::validation("tips.percentage", "at most 100"));
            }
            Ok(Some(Tips::Percentage(render(hundredths))))
        }
    }
}

/// A reference we send to Finpay: 1–64 of `A-Z a-z 0-9 - _`.
pub fn check_reference(s: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")
    }
}

/// `now + secs`, saturating instead of overflowing.
pub fn after(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    chrono::Duration::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> WorkerSettings {
        crate::Settings::load_from(None, Vec::<(String, String)>::new())
            .expect("defaults")
            .worker
    }

    fn parse(v: serde_json::Value) -> Result<PaymentSpec, ApiError> {
        let r: CreatePaymentRequest = serde_json::from_value(v).expect("shape");
        PaymentSpec::parse(r, crate::store::now(), &worker())
    }

    fn field(v: serde_json::Value) -> String {
        parse(v).unwrap_err().problem().field.clone().unwrap_or_default()
    }

    #[test]
    fn whole_and_decimal_amounts_are_the_same_request() {
        let a = parse(json!({"amount": "10000"})).unwrap();
        let b = parse(json!({"amount": "10000.00"})).unwrap();
        assert_eq!(a.amount_minor, 1_000_000);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert_eq!(field(json!({"amount": "0"})), "amount");
        assert_eq!(field(json!({"amount": "1.5"})), "amount");
        assert_eq!(field(json!({"amount": "1", "currency": "USD"})), "currency");
        assert_eq!(
            field(json!({"amount": "1", "partnerReferenceNo": "a b"})),
            "partnerReferenceNo"
        );
        assert_eq!(field(json!({"amount": "1", "validitySeconds": 5})), "validitySeconds");
        assert_eq!(field(json!({"amount": "1", "validUntil": "tomorrow"})), "validUntil");
        assert_eq!(
            field(json!({"amount": "1", "validUntil": "2000-01-01T00:00:00Z"})),
            "validUntil"
        );
        assert_eq!(
            field(json!({"amount": "1", "validitySeconds": 600, "validUntil": "2000-01-01T00:00:00Z"})),
            "validUntil"
        );
        assert_eq!(field(json!({"amount": "1", "note": "x".repeat(51)})), "note");
        assert_eq!(field(json!({"amount": "1", "tips": {"mode": "fixed"}})), "tips.amount");
        assert_eq!(
            field(json!({"amount": "1", "tips": {"mode": "percentage", "percentage": "100.01"}})),
            "tips.percentage"
        );
        assert_eq!(
            field(json!({"amount": "1", "tips": {"mode": "none", "amount": "1"}})),
            "tips.amount"
        );
    }

    #[test]
    fn validity_seconds_may_be_written_as_a_whole_float() {
        let now = crate::store::now();
        let s = parse(json!({"amount": "1", "validitySeconds": 900.0})).unwrap();
        let secs = (s.valid_until - now).num_seconds();
        assert!((899..=901).contains(&secs), "{secs}");
    }

    #[test]
    fn validity_defaults_from_the_settings() {
        let now = crate::store::now();
        let s = parse(json!({"amount": "1"})).unwrap();
        let secs = (s.valid_until - now).num_seconds();
        assert!((899..=901).contains(&secs), "{secs}");
    }

    #[test]
    fn tips_become_finpay_tips() {
        let s = parse(json!({"amount": "1", "tips": {"mode": "percentage", "percentage": "10"}})).unwrap();
        assert_eq!(s.tips, Some(Tips::Percentage("10.00".into())));
        let s = parse(json!({"amount": "1", "tips": {"mode": "none"}})).unwrap();
        assert_eq!(s.tips, None);
    }
}
