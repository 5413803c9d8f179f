"""The care pathway's exams (MODEL.md 4): staging at day 0, follow-up schedules, work-ups, symptoms.

This module builds and evaluates exams; :mod:`metastasis.pathway` decides when they happen.
- **staging** at day 0 with the scenario's modalities for all, rules for some, and an organ-directed
  exam for each organ that causes symptoms at presentation;
- a false positive leads to a **confirmation** exam of that organ, which clears it (it can find a real
  lesion: its result is against the truth like any other);
- **follow-up** exams and clinic visits on the scenario's schedule; symptoms are reported after a short
  delay or at the next clinic visit, whichever comes first;
- **work-ups** (restaging, symptoms): the restaging modalities, plus the exam directed at a symptomatic
  organ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis.detection import symptoms
from metastasis.detection.imaging import ExamRows, Hits, Scanner, expand
from metastasis.scenario import Scenario
from metastasis.vocabulary import (
    DAYS_PER_MONTH,
    DETAIL_CODE,
    FIRST_DISTANT,
    MODALITY_CODE,
    N_ORGANS,
    N_STAGES,
    ORGANS,
    PURPOSE_CODE,
    RESULT_CODE,
    STAGES,
    SYMPTOM_OF_ORGAN,
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
#: Event detail code of each organ's symptom (index: organ code).
DETAIL_OF_SYMPTOM: tuple[int, ...] = tuple(DETAIL_CODE[SYMPTOM_OF_ORGAN[o]] for o in ORGANS)


@dataclass
class Confirmations:
    """Confirmation exams ordered and not done yet: patient, day and organ (which fixes the modality)."""

    pid: I64
    time_days: F64
    organ: NDArray[np.int8]

    @classmethod
    def none(cls) -> Confirmations:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))

    @classmethod
    def concat(cls, parts: list[Confirmations]) -> Confirmations:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("pid", "time_days", "organ")))

    def take(self, mask: BOOL) -> Confirmations:
        return Confirmations(self.pid[mask], self.time_days[mask], self.organ[mask])


@dataclass
class Findings:
    """Exam rows and lesions seen by one part of the pathway, and the confirmations it left for later."""

    exams: ExamRows
    hits: Hits
    later: Confirmations


def confirm(scanner: Scanner, pid: I64, time_days: F64, organ: NDArray[np.int8]) -> Findings:
    """Confirmation exams of (patient, day, organ), each with the organ's confirming modality (no false
    positive of their own)."""
    purpose = np.full(pid.size, PURPOSE_CODE["confirmation"], np.int8)
    exams, hits = scanner.evaluate(pid, time_days, _CONFIRM[organ], purpose, organ, false_positives=False)
    return Findings(exams, hits, Confirmations.none())


def examine(scanner: Scanner, pid: I64, time_days: F64, modality: NDArray[np.int8], purpose: int,
            confirm_before: float = np.inf) -> Findings:
    """Run exams (one per patient, day, modality) and the confirmation of each false positive; a
    confirmation dated ``confirm_before`` or later is left for the step it falls in (``Findings.later``),
    so that it meets the lesions as that step's decisions left them."""
    rows = expand(pid, time_days, modality, purpose, scanner.imaging)
    exams, hits = scanner.evaluate(*rows)
    fp = exams.result == RESULT_CODE["fp"]
    if not fp.any():
        return Findings(exams, hits, Confirmations.none())
    delay = scanner.confirmation_delay_days
    # two exams of one day falsely positive in one organ (CT and a bone scan in bone) need one confirmation
    ordered = Confirmations(*_unique_exams(exams.pid[fp], exams.time_days[fp] + delay, exams.organ[fp]))
    now = ordered.time_days < confirm_before
    done = confirm(scanner, ordered.pid[now], ordered.time_days[now], ordered.organ[now])
    return Findings(ExamRows.concat([exams, done.exams]), Hits.concat([hits, done.hits]), ordered.take(~now))


def _unique_exams(pid: I64, time_days: F64, modality: NDArray[np.int8]) -> tuple[I64, F64, NDArray[np.int8]]:
    """Exams sorted by (patient, day, modality) with repeats (two reasons, one exam) removed; the third key
    can be any code that fixes the exam (the organ of a confirmation)."""
    order = np.lexsort((modality, time_days, pid))
    p, t, m = pid[order], time_days[order], modality[order]
    changed = (p[1:] != p[:-1]) | (t[1:] != t[:-1]) | (m[1:] != m[:-1])
    new = np.concatenate(([True], changed)) if p.size else np.zeros(0, bool)
    return p[new], t[new], m[new]


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
    findings = examine(scanner, pid.astype(np.int64), np.zeros(len(pid)), modality.astype(np.int8),
                        PURPOSE_CODE["staging"])
    # the work-up ends with its confirmations: a confirming PET-CT that finds real disease in another organ
    # stages IV as surely as the first exams (the clinical stage counts what is found within its window)
    les, seen = scanner.lesions, findings.hits.row
    distant_found = np.zeros(n, bool)
    distant_found[les.pid[seen[les.organ[seen] >= FIRST_DISTANT]]] = True
    return Staging(findings, np.asarray(symptomatic, dtype=bool), np.asarray(distant_found, dtype=bool))


def presentation_days(scenario: Scenario, values: dict[str, float], seed: int, patient_id: I64, organ: I64,
                      onset_days: F64) -> F64:
    """Day an organ's symptoms bring the patient to care: after a delay, or at the next clinic visit if
    that comes first; onset before diagnosis (not found at staging) is reported at the first visit or
    after the delay. ``patient_id``, ``organ`` and ``onset_days`` are aligned arrays."""
    visit = scenario.followup.clinic_visit_every_months * DAYS_PER_MONTH
    visit_until = scenario.followup.clinic_visit_until_months * DAYS_PER_MONTH
    delay = symptoms.presentation_delay_days(seed, patient_id, organ, values)
    after = np.maximum(onset_days, 0.0)
    next_visit = np.maximum(np.ceil(after / visit), 1.0) * visit
    next_visit = np.where(next_visit <= visit_until, next_visit, np.inf)
    by_delay = onset_days + delay
    by_delay = np.where(by_delay > 0.0, by_delay, np.inf)
    return np.asarray(np.minimum(by_delay, next_visit), dtype=np.float64)


def followup_schedule(scenario: Scenario, pid: I64, end_days: F64) -> tuple[I64, F64, NDArray[np.int8]]:
    """Scheduled follow-up exams and clinic visits of patients ``pid`` (ascending) before ``end_days``,
    sorted by (day, patient, modality), one row per exam (two schedule entries on one day, one exam)."""
    f = scenario.followup
    schedule = [(e.modality, e.every_months, e.from_months, e.until_months) for e in f.exams]
    schedule.append(("clinical_exam", f.clinic_visit_every_months, f.clinic_visit_every_months,
                     f.clinic_visit_until_months))
    days, codes = [np.zeros(0)], [np.zeros(0, np.int8)]
    for modality, every, start, until in schedule:
        t = np.arange(start, until + 1e-9, every) * DAYS_PER_MONTH
        t = t[t > 0.0]
        days.append(t)
        codes.append(np.full(t.size, MODALITY_CODE[modality], np.int8))
    # the grid is shared by every patient: walk its days in order, each with its distinct modalities and
    # the patients still followed then (in the order given)
    t_all, m_all = np.concatenate(days), np.concatenate(codes)
    ends = end_days[pid]
    pids, times, mods = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0, np.int8)]
    for day in np.unique(t_all):
        m = np.unique(m_all[t_all == day])
        p = pid[ends > day]
        pids.append(np.repeat(p, m.size))
        times.append(np.full(p.size * m.size, day))
        mods.append(np.tile(m, p.size))
    return np.concatenate(pids).astype(np.int64), np.concatenate(times), np.concatenate(mods)


def workup(scanner: Scanner, pid: I64, time_days: F64, modalities: list[str], purpose: str,
           directed_organ: I64 | None = None, confirm_before: float = np.inf) -> Findings:
    """A work-up: the given modalities for every patient (plus the exam directed at a symptomatic organ);
    confirmations as :func:`examine`."""
    mods = np.array([MODALITY_CODE[m] for m in modalities], np.int8)
    p = np.repeat(pid, len(mods))
    t = np.repeat(time_days, len(mods))
    m = np.tile(mods, len(pid))
    if directed_organ is not None:
        p = np.concatenate([p, pid])
        t = np.concatenate([t, time_days])
        m = np.concatenate([m, _DIRECTED[directed_organ]])
    p, t, m = _unique_exams(p.astype(np.int64), t.astype(np.float64), m.astype(np.int8))
    return examine(scanner, p, t, m, PURPOSE_CODE[purpose], confirm_before)
