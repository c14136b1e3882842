"""Rights requests answered from the design (``docs/rights.md``, the portal's rights page):
each claim of ``core.publish.rights`` against the stack that makes it true — a day of
Wi-Fi counters through the edge, anonymize, aggregate, export and the hourly job, in
memory, with the keys the city's would be. ``test_claim_<id>`` tests claim ``<id>``; the
docs and the page state every claim, word for word, for the example city."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from repo import ROOT
from unit_support import at, drain, exporting, push

from citypipe.core.columnar import read_parquet
from citypipe.core.formats import FORMATS, Context
from citypipe.core.ingest import Payload
from citypipe.core.pseudonyms import day_keys, pseudonym
from citypipe.core.publish.residents import optout_html, rights_html
from citypipe.core.publish.rights import rights_claims
from citypipe.domain.books import OPTED_OUT
from citypipe.domain.city import City
from citypipe.domain.errors import KeyDestroyedError
from citypipe.domain.limits import OPTOUT_RELOAD_S
from citypipe.domain.model import Zone
from citypipe.service.edge import Inbound, Route, admit
from citypipe.service.housekeeping import hourly
from citypipe.service.kernel import Deps
from citypipe.service.optout import opt_out, opt_out_count
from citypipe.service.optout_http import OptOutRate, answer_optout
from citypipe.service.webhook import WebhookRequest
from citypipe_local.fakes import InMemoryKeyStore

DAY = datetime(2026, 6, 1, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(days=1, hours=12)
KEY_GONE = DAY + timedelta(days=2, minutes=5)  # the hourly job after the key's last day
PHONE = "02:00:00:00:00:07"  # the resident's phone
RIGHTS = ROOT / "docs" / "rights.md"


@pytest.fixture
def day(memory_deps: Deps) -> Iterator[tuple[Deps, InMemoryKeyStore]]:
    """1 June of a Wi-Fi counter: the resident's phone seen 3 times, 20 others once each,
    through anonymize and aggregate."""
    keys = InMemoryKeyStore()
    evening = at(memory_deps, DAY + timedelta(hours=23))
    seen = [
        ("wifi-22", DAY + timedelta(hours=9, minutes=n), f"02:00:00:00:01:{n:02x}")
        for n in range(20)
    ]
    seen += [("wifi-22", DAY + timedelta(hours=10, minutes=n), PHONE) for n in range(3)]
    push(evening, keys, seen)
    drain(evening)
    yield memory_deps, keys


def clean_rows(deps: Deps) -> list[dict[str, Any]]:
    bucket = deps.names.bucket(Zone.CLEAN)
    return [
        row
        for info in deps.store.list(bucket)
        for row in read_parquet(deps.store.get(bucket, info.key).body).to_pylist()
    ]


def found(deps: Deps, keys: InMemoryKeyStore, address: str, when: datetime) -> list[dict[str, Any]]:
    """What an access or erasure request finds of an address's day: the rows carrying the
    day's pseudonym, computed from the address while the day's key lives."""
    alias = pseudonym(day_keys(keys, deps.city.slug)(when.date()), address)
    return [r for r in clean_rows(deps) if r["pseudonym"] == alias]


def zone_text(deps: Deps, zone: Zone) -> str:
    bucket = deps.names.bucket(zone)
    texts = []
    for info in deps.store.list(bucket):
        body = deps.store.get(bucket, info.key).body
        texts.append(repr(gzip.decompress(body) if info.key.endswith(".gz") else body).lower())
    return "\n".join(texts)


def test_claim_found_while_the_key_lives(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    assert deps.city.first_living_day(NEXT_DAY.date()) == DAY.date()  # it lives the next day
    hourly(at(deps, NEXT_DAY), exporting(keys), NEXT_DAY)  # the next day's hourly job
    assert len(found(deps, keys, PHONE, DAY)) == 3


def test_claim_nothing_after_the_key_dies(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    hourly(at(deps, KEY_GONE), exporting(keys), KEY_GONE)
    with pytest.raises(KeyDestroyedError):
        keys.daily_secret(DAY.date())
    rows = [r for r in clean_rows(deps) if r["quantity"] == "people.presence"]
    assert len(rows) == 23 and all(r["pseudonym"] is None for r in rows)


def test_claim_nothing_in_aggregates_or_open_data(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    alias = pseudonym(day_keys(keys, deps.city.slug)(DAY.date()), PHONE)
    hourly(at(deps, KEY_GONE), exporting(keys), KEY_GONE)  # 1 June's people released
    for zone in (Zone.AGGREGATES, Zone.OPEN):  # no pseudonym, no address, anywhere
        text = zone_text(deps, zone)
        assert text and alias not in text
        assert "02:00:00:00:00:07" not in text and "020000000007" not in text
    bucket = deps.names.bucket(Zone.AGGREGATES)
    partials = [read_parquet(deps.store.get(bucket, i.key).body) for i in deps.store.list(bucket)]
    assert partials and all("pseudonym" not in t.column_names for t in partials)
    bucket = deps.names.bucket(Zone.OPEN)
    headers = [
        deps.store.get(bucket, i.key).body.split(b"\n", 1)[0]
        for i in deps.store.list(bucket)
        if i.key.endswith(".csv") and "/register/" not in i.key
    ]
    assert headers and all(b"pseudonym" not in h for h in headers)


def test_claim_nothing_in_quarantine(memory_deps: Deps) -> None:
    keys = InMemoryKeyStore()
    refused = {"sensor": "wifi-22", "quantity": "people.presence", "unit": "{device}",
               "value": "many", "observed_at": "2026-06-01T10:00:00Z",
               "personal": {"device_mac": PHONE}}  # fmt: skip
    payload = Payload(json.dumps(refused).encode(), Context(DAY.timestamp() + 36_000), 1)
    evening = at(memory_deps, DAY + timedelta(hours=23))
    counts = admit(evening, keys, Inbound([payload], Route.REPLAY, FORMATS["canonical"])).counts
    assert counts.quarantined_total == 1
    text = zone_text(memory_deps, Zone.QUARANTINE)
    assert "device_mac" in text and "02:00:00:00:00:07" not in text and "020000000007" not in text


def test_claim_opt_out_is_the_objection(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    objected = DAY + timedelta(hours=12)
    opt_out(at(deps, objected), keys, "020000000007")
    later = objected + timedelta(seconds=OPTOUT_RELOAD_S)
    push(
        at(deps, later), keys, [("wifi-22", later, PHONE), ("wifi-22", later, "02:00:00:00:09:09")]
    )
    drain(deps)
    # every detection after the delay dropped before its pseudonym: none written ...
    assert len(found(deps, keys, PHONE, DAY)) == 3  # the three of the morning only
    # ... and counted in the books, never quarantined
    audit = deps.names.bucket(Zone.AUDIT)
    books = [json.loads(deps.store.get(audit, i.key).body)["counts"]
             for i in deps.store.list(audit, deps.names.lineage_prefix())]  # fmt: skip
    assert sum(b.get("quarantined", {}).get(OPTED_OUT, 0) for b in books) == 1
    assert zone_text(deps, Zone.QUARANTINE) == ""


def test_claim_opt_out_looks_forward(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    opt_out(deps, keys, "020000000007")
    hourly(at(deps, NEXT_DAY), exporting(keys), NEXT_DAY)
    assert len(found(deps, keys, PHONE, DAY)) == 3  # counted before it, found as before


def test_claim_opt_out_kept_as_a_keyed_hash(
    memory_deps: Deps, memory_keys: InMemoryKeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"address": PHONE})
    request = WebhookRequest("POST", "", "", {"content-type": "application/json"}, body)
    assert answer_optout(memory_deps, memory_keys, OptOutRate(), request).status == 202
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records).lower()
    assert PHONE not in logged and "020000000007" not in logged
    kept = [i.key for i in memory_deps.store.list(memory_deps.names.keys_bucket(), "optouts/")]
    assert kept == [f"optouts/velden/{pseudonym(memory_keys.optout_secret(), PHONE)}"]
    page = optout_html(memory_deps.city, opt_out_count(memory_deps))
    assert "1 device is opted out." in page and "020000000007" not in page


def test_claim_one_address_one_device(day: tuple[Deps, InMemoryKeyStore]) -> None:
    deps, keys = day
    opt_out(deps, keys, "020000000007")
    later = DAY + timedelta(hours=13)
    randomised = "06:3a:11:00:00:07"  # the same phone, showing another address
    push(at(deps, later), keys, [("wifi-22", later, randomised)])
    drain(deps)
    assert len(found(deps, keys, randomised, DAY)) == 1


# --- the claims as the docs and the page state them -------------------------------------------


def squeezed(text: str) -> str:
    return " ".join(text.split())


def test_every_claim_has_its_test(city: City) -> None:
    tests = {name for name in globals() if name.startswith("test_claim_")}
    claims = {f"test_claim_{c.id.replace('-', '_')}" for c in rights_claims(city)}
    assert claims == tests


def test_docs_rights_states_every_claim_for_the_example_city(city: City) -> None:
    text = squeezed(re.sub(r"[*_`]", "", RIGHTS.read_text()))
    for claim in rights_claims(city):
        assert squeezed(claim.answer) in text, claim.id
        assert f"test_claim_{claim.id.replace('-', '_')}" in RIGHTS.read_text()


def test_the_portals_rights_page_states_every_claim(city: City) -> None:
    page = rights_html(city)
    for claim in rights_claims(city):
        assert f'<section id="{claim.id}">' in page
        assert squeezed(claim.answer).replace("'", "&#x27;") in squeezed(page)
