//! Errors: [`ServeError`] for starting and running the server, [`ApiError`]
//! for one request, answered as `{"error": {"code", "message"}}`.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use odqa_pipeline::PipelineError;

use crate::queue::QueueError;
use serde::Serialize;
use utoipa::ToSchema;

/// What can stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error("loading the index and models failed: {0}")]
    Load(String),
    #[error("the reader batch worker could not start: {0}")]
    Worker(std::io::Error),
    #[error("invalid server configuration: {0}")]
    Config(String),
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `invalid_body`,
    /// `invalid_argument`, `empty_question`, `question_too_long`,
    /// `empty_context`, `context_too_long`, `top_k_out_of_range`,
    /// `mode_unavailable`, `empty_query`, `subject_not_in_sentence`,
    /// `object_not_in_sentence`,
    /// `payload_too_large`, `unsupported_media_type`,
    /// `not_found`, `method_not_allowed`, `not_ready`, `overloaded`,
    /// `timeout`, `not_implemented`, `internal`.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

/// A failed request: status, code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (503s).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 422: the body parsed but a value is not acceptable.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 503 `overloaded` (with `Retry-After`) for work the reader's queue
    /// refused or could not reach in time; 500 when the queue failed.
    pub fn from_queue(err: &QueueError) -> Self {
        match err {
            QueueError::Overloaded { .. } | QueueError::Expired => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                err.to_string(),
            )
            .retry_after(err.retry_after_s()),
            QueueError::Stopped | QueueError::Failed(_) => ApiError::internal(err.to_string()),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route; see /openapi.json",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "request rejected");
        }
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let text = truncate(&rejection.body_text(), 300);
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::new(status, "invalid_body", text),
            JsonRejection::JsonSyntaxError(_) => ApiError::new(status, "malformed_json", text),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                status,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(status, "payload_too_large", text)
            }
            _ => ApiError::new(status, "bad_request", text),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(err: PipelineError) -> Self {
        match &err {
            PipelineError::Index(odqa_index::IndexError::EmptyQuery { .. }) => {
                ApiError::invalid("empty_query", err.to_string())
            }
            PipelineError::Index(odqa_index::IndexError::InvalidOption(_))
            | PipelineError::InvalidOption(_) => {
                ApiError::invalid("invalid_argument", err.to_string())
            }
            PipelineError::Reader(odqa_reader::ReaderError::EmptyQuestion) => {
                ApiError::invalid("empty_question", err.to_string())
            }
            PipelineError::Reader(odqa_reader::ReaderError::EmptyPassage { .. }) => {
                ApiError::invalid("empty_context", err.to_string())
            }
            PipelineError::Reader(inner) => match QueueError::inside(inner) {
                Some(queue) => ApiError::from_queue(queue),
                None => ApiError::internal(err.to_string()),
            },
            _ => ApiError::internal(err.to_string()),
        }
    }
}

/// `text` cut to at most `max` chars, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((byte, _)) => format!("{}…", &text[..byte]),
        None => text.to_string(),
    }
}
