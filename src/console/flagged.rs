//! `/console/flagged`: the payments waiting for a person, newest first.
//! Each is resolved from its own page, with a note.

use super::payments::rows_table;
use super::session::Operator;
use super::view::{self, Nav};
use crate::state::AppState;
use crate::store::PaymentFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

/// The most shown at once; the payments page pages through all of them.
const SHOWN: i64 = 200;

pub async fn page(State(st): State<AppState>, op: Operator) -> Response {
    let filter = PaymentFilter {
        flagged: Some(true),
        limit: SHOWN + 1,
        ..Default::default()
    };
    let rows = match st.store.list_payments(&filter).await {
        Ok(rows) => rows,
        Err(e) => return view::store_error(&e),
    };
    let body = html! {
        h1 { "Flagged payments" }
        p { "What Finpay said contradicted these payments (amount or references), or a success came after a final \
             failure. Their status was left as it was. Open one, check, and resolve it with a note." }
        (rows_table(&rows[..rows.len().min(SHOWN as usize)], true))
        @if rows.len() as i64 > SHOWN {
            p { a href="/console/payments?flagged=true" { "All flagged payments, page by page →" } }
        }
    };
    (StatusCode::OK, view::page("Flagged", Some(&op), Nav::Flagged, body)).into_response()
}
