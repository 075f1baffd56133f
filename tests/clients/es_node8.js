// The node @elastic/elasticsearch 8.x client's bulk helper against
// Logway's Elasticsearch API (ApiKey auth). It refuses any answer without
// `X-Elastic-Product: Elasticsearch`.
// usage: node es_node8.js URL KEY
const { Client } = require('@elastic/elasticsearch')

const [url, key] = process.argv.slice(2)
const client = new Client({ node: url, auth: { apiKey: Buffer.from(`logway:${key}`).toString('base64') } })
const dropped = []
client.helpers
  .bulk({
    datasource: [1, 2, 3].map((i) => ({ message: `node line ${i}`, 'log.level': 'ERROR', 'service.name': 'checkout' })),
    onDocument: () => ({ create: { _index: 'logs-node.app-default' } }),
    onDrop: (d) => dropped.push(d),
  })
  .then((result) => console.log(JSON.stringify({ ...result, dropped })))
  .catch((e) => {
    console.error(e)
    process.exit(1)
  })
