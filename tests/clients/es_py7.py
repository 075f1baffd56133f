"""Debian's python3-elasticsearch 7.17 (it checks GET / before anything
else) against Logway's Elasticsearch API, with Basic auth.

usage: /usr/bin/python3 es_py7.py URL KEY
"""
import json
import sys

from elasticsearch import Elasticsearch, helpers

url, key = sys.argv[1:3]
es = Elasticsearch([url], http_auth=("acme", key))
ok, errors = helpers.bulk(es, [{"_index": "py7-logs", "_source": {"message": "py7 line %d" % i, "level": "info"}} for i in range(3)])
print(json.dumps({"ok": ok, "errors": errors, "version": es.info()["version"]["number"]}))
