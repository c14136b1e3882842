"""The open-data API's HTTP events: API Gateway's HTTP API (payload 2.0) on AWS, Scaleway's
HTTP event (API Gateway's 1.0 shape). Only the event's shape is read here; what to answer
is ``service.api.reply``'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from citypipe.service.api import ApiRequest, ApiResponse, OpenData, reply


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def api_request(event: dict[str, Any]) -> ApiRequest:
    """A request from an HTTP event of either payload format."""
    headers = _headers(event)
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        method = str(context.get("http", {}).get("method", ""))
        path, query = str(event.get("rawPath", "")), str(event.get("rawQueryString", ""))
    else:  # 1.0: the query as a map, names given twice in the multi-value one
        method, path = str(event.get("httpMethod", "")), str(event.get("path", ""))
        values = event.get("multiValueQueryStringParameters") or {
            k: [v] for k, v in (event.get("queryStringParameters") or {}).items()
        }
        query = urlencode([(k, v) for k, vs in values.items() for v in vs])
    host = str(context.get("domainName") or headers.get("host", ""))
    return ApiRequest(method, path, query, headers.get("accept", ""), f"https://{host}")


def proxy_response(response: ApiResponse) -> dict[str, Any]:
    """The platform's answer to an HTTP event (the same for 1.0 and 2.0)."""
    return {
        "statusCode": response.status,
        "headers": {"content-type": response.content_type, **response.headers},
        "body": response.body.decode(),
        "isBase64Encoded": False,
    }


@dataclass(frozen=True)
class ApiApp:
    """The API function's app: an HTTP event in, its answer out (no queue, no schedule)."""

    data: OpenData

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return proxy_response(reply(self.data, api_request(event)))
