//! Parsing of Finpay `qr-mpm-notify` bodies, plus the SNAP header checks the HTTP
//! layer runs before it.
//!
//! Call [`parse_notify`] only on bytes whose signature has been verified. Fields are
//! extracted by hand from a `serde_json::Value` so every error names the offending
//! field, which maps directly onto SNAP's `Invalid Field Format {field}` and
//! `Invalid Mandatory Field {field}` answers. Money is parsed as exact integers.

use serde_json::{Map, Value};

use crate::snap::codes::SnapStatus;

/// The message of `400xx00` for a body that is JSON but not an object (both SNAP endpoints).
pub const NOT_AN_OBJECT: &str = "Body is not a JSON object";

/// Which field of a notify body was wrong, named as in the JSON (`amount.value`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("missing mandatory field {0}")]
    Missing(String),
    #[error("invalid format of field {0}")]
    Format(String),
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but an array, a string, a number or `null`.
    #[error("body is not a JSON object")]
    NotObject,
}

impl FieldError {
    /// The SNAP answer for this error (`400xx02`, `400xx01` or `400xx00`).
    pub fn snap_status(&self, service: u8) -> SnapStatus {
        match self {
            FieldError::Missing(field) => SnapStatus::invalid_mandatory_field(service, field),
            FieldError::Format(field) => SnapStatus::invalid_field_format(service, field),
            FieldError::NotJson(why) => SnapStatus::bad_request(service, Some(why)),
            FieldError::NotObject => SnapStatus::bad_request(service, Some(NOT_AN_OBJECT)),
        }
    }
}

/// `latestTransactionStatus`. Finpay documents `00`–`07`; other PJPs add `08` Expiry
/// and `09` Rejected, so any other two digits are kept rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Copy)]
pub enum TransactionStatus {
    Success,
    Initiated,
    Paying,
    Pending,
    Refunded,
    Cancelled,
    Failed,
    NotFound,
    /// Any other two ASCII digits, as received.
    Other([u8; 2]),
}

impl TransactionStatus {
    /// Parses exactly two ASCII digits.
    pub fn from_code(code: &str) -> Option<Self> {
        let &[a, b] = code.as_bytes() else {
            return None;
        };
        if !(a.is_ascii_digit() && b.is_ascii_digit()) {
            return None;
        }
        Some(match code {
            "00" => Self::Success,
            "01" => Self::Initiated,
            "02" => Self::Paying,
            "03" => Self::Pending,
            "04" => Self::Refunded,
            "05" => Self::Cancelled,
            "06" => Self::Failed,
            "07" => Self::NotFound,
            _ => Self::Other([a, b]),
        })
    }

    pub fn code(&self) -> String {
        let code = match self {
            Self::Success => "00",
            Self::Initiated => "01",
            Self::Paying => "02",
            Self::Pending => "03",
            Self::Refunded => "04",
            Self::Cancelled => "05",
            Self::Failed => "06",
            Self::NotFound => "07",
            Self::Other(bytes) => return bytes.iter().copied().map(char::from).collect(),
        };
        code.to_owned()
    }
}

/// A SNAP amount in minor units (cents/sen), e.g. `"12345678.00"` IDR → 1234567800.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub minor: i64,
    pub currency: String,
}

impl Amount {
    /// Parses SNAP's `String(16,2)`: 1–14 digits, `.`, exactly 2 digits; no sign,
    /// separators or exponent. `currency` must be 3 uppercase ASCII letters.
    /// The error is the name of the bad sub-field: `"value"` or `"currency"`.
    pub fn parse(value: &str, currency: &str) -> Result<Amount, &'static str> {
        let (whole, fraction) = value.split_once('.').ok_or("value")?;
        let digits_ok =
            |s: &str, min: usize, max: usize| (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok(whole, 1, 14) || !digits_ok(fraction, 2, 2) {
            return Err("value");
        }
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency");
        }
        // At most 16 digits, so the i64 cannot overflow; checked anyway.
        let minor = whole
            .bytes()
            .chain(fraction.bytes())
            .try_fold(0i64, |acc, d| acc.checked_mul(10)?.checked_add(i64::from(d - b'0')))
            .ok_or("value")?;
        Ok(Amount {
            minor,
            currency: currency.to_owned(),
        })
    }

    /// Renders the SNAP value string, e.g. `"12345678.00"`.
    pub fn value_string(&self) -> String {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// The fields of a `qr-mpm-notify` body this service acts on.
#[derive(Debug, Clone)]
pub struct NotifyBody {
    pub original_reference_no: String,
    pub original_partner_reference_no: Option<String>,
    pub latest_transaction_status: TransactionStatus,
    pub transaction_status_desc: Option<String>,
    pub amount: Amount,
    pub transaction_date: Option<String>,
    pub additional_info: Option<Value>,
    pub paid_time: Option<String>,
}

/// Parses a verified notify body. Unknown fields are ignored (the caller stores the raw
/// body); JSON `null` counts as absent; a key repeated in one object is refused.
pub fn parse_notify(body: &[u8]) -> Result<NotifyBody, FieldError> {
    let value: Value = super::json::parse(body).map_err(FieldError::NotJson)?;
    let obj = value.as_object().ok_or(FieldError::NotObject)?;

    let original_reference_no = required_str(obj, "originalReferenceNo", "originalReferenceNo")?;
    if !reference_ok(original_reference_no) {
        return Err(format_err("originalReferenceNo"));
    }
    // Finpay's field table spells it `originalPartnerReferanceNo`; its samples do
    // not. A blank one is absent: static-QR payments have none, and refusing the
    // notify would only make Finpay retry a real payment. Both spellings, saying
    // different things, name no one payment.
    let mut original_partner_reference_no = None;
    for key in ["originalPartnerReferenceNo", "originalPartnerReferanceNo"] {
        let Some(given) = optional_str(obj, key, key)?.filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        if !reference_ok(given) || original_partner_reference_no.is_some_and(|first| first != given) {
            return Err(format_err(key));
        }
        original_partner_reference_no = Some(given);
    }

    let status = required_str(obj, "latestTransactionStatus", "latestTransactionStatus")?;
    let latest_transaction_status =
        TransactionStatus::from_code(status).ok_or_else(|| format_err("latestTransactionStatus"))?;

    let transaction_status_desc = optional_str(obj, "transactionStatusDesc", "transactionStatusDesc")?;
    // SNAP says max 50; be lenient, it is free text we only store.
    if transaction_status_desc.is_some_and(|s| s.chars().count() > 256) {
        return Err(format_err("transactionStatusDesc"));
    }

    let amount_obj = match present(obj, "amount") {
        None => return Err(FieldError::Missing("amount".into())),
        Some(v) => v.as_object().ok_or_else(|| format_err("amount"))?,
    };
    let value = required_str(amount_obj, "value", "amount.value")?;
    let currency = required_str(amount_obj, "currency", "amount.currency")?;
    let amount = Amount::parse(value, currency).map_err(|sub| format_err(&format!("amount.{sub}")))?;

    let transaction_date = optional_str(obj, "transactionDate", "transactionDate")?;

    let additional_info = match present(obj, "additionalInfo") {
        None => None,
        Some(v) => Some(v.as_object().ok_or_else(|| format_err("additionalInfo"))?),
    };
    let paid_time = match additional_info {
        Some(info) => optional_str(info, "paidTime", "additionalInfo.paidTime")?,
        None => None,
    };

    Ok(NotifyBody {
        original_reference_no: original_reference_no.to_owned(),
        original_partner_reference_no: original_partner_reference_no.map(str::to_owned),
        latest_transaction_status,
        // Free text: kept even with a NUL (which no PostgreSQL text or jsonb can
        // hold), as U+FFFD, rather than refusing a payment's news for its wording.
        transaction_status_desc: transaction_status_desc.map(|s| s.replace('\0', "\u{FFFD}")),
        amount,
        transaction_date: transaction_date.map(str::to_owned),
        additional_info: additional_info.cloned().map(Value::Object),
        paid_time: paid_time.map(str::to_owned),
    })
}

/// A reference is printable ASCII (Finpay's and ours are; their formats vary
/// otherwise), at most 64 characters, with no space at either end: nothing in
/// it that a person reading it cannot see or tell apart (control, format and
/// zero-width characters, other spaces), and no NUL, which PostgreSQL text
/// refuses.
fn reference_ok(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| (b' '..=b'~').contains(&b)) && s.trim() == s
}

fn format_err(field: &str) -> FieldError {
    FieldError::Format(field.to_owned())
}

/// The value under `key`, treating JSON `null` as absent.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A string if present; any other JSON type is a format error for `field`.
fn optional_str<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<Option<&'a str>, FieldError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| format_err(field)),
    }
}

/// A mandatory non-empty string: absent, `null` or `""` is missing.
fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a str, FieldError> {
    match optional_str(obj, key, field)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(FieldError::Missing(field.to_owned())),
    }
}

/// `X-EXTERNAL-ID`: ASPI v1.0.2 allows 36 alphanumerics (we also allow `-` for UUIDs);
/// Finpay documents numeric, at most 32, which `numeric_only` enforces.
pub fn check_external_id(s: &str, numeric_only: bool) -> bool {
    if numeric_only {
        (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    } else {
        (1..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }
}

/// `X-PARTNER-ID`: 1–36 printable ASCII characters without spaces.
pub fn check_partner_id(s: &str) -> bool {
    (1..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// `CHANNEL-ID`: 1–5 ASCII alphanumerics.
pub fn check_channel_id(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;
