// winston-loki (Grafana Loki's most used Node transport) pushing to
// Logway: snappy-compressed protobuf to /loki/api/v1/push, basic auth
// with the key as the password.
// usage: node loki_node.js URL KEY
// Logs two records (one with extra labels and metadata), flushes, and
// prints {"errors": [...]} (what the transport reported).
const winston = require('winston')
const LokiTransport = require('winston-loki')

const [url, key] = process.argv.slice(2)
const errors = []
const transport = new LokiTransport({
  host: url,
  basicAuth: `logway:${key}`,
  labels: { job: 'winston_app', service_name: 'cart' },
  batching: true,
  interval: 1,
  onConnectionError: (e) => errors.push(String(e)),
})
const logger = winston.createLogger({ level: 'debug', transports: [transport] })
logger.info('winston-loki hello', { labels: { route: 'checkout' }, user: 'ana' })
logger.error('winston-loki payment failed')
transport.flush()
  .then(() => transport.close())
  .then(() => console.log(JSON.stringify({ errors })))
  .catch((e) => { console.error(e); process.exit(1) })
