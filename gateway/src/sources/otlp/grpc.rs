//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`
//! on a listener of its own (`otlp.grpc_addr`, off by default; 4317 is
//! OTLP's port), HTTP/2 without TLS or with `otlp.grpc_tls`, gzip and
//! zstd. The service is the `opentelemetry-proto` crate's tonic server;
//! records go the way OTLP/HTTP's do ([`super::groups_of`]).
//!
//! Status codes as OTLP defines them for exporters' retries: a rate
//! limit is `RESOURCE_EXHAUSTED` with a `RetryInfo` detail (retryable only
//! with it), a full WAL or shutdown `UNAVAILABLE` (retryable), bad data
//! `INVALID_ARGUMENT`, keys `UNAUTHENTICATED` / `PERMISSION_DENIED`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::answer::{OtlpError, code};
use crate::pipeline::{Caller, Meta};
use crate::state::AppState;

/// The gRPC path of the logs service's one method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// The router of the gRPC listener.
pub fn router(state: Arc<AppState>, max_message_bytes: usize) -> Router {
    let service = LogsServiceServer::new(Logs { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    Router::new().route_service(EXPORT_PATH, service)
}

struct Logs {
    state: Arc<AppState>,
}

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let core = self
            .state
            .core()
            .map_err(|e| status(OtlpError::from(e)))?
            .clone();
        let pipeline = &core.pipeline;
        let metadata = request.metadata();
        let key = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| metadata.get("x-logway-key").and_then(|v| v.to_str().ok()))
            .map(|k| k.trim().to_string());
        let caller = Caller {
            key: key.as_deref(),
            cert: None,
            ip: request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        };
        let auth = pipeline
            .authenticate(&caller)
            .map_err(|e| status(e.into()))?;
        let config = core.config.otlp.clone();
        let worker = pipeline.clone();
        let message = request.into_inner();
        let ready = tokio::task::spawn_blocking(move || {
            let groups = super::groups_of(&auth, &config, &message)?;
            Ok::<_, OtlpError>(groups.build(&worker, &Meta::now()))
        })
        .await
        .map_err(|e| Status::internal(format!("decoder task failed: {e}")))?
        .map_err(status)?;
        let stored = ready.store(pipeline).await.map_err(|e| status(e.into()))?;
        let partial_success = (stored.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: stored.rejected as i64,
            error_message: stored.reason.unwrap_or_default(),
        });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

/// A refusal as a gRPC status, with `RetryInfo` where OTLP needs it to
/// retry.
fn status(e: OtlpError) -> Status {
    let c = match e.code {
        code::INVALID_ARGUMENT => Code::InvalidArgument,
        code::DEADLINE_EXCEEDED => Code::DeadlineExceeded,
        code::NOT_FOUND => Code::NotFound,
        code::PERMISSION_DENIED => Code::PermissionDenied,
        code::RESOURCE_EXHAUSTED => Code::ResourceExhausted,
        code::ABORTED => Code::Aborted,
        code::UNAVAILABLE => Code::Unavailable,
        code::UNAUTHENTICATED => Code::Unauthenticated,
        _ => Code::Internal,
    };
    let Some(secs) = e.retry_after else {
        return Status::new(c, e.message);
    };
    // In the status details (`grpc-status-details-bin`, where Go's
    // exporter looks) and as `google.rpc.retryinfo-bin` metadata (where
    // Python's looks).
    let mut status = Status::with_error_details(
        c,
        e.message,
        ErrorDetails::with_retry_info(Some(Duration::from_secs(secs))),
    );
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: secs as i64,
            nanos: 0,
        }),
    };
    status.metadata_mut().insert_bin(
        "google.rpc.retryinfo-bin",
        tonic::metadata::MetadataValue::from_bytes(&retry.encode_to_vec()),
    );
    status
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}
