"""Row orders shared by compiled code: rows grouped by a key, then in order of (day, tie) within a group.

The pathway writes rows mostly in day order within a patient (exams and events), and the seeding cascade
meets few tumours per patient in a pass, so a stable insertion sort within each group is linear where
the rows already are in order and cheap where the groups are small.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@numba.njit(cache=True)
def _later(day_a: float, tie_a: int, day_b: float, tie_b: int) -> bool:
    # (day_a, tie_a) after (day_b, tie_b), NaN days last (as np.lexsort puts them); ordered days first
    if day_a > day_b:
        return True
    if day_a < day_b:
        return False
    if day_a == day_b or (np.isnan(day_a) and np.isnan(day_b)):
        return tie_a > tie_b
    return np.isnan(day_a)


@numba.njit(cache=True)
def sort_groups_by_day(order: I64, start: I64, day: F64, tie: I64) -> None:
    """In place: ``order[start[g]:start[g + 1]]`` is group g; put each group's rows in order of (``day``,
    ``tie``) by a stable insertion sort. With ``order`` a stable grouping by a key, the result is
    ``np.lexsort((tie, day, key))``."""
    for g in range(start.size - 1):
        for j in range(start[g] + 1, start[g + 1]):
            row = order[j]
            k = j - 1
            while k >= start[g] and _later(day[order[k]], tie[order[k]], day[row], tie[row]):
                order[k + 1] = order[k]
                k -= 1
            order[k + 1] = row
