"""Beats (Lumberjack v2) clients against a Logway Beats listener.

usage: beats_py.py MODE HOST PORT
  pylogbeat:       one PyLogBeatClient connection, two windows of 25
                   Filebeat-shaped events (sequence numbers count on
                   across windows, as pylogbeat does); returns after both
                   are acked.
  logstash-async:  python-logstash-async's BeatsTransport behind a
                   logging handler, three records.
  pylogbeat-tls:   pylogbeat over TLS with a client certificate:
                   beats_py.py pylogbeat-tls HOST PORT CA_PEM CERT_PEM KEY_PEM;
                   prints {"sent": 3} or {"error": "..."}.
Prints one JSON line.
"""
import json
import logging
import sys

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if mode == "pylogbeat":
    from pylogbeat import PyLogBeatClient

    def event(i):
        return {
            "@timestamp": "2026-11-30T09:00:%02d.123Z" % (i % 60),
            "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.19.0", "_id": "pb-%d" % i},
            "message": "GET /cart/%d 200" % i,
            "log": {"level": "info", "offset": i * 100, "file": {"path": "/var/log/app.log"}},
            "host": {"name": "web-7"},
            "agent": {"type": "filebeat", "version": "8.19.0", "name": "web-7"},
            "fields": {"type": "app"},
            "tags": ["beats", "test"],
        }

    with PyLogBeatClient(host, port, ssl_enable=False, timeout=10) as client:
        client.send([event(i) for i in range(25)])
        client.send([event(i) for i in range(25, 50)])
    print(json.dumps({"sent": 50}))
elif mode == "pylogbeat-tls":
    from pylogbeat import PyLogBeatClient

    ca, cert, key = sys.argv[4:7]
    try:
        with PyLogBeatClient(host, port, ssl_enable=True, ssl_verify=True, ca_certs=ca,
                             certfile=cert, keyfile=key, timeout=10) as client:
            client.send([{"message": "beats over tls %d" % i} for i in range(3)])
        print(json.dumps({"sent": 3}))
    except Exception as e:  # the refused certificate: reported, not raised
        print(json.dumps({"error": repr(e)}))
elif mode == "logstash-async":
    from logstash_async.handler import SynchronousLogstashHandler

    handler = SynchronousLogstashHandler(
        host, port, transport="logstash_async.transport.BeatsTransport", ssl_enable=False
    )
    errors = []
    handler.handleError = lambda record: errors.append(sys.exc_info()[1])
    log = logging.getLogger("billing")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.info("invoice 1 created")
    log.warning("invoice 2 is late", extra={"invoice": 2})
    log.error("invoice 3 failed")
    handler.close()
    if errors:
        sys.exit("handler errors: %r" % errors)
    print(json.dumps({"sent": 3}))
else:
    sys.exit("unknown mode " + mode)
