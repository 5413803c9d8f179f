"""Detection: the sensitivity curve is what exams achieve, and conspicuity persists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metastasis import parameters
from metastasis.biology import growth
from metastasis.biology.lesions import Lesions
from metastasis.detection.imaging import Imaging, Scanner
from metastasis.vocabulary import MODALITY_CODE, ORGAN_CODE, PURPOSE_CODE, RESULT_CODE

K = 4.19e6


def _fixed_size_lesions(n: int, diameter_mm: float, organ: str) -> Lesions:
    """n lesions (one per patient) that keep ``diameter_mm`` for years: Gompertz age frozen near tau."""
    tau = float(growth.age_at_volume(growth.volume_from_diameter(diameter_mm), K))
    rate = 1e-12
    les = Lesions()
    les.append(pid=np.arange(n), lid=np.ones(n, np.int64), organ=np.full(n, ORGAN_CODE[organ]),
               origin=np.full(n, 3), parent=np.zeros(n, np.int64), seeded=np.full(n, -tau / rate),
               wake=np.full(n, -tau / rate), rate=np.full(n, rate), seed_rate=np.zeros(n),
               next_level=np.full(n, np.inf), n_children=np.zeros(n, np.int32), ended=np.full(n, np.inf),
               end_reason=np.zeros(n, np.int8))
    return les


def _scan(scanner: Scanner, n: int, t: float, modality: str, organ: str) -> np.ndarray:
    exams, hits = scanner.evaluate(np.arange(n), np.full(n, t), np.full(n, MODALITY_CODE[modality], np.int8),
                                   np.zeros(n, np.int8), np.full(n, ORGAN_CODE[organ], np.int8))
    return exams.result == RESULT_CODE["tp"]


def test_detection_fraction_follows_the_sensitivity_curve_and_misses_persist() -> None:
    values = parameters.defaults()
    imaging = Imaging.from_values(values)
    n = 20_000
    for modality, organ in (("ct", "liver"), ("pet_ct", "bone"), ("mammography", "breast"), ("chest_xray", "lung")):
        for d in (3.0, 6.0, 10.0, 20.0):
            les = _fixed_size_lesions(n, d, organ)
            scanner = Scanner(les, imaging, 11, np.arange(n), K, 14.0)
            seen = _scan(scanner, n, 0.0, modality, organ)
            s = float(imaging.sensitivity(MODALITY_CODE[modality], ORGAN_CODE[organ], d))
            # binomial: within 4 standard deviations (two-sided probability 6e-5 per check)
            assert abs(seen.mean() - s) <= 4 * math.sqrt(s * (1 - s) / n) + 1e-12, (modality, organ, d)
            # the same lesion at the same size a year later: exactly the same ones are seen
            again = _scan(scanner, n, 365.0, modality, organ)
            np.testing.assert_array_equal(seen, again)


def test_nothing_below_the_visible_size_is_seen() -> None:
    imaging = Imaging.from_values(parameters.defaults())
    assert imaging.sensitivity(MODALITY_CODE["mri_brain"], ORGAN_CODE["brain"], 1.99) == 0.0
    assert imaging.sensitivity(MODALITY_CODE["mri_brain"], ORGAN_CODE["brain"], 2.0) > 0.0


def test_followup_schedule_is_every_patients_own_exams_in_day_order() -> None:
    from metastasis.detection.schedule import followup_schedule
    from metastasis.scenario import load_scenario
    from metastasis.vocabulary import DAYS_PER_MONTH

    sc = load_scenario("followup-intensive")
    rng = np.random.default_rng(3)
    pid = np.sort(rng.choice(400, 300, replace=False)).astype(np.int64)
    end_days = rng.uniform(0.0, 12 * 365.25, 400)
    end_days[pid[:5]] = np.inf
    p, t, m = followup_schedule(sc, pid, end_days)
    # each patient's exams built on their own: every entry's grid before her end, one exam per day and modality
    f = sc.followup
    entries = [(e.modality, e.every_months, e.from_months, e.until_months) for e in f.exams]
    entries.append(("clinical_exam", f.clinic_visit_every_months, f.clinic_visit_every_months,
                    f.clinic_visit_until_months))
    expected = set()
    for q in pid:
        for modality, every, start, until in entries:
            for day in np.arange(start, until + 1e-9, every) * DAYS_PER_MONTH:
                if 0.0 < day < end_days[q]:
                    expected.add((int(q), float(day), MODALITY_CODE[modality]))
    got = list(zip(p.tolist(), t.tolist(), m.tolist(), strict=True))
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected
    assert got == sorted(got, key=lambda r: (r[1], r[0], r[2]))  # by day, then patient, then modality
    assert p.dtype == np.int64 and t.dtype == np.float64 and m.dtype == np.int8


def test_workup_gives_the_same_exams_whatever_the_order_of_its_patients() -> None:
    from metastasis.detection.schedule import workup

    n = 300
    scanner = Scanner(_fixed_size_lesions(n, 6.0, "liver"), Imaging.from_values(parameters.defaults()), 5,
                      np.arange(n), K, 14.0)
    pid = np.arange(0, n, 3, dtype=np.int64)
    day = np.linspace(10.0, 900.0, pid.size)
    modalities = ["ct", "bone_scan", "ct"]  # a repeated modality is one exam
    ordered = workup(scanner, pid, day, modalities, "restaging")  # patients ascending
    shuffled = workup(scanner, pid[::-1].copy(), day[::-1].copy(), modalities, "restaging")  # sorted first
    for name in ("pid", "time_days", "modality", "purpose", "organ", "result"):
        assert np.array_equal(getattr(ordered.exams, name), getattr(shuffled.exams, name)), name
    assert np.array_equal(ordered.hits.row, shuffled.hits.row)
    # every patient has each distinct modality once, on her day, in (patient, day, modality) order
    exams = ordered.exams
    first = (exams.purpose == PURPOSE_CODE["restaging"])
    keys = list(zip(exams.pid[first].tolist(), exams.modality[first].tolist(), strict=True))
    assert sorted(set(keys)) == sorted({(int(p), MODALITY_CODE[m]) for p in pid for m in modalities})
    assert ordered.hits.row.size > 0  # the 6 mm liver lesions are seen by CT


def test_lesions_ended_before_the_floor_leave_the_index_without_changing_any_result() -> None:
    """A scanner advanced step by step (ended lesions unlinked as exams walk past them, lesions added
    between steps) gives every exam the result and the hits of a fresh scanner that prunes nothing."""
    imaging = Imaging.from_values(parameters.defaults())
    rng = np.random.default_rng(8)
    n, per_step, step = 40, 60, 28.0
    les = Lesions()

    def add(m: int, t: float) -> None:
        # lesions of random patients and organs, 2-30 mm from now on, some ending within a year
        organ = rng.integers(0, 8, m)
        tau = growth.age_at_volume(growth.volume_from_diameter(rng.uniform(2.0, 30.0, m)), K)
        rate = rng.uniform(1e-4, 1e-2, m)
        ended = np.where(rng.uniform(size=m) < 0.6, t + rng.uniform(0.0, 365.0, m), np.inf)
        les.append(pid=rng.integers(0, n, m), lid=np.arange(les.n, les.n + m), organ=organ, origin=np.full(m, 3),
                   parent=np.zeros(m, np.int64), seeded=np.full(m, t), wake=np.full(m, t), rate=rate,
                   tau_ref=tau, seed_rate=np.zeros(m), next_level=np.full(m, np.inf),
                   n_children=np.zeros(m, np.int32), ended=ended, end_reason=np.zeros(m, np.int8))

    add(200, 0.0)
    advanced = Scanner(les, imaging, 3, np.arange(n), K, 14.0)
    for k in range(30):
        t = k * step
        advanced.advance(t)
        if k % 5 == 0:
            add(20, t)
        pid = rng.integers(0, n, per_step)
        day = t + rng.uniform(0.0, step, per_step)
        mod = rng.integers(0, len(MODALITY_CODE), per_step).astype(np.int8)
        organ = rng.integers(0, 8, per_step).astype(np.int8)
        args = (pid, day, mod, np.zeros(per_step, np.int8), organ)
        got, got_hits = advanced.evaluate(*args)
        want, want_hits = Scanner(les, imaging, 3, np.arange(n), K, 14.0).evaluate(*args)
        np.testing.assert_array_equal(got.result, want.result)
        assert sorted(zip(got_hits.row.tolist(), got_hits.time_days.tolist(), strict=True)) == sorted(
            zip(want_hits.row.tolist(), want_hits.time_days.tolist(), strict=True))
    assert (want.result == RESULT_CODE["tp"]).any() and (want.result == RESULT_CODE["fn"]).any()
    # an exam dated before the floor after all meets every lesion of its patient, the dropped ones too
    early = (pid, day - 10 * step, mod, np.zeros(per_step, np.int8), organ)
    got, _ = advanced.evaluate(*early)
    want, _ = Scanner(les, imaging, 3, np.arange(n), K, 14.0).evaluate(*early)
    np.testing.assert_array_equal(got.result, want.result)
    assert (want.result == RESULT_CODE["tp"]).any()
    with pytest.raises(ValueError, match="before the floor"):
        advanced.advance(0.0)


def test_distant_disease_found_by_a_staging_confirmation_stages_iv() -> None:
    """A bone scan falsely positive at staging is confirmed by PET-CT two weeks later; a bone metastasis
    that has woken from dormancy since is found then and stages the patient IV (before, only day-0
    findings did: she was operated on as stage I-III while her clinical stage said IV)."""
    from metastasis.detection.schedule import stage_at_diagnosis
    from metastasis.scenario import load_scenario

    n = 200
    values = parameters.defaults()
    values["imaging.bone_scan.bone.false_positive"] = 1.0  # every staging bone scan needs a confirmation
    les = Lesions()  # one 10 mm bone lesion per patient, dormant until day 7, then (nearly) not growing
    tau = float(growth.age_at_volume(growth.volume_from_diameter(10.0), K))
    les.append(pid=np.arange(n), lid=np.ones(n, np.int64), organ=np.full(n, ORGAN_CODE["bone"]),
               origin=np.full(n, 3), parent=np.zeros(n, np.int64), seeded=np.full(n, -100.0),
               wake=np.full(n, 7.0), rate=np.full(n, 1e-12), tau_ref=np.full(n, tau), seed_rate=np.zeros(n),
               next_level=np.full(n, np.inf), n_children=np.zeros(n, np.int32), ended=np.full(n, np.inf),
               end_reason=np.zeros(n, np.int8))
    scanner = Scanner(les, Imaging.from_values(values), 5, np.arange(n), K, 14.0)
    scenario = load_scenario("default", ('staging.modalities=["bone_scan"]', "staging.rules=[]"))
    zeros = np.zeros(n, np.int8)
    staging = stage_at_diagnosis(scanner, scenario, zeros, zeros, zeros, np.full((n, 8), np.nan))
    hits = staging.findings.hits
    assert hits.row.size > n // 2 and np.all(hits.time_days == 14.0)  # by the confirmation, not at day 0
    found = np.zeros(n, bool)
    found[les.pid[hits.row]] = True
    np.testing.assert_array_equal(staging.distant_found, found)
