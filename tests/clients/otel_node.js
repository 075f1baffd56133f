// OpenTelemetry's JS SDK exporting logs to Logway with
// @opentelemetry/exporter-logs-otlp-http, which sends OTLP/JSON.
// usage: node otel_node.js URL KEY
// Emits two records (a string body, a map body with attributes) through the
// batch processor, flushes,
// and prints {"results": [...]} (each export's result code: 0 = success).
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs')
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http')
const { resourceFromAttributes } = require('@opentelemetry/resources')
const { SeverityNumber } = require('@opentelemetry/api-logs')

const [url, key] = process.argv.slice(2)
const results = []
const exporter = new OTLPLogExporter({
  url: `${url.replace(/\/$/, '')}/v1/logs`,
  headers: { 'X-Logway-Key': key },
})
const inner = exporter.export.bind(exporter)
exporter.export = (logs, done) => inner(logs, (r) => { results.push(r.code); done(r) })
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-api', 'host.name': 'node-1' }),
  processors: [new BatchLogRecordProcessor({ exporter })],
})
const logger = provider.getLogger('api.http', '2.0.0')
logger.emit({ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'otel-node request served', attributes: { 'http.route': '/cart', 'http.status_code': 200 } })
logger.emit({ severityNumber: SeverityNumber.ERROR, body: { message: 'otel-node upstream failed', upstream: 'pricing', retries: 2 } })
provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => console.log(JSON.stringify({ results })))
  .catch((e) => { console.error(e); process.exit(1) })
