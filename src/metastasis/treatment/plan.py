"""What is done about what is found (MODEL.md 5): adjuvant treatment at diagnosis, metastatic plans,
successive systemic lines, local therapy of metastases, palliative care.

Every function acts on the lesions through :mod:`metastasis.treatment.cells` (kills) and growth
segments (suppression), and writes what it did to the event log. Random numbers come from the
treatment stream, keyed by the patient and the lesion or decision.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from metastasis import streams
from metastasis.biology import growth
from metastasis.biology import lesions as ls
from metastasis.biology import natural_history as nh
from metastasis.care import METASTATIC, PALLIATIVE, CareState
from metastasis.streams import Process, uniform_one
from metastasis.treatment import liver, radiotherapy
from metastasis.treatment.cells import apply_course
from metastasis.vocabulary import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DETAIL_CODE,
    END_CODE,
    FIRST_DISTANT,
    MAX_LINES,
    N_ORGANS,
    ORGAN_CODE,
    ORIGIN_CODE,
    SUBTYPE_ER_POSITIVE,
    SUBTYPE_HER2_POSITIVE,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

# treatment-stream keys of per-patient decisions (lesion-level draws use the lesion id as key)
_SURGERY, _MARGIN, _RESIDUAL, _RESIDUAL_CELLS, _R0, _TOXIC = -1, -2, -3, -4, -5, -6
# counters of lesion-level draws: day * 8 + kind
_CHEMO, _RT_BREAST, _SBRT, _PALLIATIVE, _R1, _NODE, _SUPPRESSION = 0, 1, 2, 3, 4, 5, 6
#: SPEC's end reason of a lesion a course leaves with no cell, by kind of course (else ``extinct``)
_ENDED_AS = {_RT_BREAST: "irradiated", _SBRT: "irradiated", _PALLIATIVE: "irradiated", _R1: "resected"}
_CHEMO_DAY = 63.0  # adjuvant chemotherapy's kill is applied mid-course (6 cycles of 21 days)


def _u(state: CareState, pid: I64, key: I64 | int, counter: I64 | int = 0) -> F64:
    return streams.uniform(state.seed, Process.TREATMENT, state.hist.patient_id[pid], key, counter)


def _live_rows(state: CareState, pid: I64, t: float) -> I64:
    les = state.lesions
    rows = les.rows_of(pid)
    return rows[les.ended[rows] > t]


def _reach_by_organ(state: CareState) -> F64:
    """Share of a chemotherapy or anti-HER2 effect (log-kill, growth slowing) that reaches a lesion, by
    organ: the blood-brain barrier shelters brain lesions (endocrine agents cross it)."""
    reach = np.ones(N_ORGANS)
    reach[ORGAN_CODE["brain"]] = state.values["systemic.brain_penetration"]
    return reach


def _reach(state: CareState, rows: I64) -> F64:
    return _reach_by_organ(state)[state.lesions.organ[rows]]


def kill(state: CareState, rows: I64, t: float, surviving_fraction: F64 | float, kind: int,
         resistance: bool) -> I64:
    """Apply a course to awake lesions ``rows`` at day ``t``; returns the rows it left with no cell.

    Dormant colonies are untouched. With ``resistance`` the colony's resistant subclone survives. A lesion
    left with no cell ends ``irradiated`` by radiotherapy, ``resected`` by an incomplete (R1) resection,
    ``extinct`` by systemic therapy.
    """
    les, v = state.lesions, state.values
    ok = (les.wake[rows] <= t) & (les.ended[rows] > t)
    sf = ls.per_row(surviving_fraction, rows.size, np.float64)[ok]
    rows = rows[ok]
    if rows.size == 0:
        return rows
    if resistance:
        a = state.patients.aggressiveness[les.pid[rows]]
        per_cell = v["chemotherapy.resistant_fraction"] * a ** v["aggressiveness.beta_resistance"]
    else:
        per_cell = np.zeros(rows.size)
    cap, c = state.capacity_mm3, les.cols
    one, two = ls.first_size_ages(cap)
    ended_as = END_CODE[_ENDED_AS.get(kind, "extinct")]
    return apply_course(
        np.ascontiguousarray(rows, np.int64), t, np.ascontiguousarray(sf), np.ascontiguousarray(per_cell, np.float64),
        streams.stream_head(state.seed, Process.TREATMENT), int(t) * 8 + kind, ended_as, cap,
        growth.log_ratio(cap), one, two, *state.hist.curve.tables(), state.hist.patient_id, c["pid"], c["lid"],
        c["wake"], c["ended"], c["end_reason"], c["t_ref"], c["tau_ref"], c["rate"], c["seed_rate"], c["lam_ref"],
        c["h_ref"], c["t_seed"], c["u_res"], c["t_1mm"], c["t_2mm"])


def suppression_rates(state: CareState, rows: I64, t: float) -> None:
    """Set each lesion's growth rate for the therapies running at ``t`` (endocrine, anti-HER2)."""
    les, v, patients = state.lesions, state.values, state.patients
    c = les.cols
    r, target = _suppression_targets(
        np.ascontiguousarray(rows, np.int64), t, streams.stream_head(state.seed, Process.TREATMENT),
        state.hist.patient_id, patients.aggressiveness, patients.subtype, np.asarray(SUBTYPE_ER_POSITIVE),
        np.asarray(SUBTYPE_HER2_POSITIVE), state.endocrine_until, state.anti_her2_until,
        v["systemic.suppression_resistant_share"], v["aggressiveness.beta_resistance"], v["endocrine.growth_factor"],
        v["anti_her2.growth_factor"], _reach_by_organ(state), c["pid"], c["lid"],
        c["organ"], c["rate"], c["base_rate"], c["suppressible"])
    awake = les.wake[r] <= t
    state.hist.new_segment(les, r[awake], t, les.tau_at(t, r[awake]), target[awake])
    les.set("rate", r[~awake], target[~awake])  # dormant: the segment starts at wake


@numba.njit(cache=True, error_model="numpy")
def _suppression_targets(rows: I64, t: float, head: np.uint64, patient_id: I64, aggressiveness: F64,
                         subtype: NDArray[np.int8], er_positive: BOOL, her2_positive: BOOL, endocrine_until: F64,
                         anti_her2_until: F64, resistant_share: float, beta_resistance: float, endocrine_factor: float,
                         anti_her2_factor: float, reach: F64, pid: I64, lid: I64, organ: NDArray[np.int8],
                         rate: F64, base_rate: F64, suppressible: NDArray[np.int8]) -> tuple[I64, F64]:
    # The rows whose rate must change at t, and the rate: a lesion resists a suppressing therapy with a
    # probability rising with aggressiveness (one draw per lesion); anti-HER2 agents reach a lesion as
    # far as its organ lets them (``reach``, the brain in part). Only lesions of women on a therapy, or
    # still slowed by one that stopped, can change. The draw is the lesion's for good: kept in
    # ``suppressible`` the first time it is needed, not redrawn at every step of a therapy that runs for years.
    changed = np.empty(rows.size, np.int64)
    targets = np.empty(rows.size)
    n = 0
    for r in rows:
        p = pid[r]
        if not (endocrine_until[p] > t or anti_her2_until[p] > t or rate[r] != base_rate[r]):
            continue
        if suppressible[r] < 0:
            resistant_p = min(1.0, resistant_share * aggressiveness[p] ** beta_resistance)
            suppressible[r] = uniform_one(head, patient_id[p], lid[r], _SUPPRESSION) >= resistant_p
        sensitive = suppressible[r] == 1
        factor = 1.0
        if sensitive and er_positive[subtype[p]] and t < endocrine_until[p]:
            factor *= endocrine_factor
        if sensitive and her2_positive[subtype[p]] and t < anti_her2_until[p]:
            factor *= anti_her2_factor ** reach[organ[r]]
        target = base_rate[r] * factor
        if target != rate[r]:
            changed[n] = r
            targets[n] = target
            n += 1
    return changed[:n], targets[:n]


def adjuvant(state: CareState, operated: BOOL) -> None:
    """Surgery of stage I-III at day 0 with residual disease, then radiotherapy, chemotherapy,
    endocrine and anti-HER2 therapy as the scenario's early-treatment policy says."""
    sc, v, les, hist, ev = state.scenario.treatment.early, state.values, state.lesions, state.hist, state.events
    p = np.nonzero(operated)[0]
    patients = state.patients
    bcs = _u(state, p, _SURGERY) < sc.breast_conserving_share
    positive = _u(state, p, _MARGIN) < sc.positive_margin_share
    base = v["surgery.residual_probability_bcs"]
    # residual disease is commoner in aggressive (infiltrative) tumours: odds times A^k, k per log A
    odds = base / (1 - base) * np.where(positive, v["surgery.positive_margin_odds_ratio"], 1.0) * (
        patients.aggressiveness[p] ** v["surgery.residual_logit_per_log_aggressiveness"])
    prob = np.where(bcs, odds / (1 + odds), v["surgery.residual_probability_mastectomy"])
    residual = _u(state, p, _RESIDUAL) < prob
    rows = np.nonzero(operated[les.pid] & np.isin(les.origin, [ORIGIN_CODE["primary"], ORIGIN_CODE["nodal"]]))[0]
    node_left = (les.origin[rows] == ORIGIN_CODE["nodal"]) & (
        _u(state, les.pid[rows], les.lid[rows], _NODE) < v["surgery.nodal_residual_probability"])
    ls.end_lesions(les, rows[~node_left], 0.0, "resected", state.capacity_mm3)
    rp = p[residual]
    cells = 10 ** (v["surgery.residual_cells_log10_median"]
                   + np.where((positive & bcs)[residual], v["surgery.residual_cells_log10_positive_margin"], 0.0)
                   + v["surgery.residual_cells_log10_sd"] * ndtri(_u(state, rp, _RESIDUAL_CELLS)))
    nh.add_lesions(hist, les, rp, "residual", ORGAN_CODE["breast"], np.zeros(rp.size, np.int64), 0.0, cells,
                   hist.primary_rate[rp], hist.seed_rate[rp])
    ev.add(p[bcs], 0.0, "treatment_start", ORGAN_CODE["breast"], 0, "surgery:breast_conserving")
    ev.add(p[~bcs], 0.0, "treatment_start", ORGAN_CODE["breast"], 0, "surgery:mastectomy")
    ev.add(p, 0.0, "treatment_start", ORGAN_CODE["regional_nodes"], -1, "surgery:axillary")

    er = np.asarray(SUBTYPE_ER_POSITIVE)[patients.subtype[p]]
    her2 = np.asarray(SUBTYPE_HER2_POSITIVE)[patients.subtype[p]]
    nodes = patients.nodes_positive[p] > 0
    big_g3 = (patients.tumour_diameter_mm[p] > 20.0) & (patients.grade[p] == 3)
    policy = sc.adjuvant_chemotherapy
    chemo = np.ones(p.size, bool) if policy == "all" else (
        (~er | her2 | nodes | big_g3) if policy == "by_risk" else np.zeros(p.size, bool))
    cp = p[chemo]
    cycles = v["chemotherapy.cycles_adjuvant"]
    state.scheduled_kill.append((cp.astype(np.float64), "chemotherapy:adjuvant", _CHEMO_DAY, "all"))
    ev.add(cp, 0.0, "treatment_start", -1, -1, "chemotherapy:adjuvant")
    ev.add(cp, 21.0 * cycles, "treatment_end", -1, -1, "chemotherapy:adjuvant")
    if sc.radiotherapy_after_bcs:
        rt = p[bcs]
        day = np.where(chemo[bcs], v["radiotherapy.breast_day_after_chemotherapy"], v["radiotherapy.breast_day"])
        for d in np.unique(day):
            state.scheduled_kill.append((rt[day == d].astype(np.float64), "radiotherapy:breast", float(d), "breast"))
        ev.add(rt, day, "treatment_start", ORGAN_CODE["breast"], -1, "radiotherapy:breast")
        ev.add(rt, day + 35.0, "treatment_end", ORGAN_CODE["breast"], -1, "radiotherapy:breast")
    if sc.endocrine_years > 0:
        ep = p[er]
        state.endocrine_until[ep] = sc.endocrine_years * DAYS_PER_YEAR
        state.endocrine_detail[ep] = DETAIL_CODE["endocrine:adjuvant"]
        ev.add(ep, 0.0, "treatment_start", -1, -1, "endocrine:adjuvant")
    if sc.anti_her2:
        hp = p[her2]
        state.anti_her2_until[hp] = v["anti_her2.adjuvant_years"] * DAYS_PER_YEAR
        state.anti_her2_detail[hp] = DETAIL_CODE["anti_her2:adjuvant"]
        ev.add(hp, 0.0, "treatment_start", -1, -1, "anti_her2:adjuvant")


def scheduled_days(state: CareState) -> F64:
    """The days (ascending, unique) on which an adjuvant course planned at diagnosis acts: the pathway
    ends a step on each, so that the course acts on its own day (:func:`scheduled_kills`)."""
    return np.unique(np.array([day for pid, _label, day, _target in state.scheduled_kill if pid.size], np.float64))


def scheduled_kills(state: CareState, t: float, t1: float, alive: BOOL) -> None:
    """Apply the adjuvant courses whose day falls in [t, t1) to the patients ``alive`` at ``t``.

    They act at ``t``: the pathway's steps start on every such day (:func:`scheduled_days`)."""
    v = state.values
    for pid_f, _label, day, target in state.scheduled_kill:
        if not t <= day < t1 or pid_f.size == 0:
            continue
        pid = pid_f.astype(np.int64)
        rows = _live_rows(state, pid[alive[pid]], t)
        if target == "breast":
            rows = rows[state.lesions.organ[rows] == ORGAN_CODE["breast"]]
            kill(state, rows, t, v["radiotherapy.breast_surviving_fraction"], _RT_BREAST, resistance=False)
        else:
            sf = v["chemotherapy.surviving_fraction_per_cycle"] ** v["chemotherapy.cycles_adjuvant"]
            kill(state, rows, t, sf ** _reach(state, rows), _CHEMO, resistance=True)


def end_therapies(state: CareState, pid: I64, t: float) -> None:
    """Stop endocrine and anti-HER2 therapy running at ``t`` (recording their end)."""
    if pid.size == 0:
        return
    for until, detail in ((state.endocrine_until, state.endocrine_detail),
                          (state.anti_her2_until, state.anti_her2_detail)):
        running = pid[until[pid] > t]
        state.events.add(running, t, "treatment_end", -1, -1, detail[running])
        until[running] = t


def finish_windows(state: CareState, t: float, t1: float) -> None:
    """Record the planned end of adjuvant endocrine and anti-HER2 therapy falling in (t, t1].

    The window is open at ``t``: a therapy stopped by a decision at the end of the previous step
    (:func:`end_therapies`, which records that end) has ``until == t`` and must not end twice."""
    for until, detail in ((state.endocrine_until, state.endocrine_detail),
                          (state.anti_her2_until, state.anti_her2_detail)):
        ending = np.nonzero((until > t) & (until <= t1) & (until < state.end_days))[0]
        state.events.add(ending, until[ending], "treatment_end", -1, -1, detail[ending])


def palliative(state: CareState, pid: I64, t: float) -> None:
    """Palliative care: no anti-tumour effect; records what it addresses (pain, breathing, liver)."""
    if pid.size == 0:
        return
    state.mode[pid] = PALLIATIVE
    state.next_restage[pid] = np.inf
    end_therapies(state, pid, t)
    known = state.known[pid]
    ev = state.events
    ev.add(pid[known[:, ORGAN_CODE["bone"]] | ~known[:, FIRST_DISTANT:].any(axis=1)], t, "palliative_care",
           ORGAN_CODE["bone"], -1, "pain")
    ev.add(pid[known[:, ORGAN_CODE["lung"]]], t, "palliative_care", ORGAN_CODE["lung"], -1, "breathing")
    ev.add(pid[known[:, ORGAN_CODE["liver"]]], t, "palliative_care", ORGAN_CODE["liver"], -1, "liver")


def _toxic_death(state: CareState, pid: I64, t: float, probability: float, course: int) -> None:
    if pid.size == 0:
        return
    dies = _u(state, pid, _TOXIC, int(t) * 8 + course) < probability
    d = pid[dies]
    state.treatment_death[d] = np.minimum(state.treatment_death[d], t + 14.0)


def start_line(state: CareState, pid: I64, t: float, k: int) -> None:
    """Line ``k`` of systemic therapy, or palliative care when lines are exhausted or health is poor."""
    v, sc = state.values, state.scenario.treatment.metastatic
    if k > min(sc.systemic_lines_max, MAX_LINES):
        palliative(state, pid, t)
        return
    frail = state.health[pid] < v["health.min_for_systemic"]
    state.events.add(pid[frail], t, "not_treated", -1, -1, "health")
    palliative(state, pid[frail], t)
    p = pid[~frail]
    state.line[p] = k
    state.line_start[p] = t
    state.nadir_mm3[p] = np.inf
    state.organs_at_line[p] = state.known[p]
    subtype = state.patients.subtype[p]
    er = np.asarray(SUBTYPE_ER_POSITIVE)[subtype]
    her2 = np.asarray(SUBTYPE_HER2_POSITIVE)[subtype]
    endocrine = er & (k <= 2)
    ep = p[endocrine]
    state.endocrine_until[ep] = np.inf
    state.endocrine_detail[ep] = DETAIL_CODE[f"endocrine:line{k}"]
    state.events.add(ep, t, "treatment_start", -1, -1, f"endocrine:line{k}")
    hp = p[her2]
    state.anti_her2_until[hp] = np.inf
    state.anti_her2_detail[hp] = DETAIL_CODE[f"anti_her2:line{k}"]
    state.events.add(hp, t, "treatment_start", -1, -1, f"anti_her2:line{k}")
    cp = p[~endocrine]
    organs = state.known[cp, FIRST_DISTANT:].sum(axis=1)
    log_sf = (np.log(v["chemotherapy.surviving_fraction_per_cycle"]) * v["chemotherapy.cycles_per_line"]
              * state.health[cp] / (1.0 + v["systemic.response_loss_per_organ"] * np.maximum(organs - 1, 0)))
    rows = _live_rows(state, cp, t)
    index = np.searchsorted(cp, state.lesions.pid[rows])
    kill(state, rows, t, np.exp(log_sf[index] * _reach(state, rows)), _CHEMO, resistance=True)
    state.events.add(cp, t, "treatment_start", -1, -1, f"chemotherapy:line{k}")
    state.events.add(cp, t + 21.0 * v["chemotherapy.cycles_per_line"], "treatment_end", -1, -1,
                     f"chemotherapy:line{k}")
    _toxic_death(state, cp, t, v["chemotherapy.treatment_death_per_course"], _CHEMO)


def progression(state: CareState, pid: I64, t: float) -> None:
    """Progression found at restaging: end the line and start the next one."""
    if pid.size == 0:
        return
    line = state.line[pid].copy()
    for k in np.unique(line):
        p = pid[line == k]
        state.events.add(p, t, "progression", -1, -1, f"line{k}")
        end_therapies(state, p, t)
        start_line(state, p, t, int(k) + 1)


def _detected_distant_rows(state: CareState, pid: I64, t: float) -> I64:
    les = state.lesions
    rows = _live_rows(state, pid, t)
    return rows[(les.organ[rows] >= FIRST_DISTANT) & (les.det_t[rows] <= t)]


def _sbrt(state: CareState, rows: I64, t: float) -> None:
    les = state.lesions
    kill(state, rows, t, state.values["radiotherapy.sbrt_surviving_fraction"], _SBRT, resistance=False)
    state.events.add(les.pid[rows], t, "treatment_start", les.organ[rows], les.lid[rows], "radiotherapy:sbrt")
    courses = np.unique(les.pid[rows])
    _toxic_death(state, courses, t, state.values["radiotherapy.sbrt_treatment_death"], _SBRT)


def start_metastatic(state: CareState, pid: I64, t: float) -> None:
    """First plan for metastatic disease: local therapy where MODEL 5 allows it, then line 1."""
    v, sc, les = state.values, state.scenario.treatment.metastatic, state.lesions
    state.mode[pid] = METASTATIC
    end_therapies(state, pid, t)
    locally_treated = np.zeros(len(state.patients), bool)
    rows = _detected_distant_rows(state, pid, t)
    diameter = growth.diameter_from_volume(les.volume_at(t, state.capacity_mm3, rows))
    if sc.liver_resection:
        is_liver = les.organ[rows] == ORGAN_CODE["liver"]
        lp = np.unique(les.pid[rows[is_liver]])
        if lp.size:
            n = len(state.patients)
            n_liver = np.bincount(les.pid[rows[is_liver]], minlength=n)[lp]
            max_d = np.zeros(n)
            np.maximum.at(max_d, les.pid[rows[is_liver]], diameter[is_liver])
            other = rows[~is_liver]
            extra = np.bincount(les.pid[other], minlength=n)[lp] > 0
            non_bone = other[les.organ[other] != ORGAN_CODE["bone"]]
            old_bone = other[(les.organ[other] == ORGAN_CODE["bone"])
                             & (les.det_t[other] <= t - state.scenario.restaging.every_months * DAYS_PER_MONTH)]
            stable_bone = ((np.bincount(les.pid[non_bone], minlength=n)[lp] == 0)
                           & (np.bincount(les.pid[old_bone], minlength=n)[lp]
                              == np.bincount(les.pid[other], minlength=n)[lp]))
            liver_rows = rows[is_liver]
            plan = radiotherapy.sbrt_plan(les.pid[liver_rows], les.organ[liver_rows], diameter[is_liver],
                                          les.spine[liver_rows], v, sc.sbrt_max_lesions)
            blocked = np.bincount(les.pid[liver_rows], weights=(plan != radiotherapy.TREATED), minlength=n)[lp] > 0
            decision = liver.liver_decision(n_liver, max_d[lp], extra, stable_bone, state.health[lp], ~blocked, v)
            resect = lp[decision == liver.RESECTION]
            r_rows = liver_rows[np.isin(les.pid[liver_rows], resect)]
            r0 = _u(state, resect, _R0) < v["liver.resection_r0"]
            r0_rows = r_rows[np.isin(les.pid[r_rows], resect[r0])]
            ls.end_lesions(les, r0_rows, t, "resected", state.capacity_mm3)
            kill(state, r_rows[~np.isin(les.pid[r_rows], resect[r0])], t, 1e-4, _R1, resistance=False)
            state.events.add(resect, t, "treatment_start", ORGAN_CODE["liver"], -1, "resection:liver")
            _toxic_death(state, resect, t, v["liver.resection_mortality"], _R1)
            sbrt_p = lp[decision == liver.SBRT]
            _sbrt(state, liver_rows[np.isin(les.pid[liver_rows], sbrt_p)], t)
            locally_treated[resect] = True
            locally_treated[sbrt_p] = True
    if sc.sbrt_oligometastatic:
        cand = rows[~locally_treated[les.pid[rows]]]
        plan = radiotherapy.sbrt_plan(les.pid[cand], les.organ[cand], diameter[np.isin(rows, cand)],
                                      les.spine[cand], v, sc.sbrt_max_lesions)
        too_many = np.unique(les.pid[cand[plan == radiotherapy.TOO_MANY]])
        state.events.add(too_many, t, "not_treated", -1, -1, "too_many_lesions")
        for code, detail in radiotherapy.OUTCOME_DETAIL.items():
            if code == radiotherapy.TOO_MANY:
                continue
            left = cand[plan == code]
            state.events.add(les.pid[left], t, "not_treated", les.organ[left], les.lid[left], detail)
        _sbrt(state, cand[plan == radiotherapy.TREATED], t)
    start_line(state, pid, t, 1)


def palliative_bone_radiotherapy(state: CareState, pid: I64, t: float) -> None:
    """Palliative doses to the largest painful bone lesions (once per patient)."""
    if pid.size == 0:
        return
    v, les = state.values, state.lesions
    rows = _detected_distant_rows(state, pid, t)
    rows = rows[les.organ[rows] == ORGAN_CODE["bone"]]
    if rows.size == 0:
        return
    vol = les.volume_at(t, state.capacity_mm3, rows)
    order = np.lexsort((-vol, les.pid[rows]))
    rows = rows[order]
    p = les.pid[rows]
    first = np.r_[True, p[1:] != p[:-1]]
    rank = np.arange(p.size) - np.maximum.accumulate(np.where(first, np.arange(p.size), 0))
    rows = rows[rank < v["radiotherapy.palliative_max_lesions"]]
    kill(state, rows, t, v["radiotherapy.palliative_surviving_fraction"], _PALLIATIVE, resistance=False)
    state.events.add(les.pid[rows], t, "treatment_start", ORGAN_CODE["bone"], les.lid[rows], "radiotherapy:palliative")
    state.bone_palliated[np.unique(les.pid[rows])] = True
