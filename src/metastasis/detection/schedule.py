"""The care pathway's exams (MODEL.md 4): staging at day 0, follow-up, clinic visits, symptoms, restaging.

Everything here reads the lesions' courses and decides who is examined when, and with what result:
- **staging** at day 0 with the scenario's modalities for all, rules for some, and an organ-directed
  exam for each organ that causes symptoms at presentation;
- a false positive leads to a **confirmation** exam of that organ, which clears it (it can find a real
  lesion: its result is against the truth like any other);
- **follow-up** exams and clinic visits until the first distant finding; symptoms are reported after a
  short delay or at the next clinic visit, whichever comes first;
- after a distant finding (or stage IV at diagnosis), **restaging** at the scenario's interval, and a
  **symptom work-up** when a new organ causes symptoms before restaging finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.detection.imaging import ExamRows, Hits, Scanner, expand
from metastasis.scenario import Scenario
from metastasis.streams import Process
from metastasis.vocabulary import (
    DAYS_PER_MONTH,
    FIRST_DISTANT,
    MODALITY_CODE,
    N_ORGANS,
    N_STAGES,
    ORGANS,
    PURPOSE_CODE,
    RESULT_CODE,
    STAGES,
    T_STAGES,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

#: The exam a symptomatic organ is imaged with.
ORGAN_DIRECTED: dict[str, str] = {
    "breast": "mammography", "regional_nodes": "clinical_exam", "bone": "bone_scan", "lung": "ct",
    "liver": "ct", "brain": "mri_brain", "distant_nodes": "ct", "other": "ct",
}
#: The exam that confirms (or clears) a suspicious finding in an organ.
CONFIRMATION: dict[str, str] = {
    "breast": "mammography", "regional_nodes": "pet_ct", "bone": "pet_ct", "lung": "ct",
    "liver": "mri_liver", "brain": "mri_brain", "distant_nodes": "pet_ct", "other": "pet_ct",
}
_DIRECTED = np.array([MODALITY_CODE[ORGAN_DIRECTED[o]] for o in ORGANS], dtype=np.int8)
_CONFIRM = np.array([MODALITY_CODE[CONFIRMATION[o]] for o in ORGANS], dtype=np.int8)
#: Detection-stream key of the presentation delay of organ o: -(10 + o) (never a lesion id).
_DELAY_KEY = -10


@dataclass
class Findings:
    """Exam rows and lesions seen by one part of the pathway."""

    exams: ExamRows
    hits: Hits

    @classmethod
    def concat(cls, parts: list[Findings]) -> Findings:
        return cls(ExamRows.concat([p.exams for p in parts]), Hits.concat([p.hits for p in parts]))

    def keep(self, exam_mask: BOOL, hit_mask: BOOL) -> Findings:
        e, h = self.exams, self.hits
        return Findings(
            ExamRows(e.pid[exam_mask], e.time_days[exam_mask], e.modality[exam_mask], e.purpose[exam_mask],
                     e.organ[exam_mask], e.result[exam_mask]),
            Hits(h.row[hit_mask], h.time_days[hit_mask], h.modality[hit_mask], h.purpose[hit_mask]),
        )


def _examine(scanner: Scanner, pid: I64, time_days: F64, modality: NDArray[np.int8], purpose: int) -> Findings:
    """Run exams (one per patient, day, modality) and the confirmation of each false positive."""
    rows = expand(pid, time_days, modality, purpose, scanner.imaging)
    exams, hits = scanner.evaluate(*rows)
    fp = exams.result == RESULT_CODE["fp"]
    delay = scanner.confirmation_delay_days
    c_exams, c_hits = scanner.evaluate(
        exams.pid[fp], exams.time_days[fp] + delay, _CONFIRM[exams.organ[fp]],
        np.full(int(fp.sum()), PURPOSE_CODE["confirmation"], np.int8), exams.organ[fp], false_positives=False,
    )
    return Findings(ExamRows.concat([exams, c_exams]), Hits.concat([hits, c_hits]))


def _unique_exams(pid: I64, time_days: F64, modality: NDArray[np.int8]) -> tuple[I64, F64, NDArray[np.int8]]:
    """Exams sorted by (patient, day, modality) with repeats (two reasons, one exam) removed."""
    order = np.lexsort((modality, time_days, pid))
    p, t, m = pid[order], time_days[order], modality[order]
    new = np.r_[True, (p[1:] != p[:-1]) | (t[1:] != t[:-1]) | (m[1:] != m[:-1])] if p.size else np.zeros(0, bool)
    return p[new], t[new], m[new]


def _first_hit_per_patient_organ(scanner: Scanner, hits: Hits, n: int) -> F64:
    """Earliest day each (patient, organ) had a lesion seen: shape (n, organs), inf if never."""
    out = np.full(n * N_ORGANS, np.inf)
    les = scanner.lesions
    np.minimum.at(out, les.pid[hits.row] * N_ORGANS + les.organ[hits.row], hits.time_days)
    return out.reshape(n, N_ORGANS)


@dataclass
class Staging:
    """The day-0 work-up: what it found and who was symptomatic."""

    findings: Findings
    symptomatic: BOOL
    distant_found: BOOL


def stage_at_diagnosis(scanner: Scanner, scenario: Scenario, t_index: NDArray[np.int8], n_index: NDArray[np.int8],
                       pre_stage: NDArray[np.int8], onset_days: F64) -> Staging:
    """Staging work-up at day 0; ``onset_days`` (patients x organs) is each organ's symptom onset (NaN: none)."""
    n = len(t_index)
    with np.errstate(invalid="ignore"):
        symptomatic_organ = onset_days <= 0.0
    symptomatic_organ[:, :FIRST_DISTANT] = False
    symptomatic = symptomatic_organ.any(axis=1)
    use = np.zeros((n, len(MODALITY_CODE)), dtype=bool)
    use[:, [MODALITY_CODE[m] for m in scenario.staging.modalities]] = True
    for rule in scenario.staging.rules:
        cond = rule.when
        holds = np.zeros(n, dtype=bool)
        if cond.clinical_stage is not None:
            holds |= np.isin(pre_stage, [STAGES.index(s) for s in cond.clinical_stage])
        if cond.t_stage is not None:
            holds |= np.isin(t_index, [T_STAGES.index(s) for s in cond.t_stage])
        if cond.n_stage is not None:
            holds |= np.isin(n_index, [N_STAGES.index(s) for s in cond.n_stage])
        if cond.symptoms is not None:
            holds |= symptomatic == cond.symptoms
        use[np.ix_(holds, np.array([MODALITY_CODE[m] for m in rule.add]))] = True
    for o in range(FIRST_DISTANT, N_ORGANS):
        use[symptomatic_organ[:, o], _DIRECTED[o]] = True
    pid, modality = np.nonzero(use)
    findings = _examine(scanner, pid.astype(np.int64), np.zeros(len(pid)), modality.astype(np.int8),
                        PURPOSE_CODE["staging"])
    first = _first_hit_per_patient_organ(scanner, findings.hits, n)
    distant_found = (first[:, FIRST_DISTANT:] <= 0.0).any(axis=1)
    return Staging(findings, np.asarray(symptomatic, dtype=bool), np.asarray(distant_found, dtype=bool))


@dataclass
class Pathway:
    """Everything after day 0: exams, findings, and the days that matter for analysis."""

    findings: Findings
    #: day the metastatic pathway starts (first distant finding after staging; 0 if stage IV at day 0)
    metastatic_from_days: F64
    #: counterfactual day symptoms alone would have revealed distant disease (inf if never)
    distant_symptom_days: F64


def presentation_days(scenario: Scenario, values: dict[str, float], seed: int, patient_id: I64,
                      onset_days: F64) -> F64:
    """Day each organ's symptoms bring the patient to care: after a delay or at the next visit (inf: never)."""
    n = len(patient_id)
    visit = scenario.followup.clinic_visit_every_months * DAYS_PER_MONTH
    visit_until = scenario.followup.clinic_visit_until_months * DAYS_PER_MONTH
    organ = np.arange(N_ORGANS)
    u = streams.uniform(seed, Process.DETECTION, patient_id[:, None], _DELAY_KEY - organ[None, :], 0)
    delay = -np.log(u) * values["symptoms.presentation_delay_mean_days"]
    onset = np.where(np.isnan(onset_days), np.inf, onset_days)
    after = np.maximum(onset, 0.0)
    next_visit = np.maximum(np.ceil(after / visit), 1.0) * visit
    next_visit = np.where(next_visit <= visit_until, next_visit, np.inf)
    by_delay = onset + delay
    by_delay = np.where(by_delay > 0.0, by_delay, np.inf)
    seen = np.minimum(by_delay, next_visit)
    seen = np.where(np.isfinite(onset), seen, np.inf)
    assert seen.shape == (n, N_ORGANS)
    return seen


def follow(scanner: Scanner, scenario: Scenario, values: dict[str, float], seed: int, patient_id: I64,
           staging: Staging, onset_days: F64, end_days: F64) -> Pathway:
    """Follow-up, symptoms and restaging from day 0 until ``end_days`` (death or horizon) per patient."""
    n = len(patient_id)
    seen = presentation_days(scenario, values, seed, patient_id, onset_days)
    seen[:, :FIRST_DISTANT] = np.inf
    seen = np.where(seen < end_days[:, None], seen, np.inf)
    with np.errstate(invalid="ignore"):
        presented = np.where(onset_days <= 0.0, 0.0, seen)
    presented[:, :FIRST_DISTANT] = np.inf
    distant_symptom_days = presented.min(axis=1)

    # follow-up exams and clinic visits, for patients without distant disease at day 0
    fu = ~staging.distant_found
    pids, times, mods = [], [], []
    schedule = [(e.modality, e.every_months, e.from_months, e.until_months) for e in scenario.followup.exams]
    f = scenario.followup
    schedule.append(("clinical_exam", f.clinic_visit_every_months, f.clinic_visit_every_months,
                     f.clinic_visit_until_months))
    fu_pid = np.nonzero(fu)[0]
    for modality, every, start, until in schedule:
        t = np.arange(start, until + 1e-9, every) * DAYS_PER_MONTH
        t = t[t > 0.0]
        if t.size == 0:
            continue
        ok = t[None, :] < end_days[fu_pid, None]
        p, k = np.nonzero(ok)
        pids.append(fu_pid[p])
        times.append(t[k])
        mods.append(np.full(len(p), MODALITY_CODE[modality], np.int8))
    p, t, m = _unique_exams(np.concatenate(pids or [np.zeros(0, np.int64)]),
                            np.concatenate(times or [np.zeros(0)]), np.concatenate(mods or [np.zeros(0, np.int8)]))
    followup = _examine(scanner, p, t, m, PURPOSE_CODE["followup"])
    first_fu = _first_hit_per_patient_organ(scanner, followup.hits, n)
    t_exam = first_fu[:, FIRST_DISTANT:].min(axis=1)
    t_sym = seen[:, FIRST_DISTANT:].min(axis=1)
    start_days = np.where(fu, np.minimum(t_exam, t_sym), 0.0)
    by_exam = fu & (t_exam <= t_sym) & np.isfinite(t_exam)
    les = scanner.lesions
    followup = followup.keep(followup.exams.time_days <= start_days[followup.exams.pid],
                             followup.hits.time_days <= start_days[les.pid[followup.hits.row]])

    # restaging while metastatic: at the finding (when an exam found it), then every interval
    every = scenario.restaging.every_months * DAYS_PER_MONTH
    metastatic = np.isfinite(start_days) & (start_days < end_days)
    mp = np.nonzero(metastatic)[0]
    k_first = np.where(by_exam[mp], 0, 1)
    k_count = np.maximum(np.ceil((end_days[mp] - start_days[mp]) / every), 0).astype(np.int64) + 1 - k_first
    k_count = np.maximum(k_count, 0)
    rp = np.repeat(mp, k_count)
    k = np.repeat(k_first, k_count) + np.arange(int(k_count.sum())) - np.repeat(np.cumsum(k_count) - k_count, k_count)
    rt = start_days[rp] + k * every
    keep = rt < end_days[rp]
    rp, rt = rp[keep], rt[keep]
    restage_mods = np.array([MODALITY_CODE[x] for x in scenario.restaging.modalities], np.int8)
    rp2 = np.repeat(rp, len(restage_mods))
    rt2 = np.repeat(rt, len(restage_mods))
    rm2 = np.tile(restage_mods, len(rp))
    restaging = _examine(scanner, rp2, rt2, rm2, PURPOSE_CODE["restaging"])

    # symptom work-ups for organs whose symptoms come before any exam has found them
    found = np.minimum.reduce([
        _first_hit_per_patient_organ(scanner, staging.findings.hits, n),
        _first_hit_per_patient_organ(scanner, followup.hits, n),
        _first_hit_per_patient_organ(scanner, restaging.hits, n),
    ])
    need = np.isfinite(seen) & (seen >= start_days[:, None]) & (seen < found)
    sp, so = np.nonzero(need)
    st = seen[sp, so]
    sp_all = np.concatenate([np.repeat(sp, len(restage_mods)), sp])
    st_all = np.concatenate([np.repeat(st, len(restage_mods)), st])
    sm_all = np.concatenate([np.tile(restage_mods, len(sp)), _DIRECTED[so]])
    sp_u, st_u, sm_u = _unique_exams(sp_all.astype(np.int64), st_all, sm_all.astype(np.int8))
    symptoms = _examine(scanner, sp_u, st_u, sm_u, PURPOSE_CODE["symptoms"])

    findings = Findings.concat([followup, restaging, symptoms])
    return Pathway(findings, np.where(np.isfinite(start_days) & (start_days < end_days), start_days, np.inf),
                   distant_symptom_days)
