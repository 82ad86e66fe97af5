//! Finpay's JSON: request bodies serialized once, in the field order of
//! Finpay's documentation (docs/protocol.md, "Finpay's bodies"), and lenient
//! reading of answers, whose published samples disagree with each other
//! (snake_case or camelCase `additionalInfo`, `validityPeriod` at the top or
//! inside `additionalInfo`, swapped or renamed reference fields).

use super::transport::Answer;
use super::{
    FinpayError, GenerateRequest, GenerateResponse, QueryRequest, QueryResponse, RefundRequest, RefundResponse, Tips,
};
use crate::config::FinpaySettings;
use crate::domain::{Observation, ObservationSource};
use crate::snap::notify::{Amount, TransactionStatus};
use crate::snap::timestamp;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// Finpay's service code for QR MPM, which a query names (`serviceCode`).
const QR_MPM_SERVICE: &str = "47";
/// `qr_type` of a dynamic QR (one payment, fixed amount).
const QR_TYPE_DYNAMIC: &str = "12";

#[derive(Serialize)]
struct Money {
    value: String,
    currency: String,
}

impl From<&Amount> for Money {
    fn from(a: &Amount) -> Self {
        Self {
            value: a.value_string(),
            currency: a.currency.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateBody<'a> {
    partner_reference_no: &'a str,
    amount: Money,
    #[serde(rename = "FeeAmount")]
    fee_amount: Money,
    merchant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_merchant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    terminal_id: Option<&'a str>,
    validity_period: String,
    additional_info: GenerateInfo<'a>,
}

/// `additionalInfo` of a generate request, in either key style.
struct GenerateInfo<'a> {
    camel: bool,
    tips: Option<&'a Tips>,
    note: &'a str,
    callback: Option<&'a str>,
}

impl Serialize for GenerateInfo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key = |snake: &'static str, camel: &'static str| if self.camel { camel } else { snake };
        let (indicator, fixed, percentage) = match self.tips {
            None => ("00", "0".to_string(), "0".to_string()),
            Some(Tips::Fixed(a)) => ("01", a.value_string(), "0".to_string()),
            Some(Tips::Open) => ("01", "0".to_string(), "0".to_string()),
            Some(Tips::Percentage(p)) => ("02", "0".to_string(), p.clone()),
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(key("tips_indikator", "tipsIndikator"), indicator)?;
        m.serialize_entry(key("tips_fixamount", "tipsFixamount"), &fixed)?;
        m.serialize_entry(key("tips_percentage", "tipsPercentage"), &percentage)?;
        m.serialize_entry("note", self.note)?;
        m.serialize_entry(key("qr_type", "qrType"), QR_TYPE_DYNAMIC)?;
        if let Some(url) = self.callback {
            m.serialize_entry(key("callback_payment", "callbackUrl"), url)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    original_reference_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_partner_reference_no: Option<&'a str>,
    service_code: &'static str,
    merchant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_merchant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<Money>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundBody<'a> {
    merchant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_merchant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_partner_reference_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_reference_no: Option<&'a str>,
    partner_refund_no: &'a str,
    refund_amount: Money,
    reason: &'a str,
}

/// Compact JSON. Serializing structs of strings cannot fail; an empty body
/// (were it ever to) would be refused by Finpay, never misread.
fn to_bytes(body: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

fn merchant_id(s: &FinpaySettings) -> &str {
    s.merchant_id.as_deref().unwrap_or_default()
}

pub fn generate_body(req: &GenerateRequest, s: &FinpaySettings) -> Vec<u8> {
    to_bytes(&GenerateBody {
        partner_reference_no: &req.partner_reference_no,
        amount: (&req.amount).into(),
        fee_amount: Money {
            value: "0.00".into(),
            currency: req.amount.currency.clone(),
        },
        merchant_id: merchant_id(s),
        sub_merchant_id: s.sub_merchant_id.as_deref(),
        terminal_id: s.terminal_id.as_deref(),
        validity_period: timestamp::format_jakarta(req.valid_until),
        additional_info: GenerateInfo {
            camel: s.additional_info_style == "camel",
            tips: req.tips.as_ref(),
            note: req.note.as_deref().unwrap_or_default(),
            callback: s.callback_url.as_deref().filter(|u| !u.is_empty()),
        },
    })
}

pub fn query_body(req: &QueryRequest, s: &FinpaySettings) -> Vec<u8> {
    to_bytes(&QueryBody {
        original_reference_no: req.original_reference_no.as_deref(),
        original_partner_reference_no: req.original_partner_reference_no.as_deref(),
        service_code: QR_MPM_SERVICE,
        merchant_id: merchant_id(s),
        sub_merchant_id: s.sub_merchant_id.as_deref(),
        amount: s.query_sends_amount.then(|| (&req.amount).into()),
    })
}

pub fn refund_body(req: &RefundRequest, s: &FinpaySettings) -> Vec<u8> {
    to_bytes(&RefundBody {
        merchant_id: merchant_id(s),
        sub_merchant_id: s.sub_merchant_id.as_deref(),
        original_partner_reference_no: req.original_partner_reference_no.as_deref(),
        original_reference_no: req.original_reference_no.as_deref(),
        partner_refund_no: &req.partner_refund_no,
        refund_amount: (&req.amount).into(),
        reason: &req.reason,
    })
}

/// The first non-empty string among `keys` (spellings of one field).
fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
}

fn info_text<'a>(body: &'a Value, keys: &[&str]) -> Option<&'a str> {
    body.get("additionalInfo").and_then(|info| text(info, keys))
}

/// A reference a success names must be the one we sent: an answer about
/// another payment or refund settles nothing (it is unreadable, so the
/// outcome stays unknown).
fn as_sent(body: &Value, op: &str, key: &str, sent: Option<&str>) -> Result<(), FinpayError> {
    match (text(body, &[key]), sent) {
        (Some(theirs), Some(ours)) if theirs != ours => Err(FinpayError::InvalidResponse(format!(
            "{op} answer names {key} {theirs:?}, we sent {ours:?}"
        ))),
        _ => Ok(()),
    }
}

/// An amount a success names must be readable and the one we sent: money is
/// never guessed.
fn amount_as_sent(body: &Value, op: &str, keys: &[&str], sent: &Amount) -> Result<(), FinpayError> {
    let Some((key, a)) = keys
        .iter()
        .find_map(|k| body.get(*k).filter(|a| !a.is_null()).map(|a| (*k, a)))
    else {
        return Ok(());
    };
    let value = text(a, &["value"]).unwrap_or_default();
    let currency = text(a, &["currency"]).unwrap_or_default();
    let theirs = Amount::parse(value, currency)
        .map_err(|f| FinpayError::InvalidResponse(format!("{op} answer: {key}.{f} unreadable")))?;
    if (theirs.minor, theirs.currency.as_str()) != (sent.minor, sent.currency.as_str()) {
        return Err(FinpayError::InvalidResponse(format!(
            "{op} answer names {key} {} {}, we sent {} {}",
            theirs.value_string(),
            theirs.currency,
            sent.value_string(),
            sent.currency
        )));
    }
    Ok(())
}

fn response_code(body: &Value) -> String {
    text(body, &["responseCode"]).unwrap_or_default().to_string()
}

pub(super) fn parse_generate(answer: Answer, req: &GenerateRequest) -> Result<GenerateResponse, FinpayError> {
    let body = answer.body;
    as_sent(&body, "generate", "partnerReferenceNo", Some(&req.partner_reference_no))?;
    amount_as_sent(&body, "generate", &["amount"], &req.amount)?;
    let qr_content = text(&body, &["qrContent", "qr_content"])
        .ok_or_else(|| FinpayError::InvalidResponse("generate succeeded without qrContent".into()))?
        .to_string();
    let validity =
        text(&body, &["validityPeriod"]).or_else(|| info_text(&body, &["validityPeriod", "validity_period"]));
    Ok(GenerateResponse {
        response_code: response_code(&body),
        reference_no: text(&body, &["referenceNo"]).map(str::to_string),
        qr_content,
        qr_url: text(&body, &["qrUrl", "qr_url"]).map(str::to_string),
        // Informational only: the payment's deadline is the validity we sent
        // (`api::create`); an odd format is not worth failing over.
        valid_until: validity
            .and_then(|v| timestamp::parse(v).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
        raw: body,
    })
}

pub(super) fn parse_query(answer: Answer, req: &QueryRequest) -> Result<QueryResponse, FinpayError> {
    let body = answer.body;
    let code = text(&body, &["latestTransactionStatus", "transactionStatus"])
        .ok_or_else(|| FinpayError::InvalidResponse("query answer without latestTransactionStatus".into()))?;
    let status = TransactionStatus::from_code(code)
        .ok_or_else(|| FinpayError::InvalidResponse(format!("latestTransactionStatus {code:?} is not two digits")))?;
    // Money is never guessed: an amount that is present but unreadable fails the answer.
    let amount = match body.get("amount").filter(|a| !a.is_null()) {
        None => None,
        Some(a) => {
            let value = text(a, &["value"]).unwrap_or_default();
            let currency = text(a, &["currency"]).unwrap_or_default();
            Some(
                Amount::parse(value, currency)
                    .map_err(|f| FinpayError::InvalidResponse(format!("amount.{f} unreadable")))?,
            )
        }
    };
    let observation = Observation {
        source: ObservationSource::Query,
        original_reference_no: text(&body, &["originalReferenceNo", "referenceNo"])
            .map(str::to_string)
            .or_else(|| req.original_reference_no.clone()),
        original_partner_reference_no: text(
            &body,
            &[
                "originalPartnerReferenceNo",
                "originalPartnerReferanceNo",
                "partnerReferenceNo",
            ],
        )
        .map(str::to_string)
        .or_else(|| req.original_partner_reference_no.clone()),
        status,
        status_desc: text(&body, &["transactionStatusDesc"]).map(str::to_string),
        amount,
        paid_time: info_text(&body, &["paidTime", "paid_time"]).map(str::to_string),
    };
    Ok(QueryResponse {
        response_code: response_code(&body),
        observation,
        raw: body,
    })
}

pub(super) fn parse_refund(answer: Answer, req: &RefundRequest) -> Result<RefundResponse, FinpayError> {
    let body = answer.body;
    as_sent(&body, "refund", "partnerRefundNo", Some(&req.partner_refund_no))?;
    as_sent(
        &body,
        "refund",
        "originalPartnerReferenceNo",
        req.original_partner_reference_no.as_deref(),
    )?;
    as_sent(
        &body,
        "refund",
        "originalReferenceNo",
        req.original_reference_no.as_deref(),
    )?;
    amount_as_sent(&body, "refund", &["refundAmount", "amount"], &req.amount)?;
    Ok(RefundResponse {
        response_code: response_code(&body),
        reference_no: text(&body, &["referenceNo"]).map(str::to_string),
        refund_time: text(&body, &["refundTime"]).map(str::to_string),
        raw: body,
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
