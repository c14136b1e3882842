"""A city file checked before it is deployed or run from the command line: what refuses it
and what it may say but probably does not mean.

Refused here (and by packaging), not at each function's start-up, where the check would
cost time on every cold start: overlapping zones (a position would be in two). Warnings: a
zone far from the others (its longitude and latitude swapped), a zone no device is in, an
unusual k, a profile that does not say which hubs its devices report through, sensors in
public space on consent, devices counted with no opt-out form — the city loads and runs
with each of them. ``citypipe check-city`` prints both (``check_city``). The
example cities have none (a test says so).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from citypipe.domain.city import Action, City, ConfigError, LegalBasis, load_city
from citypipe.domain.cityfile import CityMap
from citypipe.domain.cityjson import is_city_json
from citypipe.domain.geo import centroid, distance_km, overlaps
from citypipe.domain.problems import Finding, Locator, Problem, dotted

FAR_KM = 100.0  # a zone's centre this far from the middle of the zones' is in another place
USUAL_K = (5, 50)  # disclosure.k outside these bounds is said


def _far_zones(city: City) -> list[Finding]:
    """Zones whose centre is more than ``FAR_KM`` from the median of the zones' centres."""
    features = city.zones.features
    if len(features) < 2:
        return []
    centres = [centroid(f.geometry.coordinates) for f in features]
    middle = (
        statistics.median(c[0] for c in centres),
        statistics.median(c[1] for c in centres),
    )
    found = []
    for i, (feature, centre) in enumerate(zip(features, centres, strict=True)):
        away = distance_km(centre, middle)
        if away <= FAR_KM:
            continue
        swapped = distance_km((centre[1], centre[0]), middle) <= FAR_KM
        found.append(
            Finding(
                ("zones", "features", i, "geometry", "coordinates"),
                f"zone {feature.id} is centred {away:,.0f} km from the other zones, at "
                f"[{centre[0]:.4f}, {centre[1]:.4f}]"
                + (": its longitude and latitude look swapped" if swapped else ""),
                "write each position [longitude, latitude], the GeoJSON order",
            )
        )
    return found


def _zones_without_devices(city: City) -> list[Finding]:
    measured = {device.zone for device in city.devices.values()}
    return [
        Finding(
            ("zones", "features", i, "id"),
            f"zone {feature.id} has no registered device: nothing is ever published for it",
            f"register a device in it (at: a position inside it, or zone: {feature.id}), or "
            "remove the zone",
        )
        for i, feature in enumerate(city.zones.features)
        if feature.id not in measured
    ]


def _polls_without_devices(city: City) -> list[Finding]:
    """A poll of an API none of its source's devices is registered for: it asks nothing (a
    city extending another inherits its polls, not its registry)."""
    found = []
    for name, source in city.sources.items():
        for i, poll in enumerate(source.poll):
            hub = poll.spec.hub
            if not any(h == hub and d.source == name for (h, _), d in city.devices.items()):
                found.append(
                    Finding(
                        ("sources", name, "poll", i, "api"),
                        f"no device of {name} is registered under hub {hub}: the poll asks nothing",
                        f"register the devices it polls with hub: {hub}, or remove the poll",
                    )
                )
    return found


def _ceilings_below_k(city: City) -> list[Finding]:
    """A zone whose counters can hear fewer devices than k: it can never be published."""
    k = city.disclosure.k
    return [
        Finding(
            ("disclosure", "k"),
            f"zone {zone}'s counters can hear at most {ceiling} devices in a window "
            f"({quantity}), fewer than k = {k}: it is never published",
            "raise the profiles' max_devices_per_window, or lower k",
        )
        for (zone, quantity), ceiling in sorted(city.device_ceilings.items())
        if ceiling < k
    ]


def _unusual_k(city: City) -> list[Finding]:
    k = city.disclosure.k
    low, high = USUAL_K
    if low <= k <= high:
        return []
    if k < low:
        meaning = (
            f"a people cell is published as soon as its noisy figure reaches {k}: empty "
            "windows are published as noise more often than not"
        )
    else:
        meaning = (
            f"a people cell is published only where its noisy figure reaches {k} in a "
            "15-minute window: few zones ever do, so people counts may never be published"
        )
    return [
        Finding(
            ("disclosure", "k"),
            f"k is {k}: {meaning}",
            f"set k between {low} and {high} (10, the default, suits most cities)",
        )
    ]


def _profiles_without_hubs(city: City) -> list[Finding]:
    found = []
    for name, profile in city.registry.profiles.items():
        if profile.hubs is not None:
            continue
        used = sorted({d.hub for d in city.registry.devices.values() if d.profile == name})
        found.append(
            Finding(
                ("registry", "profiles", name),
                "declares no hubs: a device registered under it with any hub is accepted",
                f"add hubs: [{', '.join(used)}]"
                if used
                else "add hubs: [the hubs its devices use]",
            )
        )
    return found


def _consent_in_public_space(city: City) -> list[Finding]:
    """A source in public space whose processing of personal data rests on consent: a
    sensor cannot ask its passers-by (the notice next to it would promise what it cannot
    keep)."""
    found = []
    for name, source in city.sources.items():
        if not (source.policy.personal and source.notice.public_space):
            continue
        own = source.notice.legal_basis
        basis = own or (city.processing.legal_basis if city.processing else None)
        if basis is LegalBasis.CONSENT:
            notice = ("sources", name, "notice", "legal_basis")
            found.append(
                Finding(
                    notice if own else ("processing", "legal_basis"),
                    f"{name}'s sensors in public space process personal data on consent: "
                    "passers-by are never asked",
                    "state the basis the processing rests on (public-task for a city's task), "
                    f"or set sources.{name}.notice.public_space: false",
                )
            )
    return found


def _people_without_opt_out(city: City) -> list[Finding]:
    """A source that pseudonymizes a device address while the portal's opt-out page has
    nowhere to post: residents could not opt out from it."""
    if city.optout_url is not None:
        return []
    counted = [
        name
        for name, source in city.sources.items()
        if source.policy.personal.get("device_mac") is Action.PSEUDONYMIZE
    ]
    if not counted:
        return []
    return [
        Finding(
            ("optout_url",),
            f"{', '.join(counted)} count devices by their address, but the portal's opt-out "
            "form has nowhere to post: residents could not opt out",
            "set optout_url: the webhook server's URL ending in /optout (docs/rights.md)",
        )
    ]


def _zone_overlaps(city: City) -> list[Finding]:
    """Zones whose insides overlap by more than about a metre: a position would be in two
    zones (touching is fine)."""
    features = city.zones.features
    return [
        Finding(
            ("zones", "features", j, "geometry", "coordinates"),
            f"zone {features[j].id} overlaps zone {features[i].id} near "
            f"[{point[0]:.5f}, {point[1]:.5f}]",
            "move their shared border so that the two zones only touch",
        )
        for i, j, point in overlaps([f.geometry.coordinates for f in features])
    ]


def _located(found: Sequence[Finding], locate: Locator | None) -> list[Problem]:
    where = locate or (lambda loc: ("<city>", None, loc))
    problems = []
    for finding in found:
        file, line, key = where(finding.loc)
        problems.append(Problem(file, line, dotted(key), finding.message, finding.fix))
    return problems


def city_errors(city: City, locate: Locator | None = None) -> list[Problem]:
    """What refuses a city that loads: checked before it is deployed or run."""
    return _located(_zone_overlaps(city), locate)


def city_warnings(city: City, locate: Locator | None = None) -> list[Problem]:
    """What the city says but probably does not mean, as problems; each at its file and
    line where ``locate`` knows them (``CityMap(path).locate``), else by key only."""
    found = [
        *_far_zones(city),
        *_zones_without_devices(city),
        *_unusual_k(city),
        *_ceilings_below_k(city),
        *_profiles_without_hubs(city),
        *_polls_without_devices(city),
        *_consent_in_public_space(city),
        *_people_without_opt_out(city),
    ]
    return _located(found, locate)


@dataclass(frozen=True, slots=True)
class CityCheck:
    """A city file checked: its city (None if refused), why it is refused, what is odd."""

    city: City | None
    errors: Sequence[Problem]
    warnings: Sequence[Problem]


def check_city(path: str | Path) -> CityCheck:
    """Every problem of a city file: the errors that refuse it, and the warnings of the city
    it makes — each at its file and line. For ``citypipe check-city``, the commands that
    run a city, and packaging."""
    try:
        city = load_city(path)
    except ConfigError as exc:
        errors = exc.problems or (Problem(str(path), None, "", str(exc)),)
        return CityCheck(None, errors, ())
    # a packaged city (JSON) has no lines: its problems are named by key
    locate = None if is_city_json(Path(path)) else CityMap(path).locate
    refusals = tuple(city_errors(city, locate))
    warnings = tuple(city_warnings(city, locate))
    return CityCheck(None if refusals else city, refusals, warnings)


def checked_city(path: str | Path) -> City:
    """The city of a file that passes every check (what packaging deploys); ``ConfigError``
    with every refusal otherwise."""
    checked = check_city(path)
    if checked.city is None:
        raise ConfigError(checked.errors, str(path))
    return checked.city
