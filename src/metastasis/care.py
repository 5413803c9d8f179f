"""The state of each patient's care after diagnosis, and the log of what happened (events).

Shared by the care pathway (:mod:`metastasis.pathway`, who is examined when) and the treatment plan
(:mod:`metastasis.treatment.plan`, what is done about what is found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from metastasis.biology.lesions import Lesions
from metastasis.biology.natural_history import History
from metastasis.cohort import Patients
from metastasis.scenario import Scenario
from metastasis.vocabulary import DETAIL_CODE, EVENT_CODE, N_ORGANS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

FOLLOWUP, METASTATIC, PALLIATIVE = 0, 1, 2


def _kept(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) and value.ndim else value


class EventLog:
    """Events as column arrays: batch patient index, day, kind, organ (+1; 0 none), lesion id (-1 none), detail.

    :meth:`add` keeps what it is given (a scalar stands for every event of the call) and :meth:`arrays`
    builds the columns once: the pathway adds events thousands of times a batch, mostly a few at a time.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[I64, Any, int, Any, Any, Any]] = []

    def add(self, pid: I64, time_days: F64 | float, kind: str, organ: I64 | int = -1, lesion_id: I64 | int = -1,
            detail: str | I64 = "") -> None:
        if len(pid) == 0:
            return
        # arrays are copied: a caller may change its array after the call
        self.parts.append((np.array(pid, np.int64), _kept(time_days), EVENT_CODE[kind], np.asarray(organ) + 1,
                           _kept(lesion_id), DETAIL_CODE[detail] if isinstance(detail, str) else _kept(detail)))

    def arrays(self) -> tuple[I64, F64, I64, I64, I64, I64]:
        if not self.parts:
            z = np.zeros(0, np.int64)
            return z, np.zeros(0), z, z, z, z
        lengths = np.array([len(p[0]) for p in self.parts])
        starts = np.concatenate(([0], np.cumsum(lengths)))
        cols: list[np.ndarray] = [np.concatenate([p[0] for p in self.parts])]
        for i, dtype in ((1, np.float64), (2, np.int64), (3, np.int64), (4, np.int64), (5, np.int64)):
            # scalars repeated over their events in one pass, then the parts given as arrays
            values = [p[i] for p in self.parts]
            scalar = [getattr(v, "ndim", 0) == 0 for v in values]  # Python and NumPy scalars, 0-d arrays
            col = np.repeat(np.array([v if s else 0 for v, s in zip(values, scalar, strict=True)], dtype), lengths)
            for k in np.flatnonzero(~np.array(scalar)):
                col[starts[k]:starts[k + 1]] = values[k]
            cols.append(col)
        return cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]


@dataclass
class CareState:
    """Per-patient state of the pathway (arrays of length n patients, or n x organs)."""

    scenario: Scenario
    values: dict[str, float]
    patients: Patients
    hist: History
    lesions: Lesions
    events: EventLog
    end_days: F64  # other-cause death or horizon; cancer and treatment deaths come on top
    mode: NDArray[np.int8] = field(init=False)
    metastatic_from: F64 = field(init=False)
    next_restage: F64 = field(init=False)
    workup_due: F64 = field(init=False)
    line: NDArray[np.int16] = field(init=False)
    line_start: F64 = field(init=False)
    nadir_mm3: F64 = field(init=False)
    organs_at_line: NDArray[np.bool_] = field(init=False)
    known: NDArray[np.bool_] = field(init=False)
    presented: NDArray[np.bool_] = field(init=False)
    presentation: F64 = field(init=False)
    # no presentation of hers that is neither presented nor explained falls before this day (a lower bound,
    # so that the steps skip her; -inf: look again)
    pending_from: F64 = field(init=False)
    onset: F64 = field(init=False)
    endocrine_until: F64 = field(init=False)
    anti_her2_until: F64 = field(init=False)
    endocrine_detail: I64 = field(init=False)
    anti_her2_detail: I64 = field(init=False)
    scheduled_kill: list[tuple[F64, str, float, str]] = field(init=False)
    treatment_death: F64 = field(init=False)
    bone_palliated: NDArray[np.bool_] = field(init=False)
    health: F64 = field(init=False)
    distant_symptom_days: F64 = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.patients)
        self.mode = np.zeros(n, np.int8)
        for name in ("metastatic_from", "next_restage", "workup_due", "treatment_death", "distant_symptom_days",
                     "line_start"):
            setattr(self, name, np.full(n, np.inf))
        self.endocrine_until = np.full(n, -np.inf)  # not on therapy
        self.anti_her2_until = np.full(n, -np.inf)
        self.line = np.zeros(n, np.int16)
        self.nadir_mm3 = np.full(n, np.inf)
        self.organs_at_line = np.zeros((n, N_ORGANS), bool)
        self.known = np.zeros((n, N_ORGANS), bool)
        self.presented = np.zeros((n, N_ORGANS), bool)
        self.presentation = np.full((n, N_ORGANS), np.inf)
        self.pending_from = np.full(n, np.inf)
        self.onset = np.full((n, N_ORGANS), np.nan)
        self.endocrine_detail = np.zeros(n, np.int64)
        self.anti_her2_detail = np.zeros(n, np.int64)
        self.scheduled_kill = []
        self.bone_palliated = np.zeros(n, bool)
        self.health = np.ones(n)

    @property
    def seed(self) -> int:
        return self.hist.seed

    @property
    def capacity_mm3(self) -> float:
        return self.hist.capacity_mm3
