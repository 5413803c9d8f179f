"""One batch of patients through the whole model -> the simulated course, ready to be written as tables.

Order of work, which is the order of causes: cohort -> diagnosis brought forward for women whose
distant symptoms would bring them to care first -> natural history before diagnosis -> symptoms
at presentation -> staging at day 0 -> the course after diagnosis (surgery and adjuvant therapy,
growth and seeding, follow-up and restaging, metastatic treatment, symptoms, death; see
:mod:`metastasis.pathway`) -> stage. Every random number comes from the patient's own keyed streams,
so a patient's rows do not depend on the batch she is simulated in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis import pathway, streams
from metastasis.biology import growth
from metastasis.biology import lesions as ls
from metastasis.biology import natural_history as nh
from metastasis.care import CareState, EventLog
from metastasis.cohort import Patients, draw_patients, eligible_before_staging
from metastasis.detection import schedule, symptoms
from metastasis.detection.imaging import ExamRows, Imaging, Scanner
from metastasis.detection.stage import n_group, stage_group, t_group
from metastasis.mortality import other_cause_death_days
from metastasis.scenario import Scenario
from metastasis.streams import Process
from metastasis.vocabulary import DAYS_PER_YEAR, DETECTED_BY, FIRST_DISTANT, STAGES

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_DEATH_OTHER = 0  # death-stream key of the other-cause death draw


@dataclass
class Course:
    """A batch's simulated course, before it is written as tables (see :mod:`metastasis.tables`)."""

    patients: Patients
    lesions: ls.Lesions
    next_lid: I64
    events: EventLog
    exams: list[ExamRows]
    distant_symptom_days: F64  # inf if never
    death_days: F64  # NaN if alive at the horizon
    death_cause: NDArray[np.int8]  # index of DEATH_CAUSES
    lethal_organ: NDArray[np.int8]  # -1 if not a cancer death
    end_days: F64  # death or horizon
    clinical_stage: NDArray[np.int8]
    true_stage: NDArray[np.int8]
    occult_distant: NDArray[np.bool_]
    micrometastatic: NDArray[np.bool_]
    t_index: NDArray[np.int8]
    n_index: NDArray[np.int8]
    values: dict[str, float]
    #: patients who meet the eligibility criteria that need the staging work-up (clinical stage)
    eligible: NDArray[np.bool_] | None = None


def simulate_batch(scenario: Scenario, values: dict[str, float], patient_id: I64) -> Course:
    """Simulate the candidates ``patient_id`` of ``scenario`` (eligibility applied) and return their course."""
    seed = scenario.seed
    horizon = scenario.horizon_years * DAYS_PER_YEAR
    cap = values["growth.carrying_capacity_mm3"]
    patients = symptoms.diagnosis_by_symptoms(draw_patients(scenario.cohort, values, seed, patient_id), values, seed)
    patients = patients.take(np.nonzero(eligible_before_staging(scenario.cohort, patients))[0])
    n = len(patients)
    gid = patients.patient_id

    hist, lesions = nh.start(patients, values, seed)
    nh.seed_until(hist, lesions, np.zeros(n))
    lesions.record_first_sizes(np.arange(lesions.n), 0.0, cap)
    onset = symptoms.onsets_before_diagnosis(hist, lesions, values)

    imaging = Imaging.from_values(values)
    t_idx, n_idx = t_group(patients.tumour_diameter_mm), n_group(patients.nodes_positive)
    scanner = Scanner(lesions, imaging, seed, gid, cap, values["detection.confirmation_delay_days"])
    staging = schedule.stage_at_diagnosis(scanner, scenario, t_idx, n_idx, stage_group(t_idx, n_idx, False), onset)

    # what is there at day 0, before anything is done
    visible_mm3 = float(growth.volume_from_diameter(values["detection.visible_mm"]))
    distant_row = lesions.organ >= FIRST_DISTANT
    big = distant_row & (lesions.volume_at(0.0, cap) >= visible_mm3)
    present = np.bincount(lesions.pid[big], minlength=n) > 0
    micrometastatic = np.bincount(lesions.pid[distant_row & (lesions.seeded <= 0.0)], minlength=n) > 0

    other = other_cause_death_days(patients.age_years, streams.exponential(seed, Process.DEATH, gid, _DEATH_OTHER, 0))
    events = EventLog()
    state = CareState(scenario, values, patients, hist, lesions, events, np.minimum(other, horizon))
    state.onset[:] = onset
    p, o = np.nonzero(~np.isnan(onset))
    events.add(p, onset[p, o], "symptom_onset", o, -1,
               np.array([schedule.DETAIL_OF_SYMPTOM[x] for x in o], dtype=np.int64))
    outcome = pathway.run(state, scanner, staging, other, horizon)

    death = outcome.death_days
    dead = np.isfinite(death)
    end_days = np.where(dead, death, horizon)
    rows = np.nonzero(lesions.ended > end_days[lesions.pid])[0]
    dying = dead[lesions.pid[rows]]
    ls.end_lesions(lesions, rows[dying], end_days[lesions.pid[rows[dying]]], "death", cap)
    ls.end_lesions(lesions, rows[~dying], horizon, "horizon", cap)
    # Symptoms that would have revealed distant disease only after her death never did: the counterfactual
    # day is projected at the first distant finding, before the death is known (SPEC: NaN if never).
    symptom_days = np.where(state.distant_symptom_days <= end_days, state.distant_symptom_days, np.inf)
    # A work-up's finding is dated at its confirmation, which can fall after a death days after the exam:
    # it was never made (the events log and the exams table drop it too).
    late = np.nonzero(lesions.det_t > end_days[lesions.pid])[0]
    lesions.set("det_t", late, np.nan)
    lesions.set("det_d", late, np.nan)
    lesions.set("det_by", late, DETECTED_BY.index(""))

    # clinical stage: distant disease found by the work-up or within the staging window
    window = scenario.staging.window_days
    found = (lesions.organ >= FIRST_DISTANT) & (lesions.det_t <= window)  # the store has grown since day 0
    distant_clinical = np.bincount(lesions.pid[found], minlength=n) > 0
    clinical_stage = stage_group(t_idx, n_idx, distant_clinical)
    course = Course(
        patients=patients, lesions=lesions, next_lid=hist.next_lid, events=events, exams=outcome.exams,
        distant_symptom_days=symptom_days, death_days=np.where(dead, death, np.nan),
        death_cause=outcome.death_cause, lethal_organ=outcome.lethal_organ, end_days=end_days,
        clinical_stage=clinical_stage, true_stage=stage_group(t_idx, n_idx, present),
        occult_distant=(clinical_stage < 3) & present, micrometastatic=micrometastatic,
        t_index=t_idx, n_index=n_idx, values=values,
    )
    if scenario.cohort.clinical_stages is not None:
        course.eligible = np.isin(clinical_stage, [STAGES.index(s) for s in scenario.cohort.clinical_stages])
    return course
