"""One batch of patients through the whole model -> column arrays of the four tables.

Order of work, which is the order of causes: cohort -> natural history before diagnosis -> symptoms
at presentation -> staging at day 0 -> surgery of stage I-III -> natural history after diagnosis with
burden-driven death and symptom onset -> follow-up, symptoms and restaging -> stage, tables.
Every random number comes from the patient's own keyed streams, so a patient's rows do not depend on
the batch she is simulated in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.biology import growth
from metastasis.biology import natural_history as nh
from metastasis.cohort import Patients, draw_patients, eligible_before_staging
from metastasis.detection import schedule
from metastasis.detection.imaging import Imaging, Scanner
from metastasis.detection.stage import n_group, stage_group, t_group
from metastasis.mortality import cancer_hazard, lethal_organ, other_cause_death_days
from metastasis.scenario import Scenario
from metastasis.streams import Process
from metastasis.vocabulary import DAYS_PER_YEAR, FIRST_DISTANT, N_ORGANS, ORGANS, ORIGIN_CODE, STAGES

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Natural-history stream key of organ o's symptom-onset draw: -(100 + o); death-stream keys.
_ONSET_KEY = -100
_DEATH_OTHER, _DEATH_CANCER = 0, 1


@dataclass
class Course:
    """A batch's simulated course, before it is written as tables (see :mod:`metastasis.tables`)."""

    patients: Patients
    lesions: nh.Lesions
    next_lid: I64
    staging: schedule.Staging
    pathway: schedule.Pathway
    scanner: Scanner
    onset_days: F64  # (patients, organs), NaN if never
    death_days: F64  # NaN if alive at the horizon
    death_cause: NDArray[np.int8]  # 0 none, 1 breast cancer, 3 other (index of DEATH_CAUSES)
    lethal_organ: NDArray[np.int8]  # -1 if none
    end_days: F64  # death or horizon
    horizon_days: float
    clinical_stage: NDArray[np.int8]
    true_stage: NDArray[np.int8]
    occult_distant: NDArray[np.bool_]
    occult_organ: NDArray[np.bool_]  # (patients, organs): lesion >= 2 mm present at day 0 and not found
    micrometastatic: NDArray[np.bool_]
    surgery: NDArray[np.bool_]
    values: dict[str, float]
    t_index: NDArray[np.int8]
    n_index: NDArray[np.int8]
    #: the lesion store the staging hits point into (before colonies founded after death were dropped)
    staging_lesions: nh.Lesions
    #: patients who meet the eligibility criteria that need the staging work-up (clinical stage)
    eligible: NDArray[np.bool_] | None = None


def _symptom_thresholds_mm3(values: dict[str, float]) -> F64:
    base_cm3 = np.array([values[f"symptoms.threshold_cm3.{o}"] for o in ORGANS])
    return base_cm3 * 1000.0 * values["symptoms.threshold_scale"]


def _onset_after_crossing(seed: int, patient_id: I64, organ: NDArray[np.int64], crossing: F64, mean_days: float) -> F64:
    e = streams.exponential(seed, Process.NATURAL_HISTORY, patient_id, _ONSET_KEY - organ, 0)
    return crossing + e * mean_days


def _presentation_onsets(hist: nh.History, lesions: nh.Lesions, values: dict[str, float]) -> F64:
    """Symptom onset before diagnosis of every distant organ already past its threshold at day 0."""
    n = len(hist.patient_id)
    cap = hist.capacity_mm3
    onset = np.full((n, N_ORGANS), np.nan)
    burden = nh.organ_burden(lesions, np.zeros(n), n, cap)
    theta = _symptom_thresholds_mm3(values)
    over = burden > theta
    over[:, :FIRST_DISTANT] = False
    p, o = np.nonzero(over)
    if p.size:
        birth = lesions.seeded[lesions.lid == 0]  # primary rows are the first n rows, in patient order
        crossing = nh.crossing_days(lesions, p, o.astype(np.int8), theta[o], birth[p], np.zeros(len(p)), cap)
        t = _onset_after_crossing(hist.seed, hist.patient_id[p], o, crossing, values["symptoms.onset_mean_days"])
        onset[p, o] = t
    return onset


def _after_diagnosis(hist: nh.History, lesions: nh.Lesions, values: dict[str, float], onset: F64,
                     other_death: F64, horizon: float) -> tuple[F64, NDArray[np.int8]]:
    """Grow, seed, and die on a burden grid after day 0. Returns the cancer death day (inf) and lethal organ.

    The death hazard is integrated by the trapezoid rule over steps of ``death.step_days``; the day of
    death is interpolated within the step where the integral reaches the patient's Exp(1) draw. Only
    patients with live lesions are stepped.
    """
    n = len(hist.patient_id)
    cap = hist.capacity_mm3
    step = values["death.step_days"]
    theta = _symptom_thresholds_mm3(values)
    threshold_e = streams.exponential(hist.seed, Process.DEATH, hist.patient_id, _DEATH_CANCER, 0)
    cum = np.zeros(n)
    h_prev = np.zeros(n)
    burden_prev = nh.organ_burden(lesions, np.zeros(n), n, cap)
    death = np.full(n, np.inf)
    organ_at_death = np.full(n, -1, dtype=np.int8)
    stop = np.minimum(other_death, horizon)
    live = np.nonzero(lesions.ended > 0.0)[0]
    t = 0.0
    while t < horizon and live.size:
        t1 = min(t + step, horizon)
        lp = lesions.pid[live]
        ok = (stop[lp] > t) & ~np.isfinite(death[lp])
        live = live[ok]
        active = np.unique(lp[ok])
        if active.size == 0:
            break
        limit = np.full(n, -np.inf)
        limit[active] = np.minimum(t1, stop[active])
        first_new = lesions.n
        nh.seed_until(hist, lesions, limit, rows=live)
        live = np.concatenate((live, np.arange(first_new, lesions.n)))
        r = live[lesions.wake[live] < t1]
        comp = np.searchsorted(active, lesions.pid[r])
        v = growth.volume_at_time(t1, lesions.wake[r], lesions.rate[r], cap)
        flat = np.bincount(comp * N_ORGANS + lesions.organ[r], weights=v, minlength=active.size * N_ORGANS)
        burden = np.asarray(flat, dtype=np.float64).reshape(active.size, N_ORGANS)
        h, h_organ = cancer_hazard(burden, values)
        add = 0.5 * (h_prev[active] + h) * (t1 - t)
        dies = cum[active] + add >= threshold_e[active]
        d = active[dies]
        frac = (threshold_e[d] - cum[d]) / add[dies]
        death[d] = t + frac * (t1 - t)
        organ_at_death[d] = lethal_organ(h_organ[dies])
        cum[active] += add
        h_prev[active] = h
        # symptom onset: burden crossing its threshold during this step (log-linear in between)
        before = burden_prev[active]
        crossed = (burden > theta) & ~(before > theta) & np.isnan(onset[active])
        p, o = np.nonzero(crossed)
        if p.size:
            b0 = np.maximum(before[p, o], 1e-12)
            b1 = burden[p, o]
            w = np.clip(np.log(theta[o] / b0) / np.log(b1 / b0), 0.0, 1.0)
            crossing = t + w * (t1 - t)
            onset[active[p], o] = _onset_after_crossing(hist.seed, hist.patient_id[active[p]], o, crossing,
                                                        values["symptoms.onset_mean_days"])
        burden_prev[active] = burden
        t = t1
    return death, organ_at_death


def simulate_batch(scenario: Scenario, values: dict[str, float], patient_id: I64) -> Course:
    """Simulate the candidates ``patient_id`` of ``scenario`` (eligibility applied) and return their course."""
    seed = scenario.seed
    horizon = scenario.horizon_years * DAYS_PER_YEAR
    cap = values["growth.carrying_capacity_mm3"]
    patients = draw_patients(scenario.cohort, values, seed, patient_id)
    patients = patients.take(np.nonzero(eligible_before_staging(scenario.cohort, patients))[0])
    n = len(patients)
    gid = patients.patient_id

    hist, lesions = nh.start(patients, values, seed)
    nh.seed_until(hist, lesions, np.zeros(n))
    onset = _presentation_onsets(hist, lesions, values)

    imaging = Imaging.from_values(values)
    delay = values["detection.confirmation_delay_days"]
    t_idx, n_idx = t_group(patients.tumour_diameter_mm), n_group(patients.nodes_positive)
    pre_stage = stage_group(t_idx, n_idx, False)
    scanner0 = Scanner(lesions, imaging, seed, gid, cap, delay)
    staging = schedule.stage_at_diagnosis(scanner0, scenario, t_idx, n_idx, pre_stage, onset)

    # what is there at day 0 (before surgery changes anything)
    visible_mm3 = float(growth.volume_from_diameter(values["detection.visible_mm"]))
    distant_row = lesions.organ >= FIRST_DISTANT
    v0 = lesions.volume_at(np.zeros(lesions.n), cap)
    big = distant_row & (v0 >= visible_mm3)
    present_organ = np.zeros((n, N_ORGANS), dtype=bool)
    present_organ[lesions.pid[big], lesions.organ[big]] = True
    micrometastatic = np.bincount(lesions.pid[distant_row & (lesions.seeded <= 0.0)], minlength=n) > 0

    # surgery of the primary and the nodal deposits for stage I-III at day 0
    surgery = ~staging.distant_found
    rows = np.nonzero(surgery[lesions.pid] & np.isin(lesions.origin, [ORIGIN_CODE["primary"], ORIGIN_CODE["nodal"]]))[0]
    nh.end_lesions(lesions, rows, 0.0, "resected")

    other = other_cause_death_days(patients.age_years,
                                   streams.exponential(seed, Process.DEATH, gid, _DEATH_OTHER, 0))
    cancer_death, organ_at_death = _after_diagnosis(hist, lesions, values, onset, other, horizon)
    death = np.minimum(cancer_death, other)
    cause = np.where(~(death < horizon), 0, np.where(cancer_death <= other, 1, 3)).astype(np.int8)
    death_days = np.where(cause > 0, death, np.nan)
    end_days = np.where(cause > 0, death, horizon)
    organ_at_death = np.where(cause == 1, organ_at_death, -1).astype(np.int8)

    # close every lesion's course at death or the horizon; drop colonies founded after death
    keep = lesions.seeded < end_days[lesions.pid]
    lesions = nh.Lesions(n=int(keep.sum()), cols={k: v[: lesions.n][keep] for k, v in lesions.cols.items()})
    alive = np.nonzero(lesions.ended > end_days[lesions.pid])[0]
    dying = cause[lesions.pid[alive]] > 0
    nh.end_lesions(lesions, alive[dying], end_days[lesions.pid[alive[dying]]], "death")
    nh.end_lesions(lesions, alive[~dying], horizon, "horizon")
    with np.errstate(invalid="ignore"):
        onset = np.where(onset < end_days[:, None], onset, np.nan)

    scanner = Scanner(lesions, imaging, seed, gid, cap, delay)
    pathway = schedule.follow(scanner, scenario, values, seed, gid, staging, onset, end_days)

    # clinical stage: distant disease found by the work-up or within the staging window
    window = scenario.staging.window_days
    les_pid_hit = np.concatenate((scanner0.lesions.pid[staging.findings.hits.row],
                                  lesions.pid[pathway.findings.hits.row]))
    les_org_hit = np.concatenate((scanner0.lesions.organ[staging.findings.hits.row],
                                  lesions.organ[pathway.findings.hits.row]))
    hit_t = np.concatenate((staging.findings.hits.time_days, pathway.findings.hits.time_days))
    in_window = (les_org_hit >= FIRST_DISTANT) & (hit_t <= window)
    distant_clinical = np.bincount(les_pid_hit[in_window], minlength=n) > 0
    clinical_stage = stage_group(t_idx, n_idx, distant_clinical)
    true_stage = stage_group(t_idx, n_idx, present_organ.any(axis=1))
    found_organ = np.zeros((n, N_ORGANS), dtype=bool)
    found_organ[les_pid_hit[in_window], les_org_hit[in_window]] = True
    occult_organ = present_organ & ~found_organ & (clinical_stage < 3)[:, None]
    occult = (clinical_stage < 3) & present_organ.any(axis=1)

    course = Course(
        patients=patients, lesions=lesions, next_lid=hist.next_lid, staging=staging, pathway=pathway,
        scanner=scanner, onset_days=onset, death_days=death_days, death_cause=cause, lethal_organ=organ_at_death,
        end_days=end_days, horizon_days=horizon, clinical_stage=clinical_stage, true_stage=true_stage,
        occult_distant=occult, occult_organ=occult_organ, micrometastatic=micrometastatic, surgery=surgery,
        values=values, t_index=t_idx, n_index=n_idx, staging_lesions=scanner0.lesions,
    )
    if scenario.cohort.clinical_stages is not None:
        course.eligible = np.isin(clinical_stage, [STAGES.index(s) for s in scenario.cohort.clinical_stages])
    return course
