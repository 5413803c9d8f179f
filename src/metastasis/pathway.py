"""After diagnosis, step by step: tumours grow and seed, the care pathway examines, treatment acts,
symptoms start, and patients die (MODEL.md 3-6).

Each step (``death.step_days``; a step also ends on the day of an adjuvant course planned at diagnosis,
so that the course acts on its own day) runs in causal order: scheduled adjuvant courses and the growth
rates of running therapies; seeding up to the end of the step; burden at the step's end and, from it,
the deaths inside the step (death hazard), symptom onset and skeletal events; the exams that fall in the
step before the patient's death (follow-up, restaging, symptom work-ups, each evaluated at its own day
against the lesions as they are then); decisions at the end of the step for the patients alive then
(metastatic plan, next line at progression, palliative radiotherapy, resection of a local recurrence),
after which the hazard of the patients they touched is taken again from the burden they left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.biology import lesions as ls
from metastasis.biology import natural_history as nh
from metastasis.care import FOLLOWUP, METASTATIC, PALLIATIVE, CareState
from metastasis.detection import schedule, symptoms
from metastasis.detection.imaging import BY_SYMPTOMS, ExamRows, Scanner, record_hits
from metastasis.mortality import cancer_hazard, hazard_constants, integrate_hazard
from metastasis.streams import Process
from metastasis.treatment import plan
from metastasis.vocabulary import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DETAIL_CODE,
    FIRST_DISTANT,
    N_ORGANS,
    ORGAN_CODE,
    SKELETAL_DETAILS,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_DEATH_CANCER = 1
_SKELETAL_KEY = 20  # death-stream key of skeletal-event draws (counter: step index * 2 + j)
_VISCERAL = np.array([ORGAN_CODE["lung"], ORGAN_CODE["liver"], ORGAN_CODE["brain"]])


@dataclass
class Outcome:
    """What the pathway produced: exam rows, and each patient's death (day, cause code, lethal organ)."""

    exams: list[ExamRows]
    death_days: F64  # inf if alive at the horizon
    death_cause: NDArray[np.int8]  # index of DEATH_CAUSES
    lethal_organ: NDArray[np.int8]  # -1 if not a cancer death


def _detection_events(state: CareState, rows: I64) -> None:
    """Log the detection of lesions ``rows`` at their (final) detection day."""
    les = state.lesions
    by = les.det_by[rows].astype(np.int64)
    detail = np.where(by == BY_SYMPTOMS, DETAIL_CODE["symptoms"], by)
    state.events.add(les.pid[rows], les.det_t[rows], "detection", les.organ[rows].astype(np.int64), les.lid[rows],
                     detail)


def _findings(state: CareState, found: schedule.Findings, exams: list[ExamRows],
              later: list[schedule.Confirmations], fresh: list[I64] | None = None) -> I64:
    """Keep exam rows, record first detections (day, modality, size; known organs); returns newly detected rows.

    ``later`` collects the confirmations left for a later step; ``fresh`` collects
    ``patient * N_ORGANS + organ`` of the organs that became known.
    """
    exams.append(found.exams)
    if found.later.pid.size:
        later.append(found.later)
    new = record_hits(state.lesions, found.hits, state.capacity_mm3)
    p, o = state.lesions.pid[new], state.lesions.organ[new]
    if fresh is not None:
        unknown = ~state.known[p, o]
        fresh.append(p[unknown] * N_ORGANS + o[unknown])
    state.known[p, o] = True
    return new


def _mask(n: int, pid: I64) -> NDArray[np.bool_]:
    out = np.zeros(n, bool)
    out[pid] = True
    return out


def _due_presentations(state: CareState, t1: float, dead: F64) -> tuple[I64, I64]:
    """(patient, organ) pairs whose symptoms bring the patient to care before ``t1`` and her death, not yet
    presented, explained or in palliative care; in ``np.nonzero`` order. The caller marks them presented
    (``pending_from`` is moved past them)."""
    return _due_pairs(state.presentation, state.pending_from, state.presented, state.known, state.mode, PALLIATIVE,
                      t1, dead)


@numba.njit(cache=True)
def _due_pairs(presentation: F64, pending_from: F64, presented: NDArray[np.bool_],
               known: NDArray[np.bool_], mode: NDArray[np.int8], palliative: int, t1: float, dead: F64,
               ) -> tuple[I64, I64]:
    # One pass over the patients; a row is read only where ``pending_from`` says a pending day may fall
    # before t1 (most patients never have one, most others are done), and ``pending_from`` becomes the
    # earliest day still pending after the pairs returned here are presented.
    n, n_organs = presentation.shape
    sp = np.empty(n * n_organs, np.int64)
    so = np.empty(n * n_organs, np.int64)
    m = 0
    for p in range(n):
        if not pending_from[p] < t1:
            continue
        first = np.inf
        for o in range(n_organs):
            day = presentation[p, o]
            if presented[p, o] or known[p, o] or not day < np.inf:
                continue
            if day < t1 and mode[p] != palliative and day < dead[p]:
                sp[m], so[m] = p, o
                m += 1
            elif day < first:
                first = day
        pending_from[p] = first
    return sp[:m], so[:m]


def _projected_presentation(state: CareState, pid: I64, t0: float, horizon: float) -> F64:
    """Counterfactual: first day symptoms alone would reveal distant disease if nothing were done from t0.

    Lesions alive at ``t0`` keep growing at their natural rate; onset and presentation use the same
    draws as the simulated course. Organs already past their threshold keep their known onset.
    """
    les, v, cap = state.lesions, state.values, state.capacity_mm3
    theta = symptoms.thresholds_mm3(v)
    best = np.full(len(pid), np.inf)
    if pid.size == 0:
        return best
    rows = les.rows_of(pid)
    rows = rows[(les.ended[rows] > t0) & (les.organ[rows] >= FIRST_DISTANT)]
    tau0 = les.tau_at(t0, rows)
    start = np.maximum(les.wake[rows], t0)

    # every (patient, distant organ) pair, patient-major
    p_idx = np.repeat(np.arange(len(pid)), N_ORGANS - FIRST_DISTANT)
    organ = np.tile(np.arange(FIRST_DISTANT, N_ORGANS), len(pid))
    # each lesion's (patient, organ) pair j, matched once for every evaluation of the burden
    key = les.pid[rows] * N_ORGANS + les.organ[rows]
    pair = pid[p_idx] * N_ORGANS + organ
    order = np.argsort(pair)
    pos = np.clip(np.searchsorted(pair[order], key), 0, len(pair) - 1)
    hit = pair[order][pos] == key
    j = order[pos[hit]]
    r = np.nonzero(hit)[0]
    # each lesion from t0 at its natural rate (from its wake if it still sleeps), as a growth segment
    wake_r = les.wake[rows[r]]
    segment = (wake_r, np.full(r.size, np.inf), start[r], np.where(wake_r <= t0, tau0[r], 0.0), les.base_rate[rows[r]])
    known_onset = state.onset[pid[p_idx], organ]
    reaches = ls.pair_burden(j, np.full(p_idx.size, horizon), *segment, cap) > theta[organ]
    hi = ls.bisect_crossings(j, *segment, theta[organ], np.full(p_idx.size, t0), np.full(p_idx.size, horizon), cap)
    onset = symptoms.onset_after_crossing(state.seed, state.hist.patient_id[pid[p_idx]], organ, hi, v)
    onset = np.where(np.isnan(known_onset), np.where(reaches, onset, np.inf), known_onset)
    seen = schedule.presentation_days(state.scenario, v, state.seed, state.hist.patient_id[pid[p_idx]], organ,
                                      np.where(np.isfinite(onset), onset, 1e12))
    seen = np.where(np.isfinite(onset), np.maximum(seen, t0), np.inf)
    np.minimum.at(best, p_idx, seen)
    return best


def run(state: CareState, scanner: Scanner, staging: schedule.Staging, other_death: F64, horizon: float) -> Outcome:
    """The whole course after diagnosis for every patient of the batch."""
    les, v, sc, cap = state.lesions, state.values, state.scenario, state.capacity_mm3
    n = len(state.patients)
    gid = state.hist.patient_id
    step = v["death.step_days"]
    restage_every = sc.restaging.every_months * DAYS_PER_MONTH
    stop = np.minimum(other_death, horizon)
    exams: list[ExamRows] = [staging.findings.exams]

    new = record_hits(les, staging.findings.hits, cap)
    state.known[les.pid[new], les.organ[new]] = True
    primary = np.nonzero(les.lid == 0)[0]
    undetected = primary[np.isnan(les.det_t[primary])]
    les.set("det_t", undetected, 0.0)  # the primary is diagnosed at day 0 whatever the work-up saw
    les.set("det_by", undetected, 1)  # clinical_exam
    les.set("det_d", undetected, state.patients.tumour_diameter_mm[les.pid[undetected]])
    operated = ~staging.distant_found
    plan.adjuvant(state, operated)
    state.known[operated, :FIRST_DISTANT] = False  # the breast and the axilla were cleared by surgery

    # symptoms present at diagnosis but not explained by the staging work-up come back later
    p, o = np.nonzero(~np.isnan(state.onset))
    state.presentation[p, o] = schedule.presentation_days(sc, v, state.seed, gid[p], o, state.onset[p, o])
    state.pending_from[p] = -np.inf
    state.presented[p, o] = state.known[p, o]
    state.distant_symptom_days[np.nonzero(staging.symptomatic)[0]] = 0.0

    iv = np.nonzero(staging.distant_found)[0]
    state.metastatic_from[iv] = 0.0
    state.next_restage[iv] = restage_every
    state.distant_symptom_days[iv] = np.minimum(state.distant_symptom_days[iv],
                                                _projected_presentation(state, iv, 0.0, horizon))
    state.end_days[:] = stop
    plan.start_metastatic(state, iv, 0.0)

    fu_pid, fu_t, fu_m = schedule.followup_schedule(sc, np.nonzero(operated)[0], stop)
    later: list[schedule.Confirmations] = []  # confirmations dated after the step that ordered them
    cursor = 0
    hz = _Hazard.start(streams.exponential(state.seed, Process.DEATH, gid, _DEATH_CANCER, 0), v)
    live = np.nonzero(les.ended > 0.0)[0]
    course_days = plan.scheduled_days(state)
    step_index = 0
    t = 0.0
    next_grid = step
    while t < horizon:
        # steps of ``step`` days, also ended on the day of a planned adjuvant course so that it acts then
        t1 = min(next_grid, horizon)
        inside = course_days[(course_days > t) & (course_days < t1)]
        if inside.size:
            t1 = float(inside[0])
        else:
            next_grid += step
        scanner.advance(t)  # this step's exams, and later ones, are dated from t on
        dead = np.minimum(hz.death_days, state.treatment_death)
        in_play = (stop > t) & (dead > t)
        plan.scheduled_kills(state, t, t1, in_play)
        plan.finish_windows(state, t, t1)
        lp = les.pid[live]
        live = live[in_play[lp] & (les.ended[live] > t)]
        plan.suppression_rates(state, live, t)
        limit = np.where(in_play, np.minimum(np.minimum(t1, stop), dead), -np.inf)
        first_new = les.n
        nh.seed_until(state.hist, les, limit, rows=live)
        live = np.concatenate((live, np.arange(first_new, les.n)))

        # --- burden at the end of the step and the deaths inside it, before its exams and decisions ---
        live = live[(les.ended[live] > t1) | (les.seeded[live] >= t1)]
        hz.integrate(state, live, in_play, t, t1, step_index)
        dead = np.minimum(np.minimum(hz.death_days, state.treatment_death), other_death)
        up = dead > t1  # alive at the step end, when its decisions are taken

        # --- exams that fall in this step ---
        cursor_end = int(np.searchsorted(fu_t, t1, side="left"))
        sl = slice(cursor, cursor_end)
        cursor = cursor_end
        fp_, ft_, fm_ = fu_pid[sl], fu_t[sl], fu_m[sl]
        keep = (state.mode[fp_] == FOLLOWUP) & (ft_ < dead[fp_])  # dead: any death, other causes included
        fresh: list[I64] = []
        if later:  # first those ordered in earlier steps and dated in this one, for women alive then
            ordered = schedule.Confirmations.concat(later)
            due_now = ordered.time_days < t1
            later = [ordered.take(~due_now)] if not due_now.all() else []
            c = ordered.take(due_now & (ordered.time_days < dead[ordered.pid]))
            _findings(state, schedule.confirm(scanner, c.pid, c.time_days, c.organ), exams, later, fresh)
        if keep.any():
            _findings(state, schedule.examine(scanner, fp_[keep], ft_[keep], fm_[keep],
                                              schedule.PURPOSE_CODE["followup"], confirm_before=t1), exams, later,
                      fresh)
        due = np.nonzero((state.mode == METASTATIC) & (state.next_restage < t1) & (state.next_restage < dead))[0]
        restaged = due
        while due.size:  # more than one when restaging is more frequent than the step
            _findings(state, schedule.workup(scanner, due, state.next_restage[due], sc.restaging.modalities,
                                             "restaging", confirm_before=t1), exams, later, fresh)
            state.next_restage[due] += restage_every
            due = due[(state.next_restage[due] < t1) & (state.next_restage[due] < dead[due])]
        wk = np.nonzero((state.workup_due < t1) & (state.workup_due < dead) & (state.mode != PALLIATIVE))[0]
        if wk.size:
            _findings(state, schedule.workup(scanner, wk, state.workup_due[wk], sc.restaging.modalities,
                                             "restaging", confirm_before=t1), exams, later, fresh)
            state.workup_due[wk] = np.inf
        sp, so = _due_presentations(state, t1, dead)
        state.presented[sp, so] = True
        if sp.size:
            _findings(state, schedule.workup(scanner, sp, state.presentation[sp, so], sc.restaging.modalities,
                                             "symptoms", so, confirm_before=t1), exams, later, fresh)

        # --- decisions at the end of the step, for the patients alive then ---
        decided: list[I64] = []
        pairs = np.concatenate(fresh) if fresh else np.zeros(0, np.int64)
        fp, fo = pairs // N_ORGANS, pairs % N_ORGANS
        new_distant = np.unique(fp[(state.mode[fp] == FOLLOWUP) & (fo >= FIRST_DISTANT)])
        if new_distant.size:
            rows = les.rows_of(new_distant)
            rows = rows[les.organ[rows] >= FIRST_DISTANT]
            first = np.full(n, np.inf)
            np.minimum.at(first, les.pid[rows], np.nan_to_num(les.det_t[rows], nan=np.inf))
            state.metastatic_from[new_distant] = first[new_distant]
            # an interval after the finding, or after this decision if that is later (a restaging interval
            # shorter than the step would date it in the past, or on the day of this decision's work-up)
            after = first[new_distant] + restage_every
            state.next_restage[new_distant] = np.where(after > t1, after, t1 + restage_every)
            # found by a symptom work-up: symptoms revealed it that day (an earlier presentation, of the
            # breast or one whose work-up saw nothing distant, did not); else the counterfactual
            at_first = rows[les.det_t[rows] == first[les.pid[rows]]]
            by_symptoms = _mask(n, les.pid[at_first[les.det_by[at_first] == BY_SYMPTOMS]])[new_distant]
            state.distant_symptom_days[new_distant] = np.where(
                by_symptoms, first[new_distant], _projected_presentation(state, new_distant, t1, horizon))
            # a finding of a full work-up (symptoms, or the one after surgery of a local recurrence) is
            # restaged already
            needs = new_distant[~by_symptoms & ~_mask(n, wk)[new_distant] & up[new_distant]]
            if needs.size:
                _findings(state, schedule.workup(scanner, needs, np.full(needs.size, t1), sc.restaging.modalities,
                                                 "restaging", confirm_before=t1), exams, later)
            decided.append(new_distant[up[new_distant]])
            plan.start_metastatic(state, decided[-1], t1)
        local = np.unique(fp[(state.mode[fp] == FOLLOWUP) & (fo < FIRST_DISTANT)])
        local = local[up[local]]
        if local.size:
            rows = les.rows_of(local)
            rows = rows[(les.organ[rows] < FIRST_DISTANT) & (les.ended[rows] > t1) & ~np.isnan(les.det_t[rows])]
            # found in this step (a confirmation dated after it is done in the next): resected at its end
            ls.end_lesions(les, rows, t1, "resected", cap)
            for organ, detail in (("breast", "surgery:mastectomy"), ("regional_nodes", "surgery:axillary")):
                code = ORGAN_CODE[organ]
                pts = np.unique(les.pid[rows[les.organ[rows] == code]])
                state.events.add(pts, t1, "treatment_start", code, -1, detail)
            # the breast and axilla start afresh, but the symptoms there that brought her to care by the
            # surgery are spent (not presented again, which would date a work-up in the past); a lump
            # whose presentation is still to come brings her back then
            state.known[local, :FIRST_DISTANT] = False
            state.presented[local, :FIRST_DISTANT] = state.presentation[local, :FIRST_DISTANT] <= t1
            state.pending_from[local] = -np.inf
            state.workup_due[local] = np.minimum(state.workup_due[local], t1)
            decided.append(local)
        if restaged.size:
            rp = restaged[(state.mode[restaged] == METASTATIC) & up[restaged]]
            rows = les.rows_of(rp)
            rows = rows[(les.organ[rows] >= FIRST_DISTANT) & ~np.isnan(les.det_t[rows])]
            measured = np.bincount(les.pid[rows], weights=les.volume_at(t1, cap, rows), minlength=n)[rp]
            new_organ = (state.known[rp, FIRST_DISTANT:] & ~state.organs_at_line[rp, FIRST_DISTANT:]).any(axis=1)
            grew = measured > state.nadir_mm3[rp] * v["systemic.progression_volume_ratio"]
            progressed = rp[new_organ | grew]
            state.nadir_mm3[rp] = np.minimum(state.nadir_mm3[rp], measured)
            plan.progression(state, progressed, t1)
            decided.append(progressed)
        if sc.treatment.metastatic.palliative_radiotherapy_bone:
            bone = ORGAN_CODE["bone"]
            pain = np.nonzero((state.mode != FOLLOWUP) & state.known[:, bone] & ~state.bone_palliated
                              & state.presented[:, bone] & up)[0]
            plan.palliative_bone_radiotherapy(state, pain, t1)
            decided.append(pain)

        if decided:
            hz.refresh(state, np.concatenate(decided), t1)
        t = t1
        step_index += 1

    # detections are logged once the course is over: an exam evaluated later in a step can find a lesion
    # earlier than the one that first saw it, so only the final day is the lesion's (the primary,
    # diagnosed at day 0 whatever the work-up saw, included)
    _detection_events(state, np.nonzero(~np.isnan(les.det_t))[0])
    death = np.minimum(np.minimum(hz.death_days, state.treatment_death), other_death)
    cause = np.where(~(death < horizon), 0,
                     np.where(death == other_death, 3, np.where(death == hz.death_days, 1, 2))).astype(np.int8)
    return Outcome(exams, np.where(cause > 0, death, np.inf), cause, np.where(cause == 1, hz.organ, -1))


@dataclass
class _Hazard:
    """Each patient's cancer death hazard, integrated step by step (trapezoid rule, MODEL.md 6).

    ``threshold`` is one Exp(1) draw per patient: she dies of cancer when the cumulative hazard reaches it.
    ``h_prev`` and ``burden_prev`` are the hazard and organ burden (mm^3) at the last step end, after that
    step's decisions.
    """

    threshold: F64
    theta: F64  # symptom threshold per organ (mm^3)
    cum: F64
    h_prev: F64
    burden_prev: F64
    death_days: F64
    organ: NDArray[np.int8]

    @classmethod
    def start(cls, threshold: F64, values: dict[str, float]) -> _Hazard:
        n = len(threshold)
        return cls(threshold, symptoms.thresholds_mm3(values), np.zeros(n), np.zeros(n), np.zeros((n, N_ORGANS)),
                   np.full(n, np.inf), np.full(n, -1, np.int8))

    def integrate(self, state: CareState, live: I64, in_play: NDArray[np.bool_], t: float, t1: float,
                  step_index: int) -> None:
        """Burden at ``t1`` before the step's decisions; cancer deaths inside the step, health, symptom
        onsets and skeletal events."""
        active, burden = state.lesions.organ_burden(live, in_play, t1, state.capacity_mm3)
        if active.size == 0:
            return
        v = state.values
        integrate_hazard(active, burden, t, t1, *hazard_constants(v), self.threshold, self.cum, self.h_prev,
                         self.death_days, self.organ)
        _set_health(state, active, burden)
        at, co, w = symptoms.threshold_crossings(active, burden, self.burden_prev, state.onset, self.theta)
        if at.size:
            pts = active[at]
            gid = state.hist.patient_id[pts]
            onset = symptoms.onset_after_crossing(state.seed, gid, co, t + w * (t1 - t), v)
            state.onset[pts, co] = onset
            state.presentation[pts, co] = schedule.presentation_days(state.scenario, v, state.seed, gid, co, onset)
            state.pending_from[pts] = -np.inf
            state.events.add(pts, onset, "symptom_onset", co, -1,
                             np.array([schedule.DETAIL_OF_SYMPTOM[o] for o in co], dtype=np.int64))
        _skeletal_events(state, active, burden[:, ORGAN_CODE["bone"]], t, t1, step_index)

    def refresh(self, state: CareState, decided: I64, t1: float) -> None:
        """After the decisions at ``t1`` (resection, a line's first kill, radiotherapy), the hazard, burden
        and health of the patients they touched, so that the next step starts from the burden they left.
        Their rows come from their own chains, not from a pass over the step's live rows: rows of theirs
        that are not live have ended or not woken (volume 0), and both lists ascend, so the sums are equal."""
        les = state.lesions
        pid, burden = les.organ_burden(les.rows_of(decided), _mask(len(self.cum), decided), t1, state.capacity_mm3,
                                       every=True)
        self.h_prev[pid] = cancer_hazard(burden, state.values)[0]
        self.burden_prev[pid] = burden
        _set_health(state, pid, burden)


def _set_health(state: CareState, pid: I64, burden: F64) -> None:
    """Overall health falls as the lungs and liver (and brain) fill (MODEL.md 1)."""
    v = state.values
    tol = np.array([v[f"death.tolerance_cm3.{o}"] for o in ("lung", "liver", "brain")]) * 1000.0
    state.health[pid] = np.exp(-v["health.visceral_kappa"] * (burden[:, _VISCERAL] / tol).sum(axis=1))

def _skeletal_events(state: CareState, active: I64, bone_mm3: F64, t: float, t1: float, step_index: int) -> None:
    """Fractures, cord compression, hypercalcaemia at a hazard proportional to bone burden (MODEL.md 6)."""
    v = state.values
    # no bone burden, no event: draws are keyed, so skipping those women changes no one else's
    some = np.nonzero(bone_mm3 > 0.0)[0]
    if some.size == 0:
        return
    active = active[some]
    bone_cm3 = bone_mm3[some] / 1000.0
    rate = v["skeletal.max_events_per_year"] * bone_cm3 / (bone_cm3 + v["skeletal.half_rate_cm3"]) / DAYS_PER_YEAR
    p = 1.0 - np.exp(-rate * (t1 - t))
    gid = state.hist.patient_id[active]
    u = streams.uniform(state.seed, Process.DEATH, gid, _SKELETAL_KEY, step_index * 2)
    happens = u < p
    if not happens.any():
        return
    pts = active[happens]
    w = streams.uniform(state.seed, Process.DEATH, gid[happens], _SKELETAL_KEY, step_index * 2 + 1)
    kind = np.where(w < v["skeletal.share_fracture"], 0,
                    np.where(w < v["skeletal.share_fracture"] + v["skeletal.share_cord_compression"], 1, 2))
    when = t + (u[happens] / p[happens]) * (t1 - t)
    state.events.add(pts, when, "skeletal_event", ORGAN_CODE["bone"], -1,
                     np.array([DETAIL_CODE[SKELETAL_DETAILS[k]] for k in kind]))
