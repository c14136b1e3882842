"""A city whose people counts take the discrete Gaussian (issue 25): its noise reaches the
published cells and every public description says the mechanism, σ², ε and δ — per release
and over the day. Before, only Laplace cities ran through disclosure: the Gaussian path
could break unnoticed."""

from __future__ import annotations

from fractions import Fraction

import pytest
from unit_support import T10, city_data, clean, devices, release_of

from citypipe.core.aggregate import cells, partial_of
from citypipe.core.disclosure import Status, disclose, noise_of, treatment
from citypipe.core.noise import cell_seed
from citypipe.domain.city import City, parse_city

GAUSSIAN = {"mechanism": "gaussian", "epsilon": 1.0, "delta": 1e-6, "budget": 2.0}


@pytest.fixture(scope="module")
def gaussian_city() -> City:
    data = city_data()
    data["disclosure"]["noise"] = GAUSSIAN  # a cap of 10 cells a day, by default
    return parse_city(data)


def test_a_gaussian_citys_noise_is_the_discrete_gaussian_for_its_cap(gaussian_city: City) -> None:
    noise = noise_of(gaussian_city)
    assert (noise.mechanism, noise.epsilon, noise.delta, noise.cap) == ("gaussian", 1.0, 1e-6, 10)
    # Δ₂² = 10: rho = (√(ln 1e6 + 1) - √(ln 1e6))² = 0.017469..., σ² = 10 / 2rho, rounded up
    assert noise.scale == Fraction(286224, 1000)


def test_a_gaussian_citys_people_cell_is_its_count_plus_its_gaussian_draw(
    gaussian_city: City,
) -> None:
    rows = devices(60)
    release = release_of(gaussian_city, *rows)
    [cell] = disclose(gaussian_city, cells(partial_of(clean(*rows))), release)
    seed = cell_seed(b"noise", "cell", release.release, T10.isoformat(), "centrum", cell.quantity)
    drawn = noise_of(gaussian_city).sample(seed)
    assert drawn == -19  # pinned: what this release draws for this cell (sigma = 16.9)
    assert (cell.status, cell.reason, cell.distinct_devices) == (Status.PUBLISHED, "", 60 + drawn)
    assert cell.count is None and cell.sum is None


def test_a_gaussian_citys_treatment_states_its_mechanism_sigma_epsilon_and_delta(
    gaussian_city: City,
) -> None:
    stated = treatment(gaussian_city, ["people.presence"])
    assert (stated.mechanism, stated.epsilon, stated.delta, stated.budget) == (
        "gaussian", 1.0, 1e-6, 2.0,
    )  # fmt: skip
    assert stated.noise is not None and stated.resident is not None
    assert stated.noise.startswith(
        "discrete Gaussian noise of σ² = 286.224 (for the cap of 10 cells a device counts in a "
        "day): ε = 1.0 and δ = 1e-06 per release ((ε, δ)-differential privacy through "
        "zero-concentrated DP). "
    )
    assert "costs its day at most ε = 1.0 (δ = 1e-06); every release" in stated.noise
    assert stated.rule.startswith("Device identifiers are replaced at the edge by keyed ")
    assert stated.rule.endswith(f"Noise: {stated.noise}")
    assert stated.resident.startswith("Whether or not your phone was seen on a given day ")
    assert stated.resident.endswith("once the day's key is destroyed, after 2 days.")
    # two releases of the day fit its budget of 2: δ = 2e-6 over the day
    assert "(differential privacy, ε = 2.0 per person per day, δ = 2e-06)" in stated.resident
    assert "by at most a factor of 7.4" in stated.resident
    assert "at most 88 % sure" in stated.resident


def test_a_laplace_citys_treatment_states_no_delta(city: City) -> None:
    stated = treatment(city, ["people.presence"])
    assert stated.delta is None and stated.noise is not None and stated.resident is not None
    assert "δ" not in stated.noise + stated.resident
    assert "(differential privacy, ε = 2.0 per person per day): someone" in stated.resident
    assert stated.noise.startswith(
        "discrete Laplace noise of scale 5 (the cap of 10 cells a device counts in a day, over "
        "ε = 2.0): ε = 2.0 per release (ε-differential privacy). "
    )
