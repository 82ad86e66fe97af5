//! Reading a request body with a size bound and a deadline, so a large or
//! slow sender cannot hold memory or a task for long.

use crate::config::ServerSettings;
use crate::snap::codes::SnapStatus;
use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, Limited};
use std::time::Duration;

pub enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

pub async fn read_limited(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, BodyError> {
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(deadline, limited.collect()).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Broken)
            }
        }
    }
}

/// The body of a SNAP request, or the `400xx00` answer naming why not.
pub async fn read_snap_body(body: Body, server: &ServerSettings, service: u8) -> Result<Bytes, SnapStatus> {
    let deadline = Duration::from_secs(server.request_timeout_secs);
    read_limited(body, server.body_limit_bytes, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => SnapStatus::bad_request(
                service,
                Some(&format!("Body larger than {} bytes", server.body_limit_bytes)),
            ),
            BodyError::TimedOut | BodyError::Broken => {
                SnapStatus::bad_request(service, Some("Body not received in time"))
            }
        })
}
