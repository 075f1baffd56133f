// splunk-logging (Splunk's own Node library) sending to Logway's HEC
// endpoint: /services/collector/event/1.0, `Authorization: Splunk <token>`,
// a batch of events concatenated in one body.
// usage: node hec_node.js URL TOKEN
// Sends three events in one batch (a message with severity, metadata),
// prints {"errors": [...], "responses": [...]} (what the library reported
// and the bodies it got back).
const SplunkLogger = require('splunk-logging').Logger

const [url, token] = process.argv.slice(2)
const errors = []
const responses = []
const logger = new SplunkLogger({ token, url, maxBatchCount: 0, batchInterval: 0, maxBatchSize: 0 })
logger.error = (err) => errors.push(String(err))
const base = { metadata: { source: 'node-app', sourcetype: 'node_hec', index: 'main', host: 'node-2' } }
logger.send({ ...base, message: 'hec-node order placed', severity: 'info' })
logger.send({ ...base, message: { text: 'hec-node stock low', sku: 'A-7' }, severity: 'warn' })
logger.send({ ...base, message: 'hec-node payment failed', severity: 'error' })
logger.flush((err, resp, body) => {
  if (err) errors.push(String(err))
  responses.push(body)
  console.log(JSON.stringify({ errors, responses }))
})
