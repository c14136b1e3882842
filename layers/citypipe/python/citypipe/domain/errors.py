"""citypipe's errors, classified once (docs/decisions/0010-errors-are-classified-once.md).

- ``TerminalError``: bad or non-compliant data. Quarantined with a reason, never retried.
- ``TransientError``: throttling, timeouts, a backend briefly away. The item is reported
  failed so the queue redelivers it; the redrive policy dead-letters it in the end.
- ``BackendRefusedError``: the backend refused the request itself (access denied, a bad
  request, a missing bucket). Retrying cannot help and data is not at fault: the
  invocation fails loudly (function errors, alarms) instead of being quietly retried into
  the DLQ.
"""

from __future__ import annotations


class CitypipeError(Exception):
    """Base class of citypipe's errors."""


class TerminalError(CitypipeError):
    """Bad or non-compliant data: quarantine with a reason, never retry."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(CitypipeError):
    """Throttling, timeouts, a backend briefly away: report the item failed so it is retried."""


class BackendRefusedError(CitypipeError):
    """Access denied, an invalid request, a missing bucket or queue: a deployment or code
    problem that no retry fixes. Fails the invocation loudly; never quarantines data."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class KeyDestroyedError(CitypipeError):
    """The day's pseudonymization secret was destroyed: its readings can no longer be
    pseudonymized consistently (the edge quarantines them as ``key_destroyed``)."""


class NotFoundError(CitypipeError):
    """An object that is not there."""


class AlreadyExistsError(CitypipeError):
    """A conditional put found the key taken."""
