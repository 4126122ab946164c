"""Counter-based pseudo-randomness: the value for (seed, stream, index) is a pure function.

Every random choice of the generator is ``uniform(stream, index)`` for a named
stream and an integer key (a customer's number, or a customer's number and the
order's rank within the customer, ...). Nothing depends on the order in which
values are drawn, on numpy's generator algorithms or on the number of
customers, so the same seed gives the same data on every machine and run, and
customer ``C000123`` is the same person in a warehouse of 1,000 or 1,000,000
customers. The mixer is SplitMix64's finaliser on unsigned 64-bit integers
(numpy wraps on overflow, which is the arithmetic wanted here).
"""

from __future__ import annotations

import hashlib

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / float(1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, in place on a uint64 array."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


class Streams:
    """Named streams of uniform numbers for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def _key(self, stream: str) -> np.uint64:
        digest = hashlib.blake2b(f"{self.seed}/{stream}".encode(), digest_size=8).digest()
        return np.uint64(int.from_bytes(digest, "little"))

    def bits(self, stream: str, index: np.ndarray | int) -> np.ndarray:
        """64 random bits for each index (uint64)."""
        z = np.asarray(index).astype(np.uint64, copy=True)
        z *= _GAMMA
        z += self._key(stream)
        return _mix(z)

    def uniform(self, stream: str, index: np.ndarray | int) -> np.ndarray:
        """Uniform floats in [0, 1), one for each index."""
        return (self.bits(stream, index) >> _S11).astype(np.float64) * _TO_UNIT

    def below(self, stream: str, index: np.ndarray | int, n: int) -> np.ndarray:
        """Uniform integers in [0, n)."""
        return np.minimum((self.uniform(stream, index) * n).astype(np.int64), n - 1)

    def choice(self, stream: str, index: np.ndarray | int, weights) -> np.ndarray:
        """An index into ``weights`` for each index, drawn with those weights.

        Through a table of ``RESOLUTION`` slots (a gather instead of a search): each
        weight is honoured to within 1/65,536.
        """
        return lookup_table(weights)[(self.bits(stream, index) >> _S48).astype(np.int64)]


RESOLUTION = 1 << 16
_S48 = np.uint64(64 - 16)


def lookup_table(weights) -> np.ndarray:
    """Slot -> index table for weighted choice by 16 random bits."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    slots = (np.arange(RESOLUTION) + 0.5) / RESOLUTION * cdf[-1]
    return np.minimum(np.searchsorted(cdf, slots, side="right"), len(cdf) - 1).astype(np.int64)
