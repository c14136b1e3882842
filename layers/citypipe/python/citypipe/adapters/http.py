"""Http on the standard library: the poller's requests to hub APIs. No redirect is
followed (an API that moved is a configuration to change, not a hop to take with its key),
and an answer is read up to its bound, never whole first."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Any

from citypipe.domain.errors import TransientError
from citypipe.ports import Http, HttpAnswer


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is the answer


class UrllibHttp(Http):
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float,
        limit: int,
    ) -> HttpAnswer:
        call = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
        try:
            with self._opener.open(call, timeout=timeout_s) as answer:
                return _read(answer.status, answer, limit)
        except urllib.error.HTTPError as exc:  # a status >= 400 (or an unfollowed 3xx)
            with exc:
                return _read(exc.code, exc, limit)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out
            raise TransientError(f"no answer: {type(exc).__name__}") from None


def _read(status: int, answer: Any, limit: int) -> HttpAnswer:
    try:
        body = answer.read(limit + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise TransientError(f"answer cut off: {type(exc).__name__}") from None
    if len(body) > limit:
        raise TransientError(f"an answer over {limit} bytes")
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpAnswer(status, headers, body)
