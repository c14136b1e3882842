"""The noise's exact values (``core/noise.py``): the random stream against its specification,
the draws of fixed seeds pinned, the zCDP converter and the Gaussian's sigma² at values
worked out by hand, the words that describe the noise. The distributions and OpenDP's
privacy maps: tests/unit/test_noise.py.

Why the draws are pinned: a release's noise is a function of its seed, so that a re-export
of an unchanged release publishes the same figures and is charged once (``core/people.py``).
A sampler that drew other values from the same seed — a change of the stream, of the
rejection, of the sign — would let a re-export after an upgrade publish a second,
independent draw of a release charged once: averaging the two halves the noise."""

from __future__ import annotations

import hashlib
import hmac
import math
from fractions import Fraction

import pytest

from citypipe.core.noise import (
    Noise,
    SeededRandomness,
    bernoulli,
    bernoulli_exp,
    cell_seed,
    discrete_gaussian,
    discrete_laplace,
    gaussian_sigma2,
    laplace_scale,
    noise_key,
    zcdp_to_epsilon,
)

SEED = b"pinned"

# --- the stream ---------------------------------------------------------------------------------


class _Bits:
    """The stream's specification, written again: the bits of HMAC-SHA-256(seed, counter),
    counters 0, 1, 2... as 8-byte big-endian integers, read most significant bit first."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.text, self.counter = seed, "", 0

    def take(self, count: int) -> int:
        while len(self.text) < count:
            block = hmac.new(self.seed, self.counter.to_bytes(8, "big"), hashlib.sha256)
            self.text += "".join(f"{byte:08b}" for byte in block.digest())
            self.counter += 1
        taken, self.text = self.text[:count], self.text[count:]
        return int(taken, 2) if taken else 0


def _below(bits: _Bits, n: int) -> int:
    """Uniform on {0..n-1}: the fewest bits that hold n - 1, drawn again until below n."""
    while True:
        value = bits.take((n - 1).bit_length())
        if value < n:
            return value


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 8, 100, 1000, 2**255 + 3, 2**300])
def test_uniform_integers_read_the_hmac_stream_as_specified(n: int) -> None:
    rng, reference = SeededRandomness(SEED), _Bits(SEED)
    assert [rng.below(n) for _ in range(40)] == [_below(reference, n) for _ in range(40)]


def test_draws_of_several_sizes_share_one_stream_without_losing_a_bit() -> None:
    rng, reference = SeededRandomness(SEED), _Bits(SEED)
    sizes = [2, 1000, 7, 2**70, 3, 2**200 + 1, 5, 1, 9] * 6
    assert [rng.below(n) for n in sizes] == [_below(reference, n) for n in sizes]


def test_one_value_needs_no_randomness() -> None:
    rng = SeededRandomness(SEED)
    assert [rng.below(1) for _ in range(5)] == [0] * 5
    assert rng.below(1000) == _below(_Bits(SEED), 1000)  # no bit was spent on them


@pytest.mark.parametrize("n", [0, -1])
def test_uniform_on_nothing_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SeededRandomness(SEED).below(n)


@pytest.mark.parametrize("p", [Fraction(0), Fraction(1), Fraction(1, 400), Fraction(399, 400)])
def test_bernoulli_is_exact(p: Fraction) -> None:
    # over each of the denominator's values of one uniform draw once: exactly p of them hit
    rng = _Counting(p.denominator)
    assert sum(bernoulli(rng, p) for _ in range(p.denominator)) == p.numerator


class _Counting(SeededRandomness):
    """Every value below ``n`` once, in order: exact counts, no sampling error."""

    def __init__(self, n: int) -> None:
        super().__init__(b"")
        self.values = iter(range(n))
        self.n = n

    def below(self, n: int) -> int:
        assert n == self.n
        return next(self.values)


@pytest.mark.parametrize("gamma", [Fraction(-1), Fraction(-1, 10**9)])
def test_bernoulli_exp_refuses_a_negative_gamma(gamma: Fraction) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        bernoulli_exp(SeededRandomness(SEED), gamma)


def test_bernoulli_exp_of_zero_is_always_true() -> None:
    rng = SeededRandomness(SEED)
    assert all(bernoulli_exp(rng, Fraction(0)) for _ in range(200))


@pytest.mark.parametrize(("scale", "message"), [(Fraction(0), "scale"), (Fraction(-1, 2), "scale")])
def test_a_laplace_scale_that_is_not_positive_is_refused(scale: Fraction, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discrete_laplace(SeededRandomness(SEED), scale)


@pytest.mark.parametrize("sigma2", [Fraction(0), Fraction(-3)])
def test_a_gaussian_sigma2_that_is_not_positive_is_refused(sigma2: Fraction) -> None:
    with pytest.raises(ValueError, match="sigma2"):
        discrete_gaussian(SeededRandomness(SEED), sigma2)


def test_small_positive_scales_are_accepted() -> None:
    rng = SeededRandomness(SEED)
    assert isinstance(discrete_laplace(rng, Fraction(1, 10**6)), int)
    assert isinstance(discrete_laplace(rng, Fraction(1, 2)), int)
    assert isinstance(discrete_gaussian(rng, Fraction(1, 10**6)), int)
    assert isinstance(discrete_gaussian(rng, Fraction(1, 2)), int)


# --- the draws of a seed, pinned -----------------------------------------------------------------

PINNED = [
    # (sampler, parameter, the first 24 draws of SEED)
    ("laplace", Fraction(10, 3), [3, 11, -4, -1, -4, 1, 2, -5, -5, 1, 1, 2, -2, -4, -6, -3, -1, 0,
                                  2, 0, 1, 6, -4, -2]),
    ("laplace", Fraction(1, 2), [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                 0, 0]),
    ("gaussian", Fraction(23, 2), [-3, -3, 0, 4, -7, 1, 2, 0, 1, -4, 1, 4, 5, 2, -4, -5, 3, -6, 1,
                                   4, 1, -3, 4, -4]),
    ("gaussian", Fraction(1, 3), [0, 1, 0, 1, 0, 0, -1, 1, 0, 0, 1, 0, 0, -1, 0, 0, 1, 0, 1, 0, 0,
                                  0, 0, 1]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sampler", "parameter", "draws"), PINNED, ids=[f"{s}-{p}" for s, p, _ in PINNED]
)
def test_a_seed_draws_the_noise_it_always_drew(
    sampler: str, parameter: Fraction, draws: list[int]
) -> None:
    rng = SeededRandomness(SEED)
    draw = discrete_laplace if sampler == "laplace" else discrete_gaussian
    assert [draw(rng, parameter) for _ in range(24)] == draws


@pytest.mark.parametrize(
    ("gamma", "draws"),
    [
        (Fraction(7, 3), "00000000000000000001000001000000"),
        (Fraction(1), "00000111001000000000100010110111"),
    ],
)
def test_a_seed_draws_the_coins_it_always_drew(gamma: Fraction, draws: str) -> None:
    rng = SeededRandomness(SEED)
    assert "".join(str(int(bernoulli_exp(rng, gamma))) for _ in range(32)) == draws


@pytest.mark.parametrize(
    ("noise", "draws"),
    [
        (Noise("laplace", 1.0, cap=10), [2, 3, -21, -4, 12, -3, -3, 3, 10, 21, 8, -14]),
        (Noise("gaussian", 1.0, 1e-6, cap=10), [-22, -8, 34, 3, 9, 0, -6, 6, -12, 5, 1, -12]),
    ],
    ids=["laplace", "gaussian"],
)
def test_a_citys_noise_draws_what_it_always_drew_for_a_cell(noise: Noise, draws: list[int]) -> None:
    assert [noise.sample(cell_seed(b"k", str(i))) for i in range(12)] == draws


# --- the figures of the guarantee, worked out by hand --------------------------------------------


@pytest.mark.parametrize(
    ("rho", "delta", "epsilon"),
    [
        (1.0, math.exp(-4), 5.0),  # 1 + 2·sqrt(1·4)
        (0.25, math.exp(-1), 1.25),  # 0.25 + 2·sqrt(0.25·1)
        (0.5, math.exp(-8), 4.5),  # 0.5 + 2·sqrt(0.5·8)
    ],
)
def test_zcdp_converts_to_epsilon_by_bun_and_steinke(
    rho: float, delta: float, epsilon: float
) -> None:
    assert zcdp_to_epsilon(rho, delta) == pytest.approx(epsilon, rel=1e-12)


@pytest.mark.parametrize(
    ("epsilon", "delta", "sensitivity2", "sigma2"),
    [
        # ln(1/δ) = 4, ε = 5: sqrt(rho) = sqrt(9) - sqrt(4) = 1, sigma² = 1/2 + a thousandth
        (5.0, math.exp(-4), 1, Fraction(501, 1000)),
        (5.0, math.exp(-4), 10, Fraction(5001, 1000)),
        # ln(1/δ) = 4, ε = 1.29: sqrt(rho) = 2.3 - 2 = 0.3, 1/(2 · 0.09) = 5.5555...: rounded up
        (1.29, math.exp(-4), 1, Fraction(5557, 1000)),
        (1.29, math.exp(-4), 3, Fraction(16668, 1000)),
    ],
)
def test_the_gaussians_sigma2_is_the_rho_that_converts_to_epsilon_rounded_up(
    epsilon: float, delta: float, sensitivity2: int, sigma2: Fraction
) -> None:
    assert gaussian_sigma2(epsilon, delta, sensitivity2) == sigma2


def test_the_gaussians_sensitivity_is_one_unless_said() -> None:
    assert gaussian_sigma2(1.29, math.exp(-4)) == Fraction(5557, 1000)


@pytest.mark.parametrize(("epsilon", "delta"), [(0.1, 1e-9), (1.0, 1e-6), (3.0, 1e-5)])
def test_the_gaussians_sigma2_spends_all_of_epsilon_and_no_more(
    epsilon: float, delta: float
) -> None:
    sigma2 = float(gaussian_sigma2(epsilon, delta, 10))
    spent = zcdp_to_epsilon(10 / (2 * sigma2), delta)
    assert epsilon * 0.999 < spent <= epsilon


@pytest.mark.parametrize(
    ("epsilon", "sensitivity", "scale"),
    [
        (0.5, 1, Fraction(2)),
        (0.3, 10, Fraction(100, 3)),
        (1.0, 10, Fraction(10)),
        (2.5, 4, Fraction(8, 5)),
    ],
)
def test_the_laplace_scale_is_the_cap_over_the_decimal_epsilon(
    epsilon: float, sensitivity: int, scale: Fraction
) -> None:
    assert laplace_scale(epsilon, sensitivity) == scale


def test_the_laplace_sensitivity_is_one_unless_said() -> None:
    assert laplace_scale(0.5) == 2


# --- a city's noise --------------------------------------------------------------------------


def test_a_noise_caps_one_cell_a_day_unless_said() -> None:
    assert Noise("laplace", 0.5).cap == 1
    assert Noise("laplace", 0.5).scale == 2


def test_a_laplace_noise_is_scaled_to_its_cap_over_epsilon() -> None:
    assert Noise("laplace", 1.0, cap=10).scale == 10
    assert Noise("laplace", 0.5, cap=3).scale == 6


def test_a_gaussian_noise_has_the_sigma2_of_its_epsilon_delta_and_cap() -> None:
    assert Noise("gaussian", 1.0, 1e-6, cap=10).scale == gaussian_sigma2(1.0, 1e-6, 10)
    assert Noise("gaussian", 1.29, math.exp(-4), cap=3).scale == Fraction(16668, 1000)


def test_the_laplace_noise_says_its_scale_cap_and_epsilon() -> None:
    assert Noise("laplace", 1.0, cap=10).describe() == (
        "discrete Laplace noise of scale 10 (the cap of 10 cells a device counts in a day, "
        "over ε = 1.0): ε = 1.0 per release (ε-differential privacy)"
    )


def test_the_gaussian_noise_says_its_sigma2_cap_epsilon_and_delta() -> None:
    assert Noise("gaussian", 1.0, 1e-6, cap=10).describe() == (
        "discrete Gaussian noise of σ² = 286.224 (for the cap of 10 cells a device counts in "
        "a day): ε = 1.0 and δ = 1e-06 per release ((ε, δ)-differential privacy through "
        "zero-concentrated DP)"
    )


def test_a_figures_seed_is_the_hmac_of_its_parts_under_the_noise_key() -> None:
    seed = cell_seed(b"key", "cell", "r1", "2026-06-01T10:00:00+00:00", "centrum")
    expected = hmac.new(b"key", b"cell\x1fr1\x1f2026-06-01T10:00:00+00:00\x1fcentrum", "sha256")
    assert seed == expected.digest()
    # the separator keeps parts apart: ("ab", "c") and ("a", "bc") are two figures
    assert cell_seed(b"key", "ab", "c") != cell_seed(b"key", "a", "bc")


def test_the_noise_key_is_the_hmac_of_the_city_under_the_release_secret() -> None:
    expected = hmac.new(b"secret", b"citypipe/v1/noise/velden", "sha256").digest()
    assert noise_key(b"secret", "velden") == expected
    assert noise_key(b"secret", "oudstad") != expected
