"""The Python `elasticsearch` 9.x client against Logway's Elasticsearch API.

usage: es_py9.py URL KEY MODE
  bulk:     helpers.bulk of 5 documents with _id, twice; a create of a
            stored _id and a new document; a single es.index(); prints
            one JSON object with what the client returned.
  retry:    streaming_bulk of 10 documents with max_retries=3 (the client
            backs off on a 429 and retries); prints the ok count.
"""
import json
import sys

from elasticsearch import Elasticsearch, helpers

url, key, mode = sys.argv[1:4]
es = Elasticsearch(url, api_key=("logway", key), request_timeout=30)

if mode == "bulk":
    docs = [
        {
            "_index": "app-2026.11.30",
            "_id": f"py9-{i}",
            "_source": {
                "@timestamp": "2026-11-30T10:00:0%dZ" % i,
                "message": f"py9 hello {i}",
                "log": {"level": "WARN"},
                "service": {"name": "cart"},
                "host": {"name": "web-1"},
                "trace": {"id": "trace-py9"},
                "user": {"id": i},
            },
        }
        for i in range(5)
    ]
    first = helpers.bulk(es, docs)
    again = helpers.bulk(es, docs)
    try:
        helpers.bulk(
            es,
            [
                {"_op_type": "create", "_index": "app-x", "_id": "py9-1", "_source": {"message": "dup"}},
                {"_index": "app-x", "_source": {"message": "py9 new"}},
            ],
        )
        errors = []
    except helpers.BulkIndexError as e:
        errors = e.errors
    single = es.index(index="web-logs-2026.11.30", document={"message": "py9 single", "host": {"name": "h1"}})
    print(json.dumps({"first": first[0], "again": again[0], "errors": errors, "single": dict(single)}))
elif mode == "retry":
    docs = ({"_index": "retry-logs", "_id": f"retry-{i}", "_source": {"message": f"retry {i}"}} for i in range(10))
    ok = 0
    for good, _item in helpers.streaming_bulk(es, docs, max_retries=3, initial_backoff=1):
        ok += good
    print(json.dumps({"ok": ok}))
else:
    sys.exit("unknown mode " + mode)
