//! OTLP/HTTP answers, in the request's encoding (protobuf or JSON):
//!
//! - every record stored → 200 with an empty `ExportLogsServiceResponse`;
//! - some records rejected (kept as rejected events) → 200 with
//!   `partial_success` (their count and the first reason): the client must
//!   not retry them;
//! - a failure → its status with a `google.rpc.Status` body: 400/413/415
//!   are not retried by OTel exporters; 429 and 503 are, after
//!   `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use prost::Message;

use crate::error::ApiError;

/// The request's (and so the answer's) encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// From `Content-Type`: protobuf, JSON, else 415 (said in protobuf,
    /// OTLP's default).
    pub fn of(content_type: Option<&str>) -> Result<Format, (Format, OtlpError)> {
        match content_type
            .map(crate::sources::http::body::mime)
            .as_deref()
        {
            Some("application/x-protobuf" | "application/protobuf") => Ok(Format::Protobuf),
            Some("application/json") => Ok(Format::Json),
            other => Err((
                Format::Protobuf,
                OtlpError::from(ApiError::UnsupportedMediaType(format!(
                    "Content-Type `{}` is not OTLP: send application/x-protobuf or application/json",
                    other.unwrap_or("")
                ))),
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of OTLP's error answers (without
/// `details`).
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC status codes (`google.rpc.Code`).
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const ABORTED: i32 = 10;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// A refused export: the HTTP status (the one mapping in
/// `crate::error`), its gRPC code, the message and the retry delay.
#[derive(Debug)]
pub struct OtlpError {
    pub status: StatusCode,
    pub code: i32,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl From<ApiError> for OtlpError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let code = match status.as_u16() {
            401 => code::UNAUTHENTICATED,
            403 => code::PERMISSION_DENIED,
            404 => code::NOT_FOUND,
            408 => code::DEADLINE_EXCEEDED,
            409 => code::ABORTED,
            429 => code::RESOURCE_EXHAUSTED,
            503 => code::UNAVAILABLE,
            500..=599 => code::INTERNAL,
            _ => code::INVALID_ARGUMENT,
        };
        OtlpError {
            status,
            code,
            retry_after: e.retry_after(),
            message: e.to_string(),
        }
    }
}

impl From<crate::pipeline::Error> for OtlpError {
    fn from(e: crate::pipeline::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl OtlpError {
    pub fn bad_data(message: String) -> OtlpError {
        ApiError::BadRequest(message).into()
    }

    pub fn render(self, format: Format) -> Response {
        let body = match format {
            Format::Protobuf => Status {
                code: self.code,
                message: self.message,
            }
            .encode_to_vec(),
            Format::Json => {
                serde_json::to_vec(&serde_json::json!({"code": self.code, "message": self.message}))
                    .unwrap_or_default()
            }
        };
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// 200: every record stored, or `rejected` of them kept as rejected
/// events for `reason`.
pub fn success(format: Format, rejected: u64, reason: Option<&str>) -> Response {
    let partial = (rejected > 0).then(|| ExportLogsPartialSuccess {
        rejected_log_records: rejected as i64,
        error_message: reason.unwrap_or("").to_string(),
    });
    let body = match format {
        Format::Protobuf => ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Format::Json => {
            // proto3 JSON: an int64 as a string; an unset message left out.
            let v = match partial {
                None => serde_json::json!({}),
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }}),
            };
            serde_json::to_vec(&v).unwrap_or_default()
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}
