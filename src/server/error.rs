//! The only place that knows HTTP statuses: every failure becomes an [`ApiError`], rendered
//! as `{"error": {"code": "...", "message": "..."}}` with the status from one table.

use crate::{keyword, search, topics};
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
    /// The embedding queue is full; retry shortly (503 with `Retry-After`).
    #[error("the embedding queue is full; retry in a moment")]
    Busy,
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

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy | ApiError::Timeout(_) | ApiError::Unavailable { .. } => {
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
            ApiError::Busy => "overloaded",
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
        if matches!(self, ApiError::Busy) {
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
            search::Error::Keyword(keyword::Error::Missing { .. }) => ApiError::Unavailable {
                code: "no_keyword_index",
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
