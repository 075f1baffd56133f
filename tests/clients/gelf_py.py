"""graypy's GELF handlers (UDP chunked and zlib-compressed, TCP with NUL
frames, HTTP to /gelf) sending to Logway.

usage: gelf_py.py MODE HOST PORT [KEY]
  udp:  two records, the second over 20 kB (about 8 chunks of 1420 bytes);
  tcp:  two records;
  http: two records to /gelf?key=KEY (graypy's HTTP handler sets no headers
        of its own; it sends `Content-Encoding: gzip,deflate` with zlib).
Each record carries extra fields (`_user`, `_order_id`); prints {"sent": n}.
"""
import json
import logging
import sys

import graypy

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else ""
if mode == "udp":
    handler = graypy.GELFUDPHandler(host, port)
elif mode == "tcp":
    handler = graypy.GELFTCPHandler(host, port)
elif mode == "http":
    handler = graypy.GELFHTTPHandler(host, port, path="/gelf?key=" + key)
else:
    sys.exit("unknown mode " + mode)
log = logging.getLogger("gelf." + mode)
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)
log.warning("gelf-%s disk almost full", mode, extra={"user": "ana", "order_id": 42})
big = "".join(format(i * 7919 % 65536, "04x") for i in range(6000))
log.error("gelf-%s big payload %s", mode, big, extra={"user": "bob"})
handler.close()
print(json.dumps({"sent": 2, "big_len": len(big)}))
