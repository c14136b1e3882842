"""Rights requests answered from the design: what citypipe can and cannot find for a
resident's access or erasure request, and how the opt-out relates to the right to object.

One list of claims, each worded from the city file (its key retention, the opt-out's
delay): ``docs/rights.md`` states them for the example city and the portal's rights page
(``core.publish.residents``) for any city; each names the test that would fail were it
false (``tests/e2e/test_rights.py``: ``test_claim_<id>``, dashes as underscores).
"""

from __future__ import annotations

from dataclasses import dataclass

from citypipe.domain.city import City
from citypipe.domain.limits import OPTOUT_RELOAD_S


@dataclass(frozen=True)
class Claim:
    id: str
    question: str
    answer: str


def _lives(days: int) -> str:
    if days == 1:
        return "that day only"
    return "that day and the next" if days == 2 else f"that day and the {days - 1} after it"


def rights_claims(city: City) -> list[Claim]:
    """What the design lets the city find, and not, for a rights request."""
    days = city.key_retention_days
    minutes = OPTOUT_RELOAD_S // 60
    return [
        Claim(
            "found-while-the-key-lives",
            "Access or erasure of recent data (Articles 15 and 17)",
            f"While a day's key lives ({days} days: {_lives(days)}), the city can find "
            "that day's stored rows of a device from its address: the address gives the "
            "day's pseudonym, and the clean zone holds the rows that carry it. What it can "
            "find, it can give or erase.",
        ),
        Claim(
            "nothing-after-the-key-dies",
            "Access or erasure of older data",
            "Once a day's key is destroyed it cannot be made again and that day's stored "
            "rows carry no pseudonym: nothing links them to any device, so no request can "
            "find a device's rows of that day (Article 11: the city can no longer "
            "identify you in them).",
        ),
        Claim(
            "nothing-in-aggregates-or-open-data",
            "The aggregates and the published open data",
            "The aggregates and the open data never hold a pseudonym or an address: counts "
            "per zone and window, nothing about who was seen. No request finds anything in "
            "them, and none is needed.",
        ),
        Claim(
            "nothing-in-quarantine",
            "Refused data",
            "Quarantine keeps the shape of a refused payload (names, types, lengths), never "
            "a value: no address is found there.",
        ),
        Claim(
            "opt-out-is-the-objection",
            "Objecting (Article 21)",
            "The opt-out is the right to object in the form the design can honour: within "
            f"{minutes} minutes of a request every sensor's edge drops the device's "
            "detections before any pseudonym of them is made, so nothing of them is "
            "written to any zone or counted in any figure.",
        ),
        Claim(
            "opt-out-looks-forward",
            "What an opt-out does not do",
            "An opt-out does not reach back: what was counted before it stays in the "
            "anonymous figures, and the earlier rows are found, while their key lives, as "
            "for an access or erasure request.",
        ),
        Claim(
            "opt-out-kept-as-a-keyed-hash",
            "What is kept of an opt-out",
            "The address is kept only as its keyed hash (HMAC-SHA-256) under a key of its "
            "own, never in clear, never in a log; the portal publishes how many opt-outs "
            "exist, never which.",
        ),
        Claim(
            "one-address-one-device",
            "Phones that change their address",
            "An opt-out knows a device by the address submitted. A phone that shows "
            "another address (a randomised Wi-Fi or Bluetooth address) is another device "
            "to it: submit the address the phone uses where it is counted, and again if "
            "the phone changes it.",
        ),
    ]
