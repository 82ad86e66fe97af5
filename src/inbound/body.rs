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
    // A declared `Content-Length` past the limit is refused before waiting
    // for bytes that would be refused anyway.
    if axum::body::HttpBody::size_hint(&body).lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
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
            BodyError::TimedOut => SnapStatus::bad_request(service, Some("Body not received in time")),
            BodyError::Broken => SnapStatus::bad_request(service, Some("Body could not be read")),
        })
}

/// A request body, read at most once: by the handler, or, when the handler
/// refused the request before reading it, for the journal of refusals (with
/// the same bounds). Either way the bytes stay available afterwards.
pub struct Received {
    body: Option<Body>,
    bytes: Option<Bytes>,
}

impl Received {
    pub fn new(body: Body) -> Self {
        Self {
            body: Some(body),
            bytes: None,
        }
    }

    /// The body, or the `400xx00` answer naming why not (see [`read_snap_body`]).
    pub async fn read(&mut self, server: &ServerSettings, service: u8) -> Result<Bytes, SnapStatus> {
        let body = self.body.take().unwrap_or_default();
        let bytes = read_snap_body(body, server, service).await?;
        self.bytes = Some(bytes.clone());
        Ok(bytes)
    }

    /// The bytes received, reading them now if the handler did not; `None`
    /// when they could not be read (too large, too slow).
    pub async fn for_journal(&mut self, server: &ServerSettings) -> Option<&Bytes> {
        if let Some(body) = self.body.take() {
            let deadline = Duration::from_secs(server.request_timeout_secs);
            self.bytes = read_limited(body, server.body_limit_bytes, deadline).await.ok();
        }
        self.bytes.as_ref()
    }
}
