//! The only place that knows HTTP statuses: every failure becomes an [`ApiError`], rendered
//! as `{"error": {"code": "...", "message": "..."}}` with the status from one table; the
//! failures of TEI's `POST /embed` become a [`TeiError`], in TEI's own shape and statuses.

use crate::{embed, keyword, search, topics};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A failure of one request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or out-of-range input (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// An unknown paper, or unknown route (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body is over the limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The request target (path and query) is over the limit (414).
    #[error("request URI longer than {limit} bytes")]
    UriTooLong { limit: usize },
    /// The request headers together are over the limit (431).
    #[error("request headers larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    /// An error status some layer answered with an empty body, given a JSON one.
    #[error("{}", .0.canonical_reason().unwrap_or("HTTP error").to_lowercase())]
    Http(StatusCode),
    /// The model's queue or the heavy-work slot is full; retry shortly (503 with
    /// `Retry-After`). The message says which.
    #[error("{0}; retry in a moment")]
    Busy(&'static str),
    /// The request ran past the per-request time limit (503).
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    /// The served index cannot answer this kind of request until it is rebuilt (503).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Anything else (500); the details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The one table of statuses (JSON answers and HTML pages alike).
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Http(status) => *status,
            ApiError::Busy(_) | ApiError::Timeout(_) | ApiError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UriTooLong { .. } => "uri_too_long",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::Http(status) if status.is_server_error() => "server_error",
            ApiError::Http(_) => "bad_request",
            ApiError::Busy(_) => "overloaded",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_parameter`, `paper_not_found`.
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::Busy(_)) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<search::Error> for ApiError {
    fn from(e: search::Error) -> Self {
        match e {
            search::Error::PaperNotFound(_) | search::Error::PapersNotFound(_) => {
                ApiError::NotFound {
                    code: "paper_not_found",
                    message: e.to_string(),
                }
            }
            search::Error::Invalid(i) => ApiError::bad_request(i.code(), i.to_string()),
            search::Error::Embed(e) => e.into(),
            search::Error::Keyword(keyword::Error::Missing { .. }) => ApiError::Unavailable {
                code: "no_keyword_index",
                message: e.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The model service's answers: a full queue is the client's cue to retry; a request
/// abandoned or a service stopping (shutdown) are 503s too; anything else is the model's
/// failure.
impl From<embed::Error> for ApiError {
    fn from(e: embed::Error) -> Self {
        match e {
            embed::Error::Busy => ApiError::Busy("the model is busy (embedding queue full)"),
            embed::Error::Cancelled(_) | embed::Error::Stopped => ApiError::Unavailable {
                code: "unavailable",
                message: e.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A PostgreSQL store's answers: a shard that does not answer is 503
/// `shard_unavailable`, its message naming the shard (`host:port/db`, never credentials).
impl From<crate::store::pg::Error> for ApiError {
    fn from(e: crate::store::pg::Error) -> Self {
        use crate::store::pg::Error;
        match e {
            Error::Search(e) => e.into(),
            e if e.is_shard_failure() => ApiError::Unavailable {
                code: "shard_unavailable",
                message: e.to_string(),
            },
            e @ Error::Unsupported(_) => ApiError::bad_request("unsupported", e.to_string()),
            e @ (Error::NoStore { .. }
            | Error::ModelMismatch { .. }
            | Error::NewerSchema { .. }) => ApiError::Unavailable {
                code: "store_unusable",
                message: e.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<search::Invalid> for ApiError {
    fn from(i: search::Invalid) -> Self {
        ApiError::bad_request(i.code(), i.to_string())
    }
}

impl From<topics::Error> for ApiError {
    fn from(e: topics::Error) -> Self {
        match e {
            topics::Error::Search(e) => e.into(),
            e if e.is_invalid_request() => {
                ApiError::bad_request("invalid_topics_request", e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("invalid_parameter", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", r.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge {
                limit: super::Limits::default().max_body_bytes,
            };
        }
        ApiError::bad_request("invalid_body", r.body_text())
    }
}

/// A failure of `POST /embed`, text-embeddings-inference's route: rendered as TEI renders
/// it, `{"error": "...", "error_type": "..."}`, with TEI's status for each type, so that
/// TEI clients (which switch on both) read it.
#[derive(Debug, thiserror::Error)]
pub enum TeiError {
    /// A malformed body, or an option paperscope does not honour (422, `Validation`).
    #[error("Input validation error: {0}")]
    Invalid(String),
    /// Too many inputs, tokens or bytes (413, `Validation`, as TEI).
    #[error("Input validation error: {0}")]
    TooLarge(String),
    /// No inputs, or an empty one (400, `Empty`).
    #[error("Input validation error: `inputs` cannot be empty")]
    Empty,
    /// The embedding queue is full (429, `Overloaded`).
    #[error("Model is overloaded")]
    Overloaded,
    /// The tokenizer failed on an input (422, `Tokenizer`).
    #[error("tokenizer error {0}")]
    Tokenizer(String),
    /// The model failed (424, `Backend`); the details are logged, not sent.
    #[error("Backend error: the embedding model failed")]
    Backend(String),
}

/// TEI's error types, spelled as TEI spells them.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum TeiErrorType {
    Validation,
    Empty,
    Overloaded,
    Tokenizer,
    Backend,
}

/// TEI's error body.
#[derive(Serialize, ToSchema)]
pub struct TeiErrorBody {
    pub error: String,
    pub error_type: TeiErrorType,
}

impl TeiError {
    /// TEI's table: Validation 413 (ours also 422 for options we refuse, which TEI has no
    /// reason to refuse), Tokenizer 422, Empty 400, Overloaded 429, Backend 424.
    fn status_and_type(&self) -> (StatusCode, TeiErrorType) {
        match self {
            TeiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, TeiErrorType::Validation),
            TeiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, TeiErrorType::Validation),
            TeiError::Empty => (StatusCode::BAD_REQUEST, TeiErrorType::Empty),
            TeiError::Overloaded => (StatusCode::TOO_MANY_REQUESTS, TeiErrorType::Overloaded),
            TeiError::Tokenizer(_) => (StatusCode::UNPROCESSABLE_ENTITY, TeiErrorType::Tokenizer),
            TeiError::Backend(_) => (StatusCode::FAILED_DEPENDENCY, TeiErrorType::Backend),
        }
    }
}

impl IntoResponse for TeiError {
    fn into_response(self) -> Response {
        if let TeiError::Backend(detail) = &self {
            tracing::error!(%detail, "embedding failed");
        }
        let (status, error_type) = self.status_and_type();
        let body = TeiErrorBody {
            error: self.to_string(),
            error_type,
        };
        (status, axum::Json(body)).into_response()
    }
}

/// The embedding queue's failures, as TEI names them.
impl From<ApiError> for TeiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Busy(_) => TeiError::Overloaded,
            ApiError::Internal(detail) => TeiError::Backend(detail),
            other => TeiError::Backend(other.to_string()),
        }
    }
}

impl From<search::Error> for TeiError {
    fn from(e: search::Error) -> Self {
        TeiError::Backend(e.to_string())
    }
}

impl From<embed::Error> for TeiError {
    fn from(e: embed::Error) -> Self {
        match e {
            embed::Error::Busy => TeiError::Overloaded,
            embed::Error::Tokenizer(m) => TeiError::Tokenizer(m),
            other => TeiError::Backend(other.to_string()),
        }
    }
}

impl From<JsonRejection> for TeiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return TeiError::TooLarge(format!(
                "request body larger than {} bytes",
                super::Limits::default().max_body_bytes
            ));
        }
        TeiError::Invalid(r.body_text())
    }
}

/// Middleware (`map_response`): an error status with an empty body gets the JSON body of
/// [`ApiError::Http`], keeping its status and headers. Our handlers and extractors always
/// answer JSON; this covers layers that do not (axum's and tower-http's own answers).
/// Errors hyper answers itself (400 for a malformed request head, 414 for a URI over
/// 65,534 bytes, 431 for a head over ~400 KiB or 100 headers) never reach it and keep
/// their empty bodies; see `protocol` for the limits that answer in JSON before hyper's.
pub async fn json_bodies(resp: Response) -> Response {
    use axum::body::HttpBody;
    let status = resp.status();
    let failed = status.is_client_error() || status.is_server_error();
    if !failed || resp.body().size_hint().exact() != Some(0) {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let (json, body) = ApiError::Http(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(json.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn empty_error_bodies_become_json_and_others_stay() {
        let empty = Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("x-request-id", "req-1")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = json_bodies(empty).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let v = body_json(resp).await;
        assert_eq!(v["error"]["code"], "bad_request", "{v}");
        assert_eq!(v["error"]["message"], "bad request", "{v}");

        // A success with no body, and an error that has one, pass unchanged.
        let ok = json_bodies(StatusCode::NO_CONTENT.into_response()).await;
        assert!(ok.headers().get(header::CONTENT_TYPE).is_none());
        let text = json_bodies((StatusCode::NOT_FOUND, "gone").into_response()).await;
        let bytes = axum::body::to_bytes(text.into_body(), 64).await.unwrap();
        assert_eq!(&bytes[..], b"gone");
    }

    #[test]
    fn tei_errors_have_tei_statuses() {
        let cases = [
            (TeiError::Empty, 400, "Empty"),
            (TeiError::TooLarge("x".into()), 413, "Validation"),
            (TeiError::Invalid("x".into()), 422, "Validation"),
            (TeiError::Tokenizer("x".into()), 422, "Tokenizer"),
            (TeiError::Overloaded, 429, "Overloaded"),
            (TeiError::Backend("x".into()), 424, "Backend"),
        ];
        for (e, status, kind) in cases {
            let (s, t) = e.status_and_type();
            assert_eq!(s.as_u16(), status, "{e}");
            assert_eq!(serde_json::to_value(t).unwrap(), kind);
        }
    }
}
