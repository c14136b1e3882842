"""The records of processing, generated from the city file: the public transparency register
and the GDPR Article 30 record, in JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest
from unit_support import city_data

from citypipe.core.publish.register import (
    RECORD,
    REGISTER,
    record_of_processing,
    register_documents,
    register_rows,
)
from citypipe.domain.city import City, ConfigError, parse_city
from citypipe.domain.naming import StackNames


def test_the_register_has_a_row_per_source_saying_whether_personal_data_is_involved(
    city: City,
) -> None:
    rows = {r["source"]: r for r in register_rows(city)}
    assert set(rows) == set(city.sources)
    assert {s: r["personal_data"] for s, r in rows.items()} == {
        "air-quality": "no", "operator-counters": "no", "traffic-counters": "no",
        "wifi-counters": "yes",
    }  # fmt: skip
    wifi = rows["wifi-counters"]
    assert wifi["why"] == city.sources["wifi-counters"].purpose
    assert "people.presence ({device})" in wifi["measures"]
    assert "device_mac" in wifi["personal_fields"] and "keyed pseudonym" in wifi["personal_fields"]
    assert "k = 20" in wifi["treatment"] and "at most ε = 2.0" in wifi["treatment"]
    assert "ε = 2.0 per person per day" in wifi["guarantee"]
    assert wifi["legal_basis"].startswith("GDPR Article 6(1)(e)")
    assert wifi["published_as"] == "people-counts"
    assert rows["air-quality"]["guarantee"] == rows["air-quality"]["legal_basis"] == ""


def test_the_record_of_processing_holds_what_article_30_asks_for(city: City) -> None:
    record = record_of_processing(city)
    assert set(record) >= {
        "controller", "lawfulness", "purposes", "data_subjects", "personal_data",
        "recipients", "transfers_to_third_countries", "retention", "safeguards",
        "data_subject_rights",
    }  # fmt: skip
    assert record["controller"]["data_protection_officer"] == "privacy@velden.example"
    assert record["purposes"]["wifi-counters"] == city.sources["wifi-counters"].purpose
    assert set(record["data_subjects"]) == {"wifi-counters"}
    assert record["personal_data"]["wifi-counters"]["device_mac"]["rule"] == "pseudonymize"
    assert record["retention"]["raw"].startswith("1 days")
    assert record["retention"]["pseudonymization keys"].startswith("2 days")
    assert record["privacy"]["k"] == 20
    noise = record["privacy"]["noise"]
    assert (noise["epsilon_per_release"], noise["epsilon_per_person_day"]) == (2.0, 2.0)
    assert noise["contributions_per_day"] == 10
    assert noise["unit_of_privacy"].startswith("one device over one UTC day")
    assert record["transfers_to_third_countries"] == "none"


def test_the_record_states_the_legal_basis_the_dpia_the_authority_and_the_rights(
    city: City,
) -> None:
    record = record_of_processing(city)
    lawfulness = record["lawfulness"]
    assert lawfulness["legal_basis"].startswith("GDPR Article 6(1)(e): a task carried out")
    assert "VLD-DPIA-2026-03" in lawfulness["dpia"]
    assert "Autoriteit Persoonsgegevens" in lawfulness["supervisory_authority"]
    rights = " ".join(record["data_subject_rights"])
    for said in ("Article 11", "Articles 15-18", "Article 21", "Autoriteit Persoonsgegevens"):
        assert said in rights
    assert "ε = 2.0 per person per day" in record["privacy"]["guarantee"]


@pytest.mark.parametrize(
    ("drop", "key"),
    [(("processing",), "processing"), (("publisher", "dpo_email"), "publisher.dpo_email")],
    ids=["no-processing", "no-dpo"],
)
def test_a_city_processing_personal_data_must_state_its_accountability(
    drop: tuple[str, ...], key: str
) -> None:
    data = city_data()
    node = data
    for part in drop[:-1]:
        node = node[part]
    del node[drop[-1]]
    with pytest.raises(ConfigError) as refused:
        parse_city(data)
    assert key in str(refused.value)


def test_the_json_and_the_csv_hold_the_same_register(city: City) -> None:
    documents = register_documents(city)
    as_json = json.loads(documents[StackNames("velden").register_key(REGISTER, "json")][0])[
        "register"
    ]
    as_csv = list(
        csv.DictReader(
            io.StringIO(documents[StackNames("velden").register_key(REGISTER, "csv")][0].decode())
        )
    )
    assert as_csv == as_json


def test_the_csv_record_lists_every_item_of_the_json_one(city: City) -> None:
    documents = register_documents(city)
    rows = list(
        csv.DictReader(
            io.StringIO(documents[StackNames("velden").register_key(RECORD, "csv")][0].decode())
        )
    )
    items = {r["item"] for r in rows}
    assert "controller.name" in items and "privacy.noise.epsilon_per_person_day" in items
    assert sum(r["item"] == "safeguards" for r in rows) == len(
        record_of_processing(city)["safeguards"]
    )


def test_a_change_of_policy_changes_the_register(city: City) -> None:
    data = city_data()
    data["sources"]["wifi-counters"]["policy"]["personal"]["ssid"] = "refuse"
    changed = register_documents(parse_city(data))
    assert changed != register_documents(city)
    assert register_documents(city) == register_documents(city)


def test_a_scaleway_city_says_its_functions_share_one_storage_key(city: City) -> None:
    # Scaleway has no per-function storage policy: the record says so instead of "a role
    # per function"
    on_scaleway = city.model_copy(update={"region": "fr-par"})
    shared = " ".join(record_of_processing(on_scaleway)["safeguards"])
    assert "one Object Storage key" in shared and "a role per function" not in shared
    assert "a role per function" in " ".join(record_of_processing(city)["safeguards"])
