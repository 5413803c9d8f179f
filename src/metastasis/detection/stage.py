"""AJCC 8th anatomic stage groups, simplified to what the model represents (SPEC.md "Stage groups").

T1 <= 20 mm, T2 <= 50 mm, T3 > 50 mm; N0 none, N1 1-3, N2 4-9, N3 >= 10 positive nodes; stage IV when
distant disease is present; otherwise I = T1 N0; II = T1 N1, T2 N0, T2 N1, T3 N0; III = T3 N1, any N2
or N3. Codes are indices into :data:`metastasis.vocabulary.STAGES` (0 = I ... 3 = IV).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: stage code by [T index, N index] for M0
_M0 = np.array(
    [
        [0, 1, 2, 2],  # T1: N0 -> I, N1 -> II, N2/N3 -> III
        [1, 1, 2, 2],  # T2
        [1, 2, 2, 2],  # T3
    ],
    dtype=np.int8,
)


def t_group(diameter_mm: ArrayLike) -> NDArray[np.int8]:
    """T index (0 = T1 <= 20 mm, 1 = T2 <= 50 mm, 2 = T3)."""
    return np.digitize(np.asarray(diameter_mm, dtype=np.float64), [20.0, 50.0], right=True).astype(np.int8)


def n_group(nodes_positive: ArrayLike) -> NDArray[np.int8]:
    """N index (0 = N0, 1 = N1 1-3, 2 = N2 4-9, 3 = N3 >= 10)."""
    return np.digitize(np.asarray(nodes_positive), [1, 4, 10]).astype(np.int8)


def stage_group(t_index: ArrayLike, n_index: ArrayLike, distant: ArrayLike) -> NDArray[np.int8]:
    """Stage code from T and N indices and whether distant disease is present (found, for clinical)."""
    m0 = _M0[np.asarray(t_index), np.asarray(n_index)]
    return np.where(np.asarray(distant, dtype=bool), np.int8(3), m0).astype(np.int8)
