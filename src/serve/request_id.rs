//! The `x-request-id` a request runs under: the client's when it is a usable
//! id (1 to 64 visible ASCII characters), else one generated here. An empty
//! id correlates nothing, and a long one would be echoed and logged whole.

use crate::telemetry::CLIP_CHARS;
use axum::extract::Request;

pub const HEADER: &str = "x-request-id";

/// Drops a client's `x-request-id` that is not a usable id, so that the next
/// layer generates one.
pub async fn keep_usable(mut req: Request) -> Request {
    let usable = |v: &axum::http::HeaderValue| {
        let b = v.as_bytes();
        (1..=CLIP_CHARS).contains(&b.len()) && b.iter().all(|c| c.is_ascii_graphic())
    };
    let values = req.headers().get_all(HEADER);
    let mut values = values.iter();
    let keep = matches!((values.next(), values.next()), (Some(v), None) if usable(v));
    if !keep {
        req.headers_mut().remove(HEADER);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderName;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

    async fn echoed(sent: &[&str]) -> String {
        let name = HeaderName::from_static(HEADER);
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(PropagateRequestIdLayer::new(name.clone()))
            .layer(SetRequestIdLayer::new(name, MakeRequestUuid))
            .layer(axum::middleware::map_request(keep_usable));
        let mut req = Request::get("/");
        for v in sent {
            req = req.header(HEADER, *v);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        resp.headers()[HEADER].to_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_client_s_usable_id_is_kept_and_echoed() {
        assert_eq!(echoed(&["order-42/attempt-1"]).await, "order-42/attempt-1");
        let longest = "a".repeat(CLIP_CHARS);
        assert_eq!(echoed(&[&longest]).await, longest);
    }

    #[tokio::test]
    async fn an_empty_long_spaced_or_repeated_id_is_replaced_by_a_generated_one() {
        let long = "a".repeat(CLIP_CHARS + 1);
        for sent in [vec![""], vec![long.as_str()], vec!["two words"], vec!["a", "b"]] {
            let id = echoed(&sent).await;
            assert_eq!(id.len(), 36, "{sent:?} gave {id:?}: a generated UUID is expected");
            assert!(!sent.contains(&id.as_str()));
        }
    }
}
