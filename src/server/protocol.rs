//! Limits on the request head, answered in JSON below hyper's own.
//!
//! Why: hyper answers an over-long URI (414, beyond 65,534 bytes) or head (431, beyond
//! ~400 KiB or 100 headers) itself, before any middleware, with an empty body. Lower limits
//! checked here catch the realistic cases (a long query pasted into a URL, a bloated
//! cookie) with the API's JSON error instead; only heads beyond hyper's limits still get
//! its bare answer.

use super::error::ApiError;
use super::Limits;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: 414 for a path and query over `max_uri_bytes`, 431 for headers over
/// `max_header_bytes` (names, values and their separators, as on the wire).
pub async fn check_head(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > limits.max_uri_bytes {
        return ApiError::UriTooLong {
            limit: limits.max_uri_bytes,
        }
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > limits.max_header_bytes {
        return ApiError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        }
        .into_response();
    }
    next.run(req).await
}
