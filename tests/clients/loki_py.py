"""python-logging-loki's handler pushing to Logway's Loki API: JSON, one
request per record, basic auth with the key as the password; it requires
exactly 204.

usage: loki_py.py URL KEY VERSION
  VERSION 1: the current push format (`stream`/`values`) to /loki/api/v1/push;
  VERSION 0: the legacy one (`labels`/`entries`) to /api/prom/push.
Logs two records (WARNING, and ERROR with a tag); prints {"errors": [...]}
(what the handler reported: it raises on any status but 204).
"""
import json
import logging
import sys
import warnings

import logging_loki

url, key, version = sys.argv[1:4]
errors = []


class Handler(logging_loki.LokiHandler):
    def handleError(self, record):
        errors.append(str(sys.exc_info()[1]))


path = "/loki/api/v1/push" if version == "1" else "/api/prom/push"
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    handler = Handler(
        url=url.rstrip("/") + path,
        tags={"job": "py_loki", "env": "test"},
        auth=("logway", key),
        version=version,
    )
log = logging.getLogger("billing")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
log.propagate = False
log.warning("loki-py v%s low balance", version)
log.error("loki-py v%s card declined", version, extra={"tags": {"provider": "acme-pay"}})
print(json.dumps({"errors": errors}))
