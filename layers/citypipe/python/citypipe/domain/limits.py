"""Every bound on what comes from outside, defined once.

Whatever the route a payload takes to the edge (a webhook request, an IoT rule, an MQTT
message, a drop in the inbox, a replay), these are the sizes it is judged by; a thing
over its bound is refused with a reason, never truncated silently and never read whole
first.
"""

from __future__ import annotations

MAX_PAYLOAD_BYTES = 256 * 1024  # one hub message: a payload, a JSON line, a CSV row
MAX_BODY_BYTES = 1024 * 1024  # a webhook request's body, once base64-decoded and gunzipped
MAX_BODY_LINES = 10_000  # payloads of one webhook request (JSON Lines)
MAX_DROP_BYTES = 64 * 1024 * 1024  # an inbox drop, once gunzipped
MAX_TOKEN_CHARS = 256  # a webhook token as sent
MAX_REJECTIONS_SHOWN = 20  # a sender is told this many rejections, and the counts of all
MAX_DETAILS = 5  # distinct details kept per quarantined payload (each reason has one)
MAX_DEPTH = 64  # nesting of a payload: deeper than any hub's, what lies below is not kept
MAX_SHAPE_NODES = 512  # values a quarantined payload's shape describes (the rest: counted)
MAX_SHAPE_ITEMS = 16  # items of an array its shape describes one by one (all: counted)
MAX_OPTOUT_BYTES = 512  # a resident's opt-out request: one address, as JSON or a form
MAX_OPT_OUTS = 100_000  # addresses opted out per city: the set every edge holds
OPTOUTS_PER_HOUR = 600  # opt-out requests the city takes an hour, whichever container
OPTOUT_RELOAD_S = 300  # an edge reloads the opt-outs this often: an opt-out's delay

# The open-data API (OGC API - Features, ``core.api``, ``service.api``): what one request
# may ask and what one answer may hold.
API_DEFAULT_LIMIT = 100  # features a page holds unless limit= says otherwise
API_MAX_LIMIT = 10_000  # limit= above this is served as this (OGC API - Features 7.15.3)
API_MAX_QUERY_CHARS = 2048  # a request's query string
API_MAX_PARAMETERS = 16  # a request's query parameters
API_MAX_PAGE_BYTES = 5 * 1024 * 1024  # a page's body: under Lambda's 6 MB answer, with room
API_MAX_DAY_BYTES = 64 * 1024 * 1024  # one published day's Parquet the API reads (a city's grid)
API_BUDGET_S = 20.0  # a page stops reading further days after this (HTTP API's limit: 30 s)
