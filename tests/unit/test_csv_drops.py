"""CSV drops as people make them (docs/hubs.md, "CSV drops"): a mapping of the city file says
the file's delimiter, quote character, decimal separator and encoding, so a European Excel
export (``;``, decimal commas, Windows-1252) or Excel's "CSV UTF-8" (a byte-order mark) is
read as it is — and a file that does not match its mapping is refused row by row, never
misread."""

from __future__ import annotations

from typing import Any

import pytest
from hub_support import hub_city
from unit_support import NOW

from citypipe.core.decode import csv_payloads
from citypipe.core.formats import FORMATS
from citypipe.core.ingest import Normalized, normalize
from citypipe.core.pseudonyms import day_keys
from citypipe.domain.city import City, ConfigError, parse_city
from citypipe_local.fakes import InMemoryKeyStore

# Excel (Dutch locale) "CSV (puntkommagescheiden)": Windows-1252, ";" between cells, decimal
# commas, CRLF, a cell quoted where it holds the delimiter; the times as the export tool wrote
EXCEL_NL = (
    "meetpunt;begin;vehicles;bicycles;opmerking\r\n"
    "VLD-TC-901;2026-06-01T09:00:00+02:00;118,5;34;café gesloten\r\n"
    'VLD-TC-901;2026-06-01T09:15:00+02:00;1.226,25;29;"regen; druk"\r\n'
    "VLD-TC-902;2026-06-01T09:00:00+02:00;87;12,0;€ 2,50 parkeren\r\n"
).encode("cp1252")
EXCEL_NL_READ = [
    ("loop-901", "traffic.vehicles", 118.5, "2026-06-01T07:00:00.000000Z"),
    ("loop-901", "traffic.bicycles", 34.0, "2026-06-01T07:00:00.000000Z"),
    ("loop-901", "traffic.vehicles", 1226.25, "2026-06-01T07:15:00.000000Z"),
    ("loop-901", "traffic.bicycles", 29.0, "2026-06-01T07:15:00.000000Z"),
    ("loop-902", "traffic.vehicles", 87.0, "2026-06-01T07:00:00.000000Z"),
    ("loop-902", "traffic.bicycles", 12.0, "2026-06-01T07:00:00.000000Z"),
]
EXCEL_NL_MAPPING = {
    "device": "meetpunt",
    "time": "begin",
    "delimiter": ";",
    "decimal": ",",
    "encoding": "cp1252",
}
# Excel's "CSV UTF-8 (comma delimited)": a byte-order mark first
EXCEL_UTF8 = (
    "\ufeffstation,interval_start,vehicles,bicycles,opmerking\r\n"
    "VLD-TC-901,2026-06-01T09:00:00+02:00,118,34,café\r\n"
).encode()


@pytest.fixture(scope="module")
def loops_city(city: City) -> City:
    """The payloads' city, whose loop controllers' notes column is not a reading."""
    data = hub_city(city).model_dump(mode="json")
    data["registry"]["profiles"]["loop-csv"]["ignore"] = ["opmerking"]
    return parse_city(data)


def with_mapping(city: City, **mapping: Any) -> City:
    data = city.model_dump(mode="json")
    data["csv"] = {"export": mapping}
    return parse_city(data)


def dropped(city: City, body: bytes) -> Normalized:
    payloads = csv_payloads(city, body, "export", NOW)
    keys = day_keys(InMemoryKeyStore(), city.slug)
    return normalize(city, FORMATS["csv"], payloads, now=NOW, key_for=keys)


def observations(result: Normalized) -> list[tuple[str, str, float, str]]:
    return [(r["sensor"], r["quantity"], r["value"], r["observed_at"]) for r in result.records()]


def test_a_european_excel_export_is_read_with_its_mapping(loops_city: City) -> None:
    # Given a city file whose mapping says what the export is: ";", decimal commas, cp1252
    city = with_mapping(loops_city, **EXCEL_NL_MAPPING)
    # When the export is dropped, Then every value is read (the thousands too), none refused
    result = dropped(city, EXCEL_NL)
    assert sorted(observations(result)) == sorted(EXCEL_NL_READ)
    assert dict(result.reasons) == {}


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"encoding": "utf-8"}, {"invalid_encoding": 2}),  # "é" and "€" in cp1252
        ({"decimal": "."}, {"invalid_value": 3}),  # 118,5, 1.226,25 and 12,0 no numbers
        ({"delimiter": "\t"}, {"invalid_header": 3}),  # no column "meetpunt" then
        ({"quote": "'"}, {"invalid_csv": 1}),  # "regen; druk" splits in two
    ],
    ids=["encoding", "decimal", "delimiter", "quote"],
)
def test_an_export_read_with_another_mapping_is_refused_never_misread(
    loops_city: City, change: dict[str, str], refused: dict[str, int]
) -> None:
    mapping = {**EXCEL_NL_MAPPING, **change}
    city = with_mapping(loops_city, **mapping)
    result = dropped(city, EXCEL_NL)
    assert dict(result.reasons) == refused
    assert set(observations(result)) < set(EXCEL_NL_READ)  # what is read, is read right


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_excel_csv_utf8_with_its_byte_order_mark_is_read(loops_city: City, encoding: str) -> None:
    city = with_mapping(loops_city, device="station", time="interval_start", encoding=encoding)
    result = dropped(city, EXCEL_UTF8)
    assert (observations(result), dict(result.reasons)) == (
        [
            ("loop-901", "traffic.vehicles", 118.0, EXCEL_NL_READ[0][3]),
            ("loop-901", "traffic.bicycles", 34.0, EXCEL_NL_READ[0][3]),
        ],
        {},
    )


@pytest.mark.parametrize("encoding", ["latin-1", "iso-8859-1", "cp1252", "windows-1252"])
def test_a_single_byte_export_is_read_in_its_encoding(loops_city: City, encoding: str) -> None:
    body = "station;interval_start;vehicles;opmerking\nVLD-TC-902;2026-06-01T09:00:00Z;7;déjà\n"
    city = with_mapping(
        loops_city, device="station", time="interval_start", delimiter=";", encoding=encoding
    )
    result = dropped(city, body.encode("latin-1"))
    assert (observations(result), dict(result.reasons)) == (
        [("loop-902", "traffic.vehicles", 7.0, "2026-06-01T09:00:00.000000Z")],
        {},
    )


def test_a_quote_character_of_the_mapping_quotes_cells(loops_city: City) -> None:
    body = b"station|interval_start|vehicles|opmerking\nVLD-TC-902|2026-06-01T09:00:00Z|7|'a|b'\n"
    city = with_mapping(
        loops_city, device="station", time="interval_start", delimiter="|", quote="'"
    )
    assert observations(dropped(city, body)) == [
        ("loop-902", "traffic.vehicles", 7.0, "2026-06-01T09:00:00.000000Z")
    ]


@pytest.mark.parametrize(
    ("cell", "value"),
    [("12,5", 12.5), ("1.234,5", 1234.5), ("1.234", 1234.0), ("-0,25", None), ("7", 7.0)],
)
def test_a_decimal_comma_is_read_and_thousands_only_in_groups_of_three(
    loops_city: City, cell: str, value: float | None
) -> None:
    body = f'station;interval_start;vehicles\nVLD-TC-902;2026-06-01T09:00:00Z;"{cell}"\n'
    city = with_mapping(
        loops_city, device="station", time="interval_start", delimiter=";", decimal=","
    )
    result = dropped(city, body.encode())
    if value is None:  # below the plausible range: read as -0.25, and refused as such
        assert dict(result.reasons) == {"out_of_range": 1}
    else:
        assert [o[2] for o in observations(result)] == [value]


@pytest.mark.parametrize("cell", ["1.5", "12.50", "1,234.5", "1.23.4", "1.2345,6"])
def test_a_dot_that_groups_no_thousands_is_no_number_with_a_decimal_comma(
    loops_city: City, cell: str
) -> None:
    body = f"station;interval_start;vehicles\nVLD-TC-902;2026-06-01T09:00:00Z;{cell}\n"
    city = with_mapping(
        loops_city, device="station", time="interval_start", delimiter=";", decimal=","
    )
    result = dropped(city, body.encode())
    assert (result.accepted, dict(result.reasons)) == (0, {"invalid_value": 1})


@pytest.mark.parametrize(
    ("mapping", "said"),
    [
        ({"delimiter": ",", "decimal": ","}, "is the delimiter too"),
        ({"delimiter": ";", "quote": ";"}, "is the delimiter too"),
        ({"delimiter": "\n"}, "line break"),
        ({"encoding": "utf-16"}, "encoding"),
        ({"decimal": "·"}, "decimal"),
    ],
    ids=["decimal-is-delimiter", "quote-is-delimiter", "line-break", "utf-16", "odd-decimal"],
)
def test_a_mapping_that_cannot_read_a_file_is_refused_with_the_city_file(
    loops_city: City, mapping: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        with_mapping(loops_city, device="station", time="interval_start", **mapping)
    assert said in str(refused.value)


def test_a_quoted_cell_across_lines_is_refused_not_joined(loops_city: City) -> None:
    # Lines are split at line feeds (each row a payload of its own): a note of two lines
    body = (
        "station;interval_start;vehicles;opmerking\n"
        'VLD-TC-902;2026-06-01T09:00:00Z;7;"eerste regel\n'
        'tweede regel"\n'
        "VLD-TC-902;2026-06-01T09:15:00Z;8;\n"
    )
    city = with_mapping(loops_city, device="station", time="interval_start", delimiter=";")
    result = dropped(city, body.encode())
    assert dict(result.reasons) == {"invalid_csv": 2}
    assert [o[2] for o in observations(result)] == [8.0]
