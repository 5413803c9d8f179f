"""Counter-based random numbers keyed by (seed, process, patient, key, counter).

Every random number of the simulation is a pure function of its key, so a patient's draws do not
depend on which batch or worker simulates her, and two scenarios that share a seed share each
patient's natural history (common random numbers). The generator hashes the key with the SplitMix64
finaliser (Steele, Lea & Flood, OOPSLA 2014), chained over the key's words: no state, no Generator
object per patient. The chain is compiled by Numba as ufuncs over NumPy arrays (cached on disk after
the first run), so a call costs a few microseconds whatever its size.
"""

from __future__ import annotations

import functools
import math
from enum import IntEnum

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


class Process(IntEnum):
    """The independent random streams of one patient (SPEC: cohort, natural history, detection, ...)."""

    COHORT = 1
    NATURAL_HISTORY = 2
    DETECTION = 3
    TREATMENT = 4
    DEATH = 5


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _i64(x: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(x).astype(np.int64, copy=False)


# The same chain compiled as ufuncs (one pass over memory, no temporaries; bit-identical to _mix).
@numba.njit(cache=True)
def _mix_one(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def _chain(head: np.uint64, patient: np.int64, key: np.int64, counter: np.int64) -> np.uint64:
    # int64 -> uint64 keeps the bits (two's complement), as NumPy's astype does
    z = _mix_one(head ^ (np.uint64(patient) * _GOLDEN))
    z = _mix_one(z ^ (np.uint64(key) + _GOLDEN))
    return _mix_one(z ^ (np.uint64(counter) * _M1 + _GOLDEN))


@numba.njit(cache=True)
def uniform_one(head: np.uint64, patient: int | np.int64, key: int | np.int64, counter: int | np.int64) -> float:
    """One U(0, 1) draw for compiled code: what :func:`uniform` gives for the same key, with ``head`` the
    stream's head (``stream_head(seed, process)``)."""
    return (np.float64(_chain(head, np.int64(patient), np.int64(key), np.int64(counter)) >> _S11) + 0.5) * _TWO_M53


@numba.njit(cache=True)
def normal_quantile(u: float) -> float:
    """Standard normal quantile of ``u`` in (0, 1), to within a few units in the last place of
    ``scipy.special.ndtri``: Abramowitz & Stegun 26.2.23 as the start (error below 4.5e-4), then Newton
    steps on the lower tail's ``erfc`` (the upper tail by symmetry; ``1 - u`` is exact there)."""
    p = u if u <= 0.5 else 1.0 - u
    t = math.sqrt(-2.0 * math.log(p))
    z = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t)
          / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t))
    for _ in range(8):
        step = (0.5 * math.erfc(-z / _SQRT2) - p) * _SQRT2PI * math.exp(0.5 * z * z)
        z -= step
        if abs(step) <= 1e-16 * max(1.0, abs(z)):
            break
    return z if u <= 0.5 else -z


@numba.vectorize(["uint64(uint64, int64, int64, int64)"], cache=True)
def _hash_ufunc(head: np.uint64, patient: np.int64, key: np.int64, counter: np.int64) -> np.uint64:
    return _chain(head, patient, key, counter)


@numba.vectorize(["float64(uint64, int64, int64, int64)"], cache=True)
def _uniform_ufunc(head: np.uint64, patient: np.int64, key: np.int64, counter: np.int64) -> float:
    return uniform_one(head, patient, key, counter)


@functools.lru_cache(maxsize=64)
def stream_head(seed: int, process: Process) -> np.uint64:
    """The first word of a stream's chain: what compiled code passes to :func:`uniform_one`."""
    with np.errstate(over="ignore"):
        return np.uint64(_mix(np.array([seed], dtype=np.uint64) * _GOLDEN + np.uint64(int(process)))[0])


def hash64(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.uint64]:
    """64 random bits for each element of the broadcast key arrays."""
    return np.asarray(_hash_ufunc(stream_head(seed, process), _i64(patient), _i64(key), _i64(counter)), dtype=np.uint64)


def uniform(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.float64]:
    """U(0, 1), never exactly 0 or 1."""
    return np.asarray(_uniform_ufunc(stream_head(seed, process), _i64(patient), _i64(key), _i64(counter)),
                      dtype=np.float64)


def normal(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.float64]:
    """Standard normal by inversion of :func:`uniform`."""
    return np.asarray(ndtri(uniform(seed, process, patient, key, counter)), dtype=np.float64)


def exponential(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.float64]:
    """Exp(1) by inversion of :func:`uniform`."""
    return -np.log(uniform(seed, process, patient, key, counter))
