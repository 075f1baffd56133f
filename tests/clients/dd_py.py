"""Datadog's Python API client, LogsApi.submit_log (v2), pointed at Logway
with its `host` setting: `DD-API-KEY`, a JSON array of HTTPLogItem, gzip.

usage: dd_py.py URL KEY [retry]
Submits three items in one call (two sources, tags in the item and in the
ddtags query parameter); prints {"response": <what the client returned>}.
With `retry`: one item, the client's retries on (`enable_retry`), to a
rate-limited tenant: a 429 it waits out and sends again.
The client raises on any non-2xx answer and on a body that is not a JSON
object.
"""
import json
import sys

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.content_encoding import ContentEncoding
from datadog_api_client.v2.model.http_log import HTTPLog
from datadog_api_client.v2.model.http_log_item import HTTPLogItem

url, key = sys.argv[1:3]
retry = len(sys.argv) > 3 and sys.argv[3] == "retry"
configuration = Configuration(host=url)
configuration.api_key["apiKeyAuth"] = key
configuration.enable_retry = retry
body = HTTPLog([HTTPLogItem(ddsource="retried", message="dd-py after a retry")]) if retry else HTTPLog([
    HTTPLogItem(ddsource="nginx", ddtags="env:prod,version:1.4", hostname="web-3", service="shop",
                message="dd-py GET /cart 200", status="info", http_status=200),
    HTTPLogItem(ddsource="nginx", hostname="web-3", service="shop",
                message="dd-py GET /pay 502", status="error"),
    HTTPLogItem(ddsource="payments", hostname="pay-1", service="payments",
                message='{"message": "dd-py charge captured", "amount": 42}'),
])
with ApiClient(configuration) as client:
    response = LogsApi(client).submit_log(body=body, content_encoding=ContentEncoding.GZIP, ddtags="team:checkout")
print(json.dumps({"response": response.to_dict() if hasattr(response, "to_dict") else response}))
