"""Symptoms (MODEL.md 4): an organ's burden past its threshold starts a hazard of symptom onset.

Thresholds are one calibrated scale times fixed organ volumes; onset follows the crossing after an
exponential time. The draw is keyed by patient and organ in the natural-history stream, so the same
crossing gives the same onset in every scenario (and in the symptom-only counterfactual).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.biology import growth
from metastasis.biology import lesions as ls
from metastasis.biology import natural_history as nh
from metastasis.cohort import Patients
from metastasis.streams import Process
from metastasis.vocabulary import FIRST_DISTANT, N_ORGANS, ORGANS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Natural-history stream key of organ o's symptom-onset draw: -(100 + o) (never a lesion id).
_ONSET_KEY = -100
#: Detection-stream key of the presentation delay of organ o: -(10 + o) (never a lesion id).
_DELAY_KEY = -10
#: Passes of :func:`diagnosis_by_symptoms`; each pass moves diagnosis earlier, so a few suffice.
_DIAGNOSIS_PASSES = 16
#: Presentation within this many days before diagnosis counts as presenting at diagnosis.
PRESENTATION_MARGIN_DAYS = 7.0


def thresholds_mm3(values: dict[str, float]) -> F64:
    """Burden (mm^3) past which each organ may cause symptoms."""
    base_cm3 = np.array([values[f"symptoms.threshold_cm3.{o}"] for o in ORGANS])
    return base_cm3 * 1000.0 * values["symptoms.threshold_scale"]


def onset_after_crossing(seed: int, patient_id: I64, organ: I64, crossing_days: F64, values: dict[str, float]) -> F64:
    """Day of symptom onset given the day the organ's burden crossed its threshold."""
    e = streams.exponential(seed, Process.NATURAL_HISTORY, patient_id, _ONSET_KEY - organ, 0)
    return np.asarray(crossing_days + e * values["symptoms.onset_mean_days"], dtype=np.float64)


@numba.njit(cache=True, error_model="numpy")
def threshold_crossings(active: I64, burden: F64, burden_prev: F64, onset: F64, theta: F64,
                        ) -> tuple[I64, I64, F64]:
    """Organs of ``active`` patients whose burden passed its threshold ``theta`` during a step (above it at
    the step's end, ``burden``, not at its start, ``burden_prev``) and that have no onset yet: their
    position in ``active``, organ, and where in the step the crossing falls (0-1, log-linear in burden).
    ``burden_prev`` of the active patients becomes ``burden``."""
    n_organs = burden.shape[1]
    at = np.empty(burden.size, np.int64)
    organ = np.empty(burden.size, np.int64)
    where = np.empty(burden.size)
    m = 0
    for i in range(active.size):
        p = active[i]
        for o in range(n_organs):
            b, before = burden[i, o], burden_prev[p, o]
            if b > theta[o] and not before > theta[o] and np.isnan(onset[p, o]):
                b0 = max(before, 1e-12)
                at[m], organ[m] = i, o
                where[m] = min(max(np.log(theta[o] / b0) / np.log(b / b0), 0.0), 1.0)
                m += 1
            burden_prev[p, o] = b
    return at[:m], organ[:m], where[:m]


def onsets_before_diagnosis(hist: nh.History, lesions: ls.Lesions, values: dict[str, float]) -> F64:
    """Onset (days, NaN if none yet) of every distant organ already past its threshold at day 0."""
    n = len(hist.patient_id)
    cap = hist.capacity_mm3
    onset = np.full((n, N_ORGANS), np.nan)
    burden = lesions.organ_burden(np.arange(lesions.n), np.ones(n, bool), 0.0, cap, every=True)[1]
    theta = thresholds_mm3(values)
    over = burden > theta
    over[:, :FIRST_DISTANT] = False
    p, o = np.nonzero(over)
    if p.size:
        birth = lesions.seeded[lesions.lid == 0]  # primary rows are the first n rows, in patient order
        crossing = ls.crossing_days(lesions, p, o.astype(np.int8), theta[o], birth[p], np.zeros(len(p)), cap)
        onset[p, o] = onset_after_crossing(hist.seed, hist.patient_id[p], o, crossing, values)
    return onset


def presentation_delay_days(seed: int, patient_id: I64, organ: I64, values: dict[str, float]) -> F64:
    """Days from symptom onset in an organ until the patient seeks care (exponential, keyed by organ)."""
    u = streams.uniform(seed, Process.DETECTION, patient_id, _DELAY_KEY - organ, 0)
    return np.asarray(-np.log(u) * values["symptoms.presentation_delay_mean_days"], dtype=np.float64)


def diagnosis_by_symptoms(patients: Patients, values: dict[str, float], seed: int) -> Patients:
    """Bring diagnosis forward for women whose distant symptoms would have brought them to care first.

    The cohort draws the primary's diameter at diagnosis. When the reconstructed history has a distant
    organ past its symptom threshold, onset and presentation delay before that day, the cancer is
    diagnosed when she presents: the primary's diameter becomes its diameter on that day, and the
    history is rebuilt (the same keyed draws, a shorter time line). Age, subtype, grade, nodes and
    aggressiveness keep their drawn values. Repeated until no one presents more than
    ``PRESENTATION_MARGIN_DAYS`` before diagnosis (the nodal deposits are redrawn for the shorter time line,
    so one pass may not be enough).
    """
    diameter = patients.tumour_diameter_mm.copy()
    todo = np.arange(len(patients))
    cap = values["growth.carrying_capacity_mm3"]
    for _ in range(_DIAGNOSIS_PASSES):
        if todo.size == 0:
            break
        sub = patients.take(todo)
        sub.tumour_diameter_mm = diameter[todo]
        hist, lesions = nh.start(sub, values, seed)
        nh.seed_until(hist, lesions, np.zeros(len(sub)))
        onset = onsets_before_diagnosis(hist, lesions, values)
        p, o = np.nonzero(~np.isnan(onset))
        presented = np.full(len(sub), np.inf)
        np.minimum.at(presented, p, onset[p, o] + presentation_delay_days(seed, sub.patient_id[p], o, values))
        earlier = np.nonzero(presented < -PRESENTATION_MARGIN_DAYS)[0]
        volume = lesions.volume_at(presented[earlier], cap, earlier)  # primaries: the first rows, in patient order
        diameter[todo[earlier]] = growth.diameter_from_volume(volume)
        todo = todo[earlier]
    out = patients.take(np.arange(len(patients)))
    out.tumour_diameter_mm = diameter
    return out
