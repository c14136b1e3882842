"""A city file's mistakes, said on one line: the file, the line, the key and the fix.

Refusals (``load_city`` raises a ``ConfigError``), warnings (``city_warnings``: the city
loads, but probably says what was not meant), and the geometry the zone checks stand on.
Each bad city is a small one written to a temporary folder, changed in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from citypipe.domain.city import ConfigError, load_city
from citypipe.domain.city_checks import check_city, checked_city, city_warnings
from citypipe.domain.cityfile import CityMap, UniqueKeyLoader
from citypipe.domain.geo import Ring, interior_overlap, overlaps
from citypipe.domain.problems import Problem

# the example cities (conftest holds fixtures only and is never imported)
EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "cities"

CITY = """\
# A tiny city: three zones, one source, three devices.
slug: tiny
name: Tiny
region: eu-central-1
publisher: {name: Tiny Open Data, url: https://tiny.example/, email: data@tiny.example}
portal_url: https://tiny.example/
disclosure:
  k: 10
sources:
  air-quality:
    kind: air quality monitors
    purpose: monitor NO2 against EU limits
    policy:
      time_resolution_minutes: 15
registry: tiny-devices.yaml
zones:
  type: FeatureCollection
  features:
    - type: Feature
      id: west
      geometry:
        type: Polygon
        coordinates: [[[5.40, 51.42], [5.43, 51.42], [5.43, 51.44], [5.40, 51.44], [5.40, 51.42]]]
    - type: Feature
      id: east
      geometry:
        type: Polygon
        coordinates: [[[5.43, 51.42], [5.46, 51.42], [5.46, 51.44], [5.43, 51.44], [5.43, 51.42]]]
    - type: Feature
      id: north
      geometry:
        type: Polygon
        coordinates: [[[5.40, 51.44], [5.46, 51.44], [5.46, 51.46], [5.40, 51.46], [5.40, 51.44]]]
"""

REGISTRY = """\
profiles:
  aq-lorawan:
    source: air-quality
    kind: air quality monitor, LoRaWAN
    hubs: [lorawan]
    fields:
      no2: {quantity: air.no2}
devices:
  aq-001: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010001", at: [5.41, 51.43]}
  aq-002: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010002", at: [5.44, 51.43]}
  aq-003: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010003", zone: north}
"""

CITY_NAME, REGISTRY_NAME = "tiny.yaml", "tiny-devices.yaml"


@dataclass(frozen=True)
class Written:
    city: Path
    registry: Path


def write(folder: Path, city: str = CITY, registry: str = REGISTRY) -> Written:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CITY_NAME).write_text(city, encoding="utf-8")
    (folder / REGISTRY_NAME).write_text(registry, encoding="utf-8")
    return Written(folder / CITY_NAME, folder / REGISTRY_NAME)


def changed(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of a file holding ``marker``."""
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line]
    return lines[occurrence - 1]


def refusal(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as refused:
        load_city(path)
    return refused.value


def assert_one_line(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text


def test_the_tiny_city_loads_with_no_warning(tmp_path: Path) -> None:
    # the baseline every case below changes in one place
    written = write(tmp_path)
    assert check_city(written.city).errors == ()
    assert check_city(written.city).warnings == ()


# --- refusals -------------------------------------------------------------------------------


def test_a_key_written_twice_in_the_city_file_is_refused_at_its_second_line(
    tmp_path: Path,
) -> None:
    # Given a city file that sets its region twice (YAML would keep the second, silently)
    city = changed(CITY, "region: eu-central-1\n", "region: eu-central-1\nregion: eu-west-1\n")
    written = write(tmp_path, city=city)
    # When it is loaded
    error = refusal(written.city)
    # Then it is refused at the second line, naming the key and both lines, with the fix
    first = line_of(written.city, "region: eu-central-1")
    assert error.problems == (
        Problem(
            str(written.city),
            first + 1,
            "region",
            f"appears twice (lines {first} and {first + 1})",
            "keep one of them: YAML would keep the last one without a word",
        ),
    )
    assert str(error) == (
        f"{written.city}:{first + 1}: region: appears twice (lines {first} and {first + 1}); "
        "fix: keep one of them: YAML would keep the last one without a word"
    )


def test_a_device_registered_twice_is_refused_in_the_registry_file(tmp_path: Path) -> None:
    # Given a registry naming aq-001 twice (the second would replace the first)
    registry = changed(
        REGISTRY, '  aq-002: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010002"',
        '  aq-001: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010002"',
    )  # fmt: skip
    written = write(tmp_path, registry=registry)
    # When the city is loaded
    error = refusal(written.city)
    # Then the registry file is named, at the second aq-001, with both lines
    first, second = line_of(written.registry, "aq-001:"), line_of(written.registry, "aq-001:", 2)
    (problem,) = error.problems
    assert (problem.file, problem.line, problem.key) == (
        str(written.registry), second, "devices.aq-001",
    )  # fmt: skip
    assert problem.message == f"appears twice (lines {first} and {second})"
    assert_one_line(str(error))


def test_overlapping_zones_are_refused_where_a_city_is_checked(tmp_path: Path) -> None:
    # Given an east zone whose west edge runs 0.01° into the west zone
    city = changed(
        CITY,
        "[[[5.43, 51.42], [5.46, 51.42], [5.46, 51.44], [5.43, 51.44], [5.43, 51.42]]]",
        "[[[5.42, 51.42], [5.46, 51.42], [5.46, 51.44], [5.42, 51.44], [5.42, 51.42]]]",
    )
    written = write(tmp_path, city=city)
    # When it is checked (check-city, the commands that run it, packaging)
    with pytest.raises(ConfigError) as refused:
        checked_city(written.city)
    error = refused.value
    # Then the east zone's coordinates are named, with the zone it overlaps and the fix
    (problem,) = error.problems
    assert (problem.file, problem.line, problem.key) == (
        str(written.city),
        line_of(written.city, "[[[5.42, 51.42]"),
        "zones.features.1.geometry.coordinates",
    )
    assert problem.message.startswith("zone east overlaps zone west near [5.4")
    assert problem.fix == "move their shared border so that the two zones only touch"
    assert_one_line(str(error))
    # and a function's start-up does not spend time on it (the city was checked before)
    assert load_city(written.city).slug == "tiny"


def test_a_device_whose_hub_its_profile_does_not_declare_is_refused(tmp_path: Path) -> None:
    # Given a LoRaWAN profile's device registered as a SenML one
    registry = changed(
        REGISTRY,
        'aq-002: {profile: aq-lorawan, hub: lorawan, id: "70b3d5e75e010002"',
        'aq-002: {profile: aq-lorawan, hub: senml, id: "urn:dev:mac:0024befffe800002"',
    )
    written = write(tmp_path, registry=registry)
    # When the city is loaded
    error = refusal(written.city)
    # Then the device's hub is named in the registry file, with both ways out
    assert str(error) == (
        f"{written.registry}:{line_of(written.registry, 'aq-002:')}: devices.aq-002.hub: "
        "senml is not a hub of profile aq-lorawan (['lorawan']); fix: register it under a "
        "profile for senml, or add senml to profiles.aq-lorawan.hubs"
    )


def test_a_city_file_copied_without_its_registry_names_where_it_looked(tmp_path: Path) -> None:
    # Given the city file copied to another folder, its registry left behind
    written = write(tmp_path / "city")
    copy = tmp_path / "elsewhere" / CITY_NAME
    copy.parent.mkdir()
    copy.write_text(written.city.read_text())
    # When the copy is loaded
    error = refusal(copy)
    # Then the copy is named at its registry line, with the folder looked in and the fix
    assert str(error) == (
        f"{copy}:{line_of(copy, 'registry:')}: registry: tiny-devices.yaml is read relative "
        f"to {copy.parent.resolve()}, and is not there; fix: copy tiny-devices.yaml beside "
        "tiny.yaml, or give a path relative to it"
    )


def test_a_city_file_extending_a_missing_file_is_refused_at_its_extends_line(
    tmp_path: Path,
) -> None:
    paris = tmp_path / "paris.yaml"
    paris.write_text("# Tiny in Paris\nregion: fr-par\nextends: tiny.yaml\n")

    error = refusal(paris)

    assert (error.problems[0].line, error.problems[0].key) == (3, "extends")
    assert "tiny.yaml is read relative to" in str(error)
    assert_one_line(str(error))


def test_a_type_error_deep_in_sources_names_its_line_and_key(tmp_path: Path) -> None:
    # Given a time resolution written in words
    city = changed(CITY, "time_resolution_minutes: 15", "time_resolution_minutes: fifteen")
    written = write(tmp_path, city=city)
    # When it is loaded
    error = refusal(written.city)
    # Then pydantic's complaint is placed at the key's line
    assert str(error) == (
        f"{written.city}:{line_of(written.city, 'time_resolution_minutes')}: "
        "sources.air-quality.policy.time_resolution_minutes: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


def test_a_misspelt_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    city = changed(CITY, "    purpose: monitor", "    purpouse: monitor")
    written = write(tmp_path, city=city)

    error = refusal(written.city)

    assert [(p.line, p.key, p.fix) for p in error.problems] == [
        (line_of(written.city, "air-quality:"), "sources.air-quality.purpose", "add it"),
        (
            line_of(written.city, "purpouse"),
            "sources.air-quality.purpouse",
            "remove it, or correct its spelling",
        ),
    ]
    assert str(error).endswith(f"(and 1 more: citypipe check-city {written.city} lists them)")
    assert_one_line(str(error))


def test_a_registry_error_is_placed_in_the_registry_file(tmp_path: Path) -> None:
    registry = changed(REGISTRY, "no2: {quantity: air.no2}", "no2: {quantity: air.n02}")
    written = write(tmp_path, registry=registry)

    (problem,) = refusal(written.city).problems

    assert (problem.file, problem.line, problem.key) == (
        str(written.registry), line_of(written.registry, "no2:"), "profiles.aq-lorawan.fields.no2",
    )  # fmt: skip
    assert problem.message.startswith("unknown quantity 'air.n02'")


def test_a_key_of_an_extended_file_is_placed_in_the_file_that_sets_it(tmp_path: Path) -> None:
    # Given a Paris city file extending tiny.yaml, whose disclosure is wrong
    written = write(tmp_path, city=changed(CITY, "  k: 10", "  k: 1"))
    paris = tmp_path / "paris.yaml"
    paris.write_text("extends: tiny.yaml\nregion: fr-par\n")
    # When Paris is loaded
    (problem,) = refusal(paris).problems
    # Then the error is tiny.yaml's: the value that won the merge is written there
    assert (problem.file, problem.line, problem.key) == (
        str(written.city), line_of(written.city, "k: 1"), "disclosure.k",
    )  # fmt: skip


def test_a_city_file_that_is_not_yaml_is_refused_at_its_line(tmp_path: Path) -> None:
    city = changed(CITY, "    purpose: monitor NO2 against EU limits", "    purpose: [unclosed")
    written = write(tmp_path, city=city)

    (problem,) = refusal(written.city).problems

    assert problem.line == line_of(written.city, "policy:")
    assert problem.message.startswith("not YAML: did not find expected ',' or ']'")


def test_loading_a_good_city_composes_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given composing YAML (finding lines) made impossible
    def compose(*_: object, **__: object) -> None:
        raise AssertionError("composed on the happy path")

    monkeypatch.setattr(yaml, "compose", compose)
    # When the example city is loaded, then it loads: lines are looked for on errors only
    assert load_city(EXAMPLES / "velden.yaml").slug == "velden"


def test_the_loader_refuses_a_duplicate_but_not_a_merge_override() -> None:
    text = "base: &base {a: 1, b: 2}\nplace:\n  <<: *base\n  b: 3\n"
    assert yaml.load(text, Loader=UniqueKeyLoader)["place"] == {"a": 1, "b": 3}
    with pytest.raises(yaml.YAMLError, match="found the key 'b' twice"):
        yaml.load("a: 1\nb: 2\nb: 3\n", Loader=UniqueKeyLoader)


# --- warnings -------------------------------------------------------------------------------


def warnings_of(written: Written) -> list[Problem]:
    return city_warnings(load_city(written.city), CityMap(written.city).locate)


def test_a_zone_with_longitude_and_latitude_swapped_is_a_warning(tmp_path: Path) -> None:
    # Given the north zone written [latitude, longitude]: 5,000 km away, in the Gulf of Guinea
    city = changed(
        CITY,
        "[[[5.40, 51.44], [5.46, 51.44], [5.46, 51.46], [5.40, 51.46], [5.40, 51.44]]]",
        "[[[51.44, 5.40], [51.44, 5.46], [51.46, 5.46], [51.46, 5.40], [51.44, 5.40]]]",
    )
    written = write(tmp_path, city=city)
    # When it is checked
    (warning,) = warnings_of(written)
    # Then the zone's coordinates are named, swapped, with the GeoJSON order as the fix
    assert (warning.file, warning.line, warning.key) == (
        str(written.city),
        line_of(written.city, "[[[51.44, 5.40]"),
        "zones.features.2.geometry.coordinates",
    )
    assert "km from the other zones" in warning.message
    assert warning.message.endswith("its longitude and latitude look swapped")
    assert warning.fix == "write each position [longitude, latitude], the GeoJSON order"


def test_a_zone_without_a_device_is_a_warning(tmp_path: Path) -> None:
    # Given the north zone's only device moved to the east zone
    registry = changed(REGISTRY, "zone: north}", "zone: east}")
    written = write(tmp_path, registry=registry)

    (warning,) = warnings_of(written)

    assert (warning.file, warning.line, warning.key) == (
        str(written.city), line_of(written.city, "id: north"), "zones.features.2.id",
    )  # fmt: skip
    assert (
        warning.message == "zone north has no registered device: nothing is ever published for it"
    )
    assert_one_line(str(warning))


@pytest.mark.parametrize(
    ("k", "meaning"),
    [
        (1000, "few zones ever do, so people counts may never be published"),
        (2, "empty windows are published as noise more often than not"),
    ],
    ids=["k-1000", "k-2"],
)
def test_an_unusual_k_is_a_warning_saying_what_it_means(
    tmp_path: Path, k: int, meaning: str
) -> None:
    written = write(tmp_path, city=changed(CITY, "  k: 10", f"  k: {k}"))

    (warning,) = warnings_of(written)

    assert (warning.line, warning.key) == (line_of(written.city, f"k: {k}"), "disclosure.k")
    assert warning.message.startswith(f"k is {k}: ")
    assert meaning in warning.message
    assert warning.fix == "set k between 5 and 50 (10, the default, suits most cities)"


def test_a_profile_without_hubs_is_a_warning_naming_its_devices_hubs(tmp_path: Path) -> None:
    written = write(tmp_path, registry=changed(REGISTRY, "    hubs: [lorawan]\n", ""))

    (warning,) = warnings_of(written)

    assert str(warning) == (
        f"{written.registry}:{line_of(written.registry, 'aq-lorawan:')}: profiles.aq-lorawan: "
        "declares no hubs: a device registered under it with any hub is accepted; "
        "fix: add hubs: [lorawan]"
    )


@pytest.mark.parametrize("name", ["velden.yaml", "velden-scaleway.yaml"])
def test_the_example_cities_load_with_no_warning(name: str) -> None:
    checked = check_city(EXAMPLES / name)

    assert checked.city is not None
    assert (checked.errors, checked.warnings) == ((), ())


def test_check_city_lists_every_refusal(tmp_path: Path) -> None:
    # Given a registry with a device on a foreign hub, and two devices with one id
    registry = changed(
        REGISTRY,
        'hub: lorawan, id: "70b3d5e75e010002"',
        'hub: meraki, id: "e0:55:3d:00:00:02"',
    )
    registry = changed(registry, 'id: "70b3d5e75e010003"', 'id: "70b3d5e75e010001"')
    written = write(tmp_path, registry=registry)
    # When it is checked
    checked = check_city(written.city)
    # Then both are listed, each at its line, and there is no city
    assert checked.city is None
    assert [(p.line, p.key) for p in checked.errors] == [
        (line_of(written.registry, "aq-002:"), "devices.aq-002.hub"),
        (line_of(written.registry, "aq-003:"), "devices.aq-003.id"),
    ]


# --- the geometry ---------------------------------------------------------------------------


def square(west: float, south: float, side: float = 1.0) -> list[Ring]:
    east, north = west + side, south + side
    return [[(west, south), (east, south), (east, north), (west, north), (west, south)]]


def test_two_squares_overlapping_by_a_strip_overlap() -> None:
    point = interior_overlap(square(0, 0), square(0.5, 0.2))
    # a point of the overlap [0.5, 1] x [0.2, 1] (here where two edges cross)
    assert point is not None
    assert 0.5 <= point[0] <= 1
    assert 0.2 <= point[1] <= 1


def test_two_squares_apart_do_not_overlap() -> None:
    assert interior_overlap(square(0, 0), square(3, 0)) is None


def test_squares_sharing_an_edge_do_not_overlap() -> None:
    assert interior_overlap(square(0, 0), square(1, 0)) is None


def test_squares_sharing_part_of_an_edge_do_not_overlap() -> None:
    # a T-junction: the second square's corner lies inside the first's edge
    assert interior_overlap(square(0, 0, 2), square(2, 0.5)) is None


def test_squares_touching_at_a_corner_do_not_overlap() -> None:
    assert interior_overlap(square(0, 0), square(1, 1)) is None


def test_a_zone_inside_another_overlaps_it() -> None:
    assert interior_overlap(square(0, 0, 4), square(1, 1)) is not None
    assert interior_overlap(square(1, 1), square(0, 0, 4)) is not None


def test_a_zone_written_twice_overlaps_itself() -> None:
    reversed_ring = [list(reversed(square(0, 0)[0]))]
    assert interior_overlap(square(0, 0), reversed_ring) is not None


def test_a_zone_in_the_hole_of_another_does_not_overlap_it() -> None:
    ring = [*square(0, 0, 10), square(2, 2, 6)[0]]
    assert interior_overlap(ring, square(2, 2, 6)) is None
    assert interior_overlap(ring, square(1, 1, 8)) is not None


def test_a_diamond_with_its_corners_on_a_squares_edges_overlaps_it() -> None:
    # no edge crosses, no corner is inside: only the edges' middles are
    diamond = [[(2.0, 0.0), (4.0, 2.0), (2.0, 4.0), (0.0, 2.0), (2.0, 0.0)]]
    assert interior_overlap(square(0, 0, 4), diamond) is not None


def test_overlaps_lists_every_overlapping_pair_by_index() -> None:
    polygons = [square(0, 0), square(1, 0), square(0.5, 0.5), square(5, 5)]
    assert [(i, j) for i, j, _ in overlaps(polygons)] == [(0, 2), (1, 2)]


def _subdivided(west: int, south: int, east: int, north: int, cuts: Sequence[int]) -> list[Ring]:
    """A rectangle with extra vertices along its edges (T-junctions, runs along others)."""
    corners = [(west, south), (east, south), (east, north), (west, north)]
    ring: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        ring.append((ax, ay))
        ring += [(ax + (bx - ax) * c / 8, ay + (by - ay) * c / 8) for c in sorted(set(cuts))]
    return [[*ring, ring[0]]]


@st.composite
def rectangles(draw: st.DrawFn) -> tuple[int, int, int, int]:
    west, south = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    return west, south, draw(st.integers(west + 1, 8)), draw(st.integers(south + 1, 8))


@given(
    rectangles(),
    rectangles(),
    st.lists(st.integers(1, 7), max_size=3),
    st.lists(st.integers(1, 7), max_size=3),
)
def test_rectangles_overlap_exactly_when_both_their_spans_do(
    one: tuple[int, int, int, int],
    two: tuple[int, int, int, int],
    cuts_one: list[int],
    cuts_two: list[int],
) -> None:
    spans_overlap = min(one[2], two[2]) > max(one[0], two[0]) and min(one[3], two[3]) > max(
        one[1], two[1]
    )
    found = interior_overlap(_subdivided(*one, cuts_one), _subdivided(*two, cuts_two))
    assert (found is not None) == spans_overlap


def test_zones_overlapping_by_ten_metres_overlap() -> None:
    assert interior_overlap(square(0, 0, 0.01), square(0.01 - 1e-4, 0, 0.01)) is not None
