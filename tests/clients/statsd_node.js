// hot-shots (node's StatsD and DogStatsD client) sending to Logway over
// UDP: a counter with tags, a gauge, a timing and a histogram.
// usage: node statsd_node.js HOST PORT
// Prints {"sent": n, "errors": [...]} once every call's callback ran.
const StatsD = require('hot-shots')

const [host, port] = process.argv.slice(2)
const errors = []
const client = new StatsD({ host, port: Number(port), protocol: 'udp', globalTags: { app: 'shop' }, errorHandler: (e) => errors.push(String(e)) })
let pending = 0
let sent = 0
const done = (err) => {
  if (err) errors.push(String(err))
  pending -= 1
  if (pending === 0) {
    client.close(() => console.log(JSON.stringify({ sent, errors })))
  }
}
const call = (f) => { pending += 1; sent += 1; f(done) }
for (let i = 0; i < 5; i++) call((cb) => client.increment('node.orders', 2, 1, { env: 'prod' }, cb))
call((cb) => client.gauge('node.queue', 12, cb))
for (let ms = 10; ms <= 50; ms += 10) call((cb) => client.timing('node.checkout', ms, cb))
call((cb) => client.histogram('node.size', 300, { env: 'prod' }, cb))
