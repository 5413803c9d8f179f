"""Treatment: kill arithmetic, dose limits, the liver rule, and effects on common random numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import read_table, simulate
from metastasis import parameters
from metastasis.analysis import first_distant_detection
from metastasis.biology import natural_history as nh
from metastasis.care import CareState, EventLog
from metastasis.cohort import draw_patients
from metastasis.scenario import load_scenario
from metastasis.treatment import liver, plan, radiotherapy
from metastasis.treatment.cells import binomial_from_uniform, course_survivors, poisson_from_uniform
from metastasis.vocabulary import ORGAN_CODE

V = parameters.defaults()


def test_kill_arithmetic_by_hand() -> None:
    # Binomial(10, 1/2): P(X <= 4) = 386/1024 = 0.377, P(X <= 5) = 638/1024 = 0.623
    assert binomial_from_uniform(10, 0.5, 0.30) == 4
    assert binomial_from_uniform(10, 0.5, 0.50) == 5
    assert binomial_from_uniform(10, 0.5, 0.70) == 6
    # three cells, each surviving with probability 0.1: all die with probability 0.9^3 = 0.729
    assert course_survivors(3, 0.1, 0.0, 0.5, 0.72) == 0  # extinct
    assert course_survivors(3, 0.1, 0.0, 0.5, 0.73) == 1
    # a resistant subclone survives whatever the surviving fraction: Poisson(100 * 0.05) = 5 at its median
    assert poisson_from_uniform(5.0, 0.5) == 5
    assert course_survivors(100, 0.0, 0.05, 0.5, 0.5) == 5
    # large numbers: the normal approximation centred on N * SF
    n, sf = 1e9, 0.3**6
    u = (np.arange(20_000) + 0.5) / 20_000
    draws = binomial_from_uniform(n, sf, u)
    assert abs(draws.mean() - n * sf) < 4 * math.sqrt(n * sf * (1 - sf) / u.size)
    assert np.all(course_survivors(np.full(u.size, 1e6), 0.5, 1e-3, u[::-1], u) <= 1e6)


def _state(n: int) -> CareState:
    sc = load_scenario("default")
    patients = draw_patients(sc.cohort, V, 3, np.arange(n))
    hist, lesions = nh.start(patients, V, 3)
    return CareState(sc, V, patients, hist, lesions, EventLog(), np.full(n, 7305.0))


def test_treatment_never_enlarges_a_lesion_and_spares_dormant_colonies() -> None:
    state = _state(2000)
    les = state.lesions
    nh.seed_until(state.hist, les, np.full(2000, 400.0))
    t = 400.0
    rows = np.nonzero(les.ended > t)[0]
    before = les.volume_at(t, state.capacity_mm3, rows)
    dormant = rows[les.wake[rows] > t]
    assert dormant.size > 0
    snapshot = {k: les.cols[k][dormant].copy() for k in ("t_ref", "tau_ref", "lam_ref", "rate", "ended")}
    plan.kill(state, rows, t, 0.3**6, 0, resistance=True)
    after = les.volume_at(t, state.capacity_mm3, rows)
    assert np.all(after <= before * (1 + 1e-12))
    assert np.any(after < before)
    for k, v in snapshot.items():
        np.testing.assert_array_equal(les.cols[k][dormant], v)
    state.endocrine_until[:] = 1e9
    state.anti_her2_until[:] = 1e9
    live = np.nonzero(les.ended > t)[0]
    vol = les.volume_at(t, state.capacity_mm3, live)
    plan.suppression_rates(state, live, t)
    assert np.all(les.rate[live] <= les.base_rate[live])
    np.testing.assert_allclose(les.volume_at(t, state.capacity_mm3, live), vol)
    extinct = les.end_reason[rows] == 3
    assert np.all(les.ended[rows][extinct] == t)


def test_sbrt_dose_limits() -> None:
    lung, liv, bone = ORGAN_CODE["lung"], ORGAN_CODE["liver"], ORGAN_CODE["bone"]
    # four 60 mm lung lesions: each 20 Gy envelope (90 mm sphere) is 382 cm^3; V20 budget 30 % of 4000 cm^3
    out = radiotherapy.sbrt_plan(np.zeros(4, np.int64), np.full(4, lung, np.int8), np.full(4, 60.0),
                                 np.zeros(4, bool), V, 5)
    assert sorted(out.tolist()) == [radiotherapy.TREATED] * 3 + [radiotherapy.LIMIT_LUNG]
    # the smallest are treated first
    out = radiotherapy.sbrt_plan(np.zeros(4, np.int64), np.full(4, lung, np.int8), np.array([70.0, 20, 60, 60]),
                                 np.zeros(4, bool), V, 5)
    assert out[0] == radiotherapy.LIMIT_LUNG and np.all(out[1:] == radiotherapy.TREATED)
    # six lesions when at most five are allowed: too many, checked before any dose limit
    out = radiotherapy.sbrt_plan(np.zeros(6, np.int64), np.full(6, lung, np.int8), np.full(6, 60.0),
                                 np.zeros(6, bool), V, 5)
    assert np.all(out == radiotherapy.TOO_MANY)
    # liver: 700 cm^3 must be spared of 1,500: two 60 mm lesions fit (764 cm^3), a third does not
    out = radiotherapy.sbrt_plan(np.zeros(3, np.int64), np.full(3, liv, np.int8), np.full(3, 60.0),
                                 np.zeros(3, bool), V, 5)
    assert sorted(out.tolist()) == [radiotherapy.TREATED] * 2 + [radiotherapy.LIMIT_LIVER]
    # spinal cord: one spinal target per course
    out = radiotherapy.sbrt_plan(np.zeros(3, np.int64), np.full(3, bone, np.int8), np.array([10.0, 12, 14]),
                                 np.array([True, True, False]), V, 5)
    assert out.tolist() == [radiotherapy.TREATED, radiotherapy.LIMIT_CORD, radiotherapy.TREATED]
    # two patients are planned independently
    out = radiotherapy.sbrt_plan(np.array([0, 0, 0, 1, 1, 1]), np.full(6, lung, np.int8), np.full(6, 60.0),
                                 np.zeros(6, bool), V, 5)
    assert np.all(out == radiotherapy.TREATED)


@pytest.mark.parametrize(
    ("n", "max_d", "extra", "stable_bone", "health", "sbrt_ok", "expected"),
    [
        (1, 30.0, False, False, 0.9, True, liver.RESECTION),
        (3, 50.0, False, False, 0.9, True, liver.RESECTION),
        (4, 30.0, False, False, 0.9, True, liver.SBRT),  # too many to resect
        (2, 55.0, False, False, 0.9, True, liver.SBRT),  # too large to resect
        (2, 55.0, False, False, 0.9, False, liver.SYSTEMIC),  # dose limits rule out SBRT
        (2, 30.0, True, True, 0.9, True, liver.RESECTION),  # liver plus stable bone
        (2, 30.0, True, False, 0.9, True, liver.SYSTEMIC),  # other extrahepatic disease
        (2, 30.0, False, False, 0.4, True, liver.SBRT),  # not fit for surgery
        (2, 30.0, False, False, 0.4, False, liver.SYSTEMIC),
    ],
)
def test_liver_rule(n: int, max_d: float, extra: bool, stable_bone: bool, health: float, sbrt_ok: bool,
                    expected: int) -> None:
    got = liver.liver_decision(np.array([n]), np.array([max_d]), np.array([extra]), np.array([stable_bone]),
                               np.array([health]), np.array([sbrt_ok]), V)
    assert got[0] == expected


def _z_paired(a: np.ndarray, b: np.ndarray) -> float:
    """McNemar z for 'event more often under a than under b' on the same patients."""
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return (only_a - only_b) / math.sqrt(max(only_a + only_b, 1))


def test_radiotherapy_after_bcs_lowers_local_recurrence(tmp_path: Path) -> None:
    with_rt = simulate(tmp_path, "ebctcg-bcs-rt", 6000)
    without = simulate(tmp_path, "ebctcg-bcs-no-rt", 6000)

    def local(run: Path) -> np.ndarray:
        les = read_table(run, "lesions")
        ids = read_table(run, "patients")["patient_id"]
        hit = les[(les["lesion_id"] > 0) & les["organ"].isin(["breast", "regional_nodes"])
                  & (les["detected_days"] > 90) & (les["detected_days"] <= 3652.5)]
        return ids.isin(hit["patient_id"]).to_numpy()

    assert _z_paired(local(without), local(with_rt)) > 3
    events = read_table(with_rt, "events")
    assert (events["detail"] == "radiotherapy:breast").sum() > 1000


def test_adjuvant_endocrine_therapy_lowers_distant_recurrence_in_hr_positive(tmp_path: Path) -> None:
    on = simulate(tmp_path, "default", 8000)
    off = simulate(tmp_path, "default", 8000, overrides=("treatment.early.endocrine_years=0",))

    def hr_early(run: Path) -> set[int]:
        patients = read_table(run, "patients")
        hr = patients["subtype"].isin(["luminal_a", "luminal_b", "luminal_her2"]) & (patients["clinical_stage"] != "IV")
        return set(patients.loc[hr, "patient_id"])

    cohort = np.array(sorted(hr_early(on) & hr_early(off)))

    def distant(run: Path) -> np.ndarray:
        first = first_distant_detection(read_table(run, "lesions"))
        late = first.index[(first["first_distant_days"] > 90) & (first["first_distant_days"] <= 3652.5)]
        return np.isin(cohort, late)

    a, b = distant(off), distant(on)
    assert _z_paired(a, b) > 3


def test_summary_reports_treatments_and_skeletal_events(default_run: Path) -> None:
    from metastasis.analysis import summary

    s = summary(default_run)
    assert s["treatments"]["surgery:mastectomy"] > 0
    assert s["treatments"]["endocrine:adjuvant"] > 0.3
    assert "share_with_skeletal_event" in s["skeletal_events"]


def test_every_therapy_ends_once_and_not_before_it_starts(default_run: Path) -> None:
    """A therapy a decision stops at a step's end (progression, palliative care) is logged as ended then,
    and not again with the planned ends that fall in the next step."""
    ev = read_table(default_run, "events")
    assert not ev.duplicated().any()
    therapy = ev[ev["kind"].isin(["treatment_start", "treatment_end"])]
    first = therapy.groupby(["patient_id", "detail", "kind"])["time_days"].agg(["size", "min"]).unstack("kind")
    ends = first[first[("size", "treatment_end")] > 0]
    assert (ends[("size", "treatment_end")] == 1).all()
    assert (ends[("size", "treatment_start")] >= 1).all()
    assert (ends[("min", "treatment_end")] >= ends[("min", "treatment_start")]).all()
    # the case that ended twice: endocrine therapy stopped at progression on line 2 (line 3 has none)
    assert (ends.index.get_level_values("detail") == "endocrine:line2").sum() > 10


def test_a_lesion_a_course_clears_ends_as_the_course_was(default_run: Path) -> None:
    """SPEC's end reasons: a lesion radiotherapy leaves with no cell ends ``irradiated`` (it was recorded as
    ``extinct``, like one that chemotherapy clears), on the day a radiotherapy course of hers starts (a
    planned adjuvant course acts on its own day, not at the start of the step it falls in); one that
    chemotherapy clears ends on the day a line starts or mid-way through the adjuvant course."""
    from metastasis.treatment.plan import _CHEMO_DAY

    lesions = read_table(default_run, "lesions")
    events = read_table(default_run, "events")
    starts = events[events["kind"] == "treatment_start"]
    chemo = starts[starts["detail"].str.startswith("chemotherapy:")]
    days = {
        "irradiated": starts[starts["detail"].str.startswith("radiotherapy:")],
        "extinct": pd.concat([chemo, chemo[chemo["detail"] == "chemotherapy:adjuvant"].assign(
            time_days=lambda f: f["time_days"] + _CHEMO_DAY)]),
    }

    def pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
        return set(zip(frame["patient_id"], frame["lesion_id"], strict=True))

    for reason, given in days.items():
        gone = lesions[lesions["end_reason"] == reason]
        on_day = gone.merge(given[["patient_id", "time_days"]], left_on=["patient_id", "ended_days"],
                            right_on=["patient_id", "time_days"])
        assert pairs(on_day) == pairs(gone), reason
    assert (lesions["end_reason"] == "irradiated").sum() > 20


def test_residual_disease_is_commoner_in_aggressive_tumours() -> None:
    """Odds of residual disease after breast-conserving surgery rise as A^k (surgery.residual_logit_per_log_...)."""
    from metastasis.engine import simulate_batch
    from metastasis.vocabulary import ORIGIN_CODE

    sc = load_scenario("ebctcg-bcs-no-rt")

    def log_a_gap(k: float) -> float:
        values = parameters.resolve({"surgery.residual_logit_per_log_aggressiveness": k})
        course = simulate_batch(sc, values, np.arange(4000))
        les, log_a = course.lesions, np.log(course.patients.aggressiveness)
        residual = np.zeros(len(log_a), bool)
        residual[les.pid[les.origin == ORIGIN_CODE["residual"]]] = True
        operated = course.clinical_stage < 3  # stage IV is not operated: keep the women who had surgery
        residual, log_a = residual[operated], log_a[operated]
        gap = log_a[residual].mean() - log_a[~residual].mean()
        se = math.sqrt(log_a[residual].var() / residual.sum() + log_a[~residual].var() / (~residual).sum())
        return float(gap / se)

    assert log_a_gap(1.5) > 4  # the default: residual disease marks aggressive disease
    assert abs(log_a_gap(0.0)) < 3  # without the link, no difference beyond chance (|z| < 3: p > 0.997)


def test_positive_margins_leave_more_residual_cells() -> None:
    """Same women, margins all clear or all positive: residual disease is commoner, and larger by
    ``surgery.residual_cells_log10_positive_margin`` decades wherever both have it."""
    from metastasis.biology import growth
    from metastasis.engine import simulate_batch
    from metastasis.vocabulary import ORIGIN_CODE

    values = parameters.resolve({"surgery.residual_cells_log10_positive_margin": 1.0})
    cells: list[dict[int, float]] = []
    for share in (0.0, 1.0):
        sc = load_scenario("ebctcg-bcs-no-rt", [f"treatment.early.positive_margin_share={share}"])
        course = simulate_batch(sc, values, np.arange(3000))
        les = course.lesions
        rows = np.nonzero(les.origin == ORIGIN_CODE["residual"])[0]
        # cells left at surgery, from the Gompertz age of the first growth segment (NaN once it changed)
        first = np.where(les.t_ref[rows] == 0.0, les.tau_ref[rows], np.nan)
        at_zero = growth.volume_at_age(first, values["growth.carrying_capacity_mm3"]) * growth.CELLS_PER_MM3
        cells.append(dict(zip(course.patients.patient_id[les.pid[rows]].tolist(), at_zero.tolist(), strict=True)))
    clear, positive = cells
    assert len(positive) > len(clear) + 100
    both = [p for p in sorted(set(clear) & set(positive)) if np.isfinite(clear[p]) and np.isfinite(positive[p])]
    assert len(both) > 100
    ratio = np.array([positive[p] / clear[p] for p in both])
    np.testing.assert_allclose(ratio, 10.0, rtol=1e-6)


def test_inversions_are_scipys() -> None:
    """The compiled inversions give exactly scipy.stats' ppf where they are exact: Poisson means 0 to 50
    and binomials of up to 1000 trials (the cumulative sums could differ only within about 1e-16 of a
    step of the distribution function; none of these 400,000 uniforms is)."""
    from scipy.stats import binom, poisson

    rng = np.random.default_rng(3)
    q = rng.uniform(1e-12, 1 - 1e-12, 200_000)
    mu = np.concatenate([rng.uniform(0, 50, 100_000), 10 ** rng.uniform(-12, 1.69, 99_000), np.zeros(1_000)])
    np.testing.assert_array_equal(poisson_from_uniform(mu, q), poisson.ppf(q, mu))
    n = rng.integers(0, 1001, 200_000).astype(float)
    p = np.concatenate([rng.uniform(0, 1, 100_000), 10 ** rng.uniform(-12, 0, 100_000)])
    np.testing.assert_array_equal(binomial_from_uniform(n, p, q), binom.ppf(q, n, p))


def test_the_blood_brain_barrier_shelters_brain_lesions_from_chemotherapy_and_anti_her2() -> None:
    """Same women, brain penetration 0.2 against 1: more of those with HER2+ or triple-negative disease
    ever have a brain lesion found (16,000 women: with ER- colonies sleeping 1.8 years on average since
    2026-11-29, fewer relapse in the brain, and 8,000 gave z = 2.7)."""
    from metastasis.engine import simulate_batch
    from metastasis.vocabulary import SUBTYPE_CODE

    sc = load_scenario("default")

    def found(penetration: float, organ: str) -> np.ndarray:
        values = parameters.resolve({"systemic.brain_penetration": penetration})
        course = simulate_batch(sc, values, np.arange(16_000))
        les = course.lesions
        hit = np.zeros(len(course.patients), bool)
        hit[les.pid[(les.organ == ORGAN_CODE[organ]) & ~np.isnan(les.det_t)]] = True
        keep = np.isin(course.patients.subtype, [SUBTYPE_CODE["her2_enriched"], SUBTYPE_CODE["triple_negative"]])
        return hit[keep]

    assert _z_paired(found(0.2, "brain"), found(1.0, "brain")) > 3  # one-sided, p < 0.0014


def test_no_decision_follows_a_death_in_the_same_step() -> None:
    """Deaths inside a step are integrated before its decisions: the care pathway's own log (before the
    tables drop what falls after a woman's end) has no detection, progression, new treatment or palliative
    care after her death. Adjuvant courses planned at diagnosis are logged then, with their future days."""
    from metastasis.engine import simulate_batch
    from metastasis.vocabulary import DETAIL_CODE, EVENT_CODE

    course = simulate_batch(load_scenario("default"), parameters.resolve({}), np.arange(5000))
    pid, day, kind, _organ, _lid, detail = course.events.arrays()
    late = day > course.end_days[pid]
    planned_kinds = [c for d, c in DETAIL_CODE.items() if d.endswith(":adjuvant") or d == "radiotherapy:breast"]
    planned = np.isin(detail, planned_kinds)
    decided = np.isin(kind, [EVENT_CODE[k] for k in ("detection", "progression", "not_treated", "palliative_care")])
    assert (course.death_cause == 1).sum() > 500
    assert not (late & (decided | ((kind == EVENT_CODE["treatment_start"]) & ~planned))).any()


def test_event_log_keeps_what_it_was_given() -> None:
    """Scalars stand for every event of a call, arrays are copied (a caller may reuse its array), and the
    columns come back in the order of the calls."""
    from metastasis.vocabulary import DETAIL_CODE, EVENT_CODE

    log = EventLog()
    day = np.array([5.0, 6.0])
    log.add(np.array([3, 4]), day, "progression", 2, -1, "line1")
    day[:] = 99.0
    log.add(np.zeros(0, np.int64), 1.0, "progression")  # nothing
    log.add(np.array([7]), 8.0, "symptom_onset", np.array([5]), np.array([11]), np.array([DETAIL_CODE["pain"]]))
    pid, t, kind, organ, lid, detail = log.arrays()
    assert pid.tolist() == [3, 4, 7] and t.tolist() == [5.0, 6.0, 8.0]
    assert kind.tolist() == [EVENT_CODE["progression"]] * 2 + [EVENT_CODE["symptom_onset"]]
    assert organ.tolist() == [3, 3, 6] and lid.tolist() == [-1, -1, 11]
    assert detail.tolist() == [DETAIL_CODE["line1"]] * 2 + [DETAIL_CODE["pain"]]
