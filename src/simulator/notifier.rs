//! Notifying the merchant the way Finpay does: get a B2B token from the
//! merchant's token endpoint (signing `clientId|X-TIMESTAMP` with Finpay's
//! RSA key), then POST `qr-mpm-notify` signed with HMAC-SHA512 over
//! `POST:{path}:{token}:{sha256(body)}:{X-TIMESTAMP}`, retrying with backoff
//! until the merchant answers `2005200`. Retries keep the `X-EXTERNAL-ID`:
//! they are the same notification again, which the merchant deduplicates.
//!
//! [`spawn_delivery`] reports how the first attempt went ([`FirstDelivery`]),
//! so that the control API can answer "paid" only once the merchant has
//! answered; retries go on in the background.

use super::state::{NotificationRecord, Sim, SimPayment};
use crate::snap::notify::Amount;
use crate::snap::{body_hash, rsa_sign, symmetric_string_to_sign, timestamp, token_string_to_sign};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How the first delivery attempt of a notification went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum FirstDelivery {
    /// The merchant answered. Unless it answered `2005200`, retries follow.
    #[serde(rename_all = "camelCase")]
    Answered {
        external_id: String,
        http_status: u16,
        response_code: Option<String>,
        response_message: Option<String>,
    },
    /// No answer (connection refused, timeout, token refused); retries follow.
    #[serde(rename_all = "camelCase")]
    Unanswered { external_id: String, error: String },
    /// The `drop_notifications` fault: the merchant is never notified.
    Dropped,
    /// The `notify_delay_ms` fault: the notification leaves after this delay.
    #[serde(rename_all = "camelCase")]
    Delayed { delay_ms: u64 },
    /// Nothing to deliver (a QR running out is not notified), or the
    /// simulator stopped before the first attempt.
    None,
}

#[derive(Serialize)]
struct Money {
    value: String,
    currency: String,
}

/// Finpay's notify body, fields in the order of its published sample.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotifyBody<'a> {
    original_reference_no: &'a str,
    original_partner_reference_no: &'a str,
    latest_transaction_status: &'a str,
    transaction_status_desc: &'a str,
    amount: Money,
    additional_info: NotifyInfo<'a>,
}

#[derive(Serialize)]
struct NotifyInfo<'a> {
    cust_name: &'a str,
    #[serde(rename = "merchantName")]
    merchant_name: &'a str,
    rrn: String,
    nns_issuer: &'a str,
    nns_acquirer: &'a str,
    nmid: &'a str,
    sof_id: &'a str,
    invoice: &'a str,
    issuer: &'a str,
    acquirer: &'a str,
    note: &'a str,
    #[serde(rename = "merchantId", skip_serializing_if = "Option::is_none")]
    merchant_id: Option<&'a str>,
    #[serde(rename = "FeeAmount")]
    fee_amount: Money,
    #[serde(rename = "paidTime", skip_serializing_if = "Option::is_none")]
    paid_time: Option<String>,
    qr_type: &'a str,
    tips_indikator: &'a str,
}

fn notify_body(sim: &Sim, p: &SimPayment) -> Vec<u8> {
    let digits = |n: usize| {
        (0..n)
            .map(|_| char::from(b'0' + rand::thread_rng().gen_range(0..10u8)))
            .collect::<String>()
    };
    let body = NotifyBody {
        original_reference_no: &p.reference_no,
        original_partner_reference_no: &p.partner_reference_no,
        latest_transaction_status: &p.status,
        transaction_status_desc: &p.status_desc,
        amount: Money {
            value: Amount {
                minor: p.amount_minor,
                currency: p.currency.clone(),
            }
            .value_string(),
            currency: p.currency.clone(),
        },
        additional_info: NotifyInfo {
            cust_name: "SIMULATED CUSTOMER",
            merchant_name: &sim.cfg.merchant_name,
            rrn: digits(12),
            nns_issuer: "93600014",
            nns_acquirer: "93600777",
            nmid: &sim.cfg.nmid,
            sof_id: "qrdinamis",
            invoice: &p.partner_reference_no,
            issuer: "SIMBANK",
            acquirer: "Finpay",
            note: &p.note,
            merchant_id: sim.cfg.merchant_id.as_deref(),
            fee_amount: Money {
                value: "0.00".into(),
                currency: p.currency.clone(),
            },
            paid_time: p.paid_at.map(timestamp::format_jakarta),
            qr_type: "12",
            tips_indikator: "00",
        },
    };
    // Serializing strings cannot fail; the bytes are signed and sent as they are.
    serde_json::to_vec(&body).unwrap_or_default()
}

fn numeric_id() -> String {
    let mut rng = rand::thread_rng();
    (0..32).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// Delivers the payment's current status to the merchant, in the background.
/// The receiver learns how the first attempt went (at once under a drop or
/// delay fault); dropping it leaves the delivery as it is.
pub fn spawn_delivery(sim: Arc<Sim>, p: SimPayment) -> oneshot::Receiver<FirstDelivery> {
    let (first, report) = oneshot::channel();
    tokio::spawn(async move {
        let cancel = sim.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = deliver(&sim, p, first) => {}
        }
    });
    report
}

async fn deliver(sim: &Sim, p: SimPayment, first: oneshot::Sender<FirstDelivery>) {
    let faults = sim.faults();
    let index = {
        let mut book = sim.book();
        book.notifications.push(NotificationRecord {
            partner_reference_no: p.partner_reference_no.clone(),
            external_id: numeric_id(),
            status: p.status.clone(),
            attempts: 0,
            dropped: faults.drop_notifications,
            delivered: false,
            last_http: None,
            last_response_code: None,
            last_error: None,
        });
        book.notifications.len() - 1
    };
    // The answer to whoever waits on the first attempt; the receiver may be gone.
    let mut first = Some(first);
    let mut report = |r: FirstDelivery| {
        if let Some(tx) = first.take() {
            let _ = tx.send(r);
        }
    };
    if faults.drop_notifications {
        tracing::info!(partner_reference_no = %p.partner_reference_no, "notification dropped (fault switch)");
        report(FirstDelivery::Dropped);
        return;
    }
    if faults.notify_delay_ms > 0 {
        report(FirstDelivery::Delayed {
            delay_ms: faults.notify_delay_ms,
        });
        tokio::time::sleep(Duration::from_millis(faults.notify_delay_ms)).await;
    }
    let body = notify_body(sim, &p);
    let mut delay = Duration::from_millis(sim.cfg.notify_backoff_ms.max(1));
    for attempt in 1..=sim.cfg.notify_attempts.max(1) {
        let result = attempt_once(sim, &p, &body, index).await;
        let delivered = matches!(&result, Ok(a) if a.code.as_deref() == Some("2005200"));
        let external_id = {
            let mut book = sim.book();
            match book.notifications.get_mut(index) {
                Some(rec) => {
                    rec.attempts = attempt;
                    rec.delivered = delivered;
                    match &result {
                        Ok(a) => {
                            rec.last_http = Some(a.http);
                            rec.last_response_code = a.code.clone();
                            rec.last_error = None;
                        }
                        Err(e) => rec.last_error = Some(e.clone()),
                    }
                    rec.external_id.clone()
                }
                None => String::new(),
            }
        };
        report(match &result {
            Ok(a) => FirstDelivery::Answered {
                external_id,
                http_status: a.http,
                response_code: a.code.clone(),
                response_message: a.message.clone(),
            },
            Err(e) => FirstDelivery::Unanswered {
                external_id,
                error: e.clone(),
            },
        });
        if delivered {
            tracing::info!(partner_reference_no = %p.partner_reference_no, attempt, "merchant acknowledged the notification");
            return;
        }
        tracing::info!(partner_reference_no = %p.partner_reference_no, attempt, result = ?result, "merchant did not acknowledge; will retry");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// What the merchant answered to one attempt.
#[derive(Debug)]
struct Answer {
    http: u16,
    code: Option<String>,
    message: Option<String>,
}

/// One delivery attempt.
async fn attempt_once(sim: &Sim, p: &SimPayment, body: &[u8], index: usize) -> Result<Answer, String> {
    let (notify_url, token_url) = {
        let book = sim.book();
        let notify = p.callback_url.clone().or_else(|| book.merchant_notify_url.clone());
        (notify, book.merchant_token_url.clone())
    };
    let notify_url = notify_url.ok_or("no notify URL: none in the QR's callback and none configured")?;
    let url = reqwest::Url::parse(&notify_url).map_err(|e| format!("bad notify URL {notify_url}: {e}"))?;
    let token_url = match token_url {
        Some(t) => t,
        None => format!(
            "{}{}",
            url.origin().ascii_serialization(),
            super::DEFAULT_MERCHANT_TOKEN_PATH
        ),
    };
    let token = merchant_token(sim, &token_url).await?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let external_id = sim
        .book()
        .notifications
        .get(index)
        .map(|r| r.external_id.clone())
        .unwrap_or_else(numeric_id);
    let ts = timestamp::format_jakarta(chrono::Utc::now());
    let signature = sim
        .cfg
        .notify_hmac()
        .sign(&symmetric_string_to_sign("POST", &path, &token, &body_hash(body), &ts));
    let resp = sim
        .http
        .post(url)
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {token}"))
        .header("X-TIMESTAMP", ts)
        .header("X-SIGNATURE", signature)
        .header("X-PARTNER-ID", &sim.cfg.notify_client_id)
        .header("X-EXTERNAL-ID", external_id)
        .header("CHANNEL-ID", &sim.cfg.channel_id)
        .header("ORIGIN", "finpay-simulator")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("notify: {e}"))?;
    let http = resp.status().as_u16();
    let answer = resp.json::<Value>().await.ok();
    let field = |name: &str| {
        answer
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Answer {
        http,
        code: field("responseCode"),
        message: field("responseMessage"),
    })
}

/// A B2B token from the merchant, as Finpay would request it.
async fn merchant_token(sim: &Sim, token_url: &str) -> Result<String, String> {
    let ts = timestamp::format_jakarta(chrono::Utc::now());
    let signature = rsa_sign(
        &sim.cfg.finpay_private_key,
        &token_string_to_sign(&sim.cfg.notify_client_id, &ts),
    );
    let resp = sim
        .http
        .post(token_url)
        .header("Content-Type", "application/json")
        .header("X-TIMESTAMP", ts)
        .header("X-CLIENT-KEY", &sim.cfg.notify_client_id)
        .header("X-SIGNATURE", signature)
        .body(r#"{"grantType":"client_credentials"}"#)
        .send()
        .await
        .map_err(|e| format!("merchant token: {e}"))?;
    let http = resp.status().as_u16();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("merchant token answer (HTTP {http}): {e}"))?;
    v.get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "merchant refused the token request: HTTP {http} {}",
                v.get("responseCode").unwrap_or(&Value::Null)
            )
        })
}
