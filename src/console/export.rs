//! `/console/export`: payments and refunds of a day or a range of days as
//! CSV for finance, streamed by the same code as the REST API's export.

use super::session::Operator;
use super::view::{self, Nav, JAKARTA};
use crate::api::export::{csv_response, day_range};
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

pub async fn page(op: Operator) -> Response {
    let today = chrono::Utc::now().with_timezone(&JAKARTA).date_naive().to_string();
    let body = html! {
        h1 { "Export for finance" }
        p { "The payments paid and the refunds asked on the chosen days (Asia/Jakarta), as CSV: amounts exact, \
             Finpay's fee where the notification that paid states it, times in Jakarta with their offset, our \
             references and Finpay's. A month is as quick to ask for as a day: the file is written as it is read." }
        form.filters method="get" action="/console/export.csv" {
            div.field {
                label for="from" { "First day" }
                input #from type="date" name="from" value=(today) required;
            }
            div.field {
                label for="to" { "Last day (included)" }
                input #to type="date" name="to" value=(today);
            }
            div.field.submit { button type="submit" { "Download CSV" } }
        }
    };
    (StatusCode::OK, view::page("Export", Some(&op), Nav::Export, body)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: Option<String>,
}

pub async fn download(State(st): State<AppState>, op: Operator, q: Result<Query<Range>, QueryRejection>) -> Response {
    let Ok(Query(q)) = q else {
        return view::error_page(StatusCode::BAD_REQUEST, "Export not started", "Choose the first day.");
    };
    // An empty "last day" field means the first day only.
    let to = q.to.as_deref().filter(|t| !t.is_empty());
    match day_range(&q.from, to) {
        Ok((from, until)) => {
            tracing::info!(actor = %op.name, from = %q.from, to = ?to, "console export");
            let last = to.unwrap_or(&q.from);
            csv_response(&st, from, until, &format!("payments-{}-{}.csv", q.from, last))
        }
        Err(e) => super::payment::api_error_page(&e),
    }
}
