"""What an exam sees (MODEL.md 4): sensitivity by modality, organ and diameter, conspicuity, false positives.

A lesion of diameter d in organ o is seen by modality m with probability
``s(m, o, d) = s_max / (1 + exp(-(d - d50) / w))``. Each lesion carries one conspicuity ``u ~ U(0, 1)``
per modality, drawn once from the detection stream, and is seen whenever ``u < s``: a lesion missed once
because it is inconspicuous is missed again until it grows. Nothing below 2 mm is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis import streams
from metastasis.biology import growth
from metastasis.biology.natural_history import Lesions
from metastasis.streams import Process
from metastasis.vocabulary import (
    COVERAGE,
    DETECTED_BY,
    MODALITIES,
    N_ORGANS,
    ORGAN_CODE,
    PURPOSE_CODE,
    RESULT_CODE,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Counter offset of conspicuity draws in the detection stream (key = lesion id).
_CONSPICUITY = 0
#: Counter offset of false-positive draws (key = exam day x 16 + modality, counter = organ).
_FALSE_POSITIVE = 1000


@dataclass(frozen=True)
class Imaging:
    """Sensitivity curve and false-positive rate of every modality x organ (arrays of shape (9, 8))."""

    s_max: F64
    d50_mm: F64
    width_mm: F64
    false_positive: F64
    covers: NDArray[np.bool_]
    visible_mm: float

    @classmethod
    def from_values(cls, values: dict[str, float]) -> Imaging:
        shape = (len(MODALITIES), N_ORGANS)
        s_max, d50, width, fp = (np.zeros(shape) for _ in range(4))
        width[:] = 1.0
        covers = np.zeros(shape, dtype=bool)
        for m, modality in enumerate(MODALITIES):
            for organ in COVERAGE[modality]:
                o = ORGAN_CODE[organ]
                covers[m, o] = True
                s_max[m, o] = values[f"imaging.{modality}.{organ}.s_max"]
                d50[m, o] = values[f"imaging.{modality}.{organ}.d50_mm"]
                width[m, o] = values[f"imaging.{modality}.{organ}.width_mm"]
                fp[m, o] = values[f"imaging.{modality}.{organ}.false_positive"]
        return cls(s_max, d50, width, fp, covers, values["detection.visible_mm"])

    def sensitivity(self, modality: ArrayLike, organ: ArrayLike, diameter_mm: ArrayLike) -> F64:
        """Probability that a lesion of ``diameter_mm`` is seen (0 below the visible size or off coverage)."""
        m, o = np.asarray(modality), np.asarray(organ)
        d = np.asarray(diameter_mm, dtype=np.float64)
        s = self.s_max[m, o] / (1.0 + np.exp(-(d - self.d50_mm[m, o]) / self.width_mm[m, o]))
        return np.where(d >= self.visible_mm, s, 0.0)


def conspicuity(seed: int, patient_id: ArrayLike, lesion_id: ArrayLike, modality: ArrayLike) -> F64:
    """The lesion's fixed conspicuity draw for a modality."""
    return streams.uniform(seed, Process.DETECTION, patient_id, lesion_id, _CONSPICUITY + np.asarray(modality))


@dataclass
class ExamRows:
    """Exam-organ rows (one per exam and organ it covers), batch-local patient index."""

    pid: I64
    time_days: F64
    modality: NDArray[np.int8]
    purpose: NDArray[np.int8]
    organ: NDArray[np.int8]
    result: NDArray[np.int8]

    @classmethod
    def concat(cls, parts: list[ExamRows]) -> ExamRows:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("pid", "time_days", "modality", "purpose", "organ", "result")))


@dataclass
class Hits:
    """Lesions seen by exams: lesion row, day, modality and purpose of the exam."""

    row: I64
    time_days: F64
    modality: NDArray[np.int8]
    purpose: NDArray[np.int8]

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        names = ("row", "time_days", "modality", "purpose")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in names))


def expand(pid: I64, time_days: F64, modality: NDArray[np.int8], purpose: int | NDArray[np.int8],
           imaging: Imaging) -> tuple[I64, F64, NDArray[np.int8], NDArray[np.int8], NDArray[np.int8]]:
    """One row per exam and organ its modality covers."""
    purpose_arr = np.broadcast_to(np.asarray(purpose, dtype=np.int8), pid.shape)
    covered = imaging.covers[modality]  # (exams, organs)
    exam, organ = np.nonzero(covered)
    return pid[exam], time_days[exam], modality[exam], purpose_arr[exam], organ.astype(np.int8)


class Scanner:
    """Evaluates exams against the lesions of a batch as they are at the moment of each exam.

    Candidate lesions are indexed by (patient, organ) so that every exam-organ row meets only its own;
    sizes come from each lesion's current growth segment, so exams are evaluated as the care pathway
    reaches them.
    """

    def __init__(self, lesions: Lesions, imaging: Imaging, seed: int, patient_id: I64, capacity_mm3: float,
                 confirmation_delay_days: float):
        self.lesions, self.imaging, self.seed, self.patient_id = lesions, imaging, seed, patient_id
        self.capacity_mm3 = capacity_mm3
        self.confirmation_delay_days = confirmation_delay_days

    def evaluate(self, pid: I64, time_days: F64, modality: NDArray[np.int8], purpose: NDArray[np.int8],
                 organ: NDArray[np.int8], false_positives: bool = True) -> tuple[ExamRows, Hits]:
        """Results of exam-organ rows (tp, fp, tn, fn against the truth at that moment) and the lesions seen."""
        n = len(pid)
        les = self.lesions
        t_min = float(time_days.min()) if n else 0.0
        cand_rows = les.rows_of(pid)
        cand_rows = cand_rows[les.ended[cand_rows] > t_min]
        cand_key = les.pid[cand_rows] * N_ORGANS + les.organ[cand_rows]
        order = np.argsort(cand_key, kind="stable")
        cand_rows, cand_key = cand_rows[order], cand_key[order]
        key = pid * N_ORGANS + organ
        lo = np.searchsorted(cand_key, key, side="left")
        hi = np.searchsorted(cand_key, key, side="right")
        count = hi - lo
        exam = np.repeat(np.arange(n), count)
        starts = np.cumsum(count) - count
        cand = np.repeat(lo - starts, count) + np.arange(int(count.sum()))
        row = cand_rows[cand]
        t = time_days[exam]
        d = growth.diameter_from_volume(les.volume_at(t, self.capacity_mm3, row))
        present = d >= self.imaging.visible_mm
        s = self.imaging.sensitivity(modality[exam], organ[exam], d)
        u = conspicuity(self.seed, self.patient_id[pid[exam]], les.lid[row], modality[exam])
        seen = present & (u < s)
        any_seen = np.bincount(exam[seen], minlength=n) > 0
        any_present = np.bincount(exam[present], minlength=n) > 0
        result = np.full(n, RESULT_CODE["tn"], dtype=np.int8)
        result[any_present] = RESULT_CODE["fn"]
        result[any_seen] = RESULT_CODE["tp"]
        if false_positives:
            u_fp = streams.uniform(self.seed, Process.DETECTION, self.patient_id[pid],
                                   np.round(time_days * 16).astype(np.int64) * 16 + modality + _FALSE_POSITIVE, organ)
            fp = (~any_present) & (u_fp < self.imaging.false_positive[modality, organ])
            result[fp] = RESULT_CODE["fp"]
        rows = ExamRows(pid, time_days, modality, purpose, organ, result)
        hits = Hits(row[seen], t[seen], modality[exam][seen], purpose[exam][seen])
        return rows, hits


def record_hits(lesions: Lesions, hits: Hits, capacity_mm3: float) -> I64:
    """Store each lesion's first detection (day, by what, diameter); returns the rows detected for the first time.

    ``detected_by`` is the modality, or ``symptoms`` for lesions found by a work-up that symptoms triggered.
    """
    if hits.row.size == 0:
        return np.zeros(0, np.int64)
    by = np.where(hits.purpose == PURPOSE_CODE["symptoms"], len(DETECTED_BY) - 1, hits.modality + 1).astype(np.int8)
    order = np.lexsort((by, hits.time_days, hits.row))
    r = hits.row[order]
    lead = np.r_[True, r[1:] != r[:-1]]
    pick = order[lead]
    rows, t = hits.row[pick], hits.time_days[pick]
    new = np.isnan(lesions.det_t[rows]) | (t < lesions.det_t[rows])
    rows, t, by_new = rows[new], t[new], by[pick][new]
    lesions.set("det_t", rows, t)
    lesions.set("det_by", rows, by_new)
    lesions.set("det_d", rows, growth.diameter_from_volume(lesions.volume_at(t, capacity_mm3, rows)))
    return rows
