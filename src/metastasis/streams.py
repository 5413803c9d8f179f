"""Counter-based random numbers keyed by (seed, process, patient, key, counter).

Every random number of the simulation is a pure function of its key, so a patient's draws do not
depend on which batch or worker simulates her, and two scenarios that share a seed share each
patient's natural history (common random numbers). The generator hashes the key with the SplitMix64
finaliser (Steele, Lea & Flood, OOPSLA 2014), chained over the key's words: no state, no Generator
object per patient, vectorised over NumPy arrays.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


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


def _u64(x: ArrayLike) -> NDArray[np.uint64]:
    return np.asarray(x).astype(np.int64, copy=False).astype(np.uint64)


def hash64(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.uint64]:
    """64 random bits for each element of the broadcast key arrays."""
    with np.errstate(over="ignore"):
        head = _mix(np.array([seed], dtype=np.uint64) * _GOLDEN + np.uint64(int(process)))
        z = _mix(head ^ (_u64(patient) * _GOLDEN))
        z = _mix(z ^ (_u64(key) + _GOLDEN))
        z = _mix(z ^ (_u64(counter) * _M1 + _GOLDEN))
    return z


def uniform(
    seed: int, process: Process, patient: ArrayLike, key: ArrayLike = 0, counter: ArrayLike = 0
) -> NDArray[np.float64]:
    """U(0, 1), never exactly 0 or 1."""
    bits = hash64(seed, process, patient, key, counter) >> _S11
    return (bits.astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


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
