"""OpenTelemetry's Python SDK exporting logs to Logway over OTLP/HTTP
(protobuf), the exporter configured as its docs say: an endpoint, a
headers setting carrying the key, gzip.

usage: otel_py.py URL KEY MODE [TRANSPORT]
  TRANSPORT http (the default: URL is the gateway's) or grpc (URL is the
  OTLP/gRPC listener's host:port; the gRPC exporter, gzip, the key in
  metadata).
  logs:  inside a span (so they carry its trace id), three records through
         the Logs API: a string body at WARN, a map body at ERROR with
         attributes, and a record naming its log type (`logway.type`);
         prints {"trace_id": ..., "results": [...]} (each export's result).
  retry: one record; the gateway is rate limited, so the exporter gets a
         429 with Retry-After and retries; prints {"results": [...]}.
"""
import json
import sys
import time

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

url, key, mode = sys.argv[1:4]
transport = sys.argv[4] if len(sys.argv) > 4 else "http"
results = []

if transport == "grpc":
    from grpc import Compression as GrpcCompression
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Exporter

    options = dict(endpoint=url, insecure=True, headers=(("authorization", "Bearer " + key),),
                   compression=GrpcCompression.Gzip, timeout=30)
else:
    Exporter = OTLPLogExporter
    options = dict(endpoint=url.rstrip("/") + "/v1/logs", headers={"Authorization": "Bearer " + key},
                   compression=Compression.Gzip, timeout=30)


class Recording(Exporter):
    """The SDK's exporter, recording what each export returned."""

    def export(self, batch):
        result = super().export(batch)
        results.append(result.name)
        return result


resource = Resource.create({"service.name": "checkout", "host.name": "web-7", "deployment.environment": "test"})
exporter = Recording(**options)
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
logger = provider.get_logger("shop.payments", "1.4.0")
tracer = TracerProvider(resource=resource).get_tracer("shop")

if mode == "logs":
    with tracer.start_as_current_span("checkout") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        logger.emit(severity_number=SeverityNumber.WARN, severity_text="WARN", body="otel-py cart is slow")
        logger.emit(
            severity_number=SeverityNumber.ERROR,
            body={"message": "otel-py card declined", "amount": 12.5},
            attributes={"payment.provider": "acme-pay", "http.status_code": 402},
            event_name="payment.declined",
        )
        logger.emit(
            severity_number=SeverityNumber.INFO,
            body="otel-py audit entry",
            attributes={"logway.type": "audit_logs"},
        )
    provider.shutdown()
    print(json.dumps({"trace_id": trace_id, "results": results}))
elif mode == "retry":
    start = time.monotonic()
    logger.emit(severity_number=SeverityNumber.INFO, body="otel-py after a retry")
    provider.shutdown()
    print(json.dumps({"results": results, "seconds": time.monotonic() - start}))
else:
    sys.exit("unknown mode " + mode)
