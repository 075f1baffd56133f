"""StatsD clients sending to Logway: the `statsd` package (plain StatsD,
over UDP and TCP) and the `datadog` package's DogStatsD client (tags,
distributions).

usage: statsd_py.py MODE HOST PORT
  statsd, statsd-tcp (its TCPStatsClient, one connection):
             counter `shop.orders` +1 x 10, gauge
             `shop.queue` 40 then -15 (a delta), timer `shop.checkout`
             1..200 ms, set `shop.users` ann, bob, ann;
  dogstatsd: counter `api.hits` 3 with tags env:prod and route:/pay, the
             same with env:dev, histogram `api.latency` 1..100 with
             env:prod, distribution `api.size` 10, 20, 30, gauge
             `api.conns` 7.
Prints {"sent": n} with n the number of calls.
"""
import json
import sys

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sent = 0
if mode in ("statsd", "statsd-tcp"):
    import statsd

    if mode == "statsd":
        c = statsd.StatsClient(host, port)
    else:
        c = statsd.TCPStatsClient(host, port, timeout=10)
        c.connect()
    for _ in range(10):
        c.incr("shop.orders")
        sent += 1
    c.gauge("shop.queue", 40)
    c.gauge("shop.queue", -15, delta=True)
    for ms in range(1, 201):
        c.timing("shop.checkout", ms)
    for user in ("ann", "bob", "ann"):
        c.set("shop.users", user)
    sent += 2 + 200 + 3
    if mode == "statsd-tcp":
        c.close()
elif mode == "dogstatsd":
    from datadog.dogstatsd import DogStatsd

    d = DogStatsd(host=host, port=port, disable_telemetry=True, disable_buffering=True)
    d.increment("api.hits", 3, tags=["env:prod", "route:/pay"])
    d.increment("api.hits", 3, tags=["route:/pay", "env:dev"])
    for v in range(1, 101):
        d.histogram("api.latency", v, tags=["env:prod"])
    for v in (10, 20, 30):
        d.distribution("api.size", v)
    d.gauge("api.conns", 7)
    d.flush()
    sent = 2 + 100 + 3 + 1
else:
    sys.exit("unknown mode " + mode)
print(json.dumps({"sent": sent}))
