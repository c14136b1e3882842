"""MQTT topic filters, as the city file declares them per source (``sources.<s>.mqtt``).

A filter is levels separated by ``/``; ``+`` stands for one whole level, ``#`` (last
level only) for any number of levels. A topic starting with ``$`` (the broker's own,
``$SYS/...``) is never matched by a filter starting with a wildcard (MQTT 3.1.1 4.7.2,
MQTT 5.0 4.7.2). Pure functions: the bridge subscribes to the filters and routes each
message by the one filter its topic matches.
"""

from __future__ import annotations

MAX_TOPIC_BYTES = 65_535  # an MQTT string's length is two bytes


def filter_problem(text: str) -> str | None:
    """Why ``text`` is no valid topic filter, or None."""
    if not text:
        return "an empty topic filter"
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_TOPIC_BYTES:
        return f"longer than {MAX_TOPIC_BYTES} bytes"
    if "\x00" in text:
        return "a NUL character"
    if text.startswith("$share/"):
        return "a shared subscription: the bridge keeps one session of its own"
    levels = text.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return "'#' stands alone, as the last level"
        if "+" in level and level != "+":
            return "'+' stands alone for a whole level"
    return None


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` (no wildcards) is matched by ``topic_filter``."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for position, level in enumerate(wanted):
        if level == "#":
            return True
        if position >= len(levels) or (level != "+" and level != levels[position]):
            return False
    return len(levels) == len(wanted)


def overlap(first: str, second: str) -> bool:
    """Whether some topic is matched by both filters (then a message on it could be routed
    to two sources, or two formats)."""
    a, b = first.split("/"), second.split("/")
    for position in range(max(len(a), len(b))):
        left = a[position] if position < len(a) else None
        right = b[position] if position < len(b) else None
        if left == "#" or right == "#":
            return not (position == 0 and _system(a, b))
        if left is None or right is None:
            return False
        if left != right and "+" not in (left, right):
            return False
    return not _system(a, b)


def _system(a: list[str], b: list[str]) -> bool:
    """One filter names a ``$`` topic and the other starts with a wildcard: they share none."""
    first_a, first_b = a[0], b[0]
    return (first_a.startswith("$") and first_b in ("+", "#")) or (
        first_b.startswith("$") and first_a in ("+", "#")
    )


# Where a hub's own topics name the device a message is from: The Things Stack v3
# ``v3/{application}@{tenant}/devices/{device id}/up`` (its end device id), ChirpStack
# ``[prefix/]application/{application id}/device/{DevEUI}/event/up`` (v4; v3 likewise). A
# broker's access rules bind a device to its own topic; the edge binds the topic to the
# payload (``core.ingest``: ``topic_device_mismatch``).
DEVICE_ID = "device_id"  # the hub's own name of the device (TTS)
DEV_EUI = "dev_eui"  # the LoRaWAN DevEUI (ChirpStack)
_DEVICE_TOPICS = frozenset(("tts-v3", "chirpstack-v4", "chirpstack-v3"))  # the formats above


def topic_device(fmt: str, topic: str) -> tuple[str, str] | None:
    """(what it is, the device level) of a message's topic where the hub's layout puts its
    device there, else None (a topic of the city's own layout)."""
    if fmt not in _DEVICE_TOPICS:
        return None
    levels = topic.split("/")
    if fmt == "tts-v3":
        if len(levels) >= 5 and levels[0] == "v3" and levels[2] == "devices":
            return DEVICE_ID, levels[3]
        return None
    if fmt in ("chirpstack-v4", "chirpstack-v3"):
        for i in range(len(levels) - 4):
            if levels[i] == "application" and levels[i + 2] == "device":
                return DEV_EUI, levels[i + 3]
    return None
