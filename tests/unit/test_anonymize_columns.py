"""anonymize's vectorized core on the raw zone's columns (``core/anonymize.py``): what counts
as a pseudonym or a refused field present, and each refused reading counted once under the
first reason that applies. The records' route: tests/unit/test_anonymize.py."""

from __future__ import annotations

from typing import Any

from unit_support import normalized, raw_rows, wifi_observation

from citypipe.core.anonymize import anonymize_columns
from citypipe.domain.city import City
from citypipe.domain.model import RAW_FIELDS


def columns(*rows: dict[str, Any]) -> dict[str, list[Any]]:
    """The raw zone's columns of these records."""
    return {name: [row.get(name) for row in rows] for name in RAW_FIELDS}


def wifi(city: City, **changes: Any) -> dict[str, Any]:
    """A Wi-Fi counter's raw record as the edge wrote it, fields changed."""
    [row] = raw_rows(normalized(city, "canonical", wifi_observation()))
    return {**row, **changes}


def test_raw_columns_written_before_the_refused_column_existed_are_all_kept(city: City) -> None:
    older = {k: v for k, v in columns(wifi(city), wifi(city)).items() if k != "refused"}
    result = anonymize_columns(city, older)
    assert (result.count, dict(result.refused)) == (2, {})


def test_an_empty_pseudonym_is_no_pseudonym(city: City) -> None:
    result = anonymize_columns(city, columns(wifi(city, pseudonym=""), wifi(city, pseudonym="p")))
    assert (result.count, dict(result.refused)) == (1, {"missing_personal_field": 1})
    assert result.clean["pseudonym"].to_pylist() == ["p"]


def test_an_empty_refused_field_refuses_nothing(city: City) -> None:
    result = anonymize_columns(city, columns(wifi(city, refused=""), wifi(city, refused="x")))
    assert (result.count, dict(result.refused)) == (1, {"refused_field:x": 1})


def test_a_reading_refused_for_a_field_is_not_also_counted_as_missing_its_pseudonym(
    city: City,
) -> None:
    # Given a people counter's reading that carried a refused field, and so no pseudonym
    reading = wifi(city, refused="image", pseudonym=None)
    # Then it is refused once, for the field
    result = anonymize_columns(city, columns(reading))
    assert (result.count, dict(result.refused)) == (0, {"refused_field:image": 1})


def test_an_unknown_sources_reading_is_refused_for_that_alone(city: City) -> None:
    reading = wifi(city, source="cameras", refused="image", pseudonym=None, zone="atlantis")
    result = anonymize_columns(city, columns(reading))
    assert (result.count, dict(result.refused)) == (0, {"unknown_source": 1})
