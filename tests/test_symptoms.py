"""Symptoms: nobody is diagnosed after her distant symptoms would have brought her to care, and after
diagnosis every pending presentation is found at its step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metastasis.biology import natural_history as nh
from metastasis.cohort import Patients, draw_patients
from metastasis.detection import symptoms
from metastasis.scenario import load_scenario


def _first_presentation_days(patients: Patients, values: dict[str, float], seed: int) -> np.ndarray:
    """Per patient, the earliest day distant symptoms bring her to care (inf if none before day 0)."""
    hist, lesions = nh.start(patients, values, seed)
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    onset = symptoms.onsets_before_diagnosis(hist, lesions, values)
    p, o = np.nonzero(~np.isnan(onset))
    first = np.full(len(patients), np.inf)
    np.minimum.at(first, p, onset[p, o] + symptoms.presentation_delay_days(seed, patients.patient_id[p], o, values))
    return first


def test_diagnosis_comes_no_later_than_presentation_with_distant_symptoms() -> None:
    scenario = load_scenario("default")
    values = scenario.parameter_values()
    drawn = draw_patients(scenario.cohort, values, scenario.seed, np.arange(20_000, dtype=np.int64))
    late = _first_presentation_days(drawn, values, scenario.seed) < -symptoms.PRESENTATION_MARGIN_DAYS
    assert late.sum() >= 20  # the drawn diameters leave some women presenting years before "diagnosis"

    moved = symptoms.diagnosis_by_symptoms(drawn, values, scenario.seed)
    assert not (_first_presentation_days(moved, values, scenario.seed) < -symptoms.PRESENTATION_MARGIN_DAYS).any()
    shrunk = moved.tumour_diameter_mm < drawn.tumour_diameter_mm
    assert np.all(moved.tumour_diameter_mm <= drawn.tumour_diameter_mm)
    assert np.array_equal(shrunk, late | shrunk) and shrunk[late].all()  # every late one moved, ...
    unchanged = ~shrunk
    assert np.array_equal(moved.tumour_diameter_mm[unchanged], drawn.tumour_diameter_mm[unchanged])
    for name in ("patient_id", "age_years", "subtype", "grade", "nodes_positive", "aggressiveness"):
        assert np.array_equal(getattr(moved, name), getattr(drawn, name))


def test_due_presentations_are_every_pending_pair_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps read only the patients whose earliest pending presentation day has come (a cached lower
    bound): at every step of a course the pairs they find are those of a full scan of all patients and
    organs, in the same order."""
    from metastasis import parameters, pathway
    from metastasis.care import PALLIATIVE, CareState
    from metastasis.engine import simulate_batch

    found = pathway._due_presentations
    calls = {"steps": 0, "pairs": 0}

    def checked(state: CareState, t1: float, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        day = state.presentation
        pending = (day < t1) & ~state.presented & ~state.known & (state.mode != PALLIATIVE)[:, None]
        expected = np.nonzero(pending & (day < dead[:, None]))
        sp, so = found(state, t1, dead)
        np.testing.assert_array_equal(sp, expected[0])
        np.testing.assert_array_equal(so, expected[1])
        calls["steps"] += 1
        calls["pairs"] += sp.size
        return sp, so

    monkeypatch.setattr(pathway, "_due_presentations", checked)
    simulate_batch(load_scenario("default"), parameters.resolve({}), np.arange(5000))
    assert calls["steps"] > 200 and calls["pairs"] > 50


def test_every_exam_is_dated_in_the_step_that_does_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step evaluates only exams dated within it, so each meets the lesions as they are then:

    - after surgery of a local recurrence the breast and axilla start afresh, but the symptom that brought
      her to care there is spent (it used to present again at the next step, dating a symptom work-up
      before that step);
    - a confirmation dated after the step that ordered it is done in the step it falls in (it used to be
      done at once, against the lesions before that step's decisions: one lesion in 113,000 was found
      before its ``detectable_days``).
    """
    from metastasis import parameters
    from metastasis.detection import schedule
    from metastasis.engine import simulate_batch
    from metastasis.treatment import plan

    step = {"start": 0.0, "end": np.inf}  # staging, before the first step: day 0 and its confirmations
    outside: list[float] = []
    windows, examine, confirm = plan.finish_windows, schedule.examine, schedule.confirm

    def step_start(state: object, t: float, t1: float) -> None:  # called once at the start of every step
        step.update(start=t, end=t1)
        windows(state, t, t1)  # type: ignore[arg-type]

    def check(time_days: np.ndarray) -> None:
        outside.extend(time_days[(time_days < step["start"]) | (time_days > step["end"])].tolist())

    def checked_examine(scanner: object, pid: np.ndarray, time_days: np.ndarray, *args: object,
                        **kwargs: object) -> object:
        check(time_days)
        return examine(scanner, pid, time_days, *args, **kwargs)  # type: ignore[arg-type]

    def checked_confirm(scanner: object, pid: np.ndarray, time_days: np.ndarray, organ: np.ndarray) -> object:
        check(time_days)
        return confirm(scanner, pid, time_days, organ)  # type: ignore[arg-type]

    monkeypatch.setattr(plan, "finish_windows", step_start)
    monkeypatch.setattr(schedule, "examine", checked_examine)
    monkeypatch.setattr(schedule, "confirm", checked_confirm)
    course = simulate_batch(load_scenario("default"), parameters.resolve({}), np.arange(10_000))
    assert outside == []
    # the paths were taken: recurrences in the breast or axilla operated on after diagnosis, and
    # confirmations after diagnosis
    from metastasis.vocabulary import DAYS_PER_MONTH, DETAIL_CODE, EVENT_CODE, PURPOSE_CODE

    _, day, kind, _, _, detail = course.events.arrays()
    local = np.isin(detail, [DETAIL_CODE["surgery:mastectomy"], DETAIL_CODE["surgery:axillary"]])
    assert ((kind == EVENT_CODE["treatment_start"]) & local & (day > 0)).sum() > 20
    confirmations = np.concatenate([e.time_days[e.purpose == PURPOSE_CODE["confirmation"]] for e in course.exams])
    assert (confirmations > 28.0).sum() > 1000

    # restaging every half month, more often than the 28-day step: each step does every restaging dated in
    # it (one a step used to be done, the next ones dated ever further in the past); the first after a
    # finding in follow-up is not dated before the decision it follows
    often = load_scenario("default", ("restaging.every_months=0.5",))
    step.update(start=0.0, end=np.inf)
    course = simulate_batch(often, parameters.resolve({}), np.arange(3000))
    assert outside == []
    restaging = [(e.pid[e.purpose == PURPOSE_CODE["restaging"]], e.time_days[e.purpose == PURPOSE_CODE["restaging"]])
                 for e in course.exams]
    pid = np.concatenate([p for p, _ in restaging])
    gaps = np.diff(np.unique(np.concatenate([t for _, t in restaging])[pid == np.bincount(pid).argmax()]))
    assert gaps.size > 20 and np.isclose(np.median(gaps), 0.5 * DAYS_PER_MONTH)


def test_symptoms_reveal_distant_disease_no_earlier_than_it_is_found(default_run: Path) -> None:
    """``distant_symptom_days`` (the day symptoms alone would have revealed distant disease) is never before
    the first distant detection, and is that day when a symptom work-up made it. An earlier presentation
    (a lump in the axilla, or a distant symptom whose work-up saw nothing) used to set it, and lead times
    came out negative."""
    from conftest import read_table

    patients = read_table(default_run, "patients").set_index("patient_id")
    lesions = read_table(default_run, "lesions")
    distant = lesions[~lesions["organ"].isin(["breast", "regional_nodes"]) & lesions["detected_days"].notna()]
    first = distant.sort_values(["patient_id", "detected_days"]).groupby("patient_id").first()
    women = patients.join(first[["detected_days", "detected_by"]], how="inner")
    assert len(women) > 300
    lead = women["distant_symptom_days"] - women["detected_days"]
    assert (lead >= 0).all()
    by_symptoms = women["detected_by"] == "symptoms"
    assert by_symptoms.sum() > 200 and (lead[by_symptoms] == 0).all()


def test_symptoms_that_would_come_after_her_death_never_reveal_anything() -> None:
    """``distant_symptom_days`` is NaN when symptoms alone would have revealed distant disease only after
    the woman's death (SPEC: "NaN if never"), so a lead time is never counted against symptoms she did not
    live to have. The counterfactual day is projected at the first distant finding, before her death is
    known (a woman with stage IV at diagnosis who dies of other causes within months kept it)."""
    from metastasis import parameters
    from metastasis.engine import simulate_batch

    course = simulate_batch(load_scenario("default"), parameters.resolve({}), np.arange(20_000))
    day = course.distant_symptom_days
    expected = np.isfinite(day)
    assert expected.sum() > 3000
    assert (day[expected] <= course.end_days[expected]).all()
    assert (np.isfinite(course.death_days) & expected).sum() > 1000
