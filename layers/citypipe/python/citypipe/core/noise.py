"""Differential-privacy noise for published people counts: exact integer samplers, seeded.

Counts are integers, so the mechanisms are the discrete ones of Canonne, Kamath and
Steinke ("The Discrete Gaussian for Differential Privacy", NeurIPS 2020), sampled exactly
with integer and rational arithmetic only — no floating point, so none of the attacks on
floating-point Laplace noise (Mironov 2012) apply:

- ``laplace``: the discrete Laplace (two-sided geometric) mechanism,
  P[Z = z] ∝ exp(-|z| / scale) with scale = Δ₁ / ε: ε-differential privacy;
- ``gaussian``: the discrete Gaussian, P[Z = z] ∝ exp(-z² / 2sigma²): rho-zCDP with
  rho = Δ₂² / 2sigma², which implies (ε, δ)-differential privacy for
  ε = rho + 2·sqrt(rho·ln(1/δ)); sigma is the smallest that gives the city's ε and δ.

The sensitivities come from the cap: the unit of privacy is one device over one day, and a
device counts in at most ``cap`` cells of a day, one each (``core.people``), so the day's
counts have Δ₁ = cap and Δ₂ = √cap. These are the samplers OpenDP implements
(``make_laplace`` and ``make_gaussian`` on integers); OpenDP itself is a 170 MB shared
library, far over the Lambda layer's budget, so the tests check these against OpenDP's
privacy maps and distributions instead (decision 0052, ``docs/decisions/``).

Randomness is a deterministic stream from a secret seed (HMAC-SHA-256 in counter mode),
seeded per figure by its release and place under the city's noise key: a re-export of an
unchanged release draws the same noise and writes the same bytes, and nobody without the
key can predict or subtract it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Mechanism = Literal["laplace", "gaussian"]


class SeededRandomness:
    """Uniform integers from an HMAC-SHA-256 stream keyed by ``seed``: deterministic for a
    seed, unpredictable without it."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._pool = 0  # unused random bits, as an integer
        self._bits = 0

    def _bits_of(self, count: int) -> int:
        while self._bits < count:
            block = hmac.digest(self._seed, self._counter.to_bytes(8, "big"), hashlib.sha256)
            self._counter += 1
            self._pool = (self._pool << 256) | int.from_bytes(block, "big")
            self._bits += 256
        self._bits -= count
        value = self._pool >> self._bits
        self._pool &= (1 << self._bits) - 1
        return value

    def below(self, n: int) -> int:
        """Uniform on {0, ..., n - 1} (rejection sampling: no modulo bias)."""
        if n <= 0:
            raise ValueError("n must be positive")
        bits = (n - 1).bit_length()
        while True:
            value = self._bits_of(bits) if bits else 0
            if value < n:
                return value


def bernoulli(rng: SeededRandomness, p: Fraction) -> bool:
    """True with probability p (0 <= p <= 1), exactly."""
    return rng.below(p.denominator) < p.numerator


def bernoulli_exp(rng: SeededRandomness, gamma: Fraction) -> bool:
    """True with probability exp(-gamma), gamma >= 0 rational (CKS20, Algorithm 1)."""
    if gamma < 0:
        raise ValueError("gamma must be non-negative")
    while gamma > 1:
        if not bernoulli_exp(rng, Fraction(1)):
            return False
        gamma -= 1
    k = 1
    while bernoulli(rng, gamma / k):
        k += 1
    return k % 2 == 1


def discrete_laplace(rng: SeededRandomness, scale: Fraction) -> int:
    """P[Z = z] ∝ exp(-|z| / scale), scale > 0 rational (CKS20, Algorithm 2)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    t, s = scale.numerator, scale.denominator  # scale = t / s
    while True:
        u = rng.below(t)
        if not bernoulli_exp(rng, Fraction(u, t)):
            continue
        v = 0
        while bernoulli_exp(rng, Fraction(1)):
            v += 1
        y = (u + t * v) // s
        negative = bernoulli(rng, Fraction(1, 2))
        if negative and y == 0:
            continue
        return -y if negative else y


def discrete_gaussian(rng: SeededRandomness, sigma2: Fraction) -> int:
    """P[Z = z] ∝ exp(-z² / 2sigma²), sigma² > 0 rational (CKS20, Algorithm 3)."""
    if sigma2 <= 0:
        raise ValueError("sigma2 must be positive")
    t = math.isqrt(sigma2.numerator // sigma2.denominator) + 1
    while True:
        y = discrete_laplace(rng, Fraction(t))
        gamma = (abs(y) - sigma2 / t) ** 2 / (2 * sigma2)
        if bernoulli_exp(rng, gamma):
            return y


def laplace_scale(epsilon: float, sensitivity: int = 1) -> Fraction:
    """The discrete Laplace scale giving ε-DP for an L1 sensitivity: Δ₁ / ε (ε read exactly
    as the decimal the city file gives)."""
    return sensitivity / Fraction(str(epsilon))


def zcdp_to_epsilon(rho: float, delta: float) -> float:
    """(ε, δ)-DP implied by rho-zCDP (Bun and Steinke 2016, Proposition 1.3)."""
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


def gaussian_sigma2(epsilon: float, delta: float, sensitivity2: int = 1) -> Fraction:
    """sigma² of a discrete Gaussian giving (ε, δ)-DP through zCDP for a squared L2
    sensitivity Δ₂²: the rho that converts to exactly ε, and sigma² = Δ₂² / 2rho rounded up
    to a thousandth (more noise, never less)."""
    log_inv = math.log(1 / delta)
    root_rho = math.sqrt(log_inv + epsilon) - math.sqrt(log_inv)
    rho = root_rho * root_rho
    sigma2 = Fraction(math.ceil(1000 * sensitivity2 / (2 * rho)) + 1, 1000)
    assert zcdp_to_epsilon(sensitivity2 / (2 * float(sigma2)), delta) <= epsilon
    return sigma2


@dataclass(frozen=True)
class Noise:
    """A city's noise for people counts: the mechanism, the ε (and δ) one release costs a
    device, and ``cap``, the most cells a device counts in a day (the sensitivity)."""

    mechanism: Mechanism
    epsilon: float
    delta: float | None = None
    cap: int = 1

    @property
    def scale(self) -> Fraction:
        """The discrete Laplace scale (laplace) or the discrete Gaussian's sigma²."""
        if self.mechanism == "laplace":
            return laplace_scale(self.epsilon, self.cap)
        assert self.delta is not None
        return gaussian_sigma2(self.epsilon, self.delta, self.cap)

    def sample(self, seed: bytes) -> int:
        """The noise for one published figure, drawn from the stream ``seed`` keys."""
        rng = SeededRandomness(seed)
        if self.mechanism == "laplace":
            return discrete_laplace(rng, self.scale)
        return discrete_gaussian(rng, self.scale)

    def describe(self) -> str:
        if self.mechanism == "laplace":
            return (
                f"discrete Laplace noise of scale {float(self.scale):g} (the cap of "
                f"{self.cap} cells a device counts in a day, over ε = {self.epsilon}): "
                f"ε = {self.epsilon} per release (ε-differential privacy)"
            )
        return (
            f"discrete Gaussian noise of σ² = {float(self.scale):g} (for the cap of "
            f"{self.cap} cells a device counts in a day): ε = {self.epsilon} and "
            f"δ = {self.delta} per release ((ε, δ)-differential privacy through "
            "zero-concentrated DP)"
        )


def cell_seed(noise_key: bytes, *parts: str) -> bytes:
    """The seed of one published figure: the city's noise key, the figure's release and
    place. A pseudorandom function of them: the same release draws the same noise, another
    release noise independent of it to anyone without the key."""
    return hmac.digest(noise_key, "\x1f".join(parts).encode(), hashlib.sha256)


def noise_key(noise_secret: bytes, city: str) -> bytes:
    """The city's noise key, from its release secret (the key store's ``noise_secret``)."""
    return hmac.digest(noise_secret, f"citypipe/v1/noise/{city}".encode(), hashlib.sha256)
