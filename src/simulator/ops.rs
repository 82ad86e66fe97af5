//! What the simulated Finpay does on generate, query and refund, once the
//! caller is authenticated: Finpay's field names in, Finpay's field names
//! and SNAP codes out.

use super::qris::{self, QrisFields, Tip};
use super::state::{Sim, SimPayment, SimRefund};
use crate::snap::codes::SnapStatus;
use crate::snap::notify::Amount;
use crate::snap::timestamp;
use chrono::Utc;
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

pub const GENERATE: u8 = 47;
pub const QUERY: u8 = 51;
pub const REFUND: u8 = 78;

fn status(http: u16, service: u8, case: u8, message: &str) -> SnapStatus {
    SnapStatus {
        http,
        service,
        case,
        message: message.into(),
    }
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
}

fn parse_body(body: &[u8], svc: u8) -> Result<Value, SnapStatus> {
    let v: Value = serde_json::from_slice(body).map_err(|_| SnapStatus::bad_request(svc, Some("Body is not JSON")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(SnapStatus::bad_request(svc, Some("Body is not a JSON object")))
    }
}

fn required<'a>(v: &'a Value, keys: &[&str], svc: u8) -> Result<&'a str, SnapStatus> {
    text(v, keys).ok_or_else(|| SnapStatus::invalid_mandatory_field(svc, keys[0]))
}

fn amount_at(v: &Value, key: &str, svc: u8) -> Result<Amount, SnapStatus> {
    let a = v
        .get(key)
        .filter(|a| a.is_object())
        .ok_or_else(|| SnapStatus::invalid_mandatory_field(svc, key))?;
    let value = text(a, &["value"]).unwrap_or_default();
    let currency = text(a, &["currency"]).unwrap_or_default();
    Amount::parse(value, currency).map_err(|sub| SnapStatus::invalid_field_format(svc, &format!("{key}.{sub}")))
}

fn check_merchant(sim: &Sim, v: &Value, svc: u8) -> Result<(), SnapStatus> {
    let merchant_id = required(v, &["merchantId"], svc)?;
    match &sim.cfg.merchant_id {
        Some(ours) if ours != merchant_id => Err(status(404, svc, 8, "Invalid Merchant")),
        _ => Ok(()),
    }
}

pub fn generate(sim: &Sim, body: &[u8]) -> Result<Value, SnapStatus> {
    let v = parse_body(body, GENERATE)?;
    let partner_ref = match text(&v, &["partnerReferenceNo", "partnerReferanceNo"]) {
        Some(r) if r.chars().count() <= 64 => r.to_string(),
        Some(_) => return Err(SnapStatus::invalid_field_format(GENERATE, "partnerReferenceNo")),
        None => format!("SIM{}", Alphanumeric.sample_string(&mut rand::thread_rng(), 20)),
    };
    let amount = amount_at(&v, "amount", GENERATE)?;
    check_merchant(sim, &v, GENERATE)?;
    let validity = required(&v, &["validityPeriod"], GENERATE)?;
    let valid_until = timestamp::parse(validity)
        .map(|t| t.to_utc())
        .ok()
        .filter(|t| *t > Utc::now())
        .ok_or_else(|| SnapStatus::invalid_field_format(GENERATE, "validityPeriod"))?;
    let info = v
        .get("additionalInfo")
        .filter(|i| i.is_object())
        .ok_or_else(|| SnapStatus::invalid_mandatory_field(GENERATE, "additionalInfo"))?;
    if required(info, &["qr_type", "qrType"], GENERATE)? != "12" {
        // Only dynamic QRs (one payment of a fixed amount) are simulated.
        return Err(SnapStatus::invalid_field_format(GENERATE, "additionalInfo.qr_type"));
    }
    let fixed_tip = text(info, &["tips_fixamount", "tipsFixamount"]).filter(|t| *t != "0" && *t != "0.00");
    let tip = match text(info, &["tips_indikator", "tipsIndikator"]).unwrap_or("00") {
        "01" => fixed_tip.map_or(Tip::Prompt, Tip::Fixed),
        "02" => Tip::Percentage(text(info, &["tips_percentage", "tipsPercentage"]).unwrap_or("0")),
        _ => Tip::None,
    };
    let mut book = sim.book();
    if let Some(existing) = book.payments.get(&partner_ref) {
        // Finpay's idempotency: the same reference and amount give back the same QR.
        if existing.amount_minor == amount.minor && existing.currency == amount.currency {
            return Ok(generate_answer(sim, existing, book.faults.validity_echo_shift_secs));
        }
        return Err(status(409, GENERATE, 1, "Duplicate partnerReferenceNo"));
    }
    let reference_no = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let qr_content = qris::dynamic_qr(&QrisFields {
        merchant_name: &sim.cfg.merchant_name,
        merchant_city: &sim.cfg.merchant_city,
        merchant_id: text(&v, &["merchantId"]).unwrap_or_default(),
        nmid: &sim.cfg.nmid,
        amount: &amount.value_string(),
        bill_number: &partner_ref,
        reference: &reference_no,
        terminal: text(&v, &["terminalId"]).unwrap_or("A01"),
        tip,
    });
    let payment = SimPayment {
        partner_reference_no: partner_ref.clone(),
        reference_no: reference_no.clone(),
        amount_minor: amount.minor,
        currency: amount.currency,
        status: "03".into(),
        status_desc: "pending".into(),
        valid_until,
        qr_content,
        callback_url: text(info, &["callback_payment", "callbackUrl"]).map(str::to_string),
        note: text(info, &["note"]).unwrap_or_default().to_string(),
        created_at: Utc::now(),
        paid_at: None,
        refunded_minor: 0,
        refunds: Vec::new(),
        queries: 0,
    };
    let answer = generate_answer(sim, &payment, book.faults.validity_echo_shift_secs);
    book.by_reference.insert(reference_no, partner_ref.clone());
    book.payments.insert(partner_ref, payment);
    Ok(answer)
}

/// `echo_shift_secs`: how far off the asked validity it is echoed (a fault); the
/// caller holds the book.
fn generate_answer(sim: &Sim, p: &SimPayment, echo_shift_secs: i64) -> Value {
    json!({
        "referenceNo": p.reference_no,
        "partnerReferenceNo": p.partner_reference_no,
        "qrContent": p.qr_content,
        "merchantName": sim.cfg.merchant_name,
        "qrUrl": format!("{}/sim/qr/{}", sim.base_url, p.partner_reference_no),
        "additionalInfo": {
            "merchantId": sim.cfg.merchant_id,
            "nmid": sim.cfg.nmid,
            "validityPeriod": timestamp::format_jakarta(
                p.valid_until + chrono::Duration::seconds(echo_shift_secs)
            ),
        },
    })
}

/// The payment a query names (by `partnerReferenceNo` as the key).
pub fn query_target(sim: &Sim, body: &[u8]) -> Result<String, SnapStatus> {
    let v = parse_body(body, QUERY)?;
    let reference = text(&v, &["originalReferenceNo"]);
    let partner = text(&v, &["originalPartnerReferenceNo", "originalPartnerReferanceNo"]);
    if reference.is_none() && partner.is_none() {
        return Err(SnapStatus::invalid_mandatory_field(QUERY, "originalReferenceNo"));
    }
    if required(&v, &["serviceCode"], QUERY)? != "47" {
        return Err(SnapStatus::invalid_field_format(QUERY, "serviceCode"));
    }
    check_merchant(sim, &v, QUERY)?;
    let sent_amount = v.get("amount").map(|_| amount_at(&v, "amount", QUERY)).transpose()?;
    let book = sim.book();
    let p = book
        .find(partner, reference)
        .ok_or_else(|| SnapStatus::not_found(QUERY))?;
    if sent_amount.is_some_and(|a| a.minor != p.amount_minor || a.currency != p.currency) {
        return Err(status(404, QUERY, 13, "Invalid Amount"));
    }
    Ok(p.partner_reference_no.clone())
}

/// Finpay's query answer for a payment (without the response code).
pub fn query_answer(sim: &Sim, partner_ref: &str) -> Result<Value, SnapStatus> {
    let faults = sim.faults();
    let pending_forever = faults.pending_forever;
    let mut book = sim.book();
    let p = book
        .payments
        .get_mut(partner_ref)
        .ok_or_else(|| SnapStatus::not_found(QUERY))?;
    p.queries += 1;
    let (code, desc) = if pending_forever {
        ("03", "pending")
    } else if faults.paying_forever {
        ("02", "paying")
    } else {
        (p.status.as_str(), p.status_desc.as_str())
    };
    let mut info = json!({"merchantName": sim.cfg.merchant_name, "nmid": sim.cfg.nmid, "qr_type": "12", "invoice": p.partner_reference_no});
    if let (Some(paid), false) = (p.paid_at, pending_forever) {
        info["paidTime"] = json!(timestamp::format_jakarta(paid));
    }
    Ok(json!({
        "originalReferenceNo": p.reference_no,
        "originalPartnerReferenceNo": p.partner_reference_no,
        "serviceCode": "47",
        "latestTransactionStatus": code,
        "transactionStatusDesc": desc,
        "amount": {"value": Amount { minor: p.amount_minor, currency: p.currency.clone() }.value_string(), "currency": p.currency},
        "FeeAmount": {"value": "0.00", "currency": p.currency},
        "additionalInfo": info,
    }))
}

pub fn refund(sim: &Sim, body: &[u8]) -> Result<Value, SnapStatus> {
    let v = parse_body(body, REFUND)?;
    check_merchant(sim, &v, REFUND)?;
    let refund_no = required(&v, &["partnerRefundNo"], REFUND)?;
    let amount = amount_at(&v, "refundAmount", REFUND)?;
    required(&v, &["reason"], REFUND)?;
    let reference = text(&v, &["originalReferenceNo"]);
    let partner = text(&v, &["originalPartnerReferenceNo", "originalPartnerReferanceNo"]);
    let mut book = sim.book();
    let key = book
        .find(partner, reference)
        .map(|p| p.partner_reference_no.clone())
        .ok_or_else(|| SnapStatus::not_found(REFUND))?;
    let used_elsewhere = book
        .payments
        .values()
        .any(|p| p.partner_reference_no != key && p.refunds.iter().any(|r| r.partner_refund_no == refund_no));
    if used_elsewhere {
        return Err(status(409, REFUND, 1, "Duplicate partnerRefundNo"));
    }
    let p = book
        .payments
        .get_mut(&key)
        .ok_or_else(|| SnapStatus::not_found(REFUND))?;
    if let Some(done) = p.refunds.iter().find(|r| r.partner_refund_no == refund_no) {
        // Same refund number, same amount: the refund already happened; answer as then.
        if done.amount_minor == amount.minor {
            return Ok(refund_answer(p, done));
        }
        return Err(status(409, REFUND, 1, "Duplicate partnerRefundNo"));
    }
    if p.status != "00" {
        return Err(status(403, REFUND, 15, "Transaction Not Permitted. Not paid"));
    }
    if amount.currency != p.currency || amount.minor <= 0 || p.refunded_minor + amount.minor > p.amount_minor {
        return Err(status(404, REFUND, 13, "Invalid Amount"));
    }
    let refund = SimRefund {
        partner_refund_no: refund_no.to_string(),
        reference_no: Alphanumeric.sample_string(&mut rand::thread_rng(), 32),
        amount_minor: amount.minor,
        refund_time: timestamp::format_jakarta(Utc::now()),
    };
    p.refunded_minor += amount.minor;
    if p.refunded_minor == p.amount_minor {
        p.status = "04".into();
        p.status_desc = "refunded".into();
    }
    let answer = refund_answer(p, &refund);
    p.refunds.push(refund);
    Ok(answer)
}

fn refund_answer(p: &SimPayment, r: &SimRefund) -> Value {
    json!({
        "originalPartnerReferenceNo": p.partner_reference_no,
        "originalReferenceNo": p.reference_no,
        "referenceNo": r.reference_no,
        "partnerRefundNo": r.partner_refund_no,
        "refundAmount": {"value": Amount { minor: r.amount_minor, currency: p.currency.clone() }.value_string(), "currency": p.currency},
        "refundTime": r.refund_time,
    })
}
