"""Python Splunk HEC handlers against Logway.

usage: hec_py.py HOST PORT TOKEN MODE
  batch: splunk-handler (concatenated JSON events to /services/collector/event,
         `Authorization: Splunk`), three records, one forced flush.
  raw:   splunk-hec-handler with endpoint='raw' (/services/collector/raw),
         two records, one request each.
  retry: splunk-handler, one record to a rate-limited tenant: HEC's 503
         "Server is busy", which the handler retries after Retry-After.
Prints {"errors": [...]} (what the handler reported).
"""
import json
import logging
import sys

host, port, token, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
errors = []
log = logging.getLogger("inventory")
log.setLevel(logging.DEBUG)
log.propagate = False

if mode in ("batch", "retry"):
    from splunk_handler import SplunkHandler

    class Handler(SplunkHandler):
        def write_log(self, msg):
            errors.append(msg)

    handler = Handler(host=host, port=port, token=token, index="main", protocol="http",
                      sourcetype="py_hec", source="inventory.py", flush_interval=30, verify=False)
    log.addHandler(handler)
    if mode == "batch":
        log.info("hec-py restocked")
        log.warning("hec-py shelf empty")
        log.error("hec-py scanner offline")
    else:
        log.info("hec-py after a retry")
    handler.force_flush()
    handler.close()
elif mode == "raw":
    from splunk_hec_handler import SplunkHecHandler

    class Handler(SplunkHecHandler):
        def handleError(self, record):
            errors.append(str(sys.exc_info()[1]))

    handler = Handler(host, token, port=port, proto="http", endpoint="raw", sourcetype="py_raw")
    log.addHandler(handler)
    log.info("hec-raw first line")
    log.error("hec-raw second line")
else:
    sys.exit("unknown mode " + mode)
print(json.dumps({"errors": errors}))
