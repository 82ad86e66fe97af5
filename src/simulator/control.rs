//! The control API (`/sim/...`, JSON): play the customer (pay, fail), let a
//! QR run out, flip fault switches, and look at what the simulator saw.
//! [`super::SimHandle`] offers the same actions to in-process tests.
//!
//! `pay` and `fail` answer only once the merchant has answered the first
//! notification attempt, and say what it answered: a payment read from the
//! service right after `pay` is already paid (unless a fault switch drops or
//! delays the notification, which the answer then says instead).

use super::notifier::{spawn_delivery, FirstDelivery};
use super::state::{Faults, Sim, SimPayment};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no QR with partnerReferenceNo {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Paid,
    Failed,
}

/// A control operation's answer: the payment as the simulator now has it,
/// and how the merchant's notification went.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    #[serde(flatten)]
    pub payment: SimPayment,
    pub notification: FirstDelivery,
}

/// The customer pays (or the payment fails): the status changes and the
/// merchant is notified, unless a fault switch says otherwise. The receiver
/// tells how the first notification attempt went.
pub fn settle(
    sim: &Arc<Sim>,
    partner_ref: &str,
    outcome: Outcome,
) -> Result<(SimPayment, oneshot::Receiver<FirstDelivery>), ControlError> {
    let now = chrono::Utc::now();
    let settled = {
        let mut book = sim.book();
        let p = book
            .payments
            .get_mut(partner_ref)
            .ok_or_else(|| ControlError::NotFound(partner_ref.into()))?;
        if p.status != "03" {
            return Err(ControlError::Conflict(format!(
                "QR {partner_ref} is no longer payable (status {})",
                p.status
            )));
        }
        if now > p.valid_until {
            return Err(ControlError::Conflict(format!(
                "QR {partner_ref} expired at {}",
                p.valid_until
            )));
        }
        match outcome {
            Outcome::Paid => {
                p.status = "00".into();
                p.status_desc = "success".into();
                p.paid_at = Some(now);
            }
            Outcome::Failed => {
                p.status = "06".into();
                p.status_desc = "failed".into();
            }
        }
        p.clone()
    };
    let first = spawn_delivery(sim.clone(), settled.clone());
    Ok((settled, first))
}

/// Settles, then waits for the merchant's answer to the first attempt.
pub async fn settle_and_wait(sim: &Arc<Sim>, partner_ref: &str, outcome: Outcome) -> Result<Settled, ControlError> {
    let (payment, first) = settle(sim, partner_ref, outcome)?;
    // The sender is dropped without a word only when the simulator stops.
    let notification = first.await.unwrap_or(FirstDelivery::None);
    Ok(Settled { payment, notification })
}

/// The QR's validity ends now: it can no longer be paid. Finpay reports
/// such a QR as still pending (it documents no expiry status), so the
/// merchant expires it on its own schedule.
pub fn expire(sim: &Sim, partner_ref: &str) -> Result<SimPayment, ControlError> {
    let mut book = sim.book();
    let p = book
        .payments
        .get_mut(partner_ref)
        .ok_or_else(|| ControlError::NotFound(partner_ref.into()))?;
    p.valid_until = p.valid_until.min(chrono::Utc::now());
    Ok(p.clone())
}

/// Merges a partial JSON object into the current fault switches.
pub fn merge_faults(sim: &Sim, patch: Value) -> Result<Faults, ControlError> {
    let mut book = sim.book();
    let mut current = serde_json::to_value(&book.faults).map_err(|e| ControlError::BadRequest(e.to_string()))?;
    match (current.as_object_mut(), patch) {
        (Some(cur), Value::Object(patch)) => cur.extend(patch),
        _ => {
            return Err(ControlError::BadRequest(
                "expected a JSON object of fault switches".into(),
            ))
        }
    }
    let faults: Faults = serde_json::from_value(current).map_err(|e| ControlError::BadRequest(e.to_string()))?;
    book.faults = faults.clone();
    Ok(faults)
}

pub fn routes(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/sim/payments", get(list))
        .route("/sim/payments/{partner_ref}", get(show))
        .route("/sim/payments/{partner_ref}/pay", post(pay))
        .route("/sim/payments/{partner_ref}/fail", post(fail))
        .route("/sim/payments/{partner_ref}/expire", post(expire_now))
        .route("/sim/qr/{partner_ref}", get(qr_text))
        .route("/sim/faults", get(faults).post(set_faults))
        .route("/sim/tokens/revoke", post(revoke))
        .route("/sim/stats", get(stats))
        .route("/sim/notifications", get(notifications))
        .route("/sim/requests", get(requests))
        .with_state(sim)
}

type Sst = State<Arc<Sim>>;

async fn list(State(sim): Sst) -> Json<Vec<SimPayment>> {
    let mut all: Vec<SimPayment> = sim.book().payments.values().cloned().collect();
    all.sort_by_key(|p| p.created_at);
    Json(all)
}

async fn show(State(sim): Sst, Path(r): Path<String>) -> Result<Json<SimPayment>, ControlError> {
    sim.book()
        .payments
        .get(&r)
        .cloned()
        .map(Json)
        .ok_or(ControlError::NotFound(r))
}

async fn pay(State(sim): Sst, Path(r): Path<String>) -> Result<Json<Settled>, ControlError> {
    settle_and_wait(&sim, &r, Outcome::Paid).await.map(Json)
}

async fn fail(State(sim): Sst, Path(r): Path<String>) -> Result<Json<Settled>, ControlError> {
    settle_and_wait(&sim, &r, Outcome::Failed).await.map(Json)
}

/// Finpay notifies nothing when a QR runs out; the answer says so.
async fn expire_now(State(sim): Sst, Path(r): Path<String>) -> Result<Json<Settled>, ControlError> {
    expire(&sim, &r).map(|payment| {
        Json(Settled {
            payment,
            notification: FirstDelivery::None,
        })
    })
}

/// The QR string behind `qrUrl` (Finpay serves an image; text is enough here).
async fn qr_text(State(sim): Sst, Path(r): Path<String>) -> Result<String, ControlError> {
    sim.book()
        .payments
        .get(&r)
        .map(|p| p.qr_content.clone())
        .ok_or(ControlError::NotFound(r))
}

async fn faults(State(sim): Sst) -> Json<Faults> {
    Json(sim.faults())
}

async fn set_faults(State(sim): Sst, Json(patch): Json<Value>) -> Result<Json<Faults>, ControlError> {
    merge_faults(&sim, patch).map(Json)
}

async fn revoke(State(sim): Sst) -> Json<Value> {
    let n = {
        let mut book = sim.book();
        let n = book.tokens.len();
        book.tokens.clear();
        n
    };
    Json(json!({"revoked": n}))
}

async fn stats(State(sim): Sst) -> Json<Value> {
    Json(serde_json::to_value(sim.book().stats.clone()).unwrap_or(Value::Null))
}

async fn notifications(State(sim): Sst) -> Json<Value> {
    Json(serde_json::to_value(&sim.book().notifications).unwrap_or(Value::Null))
}

async fn requests(State(sim): Sst) -> Json<Value> {
    Json(serde_json::to_value(&sim.book().requests).unwrap_or(Value::Null))
}
