//! HTTP errors, and the one place that maps errors to HTTP statuses: the
//! API's own, and the pipeline's and the tenants' refusals as the native
//! HTTP source and the API answer them.
//!
//! Every error answers JSON: `{"error":{"code":"unknown_key","message":"…"}}`;
//! 429 and 503 carry `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pipeline;
use crate::tenants::AccessError;
use crate::wal::WalError;

/// Seconds a client is told to wait when the gateway is not ready or full.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, unknown or unfit key or certificate; no route.
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    BadRequest(String),
    /// A search query that does not parse; `position` is the 0-based
    /// character offset of the error in the query, when known.
    #[error("invalid query: {message}")]
    InvalidQuery {
        message: String,
        position: Option<usize>,
    },
    #[error("request body was not received within {0} seconds (server.request_timeout)")]
    RequestTimeout(u64),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{message}")]
    RateLimited {
        /// Which limit, e.g. "tenant_events".
        limit: String,
        retry_after: u64,
        message: String,
    },
    #[error("{0}")]
    Unavailable(String),
    /// A feature this mode of the node does not offer (yet).
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The one status mapping.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Access(e) => match e {
                AccessError::NoKey | AccessError::UnknownKey | AccessError::UnknownCert(_) => {
                    StatusCode::UNAUTHORIZED
                }
                AccessError::Forbidden(_) => StatusCode::FORBIDDEN,
                AccessError::NoRoute(_) => StatusCode::NOT_FOUND,
                AccessError::BadType(_) => StatusCode::BAD_REQUEST,
            },
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Access(e) => match e {
                AccessError::NoKey => "no_key",
                AccessError::UnknownKey => "unknown_key",
                AccessError::UnknownCert(_) => "unknown_client_certificate",
                AccessError::Forbidden(_) => "forbidden",
                AccessError::NoRoute(_) => "not_found",
                AccessError::BadType(_) => "bad_request",
            },
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest(_) | ApiError::InvalidQuery { .. } => "bad_request",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::NotImplemented(_) => "not_implemented",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ApiError {
    /// This error's status and `Retry-After` with `body`: the one mapping,
    /// in a protocol's own error format (plain text for Loki, `{"errors"}`
    /// for Datadog, …).
    pub fn respond(&self, body: impl IntoResponse) -> Response {
        let mut resp = (self.status(), body).into_response();
        if let Some(secs) = self.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }

    /// Seconds after which the same request may succeed (`Retry-After`):
    /// for a rate limit, when it allows the request again; when the
    /// gateway is unavailable (WAL full, shutting down), a short while.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::Unavailable(_) => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

impl From<pipeline::Error> for ApiError {
    fn from(e: pipeline::Error) -> Self {
        use pipeline::Error;
        match e {
            Error::Access(e) => ApiError::Access(e),
            Error::Limited(r) => match r.retry_after {
                Some(retry_after) => ApiError::RateLimited {
                    limit: r.limit,
                    retry_after,
                    message: r.message,
                },
                None => ApiError::PayloadTooLarge(r.message),
            },
            Error::BadIdempotencyKey | Error::Empty => ApiError::BadRequest(e.to_string()),
            Error::InFlight => ApiError::Conflict(e.to_string()),
            Error::KeyReused => ApiError::Unprocessable(e.to_string()),
            Error::Wal(e) => e.into(),
            Error::Unavailable(m) => ApiError::Unavailable(m),
            Error::TooLarge(m) => ApiError::PayloadTooLarge(m),
        }
    }
}

impl From<WalError> for ApiError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Full { .. } | WalError::QueueFull | WalError::DiskFull => {
                ApiError::Unavailable(e.to_string())
            }
            WalError::Closed => ApiError::Unavailable("the gateway is shutting down".into()),
            WalError::Io(_) | WalError::Format(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code(), "message": self.to_string()});
        match &self {
            ApiError::RateLimited { limit, .. } => {
                error["limit"] = serde_json::Value::from(limit.as_str());
            }
            ApiError::InvalidQuery {
                position: Some(p), ..
            } => {
                error["position"] = serde_json::Value::from(*p);
            }
            _ => {}
        }
        self.respond(axum::Json(serde_json::json!({ "error": error })))
    }
}
