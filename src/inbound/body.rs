//! Reading a request body with a size bound and a deadline, so a large or
//! slow sender cannot hold memory or a task for long.

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
