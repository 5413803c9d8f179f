"""What an exam sees (MODEL.md 4): sensitivity by modality, organ and diameter, conspicuity, false positives.

A lesion of diameter d in organ o is seen by modality m with probability
``s(m, o, d) = s_max / (1 + exp(-(d - d50) / w))``. Each lesion carries one conspicuity ``u ~ U(0, 1)``
per modality, drawn once from the detection stream, and is seen whenever ``u < s``: a lesion missed once
because it is inconspicuous is missed again until it grows. Nothing below 2 mm is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis import streams
from metastasis.biology import growth
from metastasis.biology.lesions import Lesions, link_rows, per_row, volume_one
from metastasis.streams import Process, uniform_one
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
#: ``detected_by`` code of a lesion found by a work-up that symptoms triggered.
BY_SYMPTOMS = DETECTED_BY.index("symptoms")


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
        return np.where(d >= self.visible_mm, _sensitivity(self.s_max[m, o], self.d50_mm[m, o], self.width_mm[m, o], d),
                        0.0)


@numba.njit(cache=True, error_model="numpy")
def sensitivity_one(s_max: float, d50_mm: float, width_mm: float, diameter_mm: float) -> float:
    """The logistic sensitivity curve at one diameter (the visible size is the caller's test)."""
    return s_max / (1.0 + np.exp(-(diameter_mm - d50_mm) / width_mm))


@numba.vectorize(["float64(float64, float64, float64, float64)"], cache=True)
def _sensitivity(s_max: float, d50_mm: float, width_mm: float, diameter_mm: float) -> float:
    return sensitivity_one(s_max, d50_mm, width_mm, diameter_mm)


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
    covered = imaging.covers[modality]  # (exams, organs)
    exam, organ = np.nonzero(covered)
    return pid[exam], time_days[exam], modality[exam], per_row(purpose, pid.size, np.int8)[exam], organ.astype(np.int8)


class Scanner:
    """Evaluates exams against the lesions of a batch as they are at the moment of each exam.

    Each exam-organ row meets only the lesions of its (patient, organ), kept as chains in order of
    addition; sizes come from each lesion's current growth segment, so exams are evaluated as the care
    pathway reaches them. The care pathway says, step by step, how early an exam can still be dated
    (:meth:`advance`): a lesion ended by then is never seen again and leaves its chain the first time
    an exam walks past it (most lesions an exam would meet are ended: killed, resected, irradiated).
    An exam dated before that day after all walks all the patient's lesions instead: the pathway dates
    none so, but the results do not depend on it.
    """

    def __init__(self, lesions: Lesions, imaging: Imaging, seed: int, patient_id: I64, capacity_mm3: float,
                 confirmation_delay_days: float):
        self.lesions, self.imaging, self.seed, self.patient_id = lesions, imaging, seed, patient_id
        self.capacity_mm3 = capacity_mm3
        self.confirmation_delay_days = confirmation_delay_days
        self.floor_days = 0.0  # no exam is dated before this day
        self._first = np.full(len(patient_id) * N_ORGANS, -1, np.int64)  # chain of each (patient, organ)
        self._last = np.full(len(patient_id) * N_ORGANS, -1, np.int64)
        self._next = np.zeros(0, np.int64)
        self._linked = 0  # rows added to the chains so far

    def advance(self, floor_days: float) -> None:
        """Say that exams from now on are dated from ``floor_days`` on (the pathway's step start), so that
        lesions ended by then can leave the chains; one dated earlier all the same walks every lesion of
        its patient."""
        if floor_days < self.floor_days:
            raise ValueError(f"Scanner.advance: {floor_days} days is before the floor {self.floor_days}")
        self.floor_days = floor_days

    def evaluate(self, pid: I64, time_days: F64, modality: NDArray[np.int8], purpose: NDArray[np.int8],
                 organ: NDArray[np.int8], false_positives: bool = True) -> tuple[ExamRows, Hits]:
        """Results of exam-organ rows (tp, fp, tn, fn against the truth at that moment) and the lesions seen."""
        les, im, c = self.lesions, self.imaging, self.lesions.cols
        # an exam dated before the floor (none, from the pathway) walks its patient's whole chain
        early = time_days.size > 0 and time_days.min() < self.floor_days
        first_p, next_p = les.chains() if early else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if self._linked < les.n:
            new = slice(self._linked, les.n)
            self._next = link_rows(c["pid"][new] * N_ORGANS + c["organ"][new], self._linked, len(c["pid"]),
                                   self._first, self._last, self._next, np.zeros(0, np.int64))
            self._linked = les.n
        result, hit_row, hit_exam = _evaluate(
            np.ascontiguousarray(pid, np.int64), np.ascontiguousarray(time_days, np.float64),
            np.ascontiguousarray(modality, np.int8), np.ascontiguousarray(organ, np.int8), self.floor_days,
            N_ORGANS, self._first, self._last, self._next, first_p, next_p,
            streams.stream_head(self.seed, Process.DETECTION), self.patient_id, im.s_max, im.d50_mm, im.width_mm,
            im.visible_mm, self.capacity_mm3, growth.log_ratio(self.capacity_mm3), c["organ"], c["lid"], c["wake"],
            c["ended"], c["t_ref"], c["tau_ref"], c["rate"])
        any_present = result != RESULT_CODE["tn"]
        if false_positives:
            u_fp = streams.uniform(self.seed, Process.DETECTION, self.patient_id[pid],
                                   np.round(time_days * 16).astype(np.int64) * 16 + modality + _FALSE_POSITIVE, organ)
            fp = (~any_present) & (u_fp < self.imaging.false_positive[modality, organ])
            result[fp] = RESULT_CODE["fp"]
        rows = ExamRows(pid, time_days, modality, purpose, organ, result)
        hits = Hits(hit_row, time_days[hit_exam], modality[hit_exam], purpose[hit_exam])
        return rows, hits


_TN, _FN, _TP = RESULT_CODE["tn"], RESULT_CODE["fn"], RESULT_CODE["tp"]


@numba.njit(cache=True, error_model="numpy")
def _evaluate(pid: I64, time_days: F64, modality: NDArray[np.int8], organ: NDArray[np.int8], floor: float,
              n_organs: int, first: I64, last: I64, next_row: I64, first_p: I64, next_p: I64, head: np.uint64,
              patient_id: I64, s_max: F64, d50_mm: F64, width_mm: F64, visible_mm: float, cap: float, log_c: float,
              lesion_organ: NDArray[np.int8], lid: I64, wake: F64, ended: F64, t_ref: F64, tau_ref: F64,
              rate: F64) -> tuple[NDArray[np.int8], I64, I64]:
    # Each exam-organ row meets the lesions of its patient in its organ: a lesion is present from the
    # visible size, seen when its conspicuity draw for the modality falls under the sensitivity at its
    # diameter then. Result tn / fn / tp (false positives are added by the caller); the lesions seen
    # and the exam row that saw each. A lesion ended by ``floor`` is unlinked from its (patient, organ)
    # chain; a row dated before ``floor`` walks its patient's chain (``first_p``, ``next_p``) instead.
    n = pid.size
    result = np.full(n, _TN, np.int8)
    hit_row = np.empty(16, np.int64)
    hit_exam = np.empty(16, np.int64)
    m = 0
    for k in range(n):
        p, t, mod, o = pid[k], time_days[k], modality[k], organ[k]
        early = t < floor
        key = p * n_organs + o
        prev = -1
        r = (first_p[p] if p < first_p.size else -1) if early else first[key]
        while r >= 0:
            after = next_p[r] if early else next_row[r]
            if early:
                if lesion_organ[r] != o:
                    r = after
                    continue
            elif ended[r] <= floor:  # gone for every exam to come
                if prev < 0:
                    first[key] = after
                else:
                    next_row[prev] = after
                if last[key] == r:
                    last[key] = prev
                r = after
                continue
            volume = volume_one(t, wake[r], ended[r], t_ref[r], tau_ref[r], rate[r], cap, log_c)
            d = growth.diameter_one(volume)
            if d >= visible_mm:
                if result[k] == _TN:
                    result[k] = _FN
                s = sensitivity_one(s_max[mod, o], d50_mm[mod, o], width_mm[mod, o], d)
                if uniform_one(head, patient_id[p], lid[r], _CONSPICUITY + mod) < s:
                    result[k] = _TP
                    if m == hit_row.size:
                        hit_row = np.concatenate((hit_row, np.empty(m, np.int64)))
                        hit_exam = np.concatenate((hit_exam, np.empty(m, np.int64)))
                    hit_row[m], hit_exam[m] = r, k
                    m += 1
            prev = r
            r = after
    return result, hit_row[:m], hit_exam[:m]


def record_hits(lesions: Lesions, hits: Hits, capacity_mm3: float) -> I64:
    """Store each lesion's first detection (day, by what, diameter); returns the rows detected for the first time.

    ``detected_by`` is the modality, or ``symptoms`` for lesions found by a work-up that symptoms triggered.
    """
    if hits.row.size == 0:
        return np.zeros(0, np.int64)
    by = np.where(hits.purpose == PURPOSE_CODE["symptoms"], BY_SYMPTOMS, hits.modality + 1).astype(np.int8)
    order = np.lexsort((by, hits.time_days, hits.row))
    r = hits.row[order]
    lead = np.concatenate(([True], r[1:] != r[:-1]))
    pick = order[lead]
    rows, t = hits.row[pick], hits.time_days[pick]
    new = np.isnan(lesions.det_t[rows]) | (t < lesions.det_t[rows])
    rows, t, by_new = rows[new], t[new], by[pick][new]
    lesions.set("det_t", rows, t)
    lesions.set("det_by", rows, by_new)
    lesions.set("det_d", rows, growth.diameter_from_volume(lesions.volume_at(t, capacity_mm3, rows)))
    return rows
