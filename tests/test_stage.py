"""Stage groups of SPEC on hand-written cases."""

from __future__ import annotations

import pytest

from metastasis.detection.stage import n_group, stage_group, t_group
from metastasis.vocabulary import STAGES

CASES = [
    # diameter_mm, nodes, distant, stage
    (12.0, 0, False, "I"),
    (20.0, 0, False, "I"),  # T1 includes 20 mm
    (20.1, 0, False, "II"),
    (15.0, 1, False, "II"),
    (15.0, 3, False, "II"),
    (15.0, 4, False, "III"),  # any N2
    (35.0, 0, False, "II"),
    (35.0, 2, False, "II"),
    (50.0, 3, False, "II"),  # T2 includes 50 mm
    (50.5, 0, False, "II"),  # T3 N0
    (60.0, 1, False, "III"),  # T3 N1
    (8.0, 12, False, "III"),  # any N3
    (8.0, 9, False, "III"),
    (8.0, 10, False, "III"),
    (8.0, 0, True, "IV"),
    (70.0, 15, True, "IV"),
]


@pytest.mark.parametrize(("diameter", "nodes", "distant", "expected"), CASES)
def test_stage_groups(diameter: float, nodes: int, distant: bool, expected: str) -> None:
    code = stage_group(t_group(diameter), n_group(nodes), distant)
    assert STAGES[int(code)] == expected


def test_t_and_n_boundaries() -> None:
    assert [int(t_group(d)) for d in (1, 20, 20.01, 50, 50.01)] == [0, 0, 1, 1, 2]
    assert [int(n_group(k)) for k in (0, 1, 3, 4, 9, 10, 30)] == [0, 1, 1, 2, 2, 3, 3]
