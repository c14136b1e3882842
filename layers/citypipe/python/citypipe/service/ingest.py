"""ingest's stage: a drop a city's own system put in the inbox, through the edge.

A drop is ``inbox/<city>/<format>/…``: JSON Lines of payloads, gzip or not, or a CSV file
with a mapping (``inbox/<city>/csv/<mapping>/…``), announced by a claim check or an S3
notification. Its payloads are decoded (``core.decode``) and go through the edge's one
entrance as a batch whose identity is the drop's own; each line is judged on its own.
The stage machinery (``service.stage``) writes what the edge made of it exactly once,
then deletes the drop. Hubs' webhooks are ``service.webhook``'s.
"""

from __future__ import annotations

from citypipe.core.decode import Undecodable, drop_payloads, gunzip
from citypipe.core.formats import FORMATS
from citypipe.domain.errors import TerminalError
from citypipe.domain.limits import MAX_DROP_BYTES
from citypipe.domain.model import Message
from citypipe.ports import KeyStore, StoredObject
from citypipe.service.edge import Inbound, Route, prepare
from citypipe.service.kernel import Deps, Outcome

# What a drop that cannot be decoded is quarantined as (anything else: unreadable_input).
DROP_REASONS = {"too_large": "drop_too_large", "unknown_mapping": "unknown_mapping"}


def ingest_drop(
    obj: StoredObject, message: Message, deps: Deps, ident: str, *, keys: KeyStore | None
) -> Outcome:
    """The stage core of an inbox drop (bound to the key store of the daily secrets by the
    composition root): its payloads through the edge, what to write."""
    fmt = FORMATS.get(message.format)
    if fmt is None:
        raise TerminalError("unknown_format", f"formats: {sorted(FORMATS)}")
    body = obj.body
    try:
        if message.key.endswith(".gz"):
            body = gunzip(body, MAX_DROP_BYTES)
        elif len(body) > MAX_DROP_BYTES:
            raise Undecodable("too_large", f"{len(body)} bytes > {MAX_DROP_BYTES}")
        payloads = drop_payloads(deps.city, fmt, message.key, body, deps.clock.now().timestamp())
    except Undecodable as exc:
        reason = DROP_REASONS.get(exc.reason, "unreadable_input")
        raise TerminalError(reason, exc.detail) from None
    inbound = Inbound(payloads, Route.DROP, fmt, trace_id=message.trace_id, identity=ident)
    return prepare(deps, keys, inbound).write.outcome  # the city's own: not claimed (edge)
